"""Time limits in Chinese working time: deadlines, reminders, escalation on breach, pauses, reports, notices.

Every expected instant is worked out by hand from the office hours (09:00-12:00 and 14:00-17:30, 6.5 h a
day) and the State Council's 2026 notice, never from the code under test. The clock only moves when a
test moves it; the sweeper only runs when a test runs it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select, update

from tests.conftest import outdoor_event_after, table_counts
from workflow.bootstrap import connect
from workflow.cli import common, main
from workflow.clock import FrozenClock
from workflow.errors import RoleNotAllowed, TransitionNotAllowed
from workflow.persistence.database import create_database_engine
from workflow.persistence.repository import appeals, notices, timers, users
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.calendars import load_notice
from workflow.services.sweeper import Sweeper
from workflow.services.workflow import Workflow

SH = ZoneInfo("Asia/Shanghai")
# Other notices (received, assigned, ...) belong to other features and are left out here.
TIME_LIMIT_NOTICES = ["reminder", "escalated", "escalated_away", "sent_down", "sent_down_away", "breached"]
SLA_FIELDS = {
    "status",
    "clock",
    "due_at",
    "at_risk_at",
    "state_due_at",
    "overall_due_at",
    "working_time_left",
    "overall_used",
    "breached_at",
    "provisional",
}


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def iso(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> str:
    """How the views write a Shanghai instant."""
    return sh(year, month, day, hour, minute).isoformat(timespec="seconds")


def submit_event(wf: Workflow, enterprise: int = 1) -> str:
    appeal = wf.submit(
        "outdoor_event_permit",
        enterprise_id=enterprise,
        as_user=f"contact-{enterprise:04d}",
        data=outdoor_event_after(wf.clock.now()),  # some tests travel a year ahead; the permit refuses past days
    )
    return str(appeal["number"])


def sweep(wf: Workflow) -> dict[str, Any]:
    return Sweeper(wf).sweep().as_dict()


def sla(wf: Workflow, number: str) -> dict[str, Any]:
    return dict(wf.show(number)["sla"])


def notices_of(engine: Engine, number: str) -> list[tuple[str, str, Any, Any]]:
    """(kind, recipient, clock, threshold) of the time-limit notices about the appeal, oldest first."""
    query = (
        select(notices.c.kind, users.c.username, notices.c.payload)
        .join(users, users.c.id == notices.c.recipient_id)
        .join(appeals, appeals.c.id == notices.c.appeal_id)
        .where(appeals.c.number == number, notices.c.kind.in_(TIME_LIMIT_NOTICES))
        .order_by(notices.c.id)
    )
    with engine.connect() as conn:
        return [(r.kind, r.username, r.payload.get("clock"), r.payload.get("threshold")) for r in conn.execute(query)]


def timers_of(engine: Engine, number: str) -> list[tuple[str, int, str, str]]:
    """(clock, threshold, due in Shanghai, status) of every timer of the appeal, in the order written."""
    query = (
        select(timers.c.clock, timers.c.threshold, timers.c.due_at, timers.c.status)
        .join(appeals, appeals.c.id == timers.c.appeal_id)
        .where(appeals.c.number == number)
        .order_by(timers.c.id)
    )
    with engine.connect() as conn:
        return [
            (r.clock, r.threshold, r.due_at.astimezone(SH).isoformat(timespec="seconds"), r.status)
            for r in conn.execute(query)
        ]


def pending(engine: Engine, number: str) -> list[tuple[str, int, str]]:
    return sorted((c, t, due) for c, t, due, status in timers_of(engine, number) if status == "pending")


def numbers(found: tuple[list[dict[str, Any]], int]) -> set[str]:
    return {a["number"] for a in found[0]}


# The state clock of `submitted` (limit 4 h) and the overall clock (5 d = 32 h 30 min) of an appeal
# submitted at the fixture's start, Thursday 2026-11-26 10:00.
SUBMITTED_TIMERS = [
    ("overall", 50, iso(2026, 11, 30, 15, 15)),  # 16h15m: Thu 5.5 h, Fri 6.5 h, Mon 09:00-12:00 and 14:00-15:15
    ("overall", 80, iso(2026, 12, 2, 10)),  # 26 h: Thu 5.5, Fri, Mon, Tue 6.5 each = 25 h, Wed 09:00-10:00
    ("overall", 100, iso(2026, 12, 3, 10)),  # 32h30m: five working days later, same time
    ("state", 50, iso(2026, 11, 26, 12)),  # 2 h: ends at the lunch break itself
    ("state", 80, iso(2026, 11, 26, 15, 12)),  # 3h12m: 10:00-12:00, then 14:00-15:12
    ("state", 100, iso(2026, 11, 26, 16)),  # 4 h: 10:00-12:00, then 14:00-16:00
]


# ---------------------------------------------------------------- deadlines on the calendar


@pytest.mark.parametrize(
    ("submitted_at", "state_due", "overall_due"),
    [
        pytest.param(sh(2026, 11, 26, 11), iso(2026, 11, 26, 17), iso(2026, 12, 3, 11), id="lunch-is-skipped"),
        pytest.param(sh(2026, 11, 27, 16), iso(2026, 11, 30, 11, 30), iso(2026, 12, 4, 16), id="weekend-is-skipped"),
        pytest.param(sh(2026, 11, 28, 10), iso(2026, 11, 30, 15), iso(2026, 12, 4, 17, 30), id="saturday-waits"),
        pytest.param(sh(2026, 11, 26, 19), iso(2026, 11, 27, 15), iso(2026, 12, 3, 17, 30), id="evening-waits"),
        pytest.param(sh(2026, 9, 30, 16), iso(2026, 10, 8, 11, 30), iso(2026, 10, 13, 16), id="national-day"),
        pytest.param(sh(2026, 2, 13, 16), iso(2026, 2, 14, 11, 30), iso(2026, 2, 27, 16), id="make-up-saturday"),
    ],
)
def test_deadlines_count_only_office_hours_of_working_days(
    demo: Workflow, clock: FrozenClock, submitted_at: datetime, state_due: str, overall_due: str
) -> None:
    # Friday 16:00 + 4 h: 1.5 h on Friday, then Monday 09:00-11:30. Over National Day (1-7 October) the
    # same. Saturday 14 February 2026 is a make-up working day before Spring Festival (15-23 February):
    # Friday 1.5 h + Saturday 2.5 h; the overall 32.5 h: Fri 1.5, Sat 6.5, Tue 24 to Thu 26 19.5, Fri 27 5 h.
    clock.set(submitted_at)
    number = submit_event(demo)
    shown = sla(demo, number)
    assert (shown["state_due_at"], shown["overall_due_at"]) == (state_due, overall_due), shown
    assert shown["due_at"] == min(state_due, overall_due)
    assert shown["working_time_left"] == {"seconds": 4 * 3600, "text": "4h00m"}
    assert (shown["status"], shown["clock"], shown["provisional"]) == ("on_track", "running", False)


def test_a_submitted_appeal_arms_reminders_and_breach_on_both_clocks(demo: Workflow) -> None:
    number = submit_event(demo)
    assert pending(demo.engine, number) == sorted(SUBMITTED_TIMERS)
    shown = sla(demo, number)
    assert shown["at_risk_at"] == iso(2026, 11, 26, 15, 12), "at risk once the 80 % reminder falls due"
    assert shown["overall_used"] == {"seconds": 0, "text": "0h00m"}


# ---------------------------------------------------------------- reminders and escalation


def test_the_50_and_80_percent_reminders_reach_the_assignee_once_each(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 11, 59))
    assert sweep(demo)["fired"] == 0, "nothing is due a minute before the first reminder"
    clock.set(sh(2026, 11, 26, 12))
    assert sweep(demo)["reminders"] == 1
    assert sweep(demo)["claimed"] == 0, "a second sweep finds nothing left to fire"
    assert notices_of(demo.engine, number) == [("reminder", "staff-b01", "state", 50)]
    clock.set(sh(2026, 11, 26, 15, 12))
    assert sweep(demo)["reminders"] == 1
    assert sweep(demo)["claimed"] == 0
    assert notices_of(demo.engine, number) == [
        ("reminder", "staff-b01", "state", 50),
        ("reminder", "staff-b01", "state", 80),
    ]
    assert demo.show(number)["level"] == "building", "a reminder does not move the appeal"


def test_a_breach_moves_the_appeal_from_the_building_to_the_community_and_tells_both(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 16))
    report = sweep(demo)
    assert (report["reminders"], report["escalations"], report["breaches_at_top"]) == (2, 1, 0), report
    shown = demo.show(number)
    assert (shown["state"], shown["level"], shown["unit"]["code"], shown["assignee"]) == (
        "submitted",
        "community",
        "C01",
        "community-c01",
    )
    last = demo.history(number)[-1]
    assert (last["kind"], last["actor"], last["trigger"]) == ("escalated", None, "escalate"), last
    assert last["payload"]["from_level"] == "building" and last["payload"]["level"] == "community"
    assert last["payload"]["breach"] is True
    assert "time limit breached" in last["comment"], last["comment"]
    told = [(kind, who) for kind, who, _, _ in notices_of(demo.engine, number) if kind.startswith("escalated")]
    assert told == [("escalated", "community-c01"), ("escalated_away", "staff-b01")]
    shown_sla = shown["sla"]
    # The state clock restarts at the community: Thursday 16:00-17:30, then Friday 09:00-11:30.
    assert shown_sla["state_due_at"] == iso(2026, 11, 27, 11, 30)
    # The status is the community's own clock; the breach is a fact about the building.
    assert (shown_sla["status"], shown_sla["breached_at"]) == ("on_track", iso(2026, 11, 26, 16))
    assert shown_sla["breached_earlier_at"] == "building"


def test_a_breach_found_late_is_recorded_at_its_due_instant_against_the_level_that_let_it_happen(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 17))  # the building's 4 h ran out at 16:00; the first sweep comes an hour later
    sweep(demo)
    shown = sla(demo, number)
    assert shown["state_due_at"] == iso(2026, 11, 27, 11, 30), "the community's 4 h count from 16:00, not 17:00"
    assert shown["status"] == "on_track", "the status is the community's clock"
    assert shown["breached_at"] == iso(2026, 11, 26, 16), "超时时间 is the due instant, not when the sweep ran"
    assert shown["breached_earlier_at"] == "building"
    with UnitOfWork(demo.engine) as uow:
        building = uow.repo.unit_by_code("B01")
    assert building is not None
    assert shown["breaches"] == [
        {
            "level": "building",
            "unit_id": building.id,
            "clock": "state",
            "due_at": iso(2026, 11, 26, 16),
            "detected_at": iso(2026, 11, 26, 17),
            "late": {"seconds": 3600, "text": "1h00m"},
        }
    ]
    climbed = demo.history(number)[-1]
    assert (climbed["kind"], climbed["at"], climbed["recorded_at"]) == (
        "escalated",
        iso(2026, 11, 26, 16),
        iso(2026, 11, 26, 17),
    )
    told = [n for n in notices_of(demo.engine, number) if n[0] == "escalated"]
    assert told == [("escalated", "community-c01", None, None)]


def test_an_unanswered_appeal_climbs_every_level_and_is_recorded_as_breached_at_the_district(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit_event(demo)
    climbs = [
        # (when the level's 4 h run out, the level reached, its lead, who is told it arrived, who it left)
        (sh(2026, 11, 26, 16), "community", "community-c01", ["community-c01"], "staff-b01"),
        (sh(2026, 11, 27, 11, 30), "subdistrict", "subdistrict-s01", ["subdistrict-s01"], "community-c01"),
        # Friday 11:30-12:00 and 14:00-17:30: exactly 4 h, due at closing time, not on Monday morning.
        (sh(2026, 11, 27, 17, 30), "district", "district-01", ["district-01", "district-02"], "subdistrict-s01"),
    ]
    for when, level, lead, told, left in climbs:
        clock.set(when)
        assert sweep(demo)["escalations"] == 1, f"the breach at {when} climbs one level"
        shown = demo.show(number)
        assert (shown["level"], shown["assignee"]) == (level, lead), when
        latest = [(k, who) for k, who, _, _ in notices_of(demo.engine, number) if k.startswith("escalated")]
        assert latest[-len(told) - 1 :] == [*(("escalated", t) for t in told), ("escalated_away", left)], latest
    assert sla(demo, number)["state_due_at"] == iso(2026, 11, 30, 15)  # Monday 09:00-12:00, 14:00-15:00
    clock.set(sh(2026, 11, 30, 15))
    report = sweep(demo)
    assert (report["escalations"], report["breaches_at_top"]) == (0, 1), report
    shown = demo.show(number)
    assert (shown["level"], shown["assignee"]) == ("district", "district-01"), "the district is the top"
    last = demo.history(number)[-1]
    assert (last["kind"], last["actor"], last["trigger"]) == ("breached", None, "breach"), last
    breached = [who for kind, who, _, _ in notices_of(demo.engine, number) if kind == "breached"]
    assert breached == ["district-01", "district-02"]
    assert sweep(demo)["claimed"] == 0, "a breach at the top is recorded once"
    kinds = [e["kind"] for e in demo.history(number)]
    assert kinds == ["submitted", "escalated", "escalated", "escalated", "breached"]


def test_after_a_state_breach_climbs_a_level_the_overall_clock_is_still_armed(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 16))
    sweep(demo)
    overall = [(c, t, due) for c, t, due in pending(demo.engine, number) if c == "overall"]
    assert overall == [c for c in SUBMITTED_TIMERS if c[0] == "overall"]


# ---------------------------------------------------------------- pauses


def test_a_paused_appeal_never_breaches_and_resumes_with_the_time_already_used(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 11))
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    clock.set(sh(2026, 11, 27, 10))
    demo.fire(number, "request_materials", as_user="staff-b01", comment="请补充场地方同意书")
    used = {"seconds": 23400, "text": "6h30m"}  # Thursday 10:00-12:00 and 14:00-17:30, Friday 09:00-10:00
    paused = sla(demo, number)
    assert (paused["status"], paused["clock"], paused["overall_used"]) == ("paused", "paused", used), paused
    assert (paused["due_at"], paused["state_due_at"], paused["overall_due_at"]) == (None, None, None)
    assert paused["working_time_left"] is None
    assert pending(demo.engine, number) == [], "the paused state has no limit and the overall clock is stopped"

    clock.set(sh(2026, 12, 14, 10))  # two and a half weeks later
    assert sweep(demo)["claimed"] == 0
    still = sla(demo, number)
    assert (still["status"], still["overall_used"], still["breached_at"]) == ("paused", used, None), still
    assert number not in numbers(demo.list_appeals(overdue=True)) | numbers(demo.list_appeals(at_risk=True))
    assert demo.sla_report()["totals"] == {"open": 1, "at_risk": 0, "breached": 0, "paused": 1, "on_track": 0}

    demo.fire(number, "provide_materials", as_user="contact-0001")
    resumed = sla(demo, number)
    assert (resumed["status"], resumed["clock"], resumed["overall_used"]) == ("on_track", "running", used)
    # 26 h left from Monday 14 December 10:00: Mon 5.5, Tue, Wed, Thu 6.5 each = 25 h, Friday 09:00-10:00.
    assert resumed["overall_due_at"] == iso(2026, 12, 18, 10)
    assert resumed["state_due_at"] == iso(2026, 12, 15, 10), "pre_check's 1 d starts again"
    assert [(t, due) for c, t, due in pending(demo.engine, number) if c == "overall"] == [
        (50, iso(2026, 12, 15, 15, 15)),  # 9h45m left to 50 %: Mon 5.5 h, Tue 09:00-12:00, 14:00-15:15
        (80, iso(2026, 12, 17, 10)),
        (100, iso(2026, 12, 18, 10)),
    ]
    clock.set(sh(2026, 12, 14, 11))
    assert sla(demo, number)["overall_used"] == {"seconds": 27000, "text": "7h30m"}


def test_resuming_with_most_of_the_overall_limit_used_is_at_risk(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    clock.set(sh(2026, 12, 2, 11))  # no sweep runs: nothing climbs
    demo.fire(number, "request_materials", as_user="staff-b01", comment="请补充材料")
    # Used: Thu 5.5 h, Fri 6.5 h, Mon 6.5 h, Tue 6.5 h, Wed 09:00-11:00 = 27 h of 32.5 h, past the 80 % mark.
    assert sla(demo, number)["overall_used"]["seconds"] == 27 * 3600
    clock.set(sh(2026, 12, 7, 10))
    demo.fire(number, "provide_materials", as_user="contact-0001")
    resumed = sla(demo, number)
    assert resumed["overall_due_at"] == iso(2026, 12, 7, 17, 30), "5.5 h left: Monday 10:00-12:00, 14:00-17:30"
    assert resumed["status"] == "at_risk"


def test_resuming_after_the_overall_breach_does_not_climb_a_second_time(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")  # pre_check due Friday 10:00
    clock.set(sh(2026, 11, 27, 9))
    demo.fire(number, "pass_pre_check", as_user="staff-b01")  # collecting_materials due Tuesday 09:00
    clock.set(sh(2026, 11, 30, 17))
    demo.fire(number, "file_application", as_user="specialist-b01", data={"materials_complete": True})
    for day in (1, 2):  # bureau_review's 1 d restarts with each round trip; the overall clock does not pause long
        clock.set(sh(2026, 12, day, 16))
        demo.fire(number, "request_materials", as_user="bureau-approval-01", comment="请补充材料")
        demo.fire(number, "provide_materials", as_user="contact-0001")
    assert sla(demo, number)["state_due_at"] == iso(2026, 12, 3, 16)
    clock.set(sh(2026, 12, 3, 10))  # the overall 32.5 h run out; the state clock has not
    report = sweep(demo)
    assert report["escalations"] == 1, report
    assert demo.show(number)["level"] == "community"
    clock.set(sh(2026, 12, 3, 10, 30))
    demo.fire(number, "request_materials", as_user="bureau-approval-01", comment="请补充材料")
    clock.set(sh(2026, 12, 3, 11))
    demo.fire(number, "provide_materials", as_user="contact-0001")
    sweep(demo)
    level = demo.show(number)["level"]
    assert level == "community", "one breach climbs one level"


# ---------------------------------------------------------------- manual moves and status


def test_escalating_and_sending_down_by_hand_restart_the_state_clock(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 15))
    demo.escalate(number, as_user="staff-b01", reason="场地涉及市政道路，超出楼宇权限")
    shown = demo.show(number)
    assert (shown["level"], shown["assignee"]) == ("community", "community-c01")
    # 4 h from Thursday 15:00: 2.5 h to closing, then Friday 09:00-10:30.
    assert shown["sla"]["state_due_at"] == iso(2026, 11, 27, 10, 30)
    assert (shown["sla"]["breached_at"], shown["sla"]["status"]) == (None, "on_track")
    assert demo.history(number)[-1]["actor"] == "staff-b01"
    assert pending(demo.engine, number) == sorted(
        [
            *(c for c in SUBMITTED_TIMERS if c[0] == "overall"),  # the overall clock is not touched
            ("state", 50, iso(2026, 11, 26, 17)),
            ("state", 80, iso(2026, 11, 27, 9, 42)),
            ("state", 100, iso(2026, 11, 27, 10, 30)),
        ]
    )
    cancelled = [(c, t) for c, t, _, status in timers_of(demo.engine, number) if status == "cancelled"]
    assert cancelled == [("state", 50), ("state", 80), ("state", 100)]

    clock.set(sh(2026, 11, 27, 9))
    demo.send_down(number, as_user="community-c01", instructions="请楼宇先与商场协调场地")
    back = demo.show(number)
    assert (back["level"], back["assignee"]) == ("building", "staff-b01")
    assert back["sla"]["state_due_at"] == iso(2026, 11, 27, 15), "Friday 09:00-12:00, then 14:00-15:00"
    told = sorted((k, who) for k, who, _, _ in notices_of(demo.engine, number) if k.startswith("sent_down"))
    assert told == [("sent_down", "specialist-b01"), ("sent_down", "staff-b01"), ("sent_down_away", "community-c01")]


def test_the_status_goes_on_track_at_risk_breached_as_the_clock_runs(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    expected = [
        (sh(2026, 11, 26, 10), "on_track", {"seconds": 14400, "text": "4h00m"}),
        (sh(2026, 11, 26, 13), "on_track", {"seconds": 7200, "text": "2h00m"}),  # lunch does not count
        (sh(2026, 11, 26, 15, 11), "on_track", {"seconds": 2940, "text": "0h49m"}),
        (sh(2026, 11, 26, 15, 12), "at_risk", {"seconds": 2880, "text": "0h48m"}),
        (sh(2026, 11, 26, 15, 59), "at_risk", {"seconds": 60, "text": "0h01m"}),
        (sh(2026, 11, 26, 16), "breached", {"seconds": 0, "text": "0h00m"}),
        (sh(2026, 11, 26, 16, 30), "breached", {"seconds": -1800, "text": "-0h30m"}),
    ]
    for when, status, left in expected:
        clock.set(when)
        shown = sla(demo, number)
        assert (shown["status"], shown["working_time_left"]) == (status, left), when
    sweep(demo)
    after = sla(demo, number)
    # The community's clock started at 16:00: its status is its own; the building's breach is a mark.
    assert (after["status"], after["breached_earlier_at"]) == ("on_track", "building"), after
    clock.set(sh(2026, 11, 26, 17))
    demo.fire(number, "start_pre_check", as_user="community-c01")  # the community holds it after the climb
    demo.fire(number, "request_materials", as_user="community-c01", comment="请补充材料")
    assert sla(demo, number)["status"] == "paused"


def test_a_decided_appeal_stops_its_clocks(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    steps = [
        ("start_pre_check", "staff-b01", {}),
        ("pass_pre_check", "staff-b01", {}),
        ("file_application", "specialist-b01", {"materials_complete": True}),
        ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ]
    for trigger, user, data in steps:
        demo.fire(number, trigger, as_user=user, data=data)
    clock.set(sh(2026, 11, 27, 11))
    demo.fire(number, "approve", as_user="bureau-approval-01", data={"inspection_findings": "场地安全"})
    shown = sla(demo, number)
    assert (shown["status"], shown["clock"], shown["due_at"]) == ("stopped", "stopped", None), shown
    assert shown["decided_at"] == iso(2026, 11, 27, 11)
    assert shown["overall_used"] == {"seconds": 27000, "text": "7h30m"}  # Thursday 5.5 h, Friday 09:00-11:00
    assert pending(demo.engine, number) == []
    clock.set(sh(2026, 12, 31, 10))
    assert sweep(demo)["claimed"] == 0


# ---------------------------------------------------------------- durable timers


def test_timers_due_while_no_sweeper_ran_fire_once_each_in_due_order(demo: Workflow, clock: FrozenClock) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 17))  # 50 %, 80 % and the breach all passed unseen
    report = sweep(demo)
    assert (report["claimed"], report["reminders"], report["escalations"], report["skipped"]) == (3, 2, 1, 0)
    assert [(k, c, t) for k, who, c, t in notices_of(demo.engine, number) if who == "staff-b01"] == [
        ("reminder", "state", 50),
        ("reminder", "state", 80),
        ("escalated_away", None, None),
    ]
    fired = [(c, t, status) for c, t, _, status in timers_of(demo.engine, number)[:6] if c == "state"]
    assert fired == [("state", 50, "done"), ("state", 80, "done"), ("state", 100, "done")]
    assert sweep(demo)["claimed"] == 0

    clock.set(sh(2026, 12, 7, 10))  # ten days without a sweep: each limit that ran out climbs, as of its instant
    report = sweep(demo)
    assert (report["escalations"], report["breaches_at_top"]) == (2, 2), report
    assert demo.show(number)["level"] == "district", "a long gap climbs as far as steady sweeping would have"
    moves = [(e["kind"], e["at"], e["recorded_at"], e["payload"].get("level")) for e in demo.history(number)[1:]]
    swept = iso(2026, 12, 7, 10)
    assert moves == [
        ("escalated", iso(2026, 11, 26, 16), iso(2026, 11, 26, 17), "community"),
        # The community's 4 h from Thursday 16:00, not from the sweep: Thursday 1.5 h, Friday 09:00-11:30.
        ("escalated", iso(2026, 11, 27, 11, 30), swept, "subdistrict"),
        ("escalated", iso(2026, 11, 27, 17, 30), swept, "district"),
        ("breached", iso(2026, 11, 30, 15), swept, None),  # the district's state limit
        ("breached", iso(2026, 12, 3, 10), swept, None),  # the overall 5 d
    ]
    assert sweep(demo)["claimed"] == 0


def test_a_state_change_cancels_the_old_state_timers_and_a_refused_one_changes_nothing(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit_event(demo)
    before = table_counts(demo.engine), timers_of(demo.engine, number)
    with pytest.raises(TransitionNotAllowed, match="possible here: start_pre_check"):
        demo.fire(number, "pass_pre_check", as_user="staff-b01")
    with pytest.raises(RoleNotAllowed, match="has role 'district_supervisor'"):
        demo.fire(number, "start_pre_check", as_user="district-01")
    assert (table_counts(demo.engine), timers_of(demo.engine, number)) == before

    clock.set(sh(2026, 11, 26, 11))
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    rows = timers_of(demo.engine, number)
    assert [status for c, _, _, status in rows[:6] if c == "state"] == ["cancelled"] * 3
    assert [(c, t, due) for c, t, due, status in rows[:6] if c == "overall"] == [
        c for c in SUBMITTED_TIMERS if c[0] == "overall"
    ]
    assert all(status == "pending" for c, _, _, status in rows[:6] if c == "overall")
    # pre_check's 1 d = 6.5 h from Thursday 11:00: 1 h, 3.5 h, then Friday 09:00-11:00.
    assert [(c, t, due, s) for c, t, due, s in rows[6:]] == [
        ("state", 50, iso(2026, 11, 26, 16, 15), "pending"),
        ("state", 80, iso(2026, 11, 27, 9, 42), "pending"),
        ("state", 100, iso(2026, 11, 27, 11), "pending"),
    ]
    assert table_counts(demo.engine)["timers"] == before[0]["timers"] + 3
    clock.set(sh(2026, 11, 26, 16))
    assert sweep(demo)["escalations"] == 0, "the cancelled breach of `submitted` never fires"


# ---------------------------------------------------------------- lists and reports


def four_appeals(demo: Workflow, clock: FrozenClock) -> dict[str, str]:
    """A (B01) due Thu 16:00; B (B02) submitted Thu 14:00, at risk 17:12, due Fri 09:30; C (B01) submitted
    Thu 15:00, at risk Fri 09:42; D (B01) waiting on the enterprise since Thu 10:00."""
    found = {"A": submit_event(demo, 1), "D": submit_event(demo, 3)}
    demo.fire(found["D"], "start_pre_check", as_user="staff-b01")
    demo.fire(found["D"], "request_materials", as_user="staff-b01", comment="请补充营业执照复印件")
    clock.set(sh(2026, 11, 26, 14))
    found["B"] = submit_event(demo, 31)
    clock.set(sh(2026, 11, 26, 15))
    found["C"] = submit_event(demo, 2)
    clock.set(sh(2026, 11, 26, 17, 20))
    return found


def test_overdue_and_at_risk_lists_hold_the_right_appeals(demo: Workflow, clock: FrozenClock) -> None:
    found = four_appeals(demo, clock)
    assert numbers(demo.list_appeals(overdue=True)) == {found["A"]}
    assert numbers(demo.list_appeals(at_risk=True)) == {found["B"]}
    assert numbers(demo.list_appeals(open_only=True)) == set(found.values())
    statuses = {a["number"]: a["sla"]["status"] for a in demo.list_appeals()[0]}
    assert statuses == {found["A"]: "breached", found["B"]: "at_risk", found["C"]: "on_track", found["D"]: "paused"}
    assert numbers(demo.list_appeals(overdue=True, unit="B02")) == set()


def test_the_report_counts_per_level_and_unit_now_and_as_of_an_earlier_moment(
    demo: Workflow, clock: FrozenClock
) -> None:
    four_appeals(demo, clock)

    def counts(report: dict[str, Any]) -> dict[tuple[str, str], tuple[int, int, int, int, int]]:
        return {
            (level["level"], u["unit"]["code"]): (u["open"], u["on_track"], u["at_risk"], u["breached"], u["paused"])
            for level in report["levels"]
            for u in level["units"]
        }

    #                       open on_track at_risk breached paused
    assert counts(demo.sla_report()) == {("building", "B01"): (3, 1, 0, 1, 1), ("building", "B02"): (1, 0, 1, 0, 0)}
    earlier = demo.sla_report(as_of=sh(2026, 11, 26, 15, 30))  # A was at risk then, B on track
    assert counts(earlier) == {("building", "B01"): (3, 1, 1, 0, 1), ("building", "B02"): (1, 1, 0, 0, 0)}
    assert earlier["as_of"] == iso(2026, 11, 26, 15, 30)
    assert demo.sla_report(as_of=sh(2026, 11, 26, 16, 30))["totals"] == {
        "open": 4,
        "on_track": 2,
        "at_risk": 0,
        "breached": 1,
        "paused": 1,
    }

    sweep(demo)  # A climbs to the community as of 16:00: the community's own clock is on track
    now = demo.sla_report()
    assert counts(now) == {
        ("community", "C01"): (1, 1, 0, 0, 0),
        ("building", "B01"): (2, 1, 0, 0, 1),
        ("building", "B02"): (1, 0, 1, 0, 0),
    }
    assert [level["level"] for level in now["levels"]] == ["building", "community", "subdistrict", "district"]
    assert now["totals"] == {"open": 4, "on_track": 2, "at_risk": 1, "breached": 0, "paused": 1}
    # The breach is counted against the level and unit that let it happen, read from the breaches table.
    breaches = {(level["level"], u["unit"]["code"]): u["breaches"] for level in now["levels"] for u in level["units"]}
    assert breaches == {("community", "C01"): 0, ("building", "B01"): 1, ("building", "B02"): 0}
    b01 = demo.sla_report(unit="B01")
    assert counts(b01) == {("building", "B01"): (2, 1, 0, 0, 1)}
    assert b01["levels"][0]["units"][0]["breaches"] == 1


def test_the_report_counts_each_appeal_by_its_own_status_now_and_as_of_the_same_moment(
    demo: Workflow, clock: FrozenClock
) -> None:
    """The report counts with index ranges (and as of a moment in one pass); both must agree with the
    status each appeal shows, including an escalated appeal past its new level's at-risk instant."""
    found = four_appeals(demo, clock)
    sweep(demo)  # A climbs to the community: breached once, its state clock restarted there
    moments = [sh(2026, 11, 26, 17, 20), sh(2026, 11, 27, 9, 45), sh(2026, 11, 27, 15), sh(2026, 12, 3, 12)]
    seen = set()
    for moment in moments:
        clock.set(moment)
        expected: dict[tuple[str, str], Counter[str]] = {}
        for number in found.values():
            shown = demo.show(number)
            expected.setdefault((shown["level"], shown["unit"]["code"]), Counter())[shown["sla"]["status"]] += 1
            seen.add((shown["level"], shown["sla"]["status"]))
        for report in (demo.sla_report(), demo.sla_report(as_of=moment)):
            got = {
                (level["level"], u["unit"]["code"]): Counter(
                    {k: u[k] for k in ("on_track", "at_risk", "breached", "paused") if u[k]}
                )
                for level in report["levels"]
                for u in level["units"]
            }
            assert got == expected, moment
    assert {("community", "breached"), ("building", "at_risk"), ("building", "breached")} <= seen


