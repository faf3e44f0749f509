"""Notices: Jinja2 templates (zh-CN, en), rendering, the outbox dispatcher and its channels."""
