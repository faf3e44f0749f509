"""Verifying and sealing the audit trail: `appeals audit verify` and `appeals audit seal`.

Verify walks every appeal's hash chain (workflow.domain.audit_chain), replays its events and compares the
result with the stored row, and lists each problem with the appeal's number and the event's place (seq):

- altered_event: an event's content no longer matches its hash, or its hash no longer matches the link
  the next event (or the appeal's chain head) recorded;
- missing_event: a place in the chain, or a version, with no event;
- forged_event: an event with no place in the chain, a second event at one place, or one beyond the
  chain head the appeal row records;
- row_changed_without_event: replaying the events does not give the row's state, level, unit, assignee,
  version;
- seal_mismatch: a chain no longer passes through the head a seal recorded (a history rewritten from the
  start), or the seal itself is not what was sealed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from workflow.domain.appeal import EventKind, EventRecord, replay
from workflow.domain.audit_chain import SEAL_FORMAT, event_hash, seal_digest
from workflow.errors import AppealNotFound, InvalidInput
from workflow.persistence.audit_store import AppealRow, AuditStore
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.workflow import Workflow

log = logging.getLogger(__name__)
BATCH = 500  # appeals read per round trip

ALTERED, MISSING, FORGED = "altered_event", "missing_event", "forged_event"
ROW_CHANGED, SEAL_MISMATCH = "row_changed_without_event", "seal_mismatch"


@dataclass(frozen=True)
class Problem:
    problem: str
    appeal: str | None  # the appeal's number; None for a problem with the seal as a whole
    seq: int | None  # the event's place in the appeal's chain
    message: str

    def __str__(self) -> str:
        where = " ".join(part for part in (self.appeal, f"seq {self.seq}" if self.seq is not None else None) if part)
        return f"{where or 'seal'}: {self.problem}: {self.message}"


@dataclass
class VerifyReport:
    appeals: int = 0
    events: int = 0
    seconds: float = 0.0
    sealed: dict[str, Any] | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "appeals": self.appeals,
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds) if self.seconds else None,
            "seal": self.sealed,
            "problems": [asdict(p) for p in self.problems],
        }


@dataclass(frozen=True)
class Seal:
    """Every chain's head at one moment, with a digest over them: kept outside the database, it shows a
    history rewritten consistently from the start."""

    sealed_at: datetime
    heads: dict[str, tuple[int, str]]
    digest: str
    events: int

    def as_document(self) -> dict[str, Any]:
        return {
            "format": SEAL_FORMAT,
            "sealed_at": self.sealed_at.isoformat(),
            "appeals": len(self.heads),
            "events": self.events,
            "heads": {number: [seq, head] for number, (seq, head) in self.heads.items()},
            "seal": self.digest,
        }


def seal(wf: Workflow, *, out: Path | None = None) -> Seal:
    """Record the heads of all chains (as the appeal rows hold them) and, with `out`, write them to a file
    to keep elsewhere. The file is written before the record commits: a seal on record always has its file."""
    if out is not None and out.exists():
        raise InvalidInput(f"{out} already exists; a seal file is never overwritten, name a new one")
    with UnitOfWork(wf.engine) as uow:
        store = AuditStore(uow.connection)
        heads = {number: (seq, head or "") for number, seq, head in store.heads()}
        sealed_at = wf.clock.now()
        events = sum(seq for seq, _ in heads.values())
        made = Seal(sealed_at, heads, seal_digest(sealed_at, heads), events)
        if out is not None:
            _write_new(out, json.dumps(made.as_document(), ensure_ascii=False, indent=1) + "\n")
        store.add_seal(sealed_at, len(heads), events, made.digest)
        uow.commit()
    log.info("audit sealed: %d appeals, %d events, seal %s", len(heads), events, made.digest)
    return made


def _write_new(path: Path, content: str) -> None:
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(content)
    except OSError as exc:
        raise InvalidInput(f"cannot write the seal to {path}: {exc.strerror}") from None


def read_seal(path: Path) -> Seal:
    """A seal file as `seal --out` wrote it; refuses anything else, naming what is wrong."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInput(f"cannot read the seal file {path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"the seal file {path} is not JSON ({exc})") from None
    try:
        if document["format"] != SEAL_FORMAT:
            raise InvalidInput(f"the seal file {path} has format {document['format']!r}; expected {SEAL_FORMAT!r}")
        sealed_at = datetime.fromisoformat(document["sealed_at"])
        heads = {str(number): (int(seq), str(head)) for number, (seq, head) in document["heads"].items()}
        return Seal(sealed_at, heads, str(document["seal"]), int(document["events"]))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InvalidInput(
            f"the seal file {path} is not a seal written by `appeals audit seal --out` ({type(exc).__name__}: {exc})"
        ) from None


