"""Reads of the audit trail for verifying and sealing it, and the seals table; dialect differences live here.

Verifying reads every event, so the events come straight from the driver (as the hot path writes them)
rather than through SQLAlchemy's result processing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from workflow.domain.appeal import EventRecord
from workflow.persistence.tables import Appeal, AuditSeal, table_of

appeals = table_of(Appeal)
seals = table_of(AuditSeal)

_EVENTS = """
SELECT id, appeal_id, version, kind, actor_id, at, trigger, from_state, to_state, comment, payload,
       seq, prev_hash, hash, recorded_at
FROM appeal_events WHERE appeal_id >= {first} AND appeal_id <= {last}
ORDER BY appeal_id, seq, id
"""


@dataclass(frozen=True)
class AppealRow:
    """What verifying compares with the replayed trail, and where the row says the chain ends."""

    id: int
    number: str
    definition_id: int
    state: str
    level: str
    unit_id: int
    assignee_id: int | None
    version: int
    is_open: bool
    audit_seq: int
    audit_head: str | None


_APPEAL_ROW = select(
    appeals.c.id,
    appeals.c.number,
    appeals.c.definition_id,
    appeals.c.state,
    appeals.c.level,
    appeals.c.unit_id,
    appeals.c.assignee_id,
    appeals.c.version,
    appeals.c.is_open,
    appeals.c.audit_seq,
    appeals.c.audit_head,
)


class AuditStore:
    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.sqlite = connection.dialect.name == "sqlite"

    def snapshot(self) -> None:
        """Every later read in this transaction sees one moment: a chain never looks longer than its head
        because a writer committed between two reads. (SQLite's read transaction already is a snapshot.)"""
        if not self.sqlite:
            self.connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))

    def appeals_after(self, after_id: int, limit: int, number: str | None = None) -> list[AppealRow]:
        query = _APPEAL_ROW.where(appeals.c.id > after_id).order_by(appeals.c.id).limit(limit)
        if number is not None:
            query = query.where(appeals.c.number == number)
        return [AppealRow(**row._mapping) for row in self.connection.execute(query)]

    def events_of(self, first_id: int, last_id: int) -> list[EventRecord]:
        """The events of appeals first_id..last_id, in chain order."""
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(_EVENTS.format(first=int(first_id), last=int(last_id)))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        return [self._event(row) for row in rows]

    def _event(self, row: Any) -> EventRecord:
        at, payload = row[5], row[10]
        if isinstance(at, str):  # SQLite: naive UTC text, as written
            at = datetime.fromisoformat(at)
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
        recorded_at = row[14]
        if recorded_at == row[5]:  # written when it took effect (all but catch-up events): parsed once
            recorded_at = at
        elif recorded_at is not None:
            if isinstance(recorded_at, str):
                recorded_at = datetime.fromisoformat(recorded_at)
            recorded_at = recorded_at.replace(tzinfo=UTC) if recorded_at.tzinfo is None else recorded_at.astimezone(UTC)
        if isinstance(payload, str | bytes):
            payload = json.loads(payload)
        return EventRecord(
            id=row[0],
            appeal_id=row[1],
            version=row[2],
            kind=row[3],
            actor_id=row[4],
            at=at,
            trigger=row[6],
            from_state=row[7],
            to_state=row[8],
            comment=row[9],
            payload=payload,
            seq=row[11] if row[11] is not None else 0,
            prev_hash=row[12],
            hash=row[13] or "",
            recorded_at=recorded_at,
        )

    def heads(self) -> list[tuple[str, int, str | None]]:
        """Every appeal's chain head as its row records it: (number, seq, hash), by number."""
        query = select(appeals.c.number, appeals.c.audit_seq, appeals.c.audit_head).order_by(appeals.c.number)
        return [(row[0], int(row[1]), row[2]) for row in self.connection.execute(query)]

    def add_seal(self, sealed_at: datetime, appeal_count: int, event_count: int, digest: str) -> int:
        result = self.connection.execute(
            insert(seals).returning(seals.c.id),
            {"sealed_at": sealed_at, "appeal_count": appeal_count, "event_count": event_count, "digest": digest},
        )
        return int(result.scalar_one())

    def seal_recorded(self, digest: str) -> bool:
        query = select(func.count()).select_from(seals).where(seals.c.digest == digest)
        return int(self.connection.execute(query).scalar_one()) > 0
