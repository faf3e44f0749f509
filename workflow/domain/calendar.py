"""Working time in Asia/Shanghai: statutory holidays, make-up working days and office hours."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, UTC, date, datetime, time, timedelta
from importlib.metadata import version
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from holidays import country_holidays

from workflow.errors import Problem, WorkflowError

logger = logging.getLogger(__name__)
# Years already warned about in this process: every calendar built (at start, on each reload by the
# sweeper, in every request worker) would otherwise say it again.
_ESTIMATES_WARNED: set[int] = set()
_ESTIMATES_LOCK = threading.Lock()

_DAY = timedelta(days=1)
_ZERO = timedelta(0)
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")
# A year with office hours always has weekdays; a longer idle stretch means the data is broken.
_MAX_IDLE_DAYS = 400

Period = tuple[time, time]
Interval = tuple[datetime, datetime]


# ---------------------------------------------------------------- office hours


def _clock(text: str) -> time:
    match = _CLOCK.match(text.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{text.strip()!r} is not a time of day written HH:MM")
    return time(int(match[1]), int(match[2]))


def _duration(period: Period) -> timedelta:
    return datetime.combine(date.min, period[1]) - datetime.combine(date.min, period[0])


@dataclass(frozen=True)
class WorkingHours:
    """Office hours of one working day, as local wall-clock periods in order."""

    periods: tuple[Period, ...]

    def __post_init__(self) -> None:
        if not self.periods:
            raise ValueError("working hours need at least one period, e.g. 09:00-12:00")
        for start, end in self.periods:
            if start.tzinfo is not None or end.tzinfo is not None:
                raise ValueError("working hours are wall-clock times; the calendar's tz places them")
            if end <= start:
                raise ValueError(f"period {start:%H:%M}-{end:%H:%M} ends before it starts")
        for (_, end), (start, next_end) in pairwise(self.periods):
            if start < end:
                raise ValueError(
                    f"periods must be in order without overlap: {start:%H:%M}-{next_end:%H:%M} "
                    f"starts before {end:%H:%M}"
                )

    @classmethod
    def default(cls) -> WorkingHours:
        return cls(((time(9), time(12)), (time(14), time(17, 30))))

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """Read "09:00-12:00,14:00-17:30"; periods may come in any order."""
        periods: list[Period] = []
        for part in text.split(","):
            start, sep, end = part.partition("-")
            if not sep:
                raise ValueError(f"bad working hours {text!r}: {part.strip()!r} is not HH:MM-HH:MM")
            try:
                periods.append((_clock(start), _clock(end)))
            except ValueError as exc:
                raise ValueError(f"bad working hours {text!r}: {exc}") from None
        try:
            return cls(tuple(sorted(periods)))
        except ValueError as exc:
            raise ValueError(f"bad working hours {text!r}: {exc}") from None

    @property
    def per_day(self) -> timedelta:
        return sum((_duration(p) for p in self.periods), _ZERO)

    def __str__(self) -> str:
        return ",".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in self.periods)


# ---------------------------------------------------------------- official notices


def _not_weekend(day: date) -> str:
    return f"make-up working day {day} is a {day:%A}; only a Saturday or Sunday can be made a working day"


def _date_problems(year: int, holidays_: Mapping[date, str], workdays: Mapping[date, str]) -> list[str]:
    problems = [f"holiday {d} is outside {year}" for d in sorted(holidays_) if d.year != year]
    for d in sorted(workdays):
        if d.year != year:
            problems.append(f"make-up working day {d} is outside {year}")
        if d.weekday() < 5:
            problems.append(_not_weekend(d))
        if d in holidays_:
            problems.append(f"{d} is both a holiday ({holidays_[d]}) and a make-up working day ({workdays[d]})")
    return problems


@dataclass(frozen=True)
class YearOverride:
    """One year of the State Council's holiday notice; it replaces the holidays package for that year."""

    year: int
    holidays: Mapping[date, str]
    workdays: Mapping[date, str]
    source: str
    notice: str = ""

    def __post_init__(self) -> None:
        if problems := _date_problems(self.year, self.holidays, self.workdays):
            raise ValueError(f"calendar override for {self.year} from {self.source}: " + "; ".join(problems))
        # Read-only copies, so a caller's dict cannot change a calendar after the fact.
        object.__setattr__(self, "holidays", MappingProxyType(dict(self.holidays)))
        object.__setattr__(self, "workdays", MappingProxyType(dict(self.workdays)))


