"""Editing a definition file registers a new version; appeals already open keep walking the version they began on."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.definitions import shipped_definition_files
from workflow.errors import TransitionNotAllowed
from workflow.persistence.tables import DefinitionVersion, table_of
from workflow.services.workflow import Workflow

NAME = "outdoor_event_permit"
OLD_TITLE = "title: {zh-CN: 楼宇预审, en: Pre-check by the building committee}"
NEW_TITLE = "title: {zh-CN: 楼宇联合预审, en: Joint pre-check by the building committee}"
FAST_TRACK = """\
  - trigger: fast_track
    from: submitted
    to: collecting_materials
    roles: [building_staff]
    comment: required
    title: {zh-CN: 绿色通道, en: Fast track straight to collection}
"""
V1_PATH = [
    ("start_pre_check", "staff-b01", {}),
    ("pass_pre_check", "staff-b01", {}),
    ("file_application", "specialist-b01", {"materials_complete": True}),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ("approve", "bureau-approval-01", {"inspection_findings": "场地安全"}),
    ("close", "specialist-b01", {}),
]


@pytest.fixture
def local_file(tmp_path: Path) -> Path:
    """A local copy of the shipped file; naming it in `definitions=` replaces the shipped one of the same name."""
    shipped = next(p for p in shipped_definition_files() if p.stem == NAME)
    target = tmp_path / f"{NAME}.yaml"
    shutil.copy(shipped, target)
    return target


def edit_to_v2(path: Path) -> None:
    """Rename the pre-check's title and add a fast-track transition."""
    source = path.read_text(encoding="utf-8")
    assert source.count(OLD_TITLE) == 1 and "  - trigger: withdraw\n" in source, "the shipped file changed shape"
    source = source.replace(OLD_TITLE, NEW_TITLE).replace(
        "  - trigger: withdraw\n", FAST_TRACK + "  - trigger: withdraw\n"
    )
    path.write_text(source, encoding="utf-8")


def submit(wf: Workflow, enterprise_id: int = 1) -> str:
    appeal = wf.submit(NAME, enterprise_id=enterprise_id, as_user=f"contact-{enterprise_id:04d}", data=OUTDOOR_EVENT)
    return str(appeal["number"])


def reconnect(engine: Engine, clock: FrozenClock, path: Path) -> Workflow:
    return connect(engine=engine, clock=clock, definitions=[path])


