"""Working-time durations as written in definitions: "2d", "4h", "1d4h30m"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_PATTERN = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?$")


@dataclass(frozen=True, order=True)
class WorkingDuration:
    """A span of working time; a day means one working day of the calendar's office hours."""

    days: int = 0
    minutes: int = 0

    @classmethod
    def parse(cls, text: str) -> WorkingDuration:
        match = _PATTERN.match(text.strip().replace(" ", ""))
        if not text.strip() or match is None or not any(match.groupdict().values()):
            raise ValueError(
                f"bad duration {text!r}: write working time as days, hours and minutes, e.g. 2d, 4h, 1d4h30m"
            )
        days = int(match["d"] or 0)
        minutes = int(match["h"] or 0) * 60 + int(match["m"] or 0)
        if days == 0 and minutes == 0:
            raise ValueError(f"bad duration {text!r}: a time limit must be longer than zero")
        return cls(days=days, minutes=minutes)

    def to_timedelta(self, working_day: timedelta) -> timedelta:
        return self.days * working_day + timedelta(minutes=self.minutes)

    def __str__(self) -> str:
        hours, minutes = divmod(self.minutes, 60)
        parts = [f"{self.days}d" if self.days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
        return "".join(parts) or "0m"
