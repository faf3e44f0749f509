"""`appeals ...` run in-process on a test database and clock, for tests of what the command line prints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Engine

from workflow import bootstrap
from workflow.cli import main
from workflow.clock import FrozenClock
from workflow.persistence.database import create_database_engine


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str


def cli_runner(
    db_url: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., CliRun]:
    """Runs `main(["--db", db_url, ...])` on the test's clock; closes the engines each command opened."""
    opened: list[Engine] = []

    def create(url: str, **options: Any) -> Engine:
        engine = create_database_engine(url, **options)
        opened.append(engine)
        return engine

    monkeypatch.setattr(bootstrap, "create_database_engine", create)
    monkeypatch.setattr(bootstrap, "SystemClock", lambda: clock)

    def run(*argv: str) -> CliRun:
        capsys.readouterr()
        try:
            code = main(["--db", db_url, *argv])
        except SystemExit as usage:  # argparse ends a usage error this way, with exit code 2
            code = int(usage.code or 0)
        finally:
            for engine in opened:
                engine.dispose()
            opened.clear()
        captured = capsys.readouterr()
        return CliRun(code, captured.out, captured.err)

    return run
