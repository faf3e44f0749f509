"""The web entry point: REST API under /api/v1 and server-rendered pages."""
