"""What every benchmark shares: the PostgreSQL server to use, a fresh database per run, and one permit's form."""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("APPEALS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
EVENT = {
    "event_name": "开业活动",
    "event_kind": "opening",
    "venue": "北广场",
    "start_date": (date.today() + timedelta(days=10)).isoformat(),  # the permit refuses a first day in the past
    "end_date": (date.today() + timedelta(days=29)).isoformat(),
    "expected_attendance": 500,
    "contact_phone": "0731-8888 6666",
}


def plain_url(url: str) -> str:
    """The URL as psycopg itself takes it (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def database_url(name: str) -> str:
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def recreate_database(name: str) -> str:
    """An empty PostgreSQL database of this name on the PG_URL server (dropped first if it is there)."""
    with psycopg.connect(plain_url(PG_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def fresh_database(backend: str, workdir: Path, name: str) -> str:
    """A new, empty database: a SQLite file in `workdir`, or a PostgreSQL database named after this process."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / f'{name}.db'}"
    return recreate_database(f"appeals_{name}_{os.getpid()}")


def drop_database(url: str) -> None:
    """Drops a PostgreSQL database made above; a SQLite file goes with its temporary folder."""
    if url.startswith("postgresql"):
        with psycopg.connect(plain_url(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