# ---------------------------------------------------------------- the reads a breach makes


def test_the_sweepers_reads_give_what_the_other_reads_give(demo: Workflow, clock: FrozenClock) -> None:
    """The sweeper's statements go straight to the driver; their rows must convert as SQLAlchemy's do."""
    found = four_appeals(demo, clock)
    sweep(demo)  # A climbs: breached_at, restarted clocks, a community assignee
    for number in found.values():
        with UnitOfWork(demo.engine) as uow:
            record = uow.repo.appeal(number)
            assert record is not None
            assert uow.repo.appeal_by_id(record.id, lock=True) == record
            remembered = uow.repo.enterprise_names([record.enterprise_id])
        with UnitOfWork(demo.engine) as uow:
            assert remembered == uow.repo.enterprise_names([record.enterprise_id]) != {}


def test_a_role_goes_to_the_nearest_holder_then_the_least_loaded_then_the_oldest_account(
    demo: Workflow, clock: FrozenClock
) -> None:
    held = [submit_event(demo, n) for n in (1, 2, 3)]
    with UnitOfWork(demo.engine) as uow:
        enterprise = uow.repo.enterprise(1)
        assert enterprise is not None
        first, second, finance = (
            uow.repo.actor(f"bureau-{name}") for name in ("approval-01", "approval-02", "finance-01")
        )
        assert first is not None and second is not None and finance is not None and first.id < second.id

        def assignee(department: str = "DEP-APPROVAL") -> int | None:
            return uow.repo.find_assignee("bureau_officer", enterprise.building_path, department)

        def hold(number: str, officer: int, *, open: bool = True) -> None:
            uow.connection.execute(
                update(appeals).where(appeals.c.number == number).values(assignee_id=officer, is_open=open)
            )

        assert assignee() == first.id, "nobody holds anything: the oldest account"
        hold(held[0], first.id)
        assert assignee() == second.id, "the least loaded"
        hold(held[1], second.id)
        assert assignee() == first.id, "a tie: the oldest account"
        hold(held[2], second.id, open=False)
        assert assignee() == first.id, "closed appeals are no load"
        assert assignee("DEP-FINANCE") == finance.id, "the named department comes first, whatever its load"


