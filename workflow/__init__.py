"""Enterprise-appeal workflow engine: definitions, state machines, persistence and time limits."""

from __future__ import annotations

__version__ = "0.1.0"
