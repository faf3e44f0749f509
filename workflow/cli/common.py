"""Helpers every command shares: opening the engine and reading JSON arguments."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from workflow import bootstrap
from workflow.bootstrap import connect
from workflow.errors import InvalidInput
from workflow.services.workflow import Workflow

_opened: list[Workflow] = []
_engines: list[Engine] = []


def open_workflow(args: argparse.Namespace, *, url: str | None = None, upgrade: bool = False) -> Workflow:
    """The engine on --db (or `url`); closed by `main` when the command ends."""
    wf = connect(url if url is not None else args.db, upgrade=upgrade)
    _opened.append(wf)
    return wf


def open_engine(args: argparse.Namespace) -> Engine:
    """Just the database on --db, for commands that need no definitions (nothing is written on opening)."""
    engine = bootstrap.open_engine(args.db)
    _engines.append(engine)
    return engine


def close_workflows() -> None:
    while _opened:
        _opened.pop().engine.dispose()
    while _engines:
        _engines.pop().dispose()


def json_argument(text: str | None, what: str) -> dict[str, Any]:
    """A JSON object given inline or as @file."""
    if text is None:
        return {}
    source = text
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        value = json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise InvalidInput(f'{what} must be a JSON object like {{"field": "value"}}, got {type(value).__name__}')
    return value


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