def test_the_report_as_of_a_moment_leaves_out_appeals_submitted_after_it(demo: Workflow, clock: FrozenClock) -> None:
    four_appeals(demo, clock)
    before_all = demo.sla_report(as_of=sh(2026, 11, 26, 9))
    assert before_all["totals"]["open"] == 0
    assert demo.sla_report(as_of=sh(2026, 11, 26, 14, 30))["totals"]["open"] == 3


def test_the_report_gives_response_and_resolution_rates_and_average_working_times(
    demo: Workflow, clock: FrozenClock
) -> None:
    p, q, r = submit_event(demo, 1), submit_event(demo, 2), submit_event(demo, 3)  # Thursday 10:00
    clock.set(sh(2026, 11, 26, 11))
    demo.fire(p, "start_pre_check", as_user="staff-b01")  # first response after 1 h
    demo.fire(p, "pass_pre_check", as_user="staff-b01")
    demo.fire(p, "file_application", as_user="specialist-b01", data={"materials_complete": True})
    clock.set(sh(2026, 11, 26, 14, 30))
    demo.fire(q, "start_pre_check", as_user="staff-b01")  # 10:00-12:00, 14:00-14:30: 2.5 h
    clock.set(sh(2026, 11, 27, 10))
    demo.fire(p, "reject", as_user="bureau-approval-01", comment="活动占用消防通道")  # decided after 6.5 h
    clock.set(sh(2026, 11, 27, 15))
    sweep(demo)  # q's pre_check ran out at 14:30 and r's `submitted` on Thursday at 16:00: both climb
    # r climbed as of Thursday 16:00, so the community's 4 h ran out on Friday at 11:30: r climbed again.
    assert [demo.show(n)["level"] for n in (q, r)] == ["community", "subdistrict"]
    demo.fire(q, "pass_pre_check", as_user="community-c01")  # the community holds it now
    demo.fire(q, "file_application", as_user="community-c01", data={"materials_complete": True})
    clock.set(sh(2026, 11, 27, 16))
    demo.fire(q, "reject", as_user="bureau-approval-01", comment="场地不符合要求")  # Thu 5.5 + Fri 5 = 10.5 h

    rates = demo.sla_report()["rates"]
    assert rates == {
        "since": None,
        "submitted": 3,
        "responded": 2,
        "response_rate": 0.6667,
        "avg_working_time_to_first_response": {"seconds": 6300, "text": "1h45m"},
        "decided": 2,
        "withdrawn": 0,
        "merged": 0,
        "resolution_rate": 0.6667,
        "avg_working_time_to_resolution": {"seconds": 30600, "text": "8h30m"},
        "resolved_within_limit_rate": 0.5,  # q had breached its pre_check limit
    }
    later = demo.sla_report(since=sh(2026, 11, 27))["rates"]
    assert (later["submitted"], later["response_rate"], later["avg_working_time_to_resolution"]) == (0, None, None)


