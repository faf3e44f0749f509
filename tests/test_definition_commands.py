"""`appeals definitions validate` checks exactly what the application loads, and reports what could never pass."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from workflow.cli import main
from workflow.definitions import shipped_definition_files

SHIPPED_TYPES = [
    "financing_support",
    "general_appeal",
    "outdoor_event_permit",
    "party_branch_formation",
    "policy_fulfilment",
]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def appeals(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Callable[..., Run]:
    """`appeals ...` in-process, in an empty working directory (no database there), APPEALS_DEFINITIONS unset."""
    monkeypatch.delenv("APPEALS_DEFINITIONS", raising=False)
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> Run:
        capsys.readouterr()
        code = main(list(argv))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def local_copy(folder: Path, name: str) -> Path:
    folder.mkdir(exist_ok=True)
    target = folder / f"{name}.yaml"
    shutil.copy(next(p for p in shipped_definition_files() if p.stem == name), target)
    return target


def line_of(path: Path, fragment: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line)


def with_bank_matched_on_answer(path: Path) -> None:
    """The issue's case: general_appeal's `answer` guarded by bank_matched, a field general appeals never have."""
    source = path.read_text(encoding="utf-8")
    anchor = "    to: answered\n    roles: [chain]\n"
    assert source.count(anchor) == 1
    path.write_text(source.replace(anchor, anchor + "    guards: [bank_matched]\n"), encoding="utf-8")


def test_validate_reports_a_guard_that_reads_a_field_the_appeal_never_has_with_file_and_line(
    appeals: Callable[..., Run], tmp_path: Path
) -> None:
    path = local_copy(tmp_path / "local", "general_appeal")
    with_bank_matched_on_answer(path)

    result = appeals("definitions", "validate", str(path))

    assert result.code == 1, result.out
    assert result.out.splitlines() == [
        f"{path}:{line_of(path, 'bank_matched')}: transition 'answer': guard 'bank_matched' reads field 'bank', "
        "which neither the form nor this transition's fields define, so the transition could never pass; "
        "add the field to the form or to the transition's fields"
    ]


def test_validate_without_paths_checks_the_shipped_files_and_appeals_definitions_like_every_other_command(
    appeals: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = tmp_path / "local"
    broken = local_copy(local, "general_appeal")
    with_bank_matched_on_answer(broken)
    monkeypatch.setenv("APPEALS_DEFINITIONS", str(local))

    validated = appeals("definitions", "validate")
    listed = appeals("definitions", "list")

    assert listed.code == 1 and "1 problem in definitions:" in listed.err, listed.err
    assert validated.code == 1, validated.out
    assert validated.out.splitlines() == [line for line in listed.err.splitlines() if line.startswith(str(broken))]
    as_json = json.loads(appeals("definitions", "validate", "--json").out)
    assert as_json["valid"] is False
    assert [(p["file"], p["line"]) for p in as_json["problems"]] == [(str(broken), line_of(broken, "bank_matched"))]


def test_validate_without_paths_lists_the_local_file_that_replaces_a_shipped_one(
    appeals: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    replacement = local_copy(tmp_path / "local", "general_appeal")
    missing = tmp_path / "nowhere"
    monkeypatch.setenv("APPEALS_DEFINITIONS", str(tmp_path / "local"))

    checked = json.loads(appeals("definitions", "validate", "--json").out)

    assert checked["valid"] is True
    assert sorted(d["name"] for d in checked["definitions"]) == SHIPPED_TYPES
    files = {d["name"]: d["file"] for d in checked["definitions"]}
    assert files["general_appeal"] == str(replacement)
    assert all(Path(f).parent != replacement.parent for n, f in files.items() if n != "general_appeal")

    monkeypatch.setenv("APPEALS_DEFINITIONS", f"{tmp_path / 'local'}:{missing}")
    result = appeals("definitions", "validate")
    assert result.code == 1
    assert result.out.splitlines() == [f"{missing}:1: cannot read: [Errno 2] No such file or directory: '{missing}'"]
