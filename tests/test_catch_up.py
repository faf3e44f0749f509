"""Catch-up after downtime: a sweep reproduces what steady sweeping every 30 minutes would have done.

Each test plays the same history on separate databases of one backend, swept every 30 minutes, caught up in
one sweep, and caught up by four sweepers at once, and compares what happened.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.catch_up_runs import MODES, Action, History, Outcome, Submission, run
from tests.conftest import BACKENDS, PG_URL, empty_pg_database
from workflow.persistence.database import create_database_engine
from workflow.persistence.migrate import upgrade

SH = ZoneInfo("Asia/Shanghai")


def sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


@pytest.fixture(scope="session")
def pg_mode_databases() -> Iterator[dict[str, str]]:
    """One private PostgreSQL database per sweeping mode, migrated once."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    urls = {}
    for mode in MODES:
        name = f"appeals_catchup_{os.getpid()}_{uuid.uuid4().hex[:6]}_{mode}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        urls[mode] = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        engine = create_database_engine(urls[mode])
        upgrade(engine)
        engine.dispose()
    yield urls
    with admin.connect() as conn:
        for url in urls.values():
            conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    admin.dispose()


class Databases:
    """A clean database per mode, as often as asked (the property test plays many histories)."""

    def __init__(self, backend: str, request: pytest.FixtureRequest, folder: Path) -> None:
        self.backend, self.request, self.folder, self.count = backend, request, folder, 0

    def fresh(self, mode: str) -> str:
        self.count += 1
        if self.backend == "sqlite":
            target = self.folder / f"{mode}-{self.count}.db"
            shutil.copy(self.request.getfixturevalue("sqlite_template"), target)
            return f"sqlite:///{target}"
        url: str = self.request.getfixturevalue("pg_mode_databases")[mode]
        empty_pg_database(url)
        return url

    def play(self, history: History, mode: str, start: datetime) -> Outcome:
        url = self.fresh(mode)
        engine = create_database_engine(url)
        folder = self.folder / f"notice-{self.count}"
        folder.mkdir()
        try:
            return run(history, mode, url, engine, start, folder)
        finally:
            leaked = engine.pool.checkedout()
            engine.dispose()
            assert leaked == 0, f"{leaked} connection(s) left checked out"


@pytest.fixture(params=BACKENDS)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Databases:
    return Databases(request.param, request, tmp_path)


def escalations_and_breaches(outcome: Outcome) -> tuple[int, int]:
    kinds = Counter(kind for (_, kind, *_), n in outcome.events.items() for _ in range(n))
    return kinds["escalated"], kinds["breached"]


def test_five_appeals_from_18_november_end_at_the_same_level_swept_every_30_minutes_or_caught_up_once(
    databases: Databases,
) -> None:
    """The issue's case: swept every 30 minutes they end at the district (15 escalations, district breaches);
    caught up in one sweep they used to end at the community (5 escalations, 0 breaches)."""
    start = sh(2026, 11, 18, 9)
    history = History(
        submissions=[Submission(start + timedelta(hours=n), enterprise=n + 1) for n in range(5)],
        until=sh(2026, 12, 4, 18),
    )
    steady = databases.play(history, "steady", start)
    assert set(steady.levels.values()) == {"district"}, steady.levels
    escalated, breached = escalations_and_breaches(steady)
    assert (escalated, breached) == (15, 10), "each climbs three levels, then both clocks run out at the district"

    once = databases.play(history, "catch_up", start)
    assert once.levels == steady.levels
    assert escalations_and_breaches(once) == (15, 10)
    assert once.events == steady.events, "the same audit events, each at the instant it took effect"
    assert once.notices == steady.notices
    cancelled_unfired = sum(r.skipped for r in once.reports)
    assert cancelled_unfired == 0, "no due timer is cancelled unfired"

    four = databases.play(history, "four", start)
    assert four.same_facts == steady.same_facts


# ---------------------------------------------------------------- the property: any history, any way of sweeping

BASE = sh(2026, 11, 16)  # a Monday; submissions fall in its week, nights and the weekend included
UNTIL = sh(2026, 12, 4, 18)  # long enough for every appeal left alone to reach the district and breach there
SLOT = timedelta(minutes=30)
# Enterprises in different buildings and communities: B01 (1, 2), B02 (31), B03 (61) in C01 and C02.
ENTERPRISES = [1, 2, 31, 61]
FREE_WEEKDAYS = [BASE.date() + timedelta(days=n) for n in range(19) if (BASE.date() + timedelta(days=n)).weekday() < 5]

submissions = st.lists(
    st.tuples(st.integers(0, 6 * 48 - 1), st.sampled_from(ENTERPRISES)),
    min_size=1,
    max_size=3,
    unique_by=lambda s: s[1],
)
# (which appeal, 30-minute slots after its submission, which of the holder's actions)
actions = st.lists(st.tuples(st.integers(0, 2), st.integers(1, 3 * 48), st.integers(0, 7)), max_size=5)
days_off = st.lists(st.sampled_from(FREE_WEEKDAYS), max_size=2, unique=True)


def history_of(submitted: list[tuple[int, int]], acted: list[tuple[int, int, int]], off: list[date]) -> History:
    subs = [Submission(BASE + SLOT * slot, enterprise) for slot, enterprise in submitted]
    acts = [
        Action(subs[index].at + SLOT * after, index, choice)
        for index, after, choice in acted
        if index < len(subs) and subs[index].at + SLOT * after < UNTIL
    ]
    return History(subs, acts, off, until=UNTIL)


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,  # the same histories every run: a failure is reproducible, never flaky
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example costs three databases
)
@given(submissions, actions, days_off)
@example([(4, 1), (5, 2)], [(0, 3, 0), (1, 40, 1)], [])  # 2026-11-16 02:00 and 02:30, acted on later
def test_every_history_ends_the_same_swept_every_30_minutes_caught_up_once_or_by_four_sweepers(
    databases: Databases, submitted: list[tuple[int, int]], acted: list[tuple[int, int, int]], off: list[date]
) -> None:
    history = history_of(submitted, acted, off)
    start = min(s.at for s in history.submissions)
    steady = databases.play(history, "steady", start)
    once = databases.play(history, "catch_up", start)
    four = databases.play(history, "four", start)
    for name, outcome in (("one catch-up sweep", once), ("four catch-up sweepers", four)):
        assert outcome.levels == steady.levels, f"{name}: final levels differ"
        assert outcome.events == steady.events, (
            f"{name}: events differ: {sorted(outcome.events - steady.events)} vs "
            f"{sorted(steady.events - outcome.events)}"
        )
        assert outcome.notices == steady.notices, (
            f"{name}: notices differ: {sorted(outcome.notices - steady.notices)} vs "
            f"{sorted(steady.notices - outcome.notices)}"
        )
        assert not [e for r in outcome.reports for e in r.errors], f"{name}: a sweep reported errors"
    late_once = sum(r.late_reminders for r in once.reports)
    late_four = sum(r.late_reminders for r in four.reports)
    assert late_once == late_four, "the reminder rule gives the same late reminders for 1 or 4 sweepers"