class CalendarFileError(WorkflowError, ValueError):
    """A holiday override file is wrong; lists every problem as path:line: message."""

    code = "calendar_invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        files = ", ".join(sorted({p.file for p in self.problems}))
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in calendar file {files}:\n"
            + "\n".join(map(str, self.problems))
        )

    def details(self) -> object:
        return [{"file": p.file, "line": p.line, "message": p.message} for p in self.problems]


_TOP_KEYS = ("year", "source", "holidays", "workdays")
_HOLIDAY_KEYS = ("name", "from", "to")
_WORKDAY_KEYS = ("name", "date")


class _FileReader:
    """Walks the composed YAML nodes so every problem can name its line."""

    def __init__(self, path: str, loader: yaml.SafeLoader) -> None:
        self.path = path
        self.loader = loader
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(Problem(self.path, node.start_mark.line + 1, message))

    def mapping(self, node: yaml.Node, what: str, allowed: Sequence[str]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, f"{what} must be a mapping with keys {', '.join(allowed)}")
            return None
        found: dict[str, yaml.Node] = {}
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else None
            if name is None or name not in allowed:
                self.problem(key, f"unknown key {name!r} in {what}; expected one of: {', '.join(allowed)}")
            elif name in found:
                self.problem(key, f"key {name!r} appears twice in {what}")
            else:
                found[name] = value
        return found

    def value(self, node: yaml.Node) -> object:
        if not isinstance(node, yaml.ScalarNode):
            return node
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, yaml.YAMLError) as exc:
            return exc

    def text(self, node: yaml.Node, what: str) -> str | None:
        value = self.value(node)
        if not isinstance(value, str) or not value.strip():
            self.problem(node, f"{what} must be non-empty text")
            return None
        return value.strip()

    def day(self, node: yaml.Node, what: str, year: int | None) -> date | None:
        value = self.value(node)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = date.fromisoformat(value.strip())
        if not isinstance(value, date) or isinstance(value, datetime):
            detail = f" ({value})" if isinstance(value, Exception) else ""
            self.problem(node, f"{what} must be a date written YYYY-MM-DD{detail}")
            return None
        if year is not None and value.year != year:
            self.problem(node, f"{what} {value} is outside the file's year {year}")
            return None
        return value

    def items(self, node: yaml.Node | None, what: str) -> list[yaml.Node]:
        if node is None or (isinstance(node, yaml.ScalarNode) and self.value(node) is None):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, f"{what} must be a list")
            return []
        return list(node.value)


def _read_year(reader: _FileReader, node: yaml.Node) -> int | None:
    value = reader.value(node)
    if type(value) is not int or not MINYEAR < value < MAXYEAR:
        reader.problem(node, f"year must be a whole number like 2026, not {getattr(node, 'value', node)!r}")
        return None
    return value


def load_override(path: str | Path) -> YearOverride:
    """Read one year's notice from YAML; raise CalendarFileError naming every problem with its line."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CalendarFileError([Problem(name, 1, f"not UTF-8 text ({exc.reason})")]) from None
    loader = yaml.SafeLoader(text)
    try:
        return _parse(name, loader)
    finally:
        loader.dispose()


def load_override_text(text: str, name: str) -> YearOverride:
    """Read one year's notice from YAML text, e.g. as stored in the database by `appeals calendar load`."""
    loader = yaml.SafeLoader(text)
    try:
        return _parse(name, loader)
    finally:
        loader.dispose()