# ---------------------------------------------------------------- provisional deadlines and notices


NOTICE_2027 = """\
# A test notice: one extra day off on Thursday 30 December 2027.
year: 2027
source: 测试通知（2027）
holidays:
  - {name: 测试假日, from: 2027-12-30, to: 2027-12-30}
workdays: []
"""


def test_a_deadline_in_an_estimated_year_is_provisional_until_its_notice_is_loaded(
    demo: Workflow, clock: FrozenClock, cli: Callable[..., str], tmp_path: Path
) -> None:
    clock.set(sh(2027, 12, 23, 10))  # Thursday; 2027 has no notice shipped
    number = submit_event(demo)
    before = sla(demo, number)
    assert (before["provisional"], before["overall_due_at"]) == (True, iso(2027, 12, 30, 10)), before
    notice = tmp_path / "cn-2027.yaml"
    notice.write_text(NOTICE_2027, encoding="utf-8")

    loaded = json.loads(cli("calendar", "load", str(notice), "--json"))
    assert loaded == {"year": 2027, "holidays": 1, "workdays": 0, "recomputed_appeals": 1}
    after = sla(demo, number)
    assert after["provisional"] is False
    assert after["overall_due_at"] == iso(2027, 12, 31, 10), "the new day off pushes the deadline by a day"
    assert after["state_due_at"] == iso(2027, 12, 23, 16), "a deadline the notice does not touch stays"
    overall = [(t, due) for c, t, due in pending(demo.engine, number) if c == "overall"]
    assert overall[-1] == (100, iso(2027, 12, 31, 10)), overall
    last = demo.history(number)[-1]
    assert (last["kind"], last["actor"], last["payload"]["provisional"]) == ("recomputed", None, False), last


