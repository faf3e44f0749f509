"""Running the audit trail: the upgrade that chains old events, the least-privilege role, backups and restores."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from tests.conftest import OUTDOOR_EVENT, PG_URL
from tests.test_audit_trail import chain_of, problems, walk
from workflow.bootstrap import connect
from workflow.cli import main
from workflow.clock import FrozenClock
from workflow.persistence.migrate import alembic_config
from workflow.persistence.tables import Base
from workflow.services import audit
from workflow.services.workflow import Workflow


def migrate(engine: Engine, action: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, action)(config, revision)


def test_the_schema_the_migrations_build_is_the_one_the_tables_declare(engine: Engine) -> None:
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_upgrading_chains_the_events_written_before_and_the_trail_verifies_clean(
    demo: Workflow, clock: FrozenClock
) -> None:
    numbers = walk(demo, clock)
    before = {number: [(e.seq, e.prev_hash, e.hash) for e in chain_of(demo, number)] for number in numbers}
    demo.engine.dispose()
    migrate(demo.engine, "downgrade", "0005")
    with demo.engine.connect() as conn:
        assert "hash" not in {c[1] for c in conn.execute(text("SELECT * FROM appeal_events")).cursor.description}
    migrate(demo.engine, "upgrade", "head")
    demo.engine.dispose()
    # Recomputed from the same events in the order they were written: the same links. (The downgrade dropped
    # recorded_at, 0007's column, so the hashes now cover one field less than before and differ.)
    after = {number: [(e.seq, e.prev_hash, e.hash) for e in chain_of(demo, number)] for number in numbers}
    assert {n: [seq for seq, _, _ in chain] for n, chain in after.items()} == {
        n: [seq for seq, _, _ in chain] for n, chain in before.items()
    }
    for chain in after.values():
        assert [prev for _, prev, _ in chain] == [None, *(h for _, _, h in chain[:-1])]
    assert [demo.record(n).audit_head for n in numbers] == [after[n][-1][2] for n in numbers]
    assert problems(audit.verify(demo)) == []
    with demo.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
        conn.execute(text("UPDATE appeal_events SET comment = 'x'"))
    demo.fire(numbers[1], "file_application", as_user="specialist-b01", data={"materials_complete": True})
    assert problems(audit.verify(demo)) == []


# --- the application's own role (PostgreSQL) ---------------------------------------------------------------------


@pytest.fixture
def app_role(db_url: str) -> Iterator[str]:
    name = f"appeals_app_{uuid.uuid4().hex[:8]}"
    yield name
    if db_url.startswith("postgresql"):
        admin = create_engine(db_url)
        with admin.begin() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_roles WHERE rolname = :n"), {"n": name}).scalar_one():
                conn.execute(text(f'DROP OWNED BY "{name}"'))
                conn.execute(text(f'DROP ROLE "{name}"'))
        admin.dispose()


def test_the_application_runs_as_a_role_that_may_append_to_the_trail_but_not_change_it(
    demo: Workflow, db_url: str, app_role: str, clock: FrozenClock, capsys: pytest.CaptureFixture[str]
) -> None:
    if not db_url.startswith("postgresql"):
        assert main(["--db", db_url, "init", "--app-role", app_role]) == 1
        assert capsys.readouterr().err == (
            "appeals: error: --app-role is for PostgreSQL only: SQLite has no roles "
            "(protect the database file's permissions instead)\n"
        )
        return
    assert main(["--db", db_url, "init", "--app-role", app_role]) == 0
    assert f"application role {app_role} created" in capsys.readouterr().out
    assert main(["--db", db_url, "init", "--app-role", app_role]) == 0  # again after an upgrade: same grants
    assert f"application role {app_role} updated" in capsys.readouterr().out
    as_app = make_url(db_url).set(username=app_role).render_as_string(hide_password=False)
    app = connect(as_app, clock=clock)
    try:
        with app.engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() == app_role
        number = app.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)[
            "number"
        ]
        app.fire(number, "start_pre_check", as_user="staff-b01")
        app.comment(number, "已受理", as_user="staff-b01")
        audit.seal(app)
        assert problems(audit.verify(app)) == []
        refused = {
            "UPDATE appeal_events SET comment = 'x'": "permission denied for table appeal_events",
            "DELETE FROM appeal_events": "permission denied for table appeal_events",
            "TRUNCATE appeal_events": "permission denied for table appeal_events",
            "DELETE FROM audit_seals": "permission denied for table audit_seals",
            "ALTER TABLE appeal_events DISABLE TRIGGER USER": "must be owner of table appeal_events",
            "DROP TRIGGER appeal_events_append_only ON appeal_events": "must be owner of (relation|table) appeal_",
            "DROP TABLE appeals CASCADE": "must be owner of table appeals",
            "CREATE TABLE shadow (id int)": "permission denied for schema public",
        }
        for statement, error in refused.items():
            with app.engine.connect() as conn, pytest.raises(DBAPIError, match=error):
                conn.execute(text(statement))
        assert [e["trigger"] for e in app.history(number)] == ["submit", "start_pre_check", None]
    finally:
        app.engine.dispose()


def test_the_application_role_must_not_be_the_owner_or_a_superuser(db_url: str, demo: Workflow) -> None:
    from workflow.bootstrap import grant_app_role
    from workflow.errors import InvalidInput

    if not db_url.startswith("postgresql"):
        with pytest.raises(InvalidInput, match="--app-role is for PostgreSQL only"):
            grant_app_role(demo.engine, "appeals_app")
        return
    with pytest.raises(InvalidInput, match="'postgres' is the role running init"):
        grant_app_role(demo.engine, "postgres")
    with pytest.raises(InvalidInput, match="role name 'App-Role' is not allowed"):
        grant_app_role(demo.engine, "App-Role")


# --- backups ------------------------------------------------------------------------------------------------


def test_backup_copies_a_sqlite_database_while_a_writer_holds_its_lock_and_the_copy_verifies(
    demo: Workflow, db_url: str, clock: FrozenClock, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    walk(demo, clock)
    target = tmp_path / "copy.db"
    if not db_url.startswith("sqlite"):
        assert main(["--db", db_url, "backup", str(target)]) == 1
        assert "pg_dump" in capsys.readouterr().err and not target.exists()
        return
    # Serving goes on: a writer is in the middle of a transaction while the copy is taken.
    writer = sqlite3.connect(make_url(db_url).database, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE appeals SET state = 'closed'")
    try:
        assert main(["--db", db_url, "backup", str(target), "--json"]) == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    made = json.loads(capsys.readouterr().out)
    assert (made["appeals"], made["events"], made["path"]) == (2, 8, str(target))
    assert main(["--db", f"sqlite:///{target}", "audit", "verify", "--json"]) == 0  # the uncommitted write is not in it
    assert json.loads(capsys.readouterr().out)["events"] == 8
    assert main(["--db", db_url, "backup", str(target)]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite's backup is tested above
def test_a_postgresql_dump_restored_into_a_new_database_verifies_against_the_seal(
    demo: Workflow, db_url: str, clock: FrozenClock, tmp_path: Path
) -> None:
    pg_dump, pg_restore = shutil.which("pg_dump"), shutil.which("pg_restore")
    assert pg_dump and pg_restore, "pg_dump and pg_restore must be installed (Debian: postgresql-client)"
    numbers = walk(demo, clock)
    seal_file = tmp_path / "seal.json"
    audit.seal(demo, out=seal_file)
    dump = tmp_path / "appeals.dump"
    libpq = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run([pg_dump, "--format=custom", f"--file={dump}", f"--dbname={libpq}"], check=True)
    restored_name = f"appeals_restored_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{restored_name}"'))
    restored_url = make_url(db_url).set(database=restored_name).render_as_string(hide_password=False)
    try:
        restored_libpq = make_url(restored_url).set(drivername="postgresql").render_as_string(hide_password=False)
        subprocess.run(
            [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={restored_libpq}", str(dump)],
            check=True,
        )
        restored = connect(restored_url, clock=clock)
        try:
            report = audit.verify(restored, sealed=audit.read_seal(seal_file))
            assert problems(report) == [] and (report.appeals, report.events) == (2, 8)
            assert restored.record(numbers[0]).audit_head == demo.record(numbers[0]).audit_head
            with restored.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text("TRUNCATE appeal_events CASCADE"))
        finally:
            restored.engine.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{restored_name}" WITH (FORCE)'))
        admin.dispose()


def test_init_app_role_and_backup_answer_help(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["init", "--help"], ["backup", "--help"], ["audit", "verify", "--help"], ["audit", "seal", "--help"]):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 0
    assert "--app-role NAME" in capsys.readouterr().out
