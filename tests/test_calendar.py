"""Working time in Shanghai: holidays, make-up working days, office hours and the notice files."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow.domain.calendar import (
    CalendarFileError,
    WorkingCalendar,
    WorkingHours,
    YearOverride,
    load_override,
    load_overrides,
)

SH = ZoneInfo("Asia/Shanghai")
NOTICES = Path(__file__).resolve().parents[1] / "definitions" / "calendar"
OFFICIAL = WorkingCalendar(load_overrides(NOTICES))
DAY = OFFICIAL.hours.per_day


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def write(tmp_path: Path, text: str, name: str = "cn.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- office hours


def test_default_office_hours_are_morning_and_afternoon_and_last_six_and_a_half_hours() -> None:
    hours = WorkingHours.default()
    assert hours == WorkingHours.parse("09:00-12:00,14:00-17:30")
    assert hours.per_day == timedelta(hours=6, minutes=30)
    assert str(hours) == "09:00-12:00,14:00-17:30"


def test_office_hours_may_be_written_in_any_order() -> None:
    assert WorkingHours.parse(" 14:00-17:30 , 09:00-12:00 ") == WorkingHours.default()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9-12", "bad working hours '9-12': '9' is not a time of day written HH:MM"),
        ("09:00", "bad working hours '09:00': '09:00' is not HH:MM-HH:MM"),
        ("12:00-09:00", "bad working hours '12:00-09:00': period 12:00-09:00 ends before it starts"),
        ("09:00-25:00", "bad working hours '09:00-25:00': '25:00' is not a time of day written HH:MM"),
        (
            "09:00-12:00,11:00-13:00",
            "bad working hours '09:00-12:00,11:00-13:00': periods must be in order without overlap: "
            "11:00-13:00 starts before 12:00",
        ),
    ],
)
def test_bad_office_hours_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        WorkingHours.parse(text)
    assert str(caught.value) == message


# ---------------------------------------------------------------- working days


def test_the_saturday_before_spring_festival_2026_is_a_make_up_working_day() -> None:
    assert OFFICIAL.is_working_day(date(2026, 2, 14))


def test_the_monday_of_spring_festival_2026_is_a_day_off() -> None:
    assert not OFFICIAL.is_working_day(date(2026, 2, 16))


def test_an_ordinary_weekend_is_off_and_an_ordinary_weekday_is_on() -> None:
    assert not OFFICIAL.is_working_day(date(2026, 3, 7))
    assert OFFICIAL.is_working_day(date(2026, 3, 9))


def test_one_working_day_from_friday_afternoon_before_spring_festival_ends_on_the_make_up_saturday() -> None:
    due = OFFICIAL.add(sh(2026, 2, 13, 16, 0), DAY)
    assert due == sh(2026, 2, 14, 16, 0)
    assert due.tzinfo is UTC


def test_a_deadline_over_spring_festival_skips_the_whole_nine_day_holiday() -> None:
    # Saturday 14 Feb is the last working day before the holiday; Tuesday 24 Feb the first after it.
    assert OFFICIAL.add(sh(2026, 2, 14, 9, 0), 2 * DAY) == sh(2026, 2, 24, 17, 30)
    assert OFFICIAL.between(sh(2026, 2, 14, 17, 30), sh(2026, 2, 24, 9, 0)) == timedelta(0)


def test_time_ending_exactly_at_closing_ends_at_closing_not_at_the_next_opening() -> None:
    assert OFFICIAL.add(sh(2026, 3, 6, 9, 0), DAY) == sh(2026, 3, 6, 17, 30)


def test_a_start_outside_office_hours_waits_for_the_next_opening() -> None:
    assert OFFICIAL.add(sh(2026, 3, 8, 22, 0), timedelta(minutes=1)) == sh(2026, 3, 9, 9, 1)
    assert OFFICIAL.add(sh(2026, 3, 9, 12, 30), timedelta(minutes=1)) == sh(2026, 3, 9, 14, 1)


def test_adding_nothing_returns_the_start_and_an_empty_span_counts_nothing() -> None:
    start = sh(2026, 3, 8, 22, 0)
    assert OFFICIAL.add(start, timedelta(0)) == start
    assert OFFICIAL.between(start, start - timedelta(days=3)) == timedelta(0)


def test_naive_times_and_negative_spans_are_refused() -> None:
    with pytest.raises(ValueError, match=r"start must be timezone-aware, got naive '2026-03-09T09:00:00'"):
        OFFICIAL.add(datetime(2026, 3, 9, 9), DAY)
    with pytest.raises(ValueError, match="b must be timezone-aware"):
        OFFICIAL.between(sh(2026, 3, 9), datetime(2026, 3, 10))
    with pytest.raises(ValueError, match="must not be negative"):
        OFFICIAL.add(sh(2026, 3, 9), -DAY)


def test_asking_whether_an_instant_is_a_working_day_is_refused() -> None:
    with pytest.raises(ValueError, match="is_working_day takes a date"):
        OFFICIAL.is_working_day(sh(2026, 2, 14, 10))


def test_an_unknown_time_zone_is_refused_with_its_name() -> None:
    with pytest.raises(ValueError, match="unknown time zone 'Asia/Changsha'"):
        WorkingCalendar(tz="Asia/Changsha")


# ---------------------------------------------------------------- official and estimated years


def test_the_shipped_notices_make_2025_and_2026_official() -> None:
    assert OFFICIAL.is_official(2025) and OFFICIAL.is_official(2026)
    assert not OFFICIAL.is_provisional(sh(2025, 1, 1), sh(2026, 12, 31, 23, 59))
    assert OFFICIAL.is_provisional(sh(2026, 12, 1), sh(2027, 1, 5))


def test_the_shipped_notices_agree_with_the_holidays_package_on_every_day() -> None:
    estimate = WorkingCalendar()
    day = date(2025, 1, 1)
    while day.year < 2027:
        assert OFFICIAL.is_working_day(day) == estimate.is_working_day(day), day
        day += timedelta(days=1)


def test_year_info_lists_the_days_off_and_make_up_days_of_the_notice() -> None:
    info = OFFICIAL.year_info(2026)
    assert info.official
    assert info.source.endswith("cn-2026.yaml")
    assert info.workdays == [
        (date(2026, 1, 4), "元旦调休"),
        (date(2026, 2, 14), "春节调休"),
        (date(2026, 2, 28), "春节调休"),
        (date(2026, 5, 9), "劳动节调休"),
        (date(2026, 9, 20), "国庆节调休"),
        (date(2026, 10, 10), "国庆节调休"),
    ]
    assert info.holidays == sorted(info.holidays)
    assert len(info.holidays) == 3 + 9 + 3 + 5 + 3 + 3 + 7
    assert (date(2026, 2, 16), "春节") in info.holidays


def test_a_year_without_a_notice_is_estimated_provisional_and_still_counts(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The warning comes once per process; another test may already have touched 2031.
    monkeypatch.setattr("workflow.domain.calendar._ESTIMATES_WARNED", set())
    calendar = WorkingCalendar()
    with caplog.at_level(logging.WARNING, logger="workflow.domain.calendar"):
        assert not calendar.is_official(2031)
        assert calendar.is_provisional(sh(2031, 3, 3), sh(2031, 3, 4))
        info = calendar.year_info(2031)
        assert not calendar.is_working_day(date(2031, 1, 23))  # Spring Festival, from the package
        assert calendar.add(sh(2031, 3, 7, 9), 2 * DAY) == sh(2031, 3, 10, 17, 30)
    assert not info.official
    assert info.workdays == []
    assert (date(2031, 1, 23), "春节") in info.holidays
    warnings = [r.getMessage() for r in caplog.records if "2031" in r.getMessage()]
    assert warnings == [
        "no official holiday notice loaded for 2031; its working time is an estimate by the holidays "
        f"package {info.source.rsplit(' ', 1)[-1]}, which knows no make-up working days (调休) for that year"
    ]


def test_a_year_the_holidays_package_does_not_cover_counts_only_weekends() -> None:
    calendar = WorkingCalendar()
    assert calendar.year_info(2150).holidays == []
    assert calendar.add(sh(2150, 1, 1, 9), 5 * DAY) == sh(2150, 1, 7, 17, 30)  # Thursday to Wednesday


NOTICE_2031 = """\
year: 2031
source: 测试通知
holidays:
  - {name: 测试假日, from: 2031-03-03, to: 2031-03-04}
