"""The audit trail is tamper-evident: every way of wiping or forging it is refused or found by `audit verify`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import OUTDOOR_EVENT
from workflow.cli import main
from workflow.clock import FrozenClock
from workflow.domain.appeal import EventRecord
from workflow.domain.audit_chain import ChainHead
from workflow.persistence.audit_store import AuditStore
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services import audit
from workflow.services.clocks import unchanged_columns
from workflow.services.commands import _write
from workflow.services.workflow import Workflow


def walk(wf: Workflow, clock: FrozenClock) -> list[str]:
    """Two appeals with every kind of event a person writes: submit, fire, comment, assign, escalate."""
    first = wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"]
    clock.advance(timedelta(minutes=5))
    wf.fire(first, "start_pre_check", as_user="staff-b01", comment="受理")
    wf.comment(first, "已电话联系企业", as_user="specialist-b01")
    wf.assign(first, "specialist-b01", as_user="staff-b01")
    wf.escalate(first, as_user="specialist-b01", reason="场地涉及市政道路，超出楼宇权限")
    second = wf.submit("outdoor_event_permit", enterprise_id=2, as_user="contact-0002", data=OUTDOOR_EVENT)["number"]
    wf.fire(second, "start_pre_check", as_user="staff-b01")
    wf.fire(second, "pass_pre_check", as_user="staff-b01")
    return [first, second]


def problems(report: audit.VerifyReport) -> list[tuple[str, str | None, int | None]]:
    return [(p.problem, p.appeal, p.seq) for p in report.problems]


def tamper(engine: Engine, *statements: str) -> None:
    """What someone with the database can do: on SQLite drop the triggers, on PostgreSQL (as the table's
    owner) disable them, then change the trail."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS appeal_events_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS appeal_events_no_delete"))
        else:
            conn.execute(text("ALTER TABLE appeal_events DISABLE TRIGGER USER"))
        for statement in statements:
            conn.execute(text(statement))
        if engine.dialect.name != "sqlite":
            conn.execute(text("ALTER TABLE appeal_events ENABLE TRIGGER USER"))


def event_id(engine: Engine, number: str, seq: int) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT e.id FROM appeal_events e JOIN appeals a ON a.id = e.appeal_id "
                    "WHERE a.number = :n AND e.seq = :s"
                ),
                {"n": number, "s": seq},
            ).scalar_one()
        )


def chain_of(wf: Workflow, number: str) -> list[EventRecord]:
    with UnitOfWork(wf.engine, read_only=True) as uow:
        appeal_id = uow.repo.appeal(number).id  # type: ignore[union-attr]
        return AuditStore(uow.connection).events_of(appeal_id, appeal_id)


@pytest.fixture
def walked(demo: Workflow, clock: FrozenClock) -> Iterator[tuple[Workflow, list[str]]]:
    yield demo, walk(demo, clock)


def test_every_event_is_a_link_of_its_appeals_chain_and_a_clean_trail_verifies(
    walked: tuple[Workflow, list[str]],
) -> None:
    wf, (first, _) = walked
    chain = chain_of(wf, first)
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert [e.kind for e in chain] == ["submitted", "fired", "commented", "assigned", "escalated"]
    assert chain[0].prev_hash is None
    assert [e.prev_hash for e in chain[1:]] == [e.hash for e in chain[:-1]]
    assert all(len(e.hash) == 64 for e in chain)
    record = wf.record(first)
    assert (record.audit_seq, record.audit_head) == (5, chain[-1].hash)
    report = audit.verify(wf)
    assert problems(report) == []
    assert (report.appeals, report.events) == (2, 8)


def test_an_altered_event_is_named_with_its_appeal_and_sequence(walked: tuple[Workflow, list[str]]) -> None:
    wf, (first, _) = walked
    tamper(wf.engine, f"UPDATE appeal_events SET comment = '同意' WHERE id = {event_id(wf.engine, first, 2)}")
    assert problems(audit.verify(wf)) == [("altered_event", first, 2)]


def test_an_event_rewritten_with_a_fresh_hash_breaks_the_next_link(walked: tuple[Workflow, list[str]]) -> None:
    wf, (first, _) = walked
    target = chain_of(wf, first)[1]
    forged = ChainHead(first, 1, target.prev_hash).link({**vars(target), "comment": "同意"})
    tamper(
        wf.engine,
        f"UPDATE appeal_events SET comment = '同意', hash = '{forged['hash']}' WHERE id = {target.id}",
    )
    assert problems(audit.verify(wf)) == [("altered_event", first, 2)]


def test_a_deleted_event_is_missing_from_its_chain(walked: tuple[Workflow, list[str]]) -> None:
    wf, (first, second) = walked
    tamper(wf.engine, f"DELETE FROM appeal_events WHERE id = {event_id(wf.engine, first, 3)}")
    assert problems(audit.verify(wf)) == [("missing_event", first, 3)]
    tamper(wf.engine, f"DELETE FROM appeal_events WHERE id = {event_id(wf.engine, second, 3)}")
    found = problems(audit.verify(wf, number=second))
    assert ("missing_event", second, 3) in found
    # The last change's event is gone but its effect stayed on the row.
    assert ("row_changed_without_event", second, 2) in found