def test_an_unedited_local_copy_is_the_shipped_version_one(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    before = table_counts(engine)
    wf = reconnect(engine, clock, local_file)
    assert table_counts(engine) == before, "a byte-identical file registered a new version"
    assert wf.definition(NAME)["version"] == 1


def test_editing_the_file_registers_version_two_and_open_appeals_keep_version_one(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = submit(reconnect(engine, clock, local_file))
    edit_to_v2(local_file)
    with caplog.at_level(logging.WARNING, logger="workflow.services.registry"):
        wf = reconnect(engine, clock, local_file)
    assert f"definition {NAME} changed; registered as version 2, appeals on version 1 keep theirs" in caplog.text
    assert wf.definition(NAME)["version"] == 2
    assert "fast_track" in [t["trigger"] for t in wf.definition(NAME)["transitions"]]

    new = submit(wf, enterprise_id=2)
    assert wf.show(new)["definition"] == {"name": NAME, "version": 2}
    assert wf.show(old)["definition"] == {"name": NAME, "version": 1}
    assert "fast_track" in [a["trigger"] for a in wf.actions(new, as_user="staff-b01")]
    assert [a["trigger"] for a in wf.actions(old, as_user="staff-b01") if a["kind"] == "transition"] == [
        "start_pre_check"
    ]

    before = table_counts(engine), wf.show(old)
    with pytest.raises(TransitionNotAllowed) as caught:
        wf.fire(old, "fast_track", as_user="staff-b01", comment="材料齐全")
    assert str(caught.value) == (
        f"appeal {old} is in state 'submitted', where 'fast_track' is not possible; possible here: start_pre_check"
    )
    assert (table_counts(engine), wf.show(old)) == before, "the refused fire changed something"

    wf.fire(new, "fast_track", as_user="staff-b01", comment="材料齐全")
    assert wf.show(new)["state"] == "collecting_materials"


def test_the_old_appeal_walks_version_one_to_the_end_with_version_one_titles(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    old = submit(reconnect(engine, clock, local_file))
    edit_to_v2(local_file)
    wf = reconnect(engine, clock, local_file)
    new = submit(wf, enterprise_id=2)
    for number in (old, new):
        wf.fire(number, "start_pre_check", as_user="staff-b01")
    assert wf.show(old, locale="en")["state_title"] == "Pre-check by the building committee"
    assert wf.show(new, locale="en")["state_title"] == "Joint pre-check by the building committee"
    for trigger, user, data in V1_PATH[1:]:
        wf.fire(old, trigger, as_user=user, data=data)
    final = wf.show(old)
    assert (final["state"], final["is_open"], final["definition"]["version"]) == ("closed", False, 1)
    assert [e["trigger"] for e in wf.history(old)] == ["submit"] + [step[0] for step in V1_PATH]


def test_reconnecting_with_the_unchanged_edited_file_registers_nothing_new(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    edit_to_v2(local_file)
    reconnect(engine, clock, local_file)
    before = table_counts(engine)
    again = reconnect(engine, clock, local_file)
    assert table_counts(engine) == before, "the same file registered again"
    assert again.definition(NAME)["version"] == 2


def test_a_file_edited_back_to_the_first_content_maps_to_version_one_again(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    original = local_file.read_text(encoding="utf-8")
    edit_to_v2(local_file)
    on_v2 = submit(reconnect(engine, clock, local_file))
    local_file.write_text(original, encoding="utf-8")
    before = table_counts(engine)
    wf = reconnect(engine, clock, local_file)
    assert table_counts(engine) == before, "returning to known content registered a new version"
    assert wf.definition(NAME)["version"] == 1
    back = submit(wf, enterprise_id=2)
    assert wf.show(back)["definition"]["version"] == 1
    assert wf.show(on_v2)["definition"]["version"] == 2
    with pytest.raises(TransitionNotAllowed, match="'fast_track' is not possible"):
        wf.fire(back, "fast_track", as_user="staff-b01", comment="材料齐全")
    wf.fire(on_v2, "fast_track", as_user="staff-b01", comment="材料齐全")  # v2 appeals keep v2's transitions
    assert wf.show(on_v2)["state"] == "collecting_materials"


def test_changing_only_a_limit_is_a_new_version_too(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    source = local_file.read_text(encoding="utf-8")
    assert "time_limit: 5d " in source
    local_file.write_text(source.replace("time_limit: 5d ", "time_limit: 3d "), encoding="utf-8")
    wf = reconnect(engine, clock, local_file)
    assert wf.definition(NAME)["version"] == 2
    assert wf.definition(NAME)["time_limit"] != demo.definition(NAME)["time_limit"]
    assert demo.definition(NAME)["version"] == 1, "a running node keeps the version it registered"


def test_a_declared_version_ahead_of_the_stored_ones_is_kept(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    edit_to_v2(local_file)
    source = local_file.read_text(encoding="utf-8")
    local_file.write_text(source.replace("\nversion: 1\n", "\nversion: 5\n", 1), encoding="utf-8")
    wf = reconnect(engine, clock, local_file)
    shown = wf.definition(NAME)
    assert (shown["version"], shown["declared_version"]) == (5, 5)
    assert wf.show(submit(wf))["definition"]["version"] == 5


def cosmetic_edit(path: Path) -> None:
    """Comments, blank lines, indentation of a flow list and quoting: the same definition written differently."""
    source = path.read_text(encoding="utf-8")
    assert source.count("time_limit: 5d ") == 1 and source.count("\nstates:\n") == 1
    source = "# edited by hand: comments and spacing only\n\n" + source
    source = source.replace("time_limit: 5d ", 'time_limit: "5d"    ').replace(
        "\nstates:\n", "\n\n\nstates:   # the states\n"
    )
    path.write_text(source, encoding="utf-8")


def stored_versions(engine: Engine) -> list[tuple[int, str, str]]:
    table = table_of(DefinitionVersion)
    with engine.connect() as conn:
        query = select(table.c.version, table.c.digest, table.c.source).where(table.c.name == NAME)
        return [tuple(row) for row in conn.execute(query.order_by(table.c.version))]


def test_a_comment_or_whitespace_edit_keeps_the_version(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    before = table_counts(engine)
    cosmetic_edit(local_file)
    assert local_file.read_text(encoding="utf-8") != shipped_source()
    wf = reconnect(engine, clock, local_file)
    assert table_counts(engine) == before, "an edit of comments and spacing registered a new version"
    assert wf.definition(NAME)["version"] == 1
    assert wf.show(submit(wf))["definition"]["version"] == 1


def test_a_real_change_after_a_cosmetic_one_still_registers_a_new_version(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    cosmetic_edit(local_file)
    edit_to_v2(local_file)
    assert reconnect(engine, clock, local_file).definition(NAME)["version"] == 2
    source = local_file.read_text(encoding="utf-8")
    local_file.write_text(source.replace("\nstates:", "\n# one more comment\nstates:", 1), encoding="utf-8")
    before = table_counts(engine)
    assert reconnect(engine, clock, local_file).definition(NAME)["version"] == 2
    assert table_counts(engine) == before


def shipped_source() -> str:
    return next(p for p in shipped_definition_files() if p.stem == NAME).read_text(encoding="utf-8")


def test_a_database_registered_under_the_old_digest_of_the_file_bytes_gets_no_duplicate_on_restart(
    demo: Workflow, engine: Engine, clock: FrozenClock, local_file: Path
) -> None:
    """Before, a version was keyed by the sha256 of the file's bytes; such a database must restart cleanly."""
    table = table_of(DefinitionVersion)
    with engine.begin() as conn:  # what the old scheme stored for every registered definition
        for row in conn.execute(select(table.c.id, table.c.source)).all():
            old_digest = hashlib.sha256(row.source.encode()).hexdigest()
            conn.execute(update(table).where(table.c.id == row.id).values(digest=old_digest))
    old = submit(demo)
    before = table_counts(engine), stored_versions(engine)

    unchanged = reconnect(engine, clock, local_file)
    cosmetic_edit(local_file)
    edited = reconnect(engine, clock, local_file)

    assert (table_counts(engine), stored_versions(engine)) == before, "unchanged content registered again"
    assert unchanged.definition(NAME)["version"] == edited.definition(NAME)["version"] == 1
    assert edited.show(submit(edited, enterprise_id=2))["definition"]["version"] == 1
    assert edited.show(old)["definition"]["version"] == 1
    edit_to_v2(local_file)
    assert reconnect(engine, clock, local_file).definition(NAME)["version"] == 2, "a real change is still new"