NOTICE_2031 = """\
year: 2031
source: 测试通知（2031）
holidays:
  - {name: 元旦, from: 2031-01-01, to: 2031-01-01}
workdays:
  - {name: 测试调休, date: 2031-12-20}
"""


def test_loading_a_notice_in_code_recomputes_open_deadlines(demo: Workflow, clock: FrozenClock, tmp_path: Path) -> None:
    clock.set(sh(2031, 12, 19, 16))  # a Friday in a year the holidays package only estimates
    number = submit_event(demo)
    before = sla(demo, number)
    assert (before["provisional"], before["state_due_at"]) == (True, iso(2031, 12, 22, 11, 30)), before
    notice = tmp_path / "cn-2031.yaml"
    notice.write_text(NOTICE_2031, encoding="utf-8")
    override, recomputed = load_notice(demo, notice)
    assert (override.year, recomputed) == (2031, 1)
    after = sla(demo, number)
    # Saturday 20 December is now a working day: Friday 1.5 h, then Saturday 09:00-11:30.
    assert (after["provisional"], after["state_due_at"]) == (False, iso(2031, 12, 20, 11, 30)), after
    clock.set(sh(2031, 12, 20, 11, 30))
    assert sweep(demo)["escalations"] == 1, "the breach fires at the recomputed instant"