def test_a_forged_event_is_found_whether_its_hash_fits_or_not(walked: tuple[Workflow, list[str]]) -> None:
    wf, (first, second) = walked
    chain = chain_of(wf, first)
    with wf.engine.begin() as conn:  # INSERT is not refused: whoever may write events may write this
        appeal_id = chain[0].appeal_id
        conn.execute(
            text(
                "INSERT INTO appeal_events (appeal_id, version, kind, actor_id, at, trigger, from_state, to_state, "
                "comment, payload, seq, prev_hash, hash) VALUES (:a, 5, 'fired', 1, :at, 'close', 'pre_check', "
                "'closed', '伪造', '{}', 6, :prev, :hash)"
            ),
            {
                "a": appeal_id,
                "at": chain[-1].at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                "prev": chain[-1].hash,
                "hash": "0" * 64,
            },
        )
    found = problems(audit.verify(wf, number=first))
    assert ("forged_event", first, 6) in found and ("altered_event", first, 6) in found
    # A forger who knows the hash function and links correctly is still beyond the head the row records.
    last = chain_of(wf, second)[-1]
    link = ChainHead(second, last.seq, last.hash).link({**vars(last), "comment": "伪造", "kind": "commented"})
    with wf.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO appeal_events (appeal_id, version, kind, actor_id, at, trigger, from_state, to_state, "
                "comment, payload, seq, prev_hash, hash, recorded_at) SELECT appeal_id, version, 'commented', "
                "actor_id, at, trigger, from_state, to_state, '伪造', payload, :seq, :prev, :hash, recorded_at "
                "FROM appeal_events WHERE id = :id"
            ),
            {"seq": link["seq"], "prev": link["prev_hash"], "hash": link["hash"], "id": last.id},
        )
    assert problems(audit.verify(wf, number=second)) == [("forged_event", second, 4)]


def test_a_row_changed_without_an_event_is_found_by_replaying_the_trail(walked: tuple[Workflow, list[str]]) -> None:
    wf, (first, _) = walked
    with wf.engine.begin() as conn:
        conn.execute(
            text("UPDATE appeals SET state = 'closed', is_open = :f WHERE number = :n"), {"f": False, "n": first}
        )
    report = audit.verify(wf)
    assert problems(report) == [("row_changed_without_event", first, 5)]
    assert "state 'closed'" in report.problems[0].message and "events say 'pre_check'" in report.problems[0].message


def test_a_history_rewritten_consistently_passes_its_chains_but_not_the_seal(
    walked: tuple[Workflow, list[str]], tmp_path: Path
) -> None:
    wf, (first, _) = walked
    seal_file = tmp_path / "seal.json"
    sealed = audit.seal(wf, out=seal_file)
    assert json.loads(seal_file.read_text())["heads"][first] == [5, wf.record(first).audit_head]
    assert problems(audit.verify(wf, sealed=audit.read_seal(seal_file))) == []
    # Rewrite the first appeal from its first event on, every hash recomputed and the row's head moved.
    head = ChainHead(first)
    statements = []
    for event in chain_of(wf, first):
        content = {**vars(event), "comment": "企业自行撤回" if event.seq == 2 else event.comment}
        link = head.link(content)
        comment = "NULL" if content["comment"] is None else f"'{content['comment']}'"
        statements.append(
            f"UPDATE appeal_events SET comment = {comment}, prev_hash = {_sql(link['prev_hash'])}, "
            f"hash = '{link['hash']}' WHERE id = {event.id}"
        )
        head = ChainHead(first, link["seq"], link["hash"])
    statements.append(f"UPDATE appeals SET audit_head = '{head.hash}' WHERE number = '{first}'")
    tamper(wf.engine, *statements)
    assert problems(audit.verify(wf)) == [], "a consistent rewrite passes the chains: only a seal can tell"
    report = audit.verify(wf, sealed=audit.read_seal(seal_file))
    assert problems(report) == [("seal_mismatch", first, 5)]
    assert sealed.digest == report.sealed["seal"]  # type: ignore[index]


def _sql(value: str | None) -> str:
    return "NULL" if value is None else f"'{value}'"


def test_a_seal_file_edited_to_match_a_rewrite_is_refused_by_its_own_digest(
    walked: tuple[Workflow, list[str]], tmp_path: Path
) -> None:
    wf, (first, _) = walked
    seal_file = tmp_path / "seal.json"
    audit.seal(wf, out=seal_file)
    document = json.loads(seal_file.read_text())
    document["heads"][first][1] = "f" * 64
    seal_file.write_text(json.dumps(document))
    found = problems(audit.verify(wf, sealed=audit.read_seal(seal_file)))
    assert ("seal_mismatch", None, None) in found and ("seal_mismatch", first, 5) in found


