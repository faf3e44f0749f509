"""The statements every state change runs, sent straight to the driver.

SQLAlchemy Core costs about 60 us per statement here, against 5-10 us for the driver itself, and a
state change needs three of them. So the fire path (load actor and appeal in one query, the
compare-and-set UPDATE, the audit INSERT) speaks the driver's own dialect, inside the transaction the
unit of work opened. Everything else goes through the repository's Core statements.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from workflow.domain.appeal import Actor, AppealRecord
from workflow.domain.audit_chain import ChainHead

_LOAD_FOR_CHANGE = """
SELECT u.id, u.username, u.display_name, u.role, u.unit_id,
       CASE WHEN un.kind = 'department' THEN p.path ELSE un.path END,
       u.enterprise_id, u.locale,
       a.id, a.number, a.type, a.definition_id, a.state, a.level, a.unit_id, a.enterprise_id, a.assignee_id,
       a.submitted_by_id, a.channel, a.data, a.version, a.is_open, a.created_at, a.updated_at, a.closed_at,
       b.path, e.specialist_id,
       a.clock, a.state_entered_at, a.state_due_at, a.state_at_risk_at, a.overall_used_s, a.overall_running_since,
       a.overall_due_at, a.overall_at_risk_at, a.breached_at, a.provisional, a.first_response_at, a.decided_at,
       a.audit_seq, a.audit_head
FROM users u
JOIN units un ON un.id = u.unit_id
LEFT JOIN units p ON p.id = un.parent_id
LEFT JOIN appeals a ON a.number = :number
LEFT JOIN enterprises e ON e.id = a.enterprise_id
LEFT JOIN units b ON b.id = e.building_id
WHERE u.username = :username AND u.active = :true
"""

_UPDATE_APPEAL = """
UPDATE appeals SET state = :state, level = :level, unit_id = :unit_id, assignee_id = :assignee_id, data = :data,
       version = :version, is_open = :is_open, updated_at = :updated_at, closed_at = :closed_at,
       clock = :clock, state_entered_at = :state_entered_at, state_due_at = :state_due_at,
       state_at_risk_at = :state_at_risk_at, overall_used_s = :overall_used_s,
       overall_running_since = :overall_running_since, overall_due_at = :overall_due_at,
       overall_at_risk_at = :overall_at_risk_at, due_at = :due_at, at_risk_at = :at_risk_at,
       breached_at = :breached_at, provisional = :provisional, first_response_at = :first_response_at,
       first_response_s = COALESCE(:first_response_s, first_response_s), decided_at = :decided_at,
       decision_s = COALESCE(:decision_s, decision_s), audit_seq = :seq, audit_head = :hash
WHERE id = :appeal_id AND version = :expected_version AND audit_seq = :expected_seq
"""

_INSERT_EVENT = """
INSERT INTO appeal_events (appeal_id, version, kind, actor_id, at, trigger, from_state, to_state, comment, payload,
                           seq, prev_hash, hash, recorded_at)
VALUES (:appeal_id, :version, :kind, :actor_id, :at, :trigger, :from_state, :to_state, :comment, :payload,
        :seq, :prev_hash, :hash, :recorded_at)
"""

# An event that does not change the appeal (a submission's first, a comment) still moves its chain head;
# the compare-and-set on audit_seq keeps two writers from linking to the same head.
_MOVE_HEAD = """
UPDATE appeals SET audit_seq = :seq, audit_head = :hash WHERE id = :appeal_id AND audit_seq = :expected_seq
"""

_READ_HEAD = "SELECT version, audit_seq, audit_head FROM appeals WHERE id = :appeal_id"


# PostgreSQL: the compare-and-set and the audit row in one round trip; no row inserted means the
# version had moved on.
_UPDATE_AND_LOG = """
WITH changed AS (
  UPDATE appeals SET state = :state, level = :level, unit_id = :unit_id, assignee_id = :assignee_id, data = :data,
       version = :version, is_open = :is_open, updated_at = :updated_at, closed_at = :closed_at,
       clock = :clock, state_entered_at = :state_entered_at, state_due_at = :state_due_at,
       state_at_risk_at = :state_at_risk_at, overall_used_s = :overall_used_s,
       overall_running_since = :overall_running_since, overall_due_at = :overall_due_at,
       overall_at_risk_at = :overall_at_risk_at, due_at = :due_at, at_risk_at = :at_risk_at,
       breached_at = :breached_at, provisional = :provisional, first_response_at = :first_response_at,
       first_response_s = COALESCE(:first_response_s, first_response_s), decided_at = :decided_at,
       decision_s = COALESCE(:decision_s, decision_s), audit_seq = :seq, audit_head = :hash
  WHERE id = :appeal_id AND version = :expected_version AND audit_seq = :expected_seq
  RETURNING id
), cancelled AS (
  UPDATE timers SET status = 'cancelled'
  WHERE appeal_id IN (SELECT id FROM changed) AND status IN ('pending', 'claimed')
    AND ((clock = 'state' AND :cancel_state) OR (clock = 'overall' AND :cancel_overall))
)
INSERT INTO appeal_events (appeal_id, version, kind, actor_id, at, trigger, from_state, to_state, comment, payload,
                           seq, prev_hash, hash, recorded_at)
