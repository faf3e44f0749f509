"""Instants as people read them: Asia/Shanghai with the +08:00 offset (the engine stores UTC)."""

from __future__ import annotations

import logging
from datetime import datetime
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai_iso(moment: datetime) -> str:
    """ISO 8601 to the second, e.g. 2026-11-26T16:00:00+08:00: exact, and what messages and audit text quote."""
    return moment.astimezone(SHANGHAI).isoformat(timespec="seconds")


def shanghai_text(moment: datetime) -> str:
    """Short for notices, e.g. 2026-11-26 16:00 +08:00."""
    local = moment.astimezone(SHANGHAI)
    return f"{local:%Y-%m-%d %H:%M} {local.isoformat()[-6:]}"  # isoformat ends with the offset, +08:00


class ShanghaiLogFormatter(logging.Formatter):
    """Log lines stamped in Shanghai time with the offset, whatever the host's time zone."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, SHANGHAI).isoformat(timespec="milliseconds")
