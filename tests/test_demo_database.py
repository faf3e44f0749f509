"""`appeals serve --demo` keeps the demo database it finds unless `--fresh` asks for a new one, and says which.

The web server itself is not started: `uvicorn.run` is replaced by a recorder, since what is tested is
what happens to the database before the server starts.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import text

from workflow.cli import main
from workflow.persistence.database import create_database_engine


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """Run in a scratch folder (the demo file lands there) and record instead of serving."""
    monkeypatch.chdir(tmp_path)
    for name in ("APPEALS_DATABASE_URL", "APPEALS_DEMO", "APPEALS_NO_SWEEPER", "APPEALS_DEFINITIONS"):
        monkeypatch.delenv(name, raising=False)
    started: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(kwargs))
    return started


def serve(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    code = main(["serve", "--demo", *argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def add_marker(url: str) -> None:
    """Something entered between two starts: a comment-free mark the demo would not make itself."""
    engine = create_database_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE enterprises SET name = '标记：重启后应保留' WHERE id = 1"))
    engine.dispose()


def marker(url: str) -> str:
    engine = create_database_engine(url)
    with engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM enterprises WHERE id = 1")).scalar_one()
    engine.dispose()
    return str(name)


def test_serve_demo_keeps_the_demo_file_it_finds_and_fresh_rebuilds_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, no_server: list[dict[str, Any]]
) -> None:
    url = "sqlite:///appeals-demo.db"
    first = serve(capsys)
    created = re.search(r"created the demo database appeals-demo\.db: demo district with (\d+) appeals", first)
    assert created, first
    assert (tmp_path / "appeals-demo.db").exists()
    add_marker(url)

    again = serve(capsys)
    assert f"kept the existing demo database appeals-demo.db ({created.group(1)} appeals); --fresh rebuilds it" in again
    assert marker(url) == "标记：重启后应保留", "a restart without --fresh lost what was entered"

    fresh = serve(capsys, "--fresh")
    assert "created the demo database appeals-demo.db" in fresh, fresh
    assert marker(url) != "标记：重启后应保留"
    assert len(no_server) == 3 and all(run["factory"] for run in no_server)


def test_serve_demo_on_a_given_database_keeps_it_too(
    db_url: str, capsys: pytest.CaptureFixture[str], no_server: list[dict[str, Any]]
) -> None:
    assert "created the demo database" in serve(capsys, "--db", db_url)
    add_marker(db_url)
    kept = serve(capsys, "--db", db_url)
    assert re.search(r"kept the existing demo database \S+ \(\d+ appeals\); --fresh rebuilds it", kept), kept
    assert marker(db_url) == "标记：重启后应保留"


def test_fresh_is_refused_where_it_cannot_delete_a_file(
    capsys: pytest.CaptureFixture[str], no_server: list[dict[str, Any]]
) -> None:
    assert main(["serve", "--fresh"]) == 1
    assert "--fresh rebuilds the demo database; it goes with --demo" in capsys.readouterr().err
    assert main(["serve", "--demo", "--fresh", "--db", "postgresql://postgres@127.0.0.1/nothing"]) == 1
    assert "drop it yourself" in capsys.readouterr().err
    assert no_server == []
