"""One database fixture over every backend: each database test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.persistence.database import create_database_engine
from workflow.persistence.migrate import upgrade
from workflow.persistence.tables import Base
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.demo_data import load_demo
from workflow.services.workflow import Workflow

PG_URL = os.environ.get("APPEALS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Thursday 2026-11-26 10:00 in Shanghai: a working day, mid-morning.
START = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A private PostgreSQL database per test process, so parallel runs never meet."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = f"appeals_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = create_database_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrated once; each test gets a copy of the file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_database_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # closing the last connection folds the WAL back into the file
    return path


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        target = tmp_path / "appeals.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite:///{target}"
        return
    url = request.getfixturevalue("pg_database")
    empty_pg_database(url)
    yield url


def empty_pg_database(url: str) -> None:
    """Every table of a migrated PostgreSQL database emptied, its identities restarted: a test's clean slate."""
    engine = create_database_engine(url)
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        # The audit trail refuses DELETE and TRUNCATE; the test's clean slate sets its triggers aside (superuser).
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = create_database_engine(db_url)
    yield engine
    leaked = engine.pool.checkedout()
    engine.dispose()
    assert leaked == 0, f"{leaked} database connection(s) left checked out"


@pytest.fixture
def wf(engine: Engine, clock: FrozenClock) -> Workflow:
    """The engine on an empty, migrated database."""
    return connect(engine=engine, clock=clock)


@pytest.fixture
def demo(wf: Workflow, clock: FrozenClock) -> Workflow:
    """The engine on the demo district: B01 holds enterprises 1-30, B02 31-60, ...; contact-0001 is enterprise 1's."""
    with UnitOfWork(wf.engine) as uow:
        load_demo(uow, clock)
        uow.commit()
    return wf


# The permit refuses a first day in the past: after the frozen START and after today too, since the
# command-line tests run on the system clock.
EVENT_FIRST_DAY = max(START.date(), date.today()) + timedelta(days=5)
OUTDOOR_EVENT = {
    "event_name": "香水品牌开业活动",
    "event_kind": "opening",
    "venue": "长沙国金中心北广场",
    "start_date": EVENT_FIRST_DAY.isoformat(),
    "end_date": (EVENT_FIRST_DAY + timedelta(days=19)).isoformat(),
    "expected_attendance": 500,
    "contact_phone": "0731-8888 6666",
}


def outdoor_event_after(now: datetime) -> dict[str, object]:
    """The permit's form with its days after `now`, for tests that travel beyond OUTDOOR_EVENT's first day."""
    first = now.date() + timedelta(days=5)
    return {**OUTDOOR_EVENT, "start_date": first.isoformat(), "end_date": (first + timedelta(days=19)).isoformat()}


def table_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            table.name: conn.execute(text(f'SELECT count(*) FROM "{table.name}"')).scalar_one()
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture(autouse=True)
def files_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Attachments of every test go to its own folder, never the working directory."""
    folder = tmp_path / "appeals-files"
    monkeypatch.setenv("APPEALS_FILES_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """The browser of the end-to-end tests, shared by every module of a test process (see test_browser)."""
    from tests.test_browser import chromium_session  # Playwright is imported only where a browser is driven

    yield from chromium_session()