def _parse(name: str, loader: yaml.SafeLoader) -> YearOverride:
    try:
        root = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else 1
        raise CalendarFileError([Problem(name, line, f"YAML syntax: {exc.problem}")]) from None
    except yaml.YAMLError as exc:
        raise CalendarFileError([Problem(name, 1, f"YAML syntax: {exc}")]) from None
    if root is None:
        raise CalendarFileError([Problem(name, 1, "the file is empty; expected year, source, holidays, workdays")])
    reader = _FileReader(name, loader)
    top = reader.mapping(root, "the file", _TOP_KEYS)
    if top is None:
        raise CalendarFileError(reader.problems)
    for key in ("year", "source"):
        if key not in top:
            reader.problem(root, f"missing key {key!r}")
    year = _read_year(reader, top["year"]) if "year" in top else None
    notice = reader.text(top["source"], "source") if "source" in top else None

    off: dict[date, tuple[str, int]] = {}
    for item in reader.items(top.get("holidays"), "holidays"):
        entry = reader.mapping(item, "a holiday", _HOLIDAY_KEYS)
        if entry is None:
            continue
        for key in ("name", "from"):
            if key not in entry:
                reader.problem(item, f"holiday entry is missing {key!r}")
        label = reader.text(entry["name"], "holiday name") if "name" in entry else None
        first = reader.day(entry["from"], "holiday start", year) if "from" in entry else None
        last = reader.day(entry["to"], "holiday end", year) if "to" in entry else first
        if first is None or last is None or label is None:
            continue
        if first > last:
            reader.problem(entry.get("to", item), f"holiday {label} runs backwards: from {first} to {last}")
            continue
        line = item.start_mark.line + 1
        day = first
        while day <= last:
            if day in off:
                other, other_line = off[day]
                reader.problem(item, f"{day} is already a holiday ({other}, line {other_line})")
            else:
                off[day] = (label, line)
            day += _DAY

    work: dict[date, str] = {}
    for item in reader.items(top.get("workdays"), "workdays"):
        entry = reader.mapping(item, "a make-up working day", _WORKDAY_KEYS)
        if entry is None:
            continue
        for key in ("name", "date"):
            if key not in entry:
                reader.problem(item, f"make-up working day entry is missing {key!r}")
        label = reader.text(entry["name"], "make-up working day name") if "name" in entry else None
        day_ = reader.day(entry["date"], "make-up working day", year) if "date" in entry else None
        if day_ is None or label is None:
            continue
        if day_.weekday() < 5:
            reader.problem(entry["date"], _not_weekend(day_))
        elif day_ in work:
            reader.problem(entry["date"], f"{day_} is listed twice as a make-up working day")
        elif day_ in off:
            other, other_line = off[day_]
            reader.problem(
                entry["date"],
                f"{day_} is both a holiday ({other}, line {other_line}) and a make-up working day",
            )
        else:
            work[day_] = label

    if reader.problems or year is None or notice is None:
        raise CalendarFileError(sorted(reader.problems, key=lambda p: p.line))
    return YearOverride(
        year=year,
        holidays={d: label for d, (label, _) in off.items()},
        workdays=work,
        source=name,
        notice=notice,
    )


def load_overrides(directory: str | Path, pattern: str = "*.yaml") -> list[YearOverride]:
    """Read every notice file in a folder; one error lists the problems of all files."""
    problems: list[Problem] = []
    found: dict[int, YearOverride] = {}
    for path in sorted(Path(directory).glob(pattern)):
        try:
            override = load_override(path)
        except CalendarFileError as exc:
            problems.extend(exc.problems)
            continue
        if override.year in found:
            problems.append(Problem(str(path), 1, f"year {override.year} is also in {found[override.year].source}"))
        found[override.year] = override
    if problems:
        raise CalendarFileError(problems)
    return [found[year] for year in sorted(found)]


# ---------------------------------------------------------------- the calendar


@dataclass(frozen=True)
class YearInfo:
    """What the calendar knows about one year, and whether it is the official notice or an estimate."""

    year: int
    official: bool
    holidays: list[tuple[date, str]]
    workdays: list[tuple[date, str]]
    source: str = ""


@dataclass(frozen=True)
class _Year:
    holidays: Mapping[date, str]
    workdays: Mapping[date, str]
    official: bool
    source: str


def _estimate(year: int) -> _Year:
    # The package models each notice's 调休 as weekend_workdays (filled for every year it has a notice
    # for); past its data it only applies the statutory holidays and moves those on weekends to Monday.
    china = country_holidays("CN", years=year, language="zh_CN")
    return _Year(
        holidays={d: name for d, name in china.items() if d.year == year},
        workdays={d: "调休上班" for d in china.weekend_workdays if d.year == year},
        official=False,
        source=f"estimate by the holidays package {version('holidays')}",
    )


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()!r}")
    return value.astimezone(UTC)


def _warn_estimate_once(year: int, data: _Year) -> None:
    with _ESTIMATES_LOCK:
        if year in _ESTIMATES_WARNED:
            return
        _ESTIMATES_WARNED.add(year)
    logger.warning(
        "no official holiday notice loaded for %d; its working time is an %s%s",
        year,
        data.source,
        "" if data.workdays else ", which knows no make-up working days (调休) for that year",
    )