workdays:
  - {name: 测试调休, date: 2031-03-08}
"""


def test_loading_a_notice_makes_the_year_official_and_changes_the_answers(tmp_path: Path) -> None:
    estimate = WorkingCalendar()
    override = load_override(write(tmp_path, NOTICE_2031))
    official = estimate.with_override(override)

    assert official.is_official(2031) and not estimate.is_official(2031)
    assert not official.is_provisional(sh(2031, 3, 1), sh(2031, 3, 31))
    assert official.year_info(2031).workdays == [(date(2031, 3, 8), "测试调休")]
    assert override.notice == "测试通知"
    # Mon-Tue 3-4 March are now off and Saturday 8 March is on.
    assert not official.is_working_day(date(2031, 3, 3)) and estimate.is_working_day(date(2031, 3, 3))
    assert official.is_working_day(date(2031, 3, 8)) and not estimate.is_working_day(date(2031, 3, 8))
    start = sh(2031, 2, 28, 17, 0)
    assert estimate.add(start, DAY) == sh(2031, 3, 3, 17, 0)
    assert official.add(start, DAY) == sh(2031, 3, 5, 17, 0)
    assert official.between(sh(2031, 3, 3), sh(2031, 3, 10)) == 4 * DAY


def test_a_notice_built_in_code_is_checked_too() -> None:
    with pytest.raises(ValueError) as caught:
        YearOverride(
            2026, {date(2026, 1, 1): "元旦"}, {date(2026, 1, 1): "x", date(2026, 2, 13): "y"}, "code"
        )
    assert str(caught.value) == (
        "calendar override for 2026 from code: "
        "make-up working day 2026-01-01 is a Thursday; only a Saturday or Sunday can be made a working day; "
        "2026-01-01 is both a holiday (元旦) and a make-up working day (x); "
        "make-up working day 2026-02-13 is a Friday; only a Saturday or Sunday can be made a working day"
    )


# ---------------------------------------------------------------- bad notice files

BAD_NOTICE = """\
year: 2026
source: 测试
holiday:
  - {name: 元旦, from: 2026-01-01, to: 2026-01-03}