def test_a_node_that_connected_before_a_notice_was_loaded_elsewhere_picks_it_up_on_its_next_sweep(
    demo: Workflow, clock: FrozenClock, cli: Callable[..., str], tmp_path: Path
) -> None:
    clock.set(sh(2027, 12, 23, 10))
    notice = tmp_path / "cn-2027.yaml"
    notice.write_text(NOTICE_2027, encoding="utf-8")
    cli("calendar", "load", str(notice))  # another process
    sweep(demo)
    number = submit_event(demo)
    shown = sla(demo, number)
    assert shown["overall_due_at"] == iso(2027, 12, 31, 10)


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli(
    db_url: str, demo: Workflow, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., str]]:
    """`appeals --db URL ...` in-process, on the test's frozen clock; returns what it printed."""
    opened: list[Engine] = []

    def connect_frozen(url: str | None = None, **_: Any) -> Workflow:
        assert url == db_url, f"the command ignored --db: {url!r}"
        engine = create_database_engine(url)
        opened.append(engine)
        return connect(engine=engine, clock=clock)

    monkeypatch.setattr(common, "connect", connect_frozen)

    def run(*argv: str) -> str:
        capsys.readouterr()
        code = main(["--db", db_url, *argv])
        out, err = capsys.readouterr()
        assert code == 0, f"appeals {' '.join(argv)} exited {code}: {err}"
        return out

    yield run
    for engine in opened:
        engine.dispose()