def verify(wf: Workflow, *, number: str | None = None, sealed: Seal | None = None) -> VerifyReport:
    """Check every chain (or one appeal's), replay each appeal against its row, and check `sealed`'s heads."""
    report = VerifyReport()
    started = time.perf_counter()
    seen: set[str] = set()
    terminals: dict[int, frozenset[str]] = {}
    with UnitOfWork(wf.engine, read_only=True) as uow:
        store = AuditStore(uow.connection)
        store.snapshot()
        after = 0
        while True:
            rows = store.appeals_after(after, BATCH, number)
            if not rows:
                break
            after = rows[-1].id
            events = store.events_of(rows[0].id, rows[-1].id)
            by_appeal: dict[int, list[EventRecord]] = {row.id: [] for row in rows}
            for event in events:
                by_appeal[event.appeal_id].append(event)
            for row in rows:
                terminal = terminals.get(row.definition_id)
                if terminal is None:
                    terminal = terminals[row.definition_id] = _terminal_states(wf, uow, row.definition_id)
                chain = by_appeal[row.id]
                report.problems.extend(check_appeal(row, chain, terminal))
                if sealed is not None and row.number in sealed.heads:
                    report.problems.extend(_check_sealed_head(row.number, chain, sealed.heads[row.number]))
                seen.add(row.number)
            report.appeals += len(rows)
            report.events += len(events)
        if number is not None and not seen:
            raise AppealNotFound(number)
        if sealed is not None:
            report.problems.extend(_check_seal(store, sealed, seen, number))
            report.sealed = {"sealed_at": sealed.sealed_at.isoformat(), "seal": sealed.digest}
    report.seconds = time.perf_counter() - started
    level = logging.INFO if report.ok else logging.WARNING
    log.log(
        level, "audit verify: %d appeals, %d events, %d problems", report.appeals, report.events, len(report.problems)
    )
    return report


def _terminal_states(wf: Workflow, uow: UnitOfWork, definition_id: int) -> frozenset[str]:
    spec = wf.registry.get(uow, definition_id).spec
    return frozenset(name for name, state in spec.states.items() if state.terminal)


def check_appeal(row: AppealRow, events: Sequence[EventRecord], terminal: Iterable[str]) -> list[Problem]:
    """Everything wrong with one appeal's chain and its row; `events` in chain order (seq, then id)."""
    problems: list[Problem] = []

    def add(kind: str, seq: int | None, message: str) -> None:
        problems.append(Problem(kind, row.number, seq, message))

    linked: list[EventRecord] = []  # the chain as it stands, one event per place, up to the row's head
    prev: EventRecord | None = None
    for event in events:
        if event.seq < 1 or not event.hash:
            add(FORGED, None, f"event id {event.id} has no place in the chain (seq {event.seq}, hash {event.hash!r})")
            continue
        if prev is not None and event.seq == prev.seq:
            add(FORGED, event.seq, f"a second event at seq {event.seq} (event ids {prev.id} and {event.id})")
            continue
        recomputed = event_hash(event.prev_hash, {**vars(event), "appeal": row.number})
        if recomputed != event.hash:
            add(ALTERED, event.seq, f"its content no longer matches its hash (event id {event.id}, {event.kind})")
        expected_seq = prev.seq + 1 if prev is not None else 1
        if event.seq > expected_seq:
            for gone in range(expected_seq, event.seq):
                add(MISSING, gone, f"no event at seq {gone}; the next event links to {_short(event.prev_hash)}")
        elif prev is not None and event.prev_hash != prev.hash:
            add(
                ALTERED,
                prev.seq,
                f"its hash {_short(prev.hash)} is not the {_short(event.prev_hash)} that seq {event.seq} was "
                "linked to: it was rewritten after (or the next event was forged)",
            )
        elif prev is None and event.prev_hash is not None:
            add(ALTERED, 1, "the first event links to an earlier one")
        if event.seq > row.audit_seq:
            add(FORGED, event.seq, f"beyond the chain head the appeal records (seq {row.audit_seq})")
        else:
            linked.append(event)
        prev = event
    last = linked[-1] if linked else None
    if last is None or last.seq < row.audit_seq:
        for gone in range((last.seq + 1) if last else 1, row.audit_seq + 1):
            add(MISSING, gone, f"the appeal records {row.audit_seq} events, there is none at seq {gone}")
    elif last.hash != row.audit_head:
        add(ALTERED, last.seq, f"its hash differs from the chain head the appeal records ({_short(row.audit_head)})")
    problems.extend(_check_versions(row, linked))
    problems.extend(_check_replay(row, linked, terminal))
    return problems