def test_a_change_read_before_a_comment_is_linked_after_it(walked: tuple[Workflow, list[str]]) -> None:
    """Comments do not move the version, so a change that read the appeal before a comment committed still
    goes through; it must link to the comment, not fork the chain."""
    wf, (_, second) = walked
    stale = wf.record(second)
    wf.comment(second, "补充说明", as_user="staff-b01")
    with UnitOfWork(wf.engine) as uow:
        values = {**unchanged_columns(stale), "assignee_id": None}
        _write(uow, stale, wf.clock.now(), values, _assign_event(stale.assignee_id))
        uow.commit()
    chain = chain_of(wf, second)
    assert [e.kind for e in chain] == ["submitted", "fired", "fired", "commented", "assigned"]
    assert problems(audit.verify(wf)) == []


def test_a_comment_read_before_a_change_is_linked_after_it(walked: tuple[Workflow, list[str]]) -> None:
    wf, (_, second) = walked
    stale = wf.record(second)
    wf.fire(second, "file_application", as_user="specialist-b01", data={"materials_complete": True})
    with UnitOfWork(wf.engine) as uow:
        comment = {
            "appeal_id": stale.id, "version": stale.version, "kind": "commented", "actor_id": None,
            "at": wf.clock.now(), "trigger": None, "from_state": stale.state, "to_state": None,
            "comment": "迟到的备注", "payload": {},
        }  # fmt: skip
        uow.repo.append_event(comment, ChainHead(second, stale.audit_seq, stale.audit_head))
        uow.commit()
    assert [(e.seq, e.kind) for e in chain_of(wf, second)][-2:] == [(4, "fired"), (5, "commented")]
    assert problems(audit.verify(wf)) == []


def test_numbers_hash_alike_however_the_database_writes_them_back(walked: tuple[Workflow, list[str]]) -> None:
    """PostgreSQL's JSONB hands 1e20 back as 100000000000000000000 and 2.50 as 2.5: the chain must not care."""
    wf, (_, second) = walked
    record = wf.record(second)
    numbers = {"big": 1e20, "whole": 500.0, "half": 2.5, "list": [1.0, -0.25, 12345678901234567890], "tiny": 1e-7}
    with UnitOfWork(wf.engine) as uow:
        event = {
            "appeal_id": record.id, "version": record.version, "kind": "commented", "actor_id": None,
            "at": wf.clock.now(), "trigger": None, "from_state": record.state, "to_state": None,
            "comment": "金额", "payload": numbers,
        }  # fmt: skip
        uow.repo.append_event(event, ChainHead(second, record.audit_seq, record.audit_head))
        uow.commit()
    assert problems(audit.verify(wf)) == []
    assert dict(chain_of(wf, second)[-1].payload)["half"] == 2.5


def _assign_event(previous: int | None) -> dict[str, object]:
    return {
        "kind": "assigned", "actor_id": None, "trigger": "assign", "from_state": "collecting_materials",
        "to_state": "collecting_materials", "comment": None,
        "payload": {"assignee_id": None, "previous_assignee_id": previous},
    }  # fmt: skip


def test_the_trail_cannot_be_emptied_and_truncate_is_refused_on_postgresql(
    walked: tuple[Workflow, list[str]],
) -> None:
    wf, _ = walked
    if wf.engine.dialect.name == "sqlite":  # SQLite has no TRUNCATE; its DELETE is what empties a table
        statements = ["DELETE FROM appeal_events", "DELETE FROM audit_seals"]
    else:
        statements = ["TRUNCATE appeal_events", "TRUNCATE audit_seals", "TRUNCATE appeal_events CASCADE"]
    audit.seal(wf)
    for statement in statements:
        with wf.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))
    assert audit.verify(wf).events == 8


def test_audit_verify_on_the_command_line_exits_0_when_clean_and_1_listing_each_problem(
    walked: tuple[Workflow, list[str]], db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wf, (first, _) = walked
    seal_file = tmp_path / "seal.json"
    assert main(["--db", db_url, "audit", "seal", "--out", str(seal_file), "--json"]) == 0
    made = json.loads(capsys.readouterr().out)
    assert (made["appeals"], made["events"], made["file"]) == (2, 8, str(seal_file))
    assert main(["--db", db_url, "audit", "verify", "--seal", str(seal_file)]) == 0
    assert capsys.readouterr().out.endswith(
        f"2 appeals, 8 events verified, checked against seal {made['seal'][:12]}: clean\n"
    )
    tamper(wf.engine, f"UPDATE appeal_events SET comment = '同意' WHERE id = {event_id(wf.engine, first, 2)}")
    assert main(["--db", db_url, "audit", "verify", "--appeal", first, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and (report["appeals"], report["events"]) == (1, 5)
    assert [(p["problem"], p["appeal"], p["seq"]) for p in report["problems"]] == [("altered_event", first, 2)]
    assert main(["--db", db_url, "audit", "verify"]) == 1
    assert capsys.readouterr().out.startswith(f"{first} seq 2: altered_event: its content no longer matches its hash")
    assert main(["--db", db_url, "audit", "seal", "--out", str(seal_file)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["--db", db_url, "audit", "verify", "--appeal", "OE-2026-999999"]) == 1
    assert "OE-2026-999999" in capsys.readouterr().err
