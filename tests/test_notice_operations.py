"""Running the outbox from the command line, on SQLite and PostgreSQL: `notices dispatch` gives up after
APPEALS_MAIL_MAX_ATTEMPTS like the sweep, `notices failed` pages with a total, and an empty APPEALS_MAILDIR
folder is made a maildir instead of failing every notice."""

from __future__ import annotations

import json
import mailbox
import socket
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from notifications.outbox import notices as notices_table
from tests.cli_support import CliRun, cli_runner
from tests.conftest import OUTDOOR_EVENT
from workflow.clock import FrozenClock
from workflow.services.workflow import Workflow


@pytest.fixture
def cli(
    db_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliRun]:
    """`appeals ...` in-process on the test database and clock, mail settings cleared."""
    for variable in ("APPEALS_SMTP_URL", "APPEALS_MAILDIR", "APPEALS_MAIL_MAX_ATTEMPTS", "APPEALS_BASE_URL"):
        monkeypatch.delenv(variable, raising=False)
    return cli_runner(db_url, clock, monkeypatch, capsys)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound but not listening: every SMTP connection to it is refused."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        yield int(closed.getsockname()[1])


def submit_events(wf: Workflow, count: int) -> None:
    """Each appeal writes two notices: appeal_received to the contact, assigned to the building staff."""
    for enterprise in range(1, count + 1):
        wf.submit(
            "outdoor_event_permit", enterprise_id=enterprise, as_user=f"contact-{enterprise:04d}", data=OUTDOOR_EVENT
        )


def outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        query = select(notices_table.c.id, notices_table.c.status, notices_table.c.attempts, notices_table.c.last_error)
        return list(conn.execute(query.order_by(notices_table.c.id)).all())


def test_notices_dispatch_gives_up_after_appeals_mail_max_attempts(
    demo: Workflow,
    cli: Callable[..., CliRun],
    clock: FrozenClock,
    refused_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submit_events(demo, 1)
    monkeypatch.setenv("APPEALS_SMTP_URL", f"smtp://127.0.0.1:{refused_port}?timeout=5")
    monkeypatch.setenv("APPEALS_MAIL_MAX_ATTEMPTS", "2")

    first = cli("notices", "dispatch", "--json")
    assert first.code == 0, first.err
    assert (json.loads(first.out)["retried"], json.loads(first.out)["failed"]) == (2, 0)
    clock.advance(timedelta(hours=1))
    second = cli("notices", "dispatch", "--json")
    assert second.code == 0, second.err
    assert (json.loads(second.out)["retried"], json.loads(second.out)["failed"]) == (0, 2), second.out

    for notice in outbox(demo.engine):
        assert (notice.status, notice.attempts) == ("failed", 2)
        assert notice.last_error.startswith("gave up after 2 attempts: SMTP server 127.0.0.1:"), notice.last_error


def test_a_bad_appeals_mail_max_attempts_is_refused_naming_the_variable_and_nothing_is_claimed(
    demo: Workflow, cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    submit_events(demo, 1)
    monkeypatch.setenv("APPEALS_MAILDIR", str(tmp_path / "maildir"))
    before = outbox(demo.engine)
    for value in ("0", "five", "-1"):
        monkeypatch.setenv("APPEALS_MAIL_MAX_ATTEMPTS", value)
        result = cli("notices", "dispatch")
        assert result.code == 1 and result.out == ""
        assert result.err == (
            f"appeals: error: bad APPEALS_MAIL_MAX_ATTEMPTS {value!r}: give a whole number of tries, 1 or more\n"
        )
    assert outbox(demo.engine) == before


def test_notices_failed_pages_through_more_than_a_hundred_and_prints_the_total(
    demo: Workflow, cli: Callable[..., CliRun], refused_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    submit_events(demo, 51)
    monkeypatch.setenv("APPEALS_SMTP_URL", f"smtp://127.0.0.1:{refused_port}?timeout=5")
    monkeypatch.setenv("APPEALS_MAIL_MAX_ATTEMPTS", "1")
    assert json.loads(cli("notices", "dispatch", "--json").out)["failed"] == 102
    newest_first = [n.id for n in reversed(outbox(demo.engine))]

    default = json.loads(cli("notices", "failed", "--json").out)
    assert (default["total"], default["offset"], default["limit"]) == (102, 0, 100)
    assert [n["id"] for n in default["notices"]] == newest_first[:100]
    rest = json.loads(cli("notices", "failed", "--offset", "100", "--json").out)
    assert [n["id"] for n in rest["notices"]] == newest_first[100:]
    everything = json.loads(cli("notices", "failed", "--all", "--json").out)
    assert (everything["total"], everything["limit"]) == (102, None)
    assert [n["id"] for n in everything["notices"]] == newest_first
    page = json.loads(cli("notices", "failed", "--limit", "5", "--offset", "10", "--json").out)
    assert [n["id"] for n in page["notices"]] == newest_first[10:15]

    text = cli("notices", "failed", "--limit", "5", "--offset", "10")
    assert text.code == 0, text.err
    assert text.out.splitlines()[-2:] == ["11-15 of 102 failed notice(s)", "more: --offset 15 (or --all)"]
    assert cli("notices", "failed", "--all").out.splitlines()[-1] == "1-102 of 102 failed notice(s)"

    bad = cli("notices", "failed", "--limit", "-1")
    assert bad.code == 2 and "argument --limit: '-1' is not a whole number 0 or more" in bad.err, bad.err


def test_an_existing_empty_maildir_folder_is_made_a_maildir_and_every_notice_is_delivered(
    demo: Workflow, cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    submit_events(demo, 3)
    folder = tmp_path / "mail"
    folder.mkdir()
    monkeypatch.setenv("APPEALS_MAILDIR", str(folder))

    result = cli("notices", "dispatch", "--json")

    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert (report["sent"], report["retried"], report["failed"]) == (6, 0, 0), report
    assert sorted(p.name for p in folder.iterdir()) == ["cur", "new", "tmp"]
    assert len(mailbox.Maildir(str(folder), create=False)) == 6
    assert {n.status for n in outbox(demo.engine)} == {"sent"}


def test_a_maildir_that_cannot_be_one_is_refused_at_start_and_nothing_is_claimed(
    demo: Workflow, cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    submit_events(demo, 1)
    occupied = tmp_path / "mail"
    occupied.write_text("a file, not a folder\n", encoding="utf-8")
    monkeypatch.setenv("APPEALS_MAILDIR", str(occupied))
    before = outbox(demo.engine)

    for argv in (("notices", "dispatch"), ("sweep",)):
        result = cli(*argv)
        assert result.code == 1 and result.out == "", result
        assert result.err.startswith(f"appeals: error: APPEALS_MAILDIR '{occupied}' cannot be used as a maildir ("), (
            result.err
        )
        assert "name a folder this process may create and write to, or set APPEALS_SMTP_URL" in result.err
    assert outbox(demo.engine) == before
