"""Times people read are Shanghai time with +08:00 (audit reasons, logs, notices), and the warning about a
year without an official holiday notice is logged once per process, on stderr, never in JSON output."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from notifications.rendering import Renderer
from notifications.samples import sample_context
from tests.cli_support import CliRun, cli_runner
from workflow.clock import FrozenClock
from workflow.definitions import load_definitions, shipped_definition_files
from workflow.domain import calendar as calendar_module
from workflow.services.workflow import Workflow

# Monday 2026-12-28 10:00 in Shanghai: a general appeal's 10 working days run into 2027, which has no notice.
LATE_DECEMBER = datetime(2026, 12, 28, 2, 0, tzinfo=UTC)
GENERAL_APPEAL = {
    "category": "tax",
    "subject": "发票领用额度不足",
    "description": "申请提高增值税发票领用额度。",
    "urgency": "normal",
    "contact_phone": "0731-8888 7777",
}
LOG_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00 WARNING (\S+): (.*)")


@pytest.fixture
def cli(
    db_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., CliRun]]:
    """Commands run as in one fresh `appeals` process: the root logger has only the handlers the CLI adds.

    pytest hangs its own capture handlers on the root logger for each test phase, and logging.basicConfig adds
    nothing to a logger that has handlers; so around each command they are swapped for the process's own."""
    # This process may have warned about 2027 in an earlier test: start as a new process would.
    monkeypatch.setattr(calendar_module, "_ESTIMATES_WARNED", set(), raising=False)
    run = cli_runner(db_url, clock, monkeypatch, capsys)
    root = logging.getLogger()
    process: dict[str, Any] = {"handlers": [], "level": root.level}

    def as_process(*argv: str) -> CliRun:
        pytest_handlers, pytest_level = root.handlers[:], root.level
        root.handlers, root.level = process["handlers"], process["level"]
        try:
            return run(*argv)
        finally:
            process.update(handlers=root.handlers[:], level=root.level)
            root.handlers, root.level = pytest_handlers, pytest_level

    yield as_process
    for handler in process["handlers"]:
        handler.close()


def test_the_2027_warning_is_logged_once_per_process_on_stderr_in_shanghai_time_and_json_stays_clean(
    demo: Workflow, cli: Callable[..., CliRun], clock: FrozenClock
) -> None:
    clock.set(LATE_DECEMBER)
    runs = [
        cli(
            "case", "submit", "general_appeal", "--enterprise", "1", "--as", "contact-0001",
            "--data", json.dumps(GENERAL_APPEAL, ensure_ascii=False), "--json",
        )
    ]  # fmt: skip
    number = json.loads(runs[0].out)["number"]
    clock.advance(timedelta(days=1))  # past the 4-hour limit of 'submitted': the sweep escalates and replans
    runs.append(cli("sweep", "--json"))
    runs.append(cli("case", "show", number, "--json"))

    for run in runs:
        assert run.code == 0, run.err
        json.loads(run.out)  # nothing but JSON on stdout
        assert "2027" not in run.out or "holiday" not in run.out
    assert json.loads(runs[1].out)["escalations"] == 1
    lines = [line for run in runs for line in run.err.splitlines()]
    assert len(lines) == 1, lines
    found = LOG_LINE.fullmatch(lines[0])
    assert found is not None, lines[0]
    assert found.group(1) == "workflow.domain.calendar"
    assert found.group(2).startswith("no official holiday notice loaded for 2027; its working time is an estimate")


def test_the_breach_reason_in_the_audit_trail_gives_the_due_time_in_shanghai(
    demo: Workflow, cli: Callable[..., CliRun], clock: FrozenClock
) -> None:
    number = demo.submit("general_appeal", enterprise_id=1, as_user="contact-0001", data=GENERAL_APPEAL)["number"]
    clock.advance(timedelta(days=1))  # Thursday 10:00 + 4 working hours: due Thursday 16:00 in Shanghai
    assert cli("sweep", "--json").code == 0

    history = json.loads(cli("case", "history", number, "--json").out)

    (escalated,) = [e for e in history if e["trigger"] == "escalate"]
    assert escalated["comment"] == "time limit breached (state limit, due 2026-11-26T16:00:00+08:00)"
    assert "+00:00" not in cli("case", "history", number).out


def test_notices_show_times_in_shanghai_with_the_offset() -> None:
    (permit,) = [d for d in load_definitions(shipped_definition_files()) if d.name == "outdoor_event_permit"]
    context = sample_context("reminder", permit)
    assert context["limit_due_at"] == "2026-11-26T02:00:00+00:00"  # stored in UTC
    for locale in ("zh-CN", "en"):
        rendered = Renderer().render("reminder", locale, context)
        assert "2026-11-26 10:00 +08:00" in rendered.text and "2026-11-26 10:00 +08:00" in rendered.html
        assert "02:00" not in rendered.text + rendered.html