def _check_versions(row: AppealRow, chain: Sequence[EventRecord]) -> list[Problem]:
    """Every change moves the version by one; a comment keeps it. (Across a missing place of the chain the
    jump is already explained.)"""
    problems = []
    version, seq = 0, 0
    for event in chain:
        after_gap, seq = event.seq != seq + 1, event.seq
        if event.kind == EventKind.COMMENTED:
            continue
        if event.version != version + 1 and not after_gap:
            problems.append(
                Problem(MISSING, row.number, event.seq, f"the version goes from {version} to {event.version} here")
            )
        version = event.version
    return problems


def _check_replay(row: AppealRow, chain: Sequence[EventRecord], terminal: Iterable[str]) -> list[Problem]:
    replayed = replay(chain, terminal)
    stored = {"state": row.state, "level": row.level, "unit_id": row.unit_id, "assignee_id": row.assignee_id}
    stored |= {"version": row.version, "is_open": row.is_open}
    differs = [
        f"{name} {value!r} (events say {getattr(replayed, name)!r})"
        for name, value in stored.items()
        if getattr(replayed, name) != value
    ]
    if not differs:
        return []
    seq = chain[-1].seq if chain else None
    return [Problem(ROW_CHANGED, row.number, seq, "the row has " + ", ".join(differs))]


def _check_sealed_head(number: str, chain: Sequence[EventRecord], head: tuple[int, str]) -> list[Problem]:
    seq, sealed_hash = head
    at = [event for event in chain if event.seq == seq]
    if not at:
        return [Problem(SEAL_MISMATCH, number, seq, f"the seal recorded seq {seq}; the chain has no event there")]
    if all(event.hash != sealed_hash for event in at):
        return [
            Problem(
                SEAL_MISMATCH,
                number,
                seq,
                f"the event here ({_short(at[0].hash)}) is not the one sealed ({_short(sealed_hash)}): "
                "the history was rewritten since the seal",
            )
        ]
    return []


def _check_seal(store: AuditStore, sealed: Seal, seen: set[str], number: str | None) -> list[Problem]:
    problems = []
    if seal_digest(sealed.sealed_at, sealed.heads) != sealed.digest:
        problems.append(Problem(SEAL_MISMATCH, None, None, "the seal file's heads do not match its own digest"))
    elif not store.seal_recorded(sealed.digest):
        problems.append(
            Problem(SEAL_MISMATCH, None, None, f"seal {_short(sealed.digest)} is not recorded in this database's seals")
        )
    wanted = [number] if number is not None else sealed.heads
    for gone in sorted(n for n in wanted if n in sealed.heads and n not in seen):
        problems.append(Problem(SEAL_MISMATCH, gone, sealed.heads[gone][0], "sealed, but the appeal is gone"))
    return problems


def _short(digest: str | None) -> str:
    return "nothing" if not digest else digest[:12]