holidays:
  - {name: 春节, from: 2026-02-23, to: 2026-02-15}
  - {name: 元旦, from: 2025-12-31, to: 2026-01-01}
  - {name: 清明节, from: 2026-04-04, to: 2026-04-06}
  - {name: 劳动节, from: 2026-02-30}
workdays:
  - {name: 调休, date: 2026-02-13}
  - {name: 清明调休, date: 2026-04-05}
  - {name: 调休, date: 2026-02-14, when: morning}
"""


def test_a_bad_notice_file_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, BAD_NOTICE)
    with pytest.raises(CalendarFileError) as caught:
        load_override(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:3: unknown key 'holiday' in the file; expected one of: year, source, holidays, workdays",
        f"{path}:6: holiday 春节 runs backwards: from 2026-02-23 to 2026-02-15",
        f"{path}:7: holiday start 2025-12-31 is outside the file's year 2026",
        f"{path}:9: holiday start must be a date written YYYY-MM-DD (day is out of range for month)",
        f"{path}:11: make-up working day 2026-02-13 is a Friday; "
        "only a Saturday or Sunday can be made a working day",
        f"{path}:12: 2026-04-05 is both a holiday (清明节, line 8) and a make-up working day",
        f"{path}:13: unknown key 'when' in a make-up working day; expected one of: name, date",
    ]
    assert str(caught.value).startswith(f"7 problems in calendar file {path}:\n{path}:3: unknown key")
    assert isinstance(caught.value, ValueError)


def test_a_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "year: 2026\nsource: x\nholidays:\n  - {name: 元旦, from: 2026-01-01\n")
    with pytest.raises(CalendarFileError) as caught:
        load_override(path)
    [problem] = caught.value.problems
    assert (problem.file, problem.line) == (str(path), 5)
    assert problem.message.startswith("YAML syntax: ")


def test_a_notice_without_year_or_source_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "holidays: []\n")
    with pytest.raises(CalendarFileError) as caught:
        load_override(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:1: missing key 'year'",
        f"{path}:1: missing key 'source'",
    ]


def test_two_notice_files_for_one_year_are_refused(tmp_path: Path) -> None:
    write(tmp_path, NOTICE_2031, "a.yaml")
    second = write(tmp_path, NOTICE_2031, "b.yaml")
    with pytest.raises(CalendarFileError) as caught:
        load_overrides(tmp_path)
    assert [str(p) for p in caught.value.problems] == [
        f"{second}:1: year 2031 is also in {tmp_path / 'a.yaml'}"
    ]


# ---------------------------------------------------------------- properties

instants = st.datetimes(
    min_value=datetime(2024, 12, 1),
    max_value=datetime(2027, 2, 1),
    timezones=st.sampled_from([SH, UTC]),
)
spans = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=12))
FAST = settings(max_examples=150, deadline=None)


@FAST
@given(start=instants, span=spans)
def test_the_time_between_a_start_and_its_deadline_is_the_time_added(
    start: datetime, span: timedelta
) -> None:
    assert OFFICIAL.between(start, OFFICIAL.add(start, span)) == span


@FAST
@given(a=instants, b=instants, c=instants)
def test_between_grows_with_its_end(a: datetime, b: datetime, c: datetime) -> None:
    early, late = sorted((b, c))
    assert OFFICIAL.between(a, early) <= OFFICIAL.between(a, late)


@FAST
@given(a=instants, b=instants, c=instants)
def test_between_adds_up_over_consecutive_spans(a: datetime, b: datetime, c: datetime) -> None:
    a, b, c = sorted((a, b, c))
    assert OFFICIAL.between(a, b) + OFFICIAL.between(b, c) == OFFICIAL.between(a, c)


@FAST
@given(day=st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)))
def test_a_whole_day_counts_a_full_office_day_or_nothing(day: date) -> None:
    midnight = datetime.combine(day, time(0), SH)
    counted = OFFICIAL.between(midnight, midnight + timedelta(days=1))
    assert counted == (DAY if OFFICIAL.is_working_day(day) else timedelta(0))


@FAST
@given(start=instants, span=spans.filter(lambda s: s > timedelta(0)))
def test_a_deadline_always_falls_in_office_hours_of_a_working_day(start: datetime, span: timedelta) -> None:
    local = OFFICIAL.add(start, span).astimezone(SH)
    assert OFFICIAL.is_working_day(local.date())
    assert any(s <= local.time() <= e for s, e in OFFICIAL.hours.periods)