def test_case_show_json_has_the_sla_fields(demo: Workflow, clock: FrozenClock, cli: Callable[..., str]) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 15, 30))
    shown = json.loads(cli("case", "show", number, "--json"))
    assert set(shown["sla"]) >= SLA_FIELDS, set(shown["sla"])
    assert shown["sla"] == sla(demo, number)
    assert (shown["sla"]["status"], shown["sla"]["due_at"], shown["sla"]["working_time_left"]) == (
        "at_risk",
        iso(2026, 11, 26, 16),
        {"seconds": 1800, "text": "0h30m"},
    )
    assert shown["sla"]["overall_used"] == {"seconds": 12600, "text": "3h30m"}  # 10:00-12:00, 14:00-15:30


def test_case_list_overdue_and_at_risk_on_the_command_line(
    demo: Workflow, clock: FrozenClock, cli: Callable[..., str]
) -> None:
    found = four_appeals(demo, clock)
    overdue = json.loads(cli("case", "list", "--overdue", "--json"))
    at_risk = json.loads(cli("case", "list", "--at-risk", "--json"))
    assert (overdue["total"], [a["number"] for a in overdue["appeals"]]) == (1, [found["A"]])
    assert (at_risk["total"], [a["number"] for a in at_risk["appeals"]]) == (1, [found["B"]])
    assert "breached" in cli("case", "list", "--overdue")


