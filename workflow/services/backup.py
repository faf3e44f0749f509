"""`appeals backup FILE`: a consistent copy of a SQLite database, taken while the application serves.

SQLite's online backup API copies the pages inside one read transaction; in WAL mode readers never block
writers, so serving goes on meanwhile. The copy is written beside the target and renamed into place only
once it is complete and passes an integrity check. PostgreSQL is backed up with pg_dump (see the README).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from workflow.errors import InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackupReport:
    path: str
    bytes: int
    appeals: int
    events: int


def backup_sqlite(engine: Engine, target: Path) -> BackupReport:
    if engine.dialect.name != "sqlite":
        raise InvalidInput(
            "appeals backup copies SQLite databases; back PostgreSQL up with pg_dump -Fc and restore it with "
            "pg_restore (see the README)"
        )
    if target.exists():
        raise InvalidInput(f"{target} already exists; a backup never overwrites a file, name a new one")
    if not target.parent.is_dir():
        raise InvalidInput(f"cannot write {target}: folder {target.parent} does not exist")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = engine.raw_connection()
    try:
        copy = sqlite3.connect(partial)
        try:
            source.driver_connection.backup(copy)  # type: ignore[union-attr]
            checked = copy.execute("PRAGMA integrity_check").fetchone()[0]
            if checked != "ok":
                raise InvalidInput(f"the copy failed SQLite's integrity check: {checked}")
            appeals = copy.execute("SELECT count(*) FROM appeals").fetchone()[0]
            events = copy.execute("SELECT count(*) FROM appeal_events").fetchone()[0]
        finally:
            copy.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    os.replace(partial, target)
    report = BackupReport(str(target), target.stat().st_size, int(appeals), int(events))
    log.info("backup written to %s: %d appeals, %d events", target, appeals, events)
    return report
