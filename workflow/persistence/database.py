"""Creates SQLAlchemy engines for SQLite (WAL, busy timeout, BEGIN IMMEDIATE) and PostgreSQL."""

from __future__ import annotations

import logging
import os
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from workflow.errors import InvalidInput

log = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///appeals.db"
# Read-only units of work ask for a deferred BEGIN so that readers never queue behind writers.
READ_ONLY = "workflow_read_only"


class BadDatabaseUrl(InvalidInput):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"cannot use database URL {url!r}: {reason}; use sqlite:///FILE or postgresql+psycopg://user@host/db"
        )


def normalise_url(url: str) -> str:
    """Accept the plain postgresql:// spelling and pick the psycopg 3 driver for it."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise BadDatabaseUrl(url, str(exc)) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise BadDatabaseUrl(url, f"backend {parsed.get_backend_name()!r} is not supported")
    return parsed.render_as_string(hide_password=False)


def create_database_engine(url: str, **options: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **options)
        _configure_sqlite(engine)
        return engine
    # Connections beyond pool_size are closed when returned: with more requests in flight per web worker than
    # that, the pool opened 9-18 new PostgreSQL sessions a second (benchmarks/http.py), each a backend fork with
    # cold caches. Size it to the requests one process serves at once, within the server's max_connections.
    options.setdefault("pool_size", int(os.environ.get("APPEALS_DB_POOL_SIZE", "20")))
    options.setdefault("max_overflow", int(os.environ.get("APPEALS_DB_MAX_OVERFLOW", "20")))
    # A ping per checkout would be one more round trip on every state change; recycle instead,
    # and let APPEALS_DB_PRE_PING=1 turn pinging on where connections die behind the app's back.
    options.setdefault("pool_pre_ping", os.environ.get("APPEALS_DB_PRE_PING", "") == "1")
    options.setdefault("pool_recycle", 1800)
    return create_engine(url, **options)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own is deferred and late).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # 16x faster commits than the rollback journal
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # A writer takes the write lock up front: two writers that both read first would
        # otherwise deadlock on the upgrade and one would fail with SQLITE_BUSY.
        read_only = connection.get_execution_options().get(READ_ONLY, False)
        # Straight to the driver: this runs once per transaction, on the hot path.
        connection.connection.driver_connection.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