def test_calendar_show_lists_the_make_up_days_and_says_official_or_estimated(cli: Callable[..., str]) -> None:
    shown = json.loads(cli("calendar", "show", "2026", "--json"))
    assert shown["official"] is True
    assert shown["source"].endswith("cn-2026.yaml"), shown["source"]
    assert {"date": "2026-02-14", "weekday": "Sat", "name": "春节调休"} in shown["workdays"]
    assert {"date": "2026-02-16", "weekday": "Mon", "name": "春节"} in shown["holidays"]
    estimated = json.loads(cli("calendar", "show", "2031", "--json"))
    assert estimated["official"] is False
    assert estimated["source"].startswith("estimate by the holidays package"), estimated["source"]
    assert "ESTIMATED" in cli("calendar", "show", "2031")
    assert cli("calendar", "show", "2026").startswith("2026: official notice")


def test_sweep_json_reports_what_it_fired(demo: Workflow, clock: FrozenClock, cli: Callable[..., str]) -> None:
    number = submit_event(demo)
    clock.set(sh(2026, 11, 26, 16))
    report = json.loads(cli("sweep", "--json"))
    timer_keys = (
        "claimed",
        "fired",
        "reminders",
        "late_reminders",
        "escalations",
        "breaches_at_top",
        "skipped",
        "errors",
    )
    assert {key: report.get(key, "missing") for key in timer_keys} == {
        "claimed": 3,
        "fired": 3,
        "reminders": 2,
        "late_reminders": 2,  # both fell due before the breach that the same sweep found had moved the appeal
        "escalations": 1,
        "breaches_at_top": 0,
        "skipped": 0,
        "errors": [],
    }, report
    assert demo.show(number)["level"] == "community"
    assert json.loads(cli("sweep", "--json"))["claimed"] == 0
    text = cli("sweep")
    assert "claimed 0, fired 0" in text and "0 escalations, 0 breaches at the district" in text, text