class WorkingCalendar:
    """Answers how much working time lies between instants, and when a span of it runs out."""

    def __init__(
        self,
        overrides: Iterable[YearOverride] = (),
        hours: WorkingHours | None = None,
        tz: str = "Asia/Shanghai",
    ) -> None:
        self._overrides: dict[int, YearOverride] = {}
        for override in overrides:
            self._overrides[override.year] = override  # a later notice for the same year wins
        self._hours = hours or WorkingHours.default()
        self._tz_name = tz
        try:
            self._tz = ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {tz!r}; use an IANA name such as 'Asia/Shanghai'") from None
        self._years: dict[int, _Year] = {}
        self._days: dict[date, tuple[Interval, ...]] = {}
        self._lock = threading.Lock()

    @property
    def hours(self) -> WorkingHours:
        return self._hours

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    def with_override(self, override: YearOverride) -> WorkingCalendar:
        return WorkingCalendar([*self._overrides.values(), override], self._hours, self._tz_name)

    def _year(self, year: int) -> _Year:
        known = self._years.get(year)
        if known is not None:
            return known
        with self._lock:
            if year in self._years:
                return self._years[year]
            override = self._overrides.get(year)
            if override is not None:
                data = _Year(override.holidays, override.workdays, True, override.source)
            else:
                data = _estimate(year)
                _warn_estimate_once(year, data)
            self._years[year] = data
            return data

    def is_working_day(self, day: date) -> bool:
        if isinstance(day, datetime):
            # A datetime never equals a date key, so it would silently miss every holiday.
            raise ValueError(f"is_working_day takes a date; for an instant pass .astimezone(tz).date(): {day!r}")
        data = self._year(day.year)
        if day in data.workdays:
            return True
        return day not in data.holidays and day.weekday() < 5

    def is_official(self, year: int) -> bool:
        return year in self._overrides

    def is_provisional(self, a: datetime, b: datetime) -> bool:
        first, last = sorted(_aware(t, "instant").astimezone(self._tz).year for t in (a, b))
        return any(not self.is_official(year) for year in range(first, last + 1))

    def year_info(self, year: int) -> YearInfo:
        data = self._year(year)
        return YearInfo(
            year=year,
            official=data.official,
            holidays=sorted(data.holidays.items()),
            workdays=sorted(data.workdays.items()),
            source=data.source,
        )

    def _intervals(self, day: date) -> tuple[Interval, ...]:
        """The day's office periods as UTC instants; empty on a day off."""
        known = self._days.get(day)
        if known is None:
            known = ()
            if self.is_working_day(day):
                known = tuple(
                    (start, end)
                    for s, e in self._hours.periods
                    if (start := datetime.combine(day, s, self._tz).astimezone(UTC))
                    < (end := datetime.combine(day, e, self._tz).astimezone(UTC))
                )
            self._days[day] = known
        return known

    def add(self, start: datetime, working: timedelta) -> datetime:
        """The instant (aware, UTC) at which `working` of working time has passed since `start`."""
        begin = _aware(start, "start")
        if working < _ZERO:
            raise ValueError(f"working time to add must not be negative, got {working}")
        if working == _ZERO:
            return begin
        remaining = working
        day = begin.astimezone(self._tz).date()
        idle = 0
        while True:
            for lo, hi in self._intervals(day):
                if hi <= begin:
                    continue
                lo = max(lo, begin)
                # Ending exactly at closing time returns that closing instant, not the next opening.
                if remaining <= hi - lo:
                    return lo + remaining
                remaining -= hi - lo
                idle = 0
            idle += 1
            if idle > _MAX_IDLE_DAYS:
                raise ValueError(f"no working time in the {_MAX_IDLE_DAYS} days before {day}; check the calendar")
            day += _DAY

    def between(self, a: datetime, b: datetime) -> timedelta:
        """Working time in [a, b); zero when b is not after a."""
        lo_bound, hi_bound = _aware(a, "a"), _aware(b, "b")
        if hi_bound <= lo_bound:
            return _ZERO
        total = _ZERO
        day = lo_bound.astimezone(self._tz).date()
        last = hi_bound.astimezone(self._tz).date()
        while day <= last:
            for lo, hi in self._intervals(day):
                lo, hi = max(lo, lo_bound), min(hi, hi_bound)
                if hi > lo:
                    total += hi - lo
            day += _DAY
        return total