SELECT id, :version, :kind, :actor_id, :event_at, :trigger, :from_state, :to_state, :comment, :payload,
       :seq, :prev_hash, :hash, :updated_at FROM changed
"""


_CANCEL_TIMERS = """
UPDATE timers SET status = 'cancelled'
WHERE appeal_id = :appeal_id AND status IN ('pending', 'claimed')
  AND ((clock = 'state' AND :cancel_state) OR (clock = 'overall' AND :cancel_overall))
"""

_INSERT_TIMER = """
INSERT INTO timers (appeal_id, clock, threshold, due_at, status, attempts, created_at)
VALUES (:appeal_id, :clock, :threshold, :due_at, 'pending', 0, :created_at)
"""


def _pyformat(sql: str) -> str:
    return re.sub(r":(\w+)", r"%(\1)s", sql)


# Column order of _LOAD_FOR_CHANGE: the actor, then the appeal as AppealRecord names its fields.
_ACTOR_FIELDS = ("id", "username", "display_name", "role", "unit_id", "scope_path", "enterprise_id", "locale")
_APPEAL_FIELDS = (
    "id",
    "number",
    "type",
    "definition_id",
    "state",
    "level",
    "unit_id",
    "enterprise_id",
    "assignee_id",
    "submitted_by_id",
    "channel",
    "data",
    "version",
    "is_open",
    "created_at",
    "updated_at",
    "closed_at",
    "building_path",
    "specialist_id",
    "clock",
    "state_entered_at",
    "state_due_at",
    "state_at_risk_at",
    "overall_used_s",
    "overall_running_since",
    "overall_due_at",
    "overall_at_risk_at",
    "breached_at",
    "provisional",
    "first_response_at",
    "decided_at",
    "audit_seq",
    "audit_head",
)
_APPEAL_WHEN_FIELDS = tuple(f for f in _APPEAL_FIELDS if f.endswith("_at") or f == "overall_running_since")

_WHEN_COLUMNS = (
    "updated_at",
    "closed_at",
    "state_entered_at",
    "state_due_at",
    "state_at_risk_at",
    "overall_running_since",
    "overall_due_at",
    "overall_at_risk_at",
    "due_at",
    "at_risk_at",
    "breached_at",
    "first_response_at",
    "decided_at",
)


class HotPath:
    """Driver-level statements for one dialect ("sqlite" or "postgresql")."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"
        convert = (lambda s: s) if self.sqlite else _pyformat
        self.load_sql = convert(_LOAD_FOR_CHANGE)
        self.update_sql = convert(_UPDATE_APPEAL)
        self.insert_sql = convert(_INSERT_EVENT)
        self.cancel_sql = convert(_CANCEL_TIMERS)
        self.timer_sql = convert(_INSERT_TIMER)
        self.update_and_log_sql = None if self.sqlite else _pyformat(_UPDATE_AND_LOG)
        self.move_head_sql = convert(_MOVE_HEAD)
        self.read_head_sql = convert(_READ_HEAD)
        if not self.sqlite:
            from psycopg.types.json import Jsonb

            self._jsonb = Jsonb

    # SQLAlchemy stores SQLite datetimes as naive UTC text and JSON as text; match it exactly.
    def when(self, moment: datetime | None) -> Any:
        if moment is None or not self.sqlite:
            return moment
        return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")

    def document(self, value: Mapping[str, Any]) -> Any:
        return json.dumps(value) if self.sqlite else self._jsonb(dict(value))

    def _read_when(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    def load_for_change(self, driver: Any, number: str, username: str) -> tuple[Actor | None, AppealRecord | None]:
        cursor = driver.cursor()
        cursor.execute(self.load_sql, {"number": number, "username": username, "true": True})
        row = cursor.fetchone()
        cursor.close()
        if row is None:
            return None, None
        actor = Actor(*row[: len(_ACTOR_FIELDS)])
        values = dict(zip(_APPEAL_FIELDS, row[len(_ACTOR_FIELDS) :], strict=True))
        if values["id"] is None:
            return actor, None
        if isinstance(values["data"], str):
            values["data"] = json.loads(values["data"])
        for key in _APPEAL_WHEN_FIELDS:
            values[key] = self._read_when(values[key])
        values["is_open"], values["provisional"] = bool(values["is_open"]), bool(values["provisional"])
        return actor, AppealRecord(**values)

    def _change_values(self, change: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(change)
        values["data"] = self.document(values["data"])
        for key in _WHEN_COLUMNS:
            values[key] = self.when(values[key])
        return values

    def change_and_log(
        self,
        driver: Any,
        change: Mapping[str, Any],
        event: Mapping[str, Any],
        chain: ChainHead,
        cancel: tuple[bool, bool] = (False, False),
        timers: list[Mapping[str, Any]] = (),  # type: ignore[assignment]
    ) -> bool:
        """The compare-and-set, its audit event linked to the chain, cancelled and new timers; False (nothing
        written) if the version moved on. A comment that moved only the chain head meanwhile is linked after."""
        cancel_state, cancel_overall = cancel
        # `at` is when the fact took effect (a breach found late: its due instant), `recorded_at` when written.
        event = {
            **event,
            "appeal_id": change["appeal_id"],
            "version": change["version"],
            "at": event.get("at") or change["updated_at"],
            "recorded_at": change["updated_at"],
        }
        while True:
            link = chain.link(event)
            if self._change_and_log_once(driver, change, link, chain, cancel_state, cancel_overall):
                break
            version, seq, head = self._read_head(driver, change["appeal_id"])
            if version != change["expected_version"] or seq == chain.seq:
                return False
            chain = chain.moved_to(seq, head)
        if timers:
            self.insert_timers(driver, change["appeal_id"], change["updated_at"], timers)
        return True

    def _change_and_log_once(
        self,
        driver: Any,
        change: Mapping[str, Any],
        event: Mapping[str, Any],
        chain: ChainHead,
        cancel_state: bool,
        cancel_overall: bool,
    ) -> bool:
        values = self._change_values(change)
        values.update(expected_seq=chain.seq, seq=event["seq"], hash=event["hash"])
        cursor = driver.cursor()
        try:
            if self.update_and_log_sql is None:
                cursor.execute(self.update_sql, values)
                if cursor.rowcount != 1:
                    return False
                self._insert_event(cursor, event)
                if cancel_state or cancel_overall:
                    cursor.execute(
                        self.cancel_sql,
                        {
                            "appeal_id": change["appeal_id"],
                            "cancel_state": cancel_state,
                            "cancel_overall": cancel_overall,
                        },
                    )
                return True
            values.update({k: v for k, v in event.items() if k not in ("appeal_id", "version", "at", "recorded_at")})
            values["event_at"] = self.when(event["at"])
            values["payload"] = self.document(values["payload"])
            values.update(cancel_state=cancel_state, cancel_overall=cancel_overall)
            cursor.execute(self.update_and_log_sql, values)
            return bool(cursor.rowcount == 1)
        finally:
            cursor.close()

    def append_event(self, driver: Any, event: Mapping[str, Any], chain: ChainHead) -> None:
        """An event that leaves the appeal row as it is (a submission's first, a comment): the chain head
        moves with a compare-and-set of its own, retried after whatever moved it meanwhile."""
        event = {**event, "recorded_at": event.get("recorded_at") or event["at"]}  # hashed as it is stored
        cursor = driver.cursor()
        try:
            while True:
                link = chain.link(event)
                cursor.execute(
                    self.move_head_sql,
                    {
                        "appeal_id": event["appeal_id"],
                        "expected_seq": chain.seq,
                        "seq": link["seq"],
                        "hash": link["hash"],
                    },
                )
                if cursor.rowcount == 1:
                    self._insert_event(cursor, link)
                    return
                _version, seq, head = self._read_head(driver, event["appeal_id"])
                chain = chain.moved_to(seq, head)
        finally:
            cursor.close()

    def _read_head(self, driver: Any, appeal_id: int) -> tuple[int, int, str | None]:
        cursor = driver.cursor()
        try:
            cursor.execute(self.read_head_sql, {"appeal_id": appeal_id})
            version, seq, head = cursor.fetchone()
            return int(version), int(seq), head
        finally:
            cursor.close()

    def insert_timers(self, driver: Any, appeal_id: int, now: datetime, timers: list[Mapping[str, Any]]) -> None:
        rows = [
            {
                "appeal_id": appeal_id,
                "clock": t["clock"],
                "threshold": t["threshold"],
                "due_at": self.when(t["due_at"]),
                "created_at": self.when(now),
            }
            for t in timers
        ]
        cursor = driver.cursor()
        cursor.executemany(self.timer_sql, rows)
        cursor.close()

    def _insert_event(self, cursor: Any, params: Mapping[str, Any]) -> None:
        values = dict(params)
        values["payload"] = self.document(values["payload"])
        values["at"] = self.when(values["at"])
        # `at` is when the fact took effect; recorded_at when it was written (the same unless a sweep catches up).
        values["recorded_at"] = self.when(params.get("recorded_at") or params["at"])
        cursor.execute(self.insert_sql, values)
