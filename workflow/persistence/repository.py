"""Reads and writes of the engine's rows, as SQLAlchemy Core statements built once (the hot path)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import (
    Connection,
    Dialect,
    Row,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.compiler import SQLCompiler

from workflow.domain.appeal import Actor, AppealRecord, EventRecord
from workflow.domain.audit_chain import ChainHead
from workflow.domain.sla import BREACH as BREACH_THRESHOLD
from workflow.persistence.hot_path import HotPath
from workflow.persistence.tables import (
    Appeal,
    AppealEvent,
    Breach,
    DefinitionVersion,
    Enterprise,
    Notice,
    NumberSequence,
    Timer,
    Unit,
    User,
    table_of,
)

appeals = table_of(Appeal)
events = table_of(AppealEvent)
users = table_of(User)
units = table_of(Unit)
enterprises = table_of(Enterprise)
definition_versions = table_of(DefinitionVersion)
number_sequences = table_of(NumberSequence)
notices = table_of(Notice)
timers = table_of(Timer)
breaches = table_of(Breach)

# Written `is_open = 1` on SQLite, which is what its partial indexes on open appeals are declared with.
IS_OPEN = appeals.c.is_open == True  # noqa: E712
# Literal statuses, as in ix_timers_due's predicate: with bound parameters SQLite scans every timer.
LIVE_TIMER = timers.c.status.in_([literal_column("'pending'"), literal_column("'claimed'")])


def _takeable(now: datetime) -> Any:
    """A live timer nobody holds: pending, or claimed under a lease that has run out."""
    return or_(timers.c.status == "pending", timers.c.lease_until < now)


_parent = units.alias("parent_unit")
_building = units.alias("building_unit")
# A department (e.g. the approval bureau) answers for the district it belongs to.
_scope_path = case((units.c.kind == "department", _parent.c.path), else_=units.c.path)

_ACTOR_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.display_name,
    users.c.role,
    users.c.unit_id,
    _scope_path.label("scope_path"),
    users.c.enterprise_id,
    users.c.locale,
)
_actor_from = users.join(units, units.c.id == users.c.unit_id).outerjoin(_parent, _parent.c.id == units.c.parent_id)
ACTOR_BY_USERNAME = (
    select(*_ACTOR_COLUMNS)
    .select_from(_actor_from)
    .where(
        users.c.username == bindparam("username"),
        users.c.active == True,  # noqa: E712
    )
)
ACTOR_BY_ID = select(*_ACTOR_COLUMNS).select_from(_actor_from).where(users.c.id == bindparam("id"))

_APPEAL_COLUMNS = (
    appeals.c.id,
    appeals.c.number,
    appeals.c.type,
    appeals.c.definition_id,
    appeals.c.state,
    appeals.c.level,
    appeals.c.unit_id,
    appeals.c.enterprise_id,
    appeals.c.assignee_id,
    appeals.c.submitted_by_id,
    appeals.c.channel,
    appeals.c.data,
    appeals.c.version,
    appeals.c.is_open,
    appeals.c.created_at,
    appeals.c.updated_at,
    appeals.c.closed_at,
    _building.c.path.label("building_path"),
    enterprises.c.specialist_id,
    appeals.c.clock,
    appeals.c.state_entered_at,
    appeals.c.state_due_at,
    appeals.c.state_at_risk_at,
    appeals.c.overall_used_s,
    appeals.c.overall_running_since,
    appeals.c.overall_due_at,
    appeals.c.overall_at_risk_at,
    appeals.c.breached_at,
    appeals.c.provisional,
    appeals.c.first_response_at,
    appeals.c.decided_at,
    appeals.c.audit_seq,
    appeals.c.audit_head,
)
_appeal_from = appeals.join(enterprises, enterprises.c.id == appeals.c.enterprise_id).join(
    _building, _building.c.id == enterprises.c.building_id
)
APPEAL_BY_NUMBER = select(*_APPEAL_COLUMNS).select_from(_appeal_from).where(appeals.c.number == bindparam("number"))

INSERT_APPEAL = insert(appeals).returning(appeals.c.id)

# Candidates for a role, nearest to the building first (a named department before the rest, then the
# deepest scope), then the least loaded, then the oldest account. The load is counted only among those
# tied on nearness, so the usual single nearest candidate costs no count at all.
_in_department = (units.c.code == bindparam("department", type_=String())).label("in_department")
_depth = func.length(_scope_path).label("depth")
FIND_CANDIDATES = (
    select(users.c.id, _in_department, _depth)
    .select_from(_actor_from)
    .where(
        users.c.role == bindparam("role"),
        users.c.active == True,  # noqa: E712
        bindparam("building_path", type_=String()).like(_scope_path.concat("%")),
    )
    .order_by(_in_department.desc(), _depth.desc(), users.c.id)
)
# Index-only on ix_appeals_open_assignee.
OPEN_LOAD = select(func.count()).select_from(appeals).where(appeals.c.assignee_id == bindparam("id"), IS_OPEN)

# The sweeper's statements, run on the driver (OnDriver). The appeal comes with its enterprise's name,
# which every notice about it shows.
APPEAL_BY_ID = (
    select(*_APPEAL_COLUMNS, enterprises.c.name).select_from(_appeal_from).where(appeals.c.id == bindparam("id"))
)
APPEAL_BY_ID_LOCKED = APPEAL_BY_ID.with_for_update(of=appeals)  # no-op on SQLite: the writer lock is held
_APPEAL_KEYS = tuple(column.key for column in _APPEAL_COLUMNS)
FINISH_TIMER = (
    update(timers)
    .where(timers.c.id == bindparam("timer_id"), timers.c.status == "claimed", timers.c.claimed_by == bindparam("node"))
    .values(status="done", fired_at=bindparam("now"))
)
_NOTICE_VALUES: dict[str, Any] = {
    name: bindparam(name)
    for name in ("appeal_id", "kind", "recipient_id", "dedupe_key", "created_at", "next_attempt_at", "payload")
}
# A key already written (a retried sweep, another node) is skipped.
ADD_NOTICES = {
    dialect: builder(notices)
    .values(**_NOTICE_VALUES, status="pending", attempts=0)
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
    for dialect, builder in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


# A catch-up's statements: the appeal's next due timer, taking it, keeping the appeal's lease.
_NOW = bindparam("now", type_=timers.c.due_at.type)
_DUE_OF_APPEAL = (timers.c.appeal_id == bindparam("appeal_id"), LIVE_TIMER, timers.c.due_at <= _NOW)
_TAKEABLE_NOW = or_(timers.c.status == "pending", timers.c.lease_until < _NOW)


class DueTimer(NamedTuple):
    id: int
    appeal_id: int
    clock: str
    threshold: int
    due_at: datetime
    status: str
    claimed_by: str | None
    lease_until: datetime | None


NEXT_DUE_TIMER = (
    select(*(timers.c[name] for name in DueTimer._fields))
    .where(*_DUE_OF_APPEAL)
    .order_by(timers.c.due_at, timers.c.id)
    .limit(1)
)
_ALREADY_MINE = and_(timers.c.status == "claimed", timers.c.claimed_by == bindparam("node"))
TAKE_TIMER = (
    update(timers)
    .where(timers.c.id == bindparam("timer_id"), LIVE_TIMER)
    .values(
        status="done",
        claimed_by=bindparam("node"),
        fired_at=_NOW,
        attempts=case((_ALREADY_MINE, timers.c.attempts), else_=timers.c.attempts + 1),
    )
)
RENEW_DUE_TIMERS = (
    update(timers)
    .where(*_DUE_OF_APPEAL, _ALREADY_MINE)
    .values(lease_until=bindparam("lease_until", type_=timers.c.lease_until.type))
)
LEASE_DUE_TIMERS = (
    update(timers)
    .where(*_DUE_OF_APPEAL, _TAKEABLE_NOW)
    .values(
        status="claimed",
        claimed_by=bindparam("node"),
        lease_until=bindparam("lease_until", type_=timers.c.lease_until.type),
        attempts=timers.c.attempts + 1,
    )
)
BREACH_DUE_BETWEEN = (
    select(timers.c.id)
    .where(
        *_DUE_OF_APPEAL,
        timers.c.threshold >= BREACH_THRESHOLD,
        timers.c.due_at >= bindparam("since", type_=timers.c.due_at.type),
    )
    .limit(1)
)
ADD_BREACH = insert(breaches).values(
    **{name: bindparam(name) for name in ("appeal_id", "level", "unit_id", "clock", "due_at", "detected_at", "late_s")}
)


def _people_at(roles: int) -> Any:
    role_names = [bindparam(f"role{n}", type_=String()) for n in range(roles)]
    return select(users.c.id).where(
        users.c.unit_id == bindparam("unit_id"),
        users.c.role.in_(role_names),
        users.c.active == True,  # noqa: E712
    )


PEOPLE_AT = {roles: _people_at(roles) for roles in range(1, 5)}


class OnDriver:
    """A Core statement compiled once per dialect and run on the DBAPI cursor, its parameters and results
    converted by the column types' own processors: the SQL and values Connection.execute would use,
    without its 60-300 us a call (the sweeper runs eight statements per escalation)."""

    def __init__(self, statement: Any, dialect: Dialect) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        self.sql = compiled.string
        self.positions = compiled.positiontup  # qmark drivers (sqlite3) take a sequence
        self.binds = {
            name: (bind.required, bind.value, bind.type.dialect_impl(dialect).bind_processor(dialect))
            for bind, name in compiled.bind_names.items()
        }
        columns = getattr(statement, "selected_columns", ())
        self.results = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]

    def parameters(self, values: Mapping[str, Any]) -> Any:
        bound = {}
        for name, (required, default, process) in self.binds.items():
            value = values[name] if required or name in values else default
            bound[name] = process(value) if process is not None else value
        return [bound[name] for name in self.positions] if self.positions else bound

    def row(self, raw: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(value if p is None else p(value) for p, value in zip(self.results, raw, strict=True))


_ON_DRIVER: dict[tuple[str, Any], OnDriver] = {}


_HOT_PATHS: dict[str, HotPath] = {}


def _appeal(row: Row[Any, *tuple[Any, ...]]) -> AppealRecord:
    return AppealRecord(**row._mapping)


def _actor(row: Row[Any, *tuple[Any, ...]]) -> Actor:
    return Actor(**row._mapping)


class Repository:
    """Everything a unit of work can read or write; nothing here commits."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        hot = _HOT_PATHS.get(self.dialect)
        if hot is None:  # built once per dialect, not per unit of work (it rewrites its SQL)
            hot = _HOT_PATHS[self.dialect] = HotPath(self.dialect)
        self.hot = hot
        # Names read in this transaction: an escalation's notices would otherwise read the same one twice.
        self._enterprise_names: dict[int, str] = {}
        self._enterprise_codes: dict[int, str | None] = {}

    @property
    def driver(self) -> Any:
        """The DBAPI connection under this transaction, for the hot path."""
        return self.connection.connection.driver_connection

    def _on_driver(self, statement: Any) -> OnDriver:
        key = (self.dialect, statement)
        found = _ON_DRIVER.get(key)
        if found is None:
            found = _ON_DRIVER[key] = OnDriver(statement, self.connection.dialect)
        return found

    def _rows(self, statement: Any, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        prepared = self._on_driver(statement)
        cursor = self.driver.cursor()
        try:
            cursor.execute(prepared.sql, prepared.parameters(values))
            return [prepared.row(raw) for raw in cursor.fetchall()]
        finally:
            cursor.close()

    def _write(self, statement: Any, values: Mapping[str, Any]) -> int:
        """Rows changed."""
        prepared = self._on_driver(statement)
        cursor = self.driver.cursor()
        try:
            cursor.execute(prepared.sql, prepared.parameters(values))
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def load_for_change(self, number: str, username: str) -> tuple[Actor | None, AppealRecord | None]:
        """The actor and the appeal in one round trip: the start of every state change."""
        return self.hot.load_for_change(self.driver, number, username)

    # --- people and places -------------------------------------------------------------
    def actor(self, username: str) -> Actor | None:
        row = self.connection.execute(ACTOR_BY_USERNAME, {"username": username}).first()
        return _actor(row) if row is not None else None

    def actor_by_id(self, user_id: int) -> Actor | None:
        row = self.connection.execute(ACTOR_BY_ID, {"id": user_id}).first()
        return _actor(row) if row is not None else None

    def find_assignee(
        self, role: str, building_path: str, department: str | None = None, *, spread: int | None = None
    ) -> int | None:
        """`spread` (e.g. the appeal's id) picks among the equally near by turns instead of by load: a
        choice that does not depend on the order in which a catch-up sweep reaches the appeals."""
        params = {"role": role, "building_path": building_path, "department": department or ""}
        candidates = self._rows(FIND_CANDIDATES, params)
        if not candidates:
            return None
        nearest = [int(person) for person, *nearness in candidates if tuple(nearness) == candidates[0][1:]]
        if len(nearest) == 1:
            return nearest[0]
        if spread is not None:
            return nearest[spread % len(nearest)]
        # Least loaded, then the oldest account (the candidates come in id order).
        return min(nearest, key=lambda person: int(self._rows(OPEN_LOAD, {"id": person})[0][0]))

    def contact_of(self, enterprise_id: int, prefer: int | None = None) -> int | None:
        """The enterprise's contact: the one who submitted, if a contact, else the oldest active one."""
        query = (
            select(users.c.id)
            .where(
                users.c.enterprise_id == enterprise_id,
                users.c.role == "enterprise_contact",
                users.c.active == True,  # noqa: E712
            )
            .order_by((users.c.id == (prefer or 0)).desc(), users.c.id)
            .limit(1)
        )
        return self.connection.execute(query).scalar()

    def enterprise(self, enterprise_id: int) -> Row[Any] | None:
        query = (
            select(enterprises, units.c.path.label("building_path"), units.c.name.label("building_name"))
            .join(units, units.c.id == enterprises.c.building_id)
            .where(enterprises.c.id == enterprise_id)
        )
        return self.connection.execute(query).first()

    def people_at(self, unit_id: int, roles: Iterable[str]) -> list[int]:
        names = sorted(set(roles))
        if not names:
            return []
        if len(names) not in PEOPLE_AT:
            query = select(users.c.id).where(
                users.c.unit_id == unit_id,
                users.c.role.in_(names),
                users.c.active == True,  # noqa: E712
            )
            return list(self.connection.execute(query).scalars())
        params = {"unit_id": unit_id, **{f"role{n}": name for n, name in enumerate(names)}}
        return [row[0] for row in self._rows(PEOPLE_AT[len(names)], params)]

    def add_notices(
        self,
        appeal_id: int | None,
        kind: str,
        recipients: Sequence[int],
        dedupe: str,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Outbox rows, one per person; a key already written (a retried sweep, another node) is skipped."""
        if not recipients:
            return
        prepared = self._on_driver(ADD_NOTICES[self.dialect])
        rows = [
            prepared.parameters(
                {
                    "appeal_id": appeal_id,
                    "kind": kind,
                    "recipient_id": person,
                    "dedupe_key": f"{dedupe}:{person}",
                    "created_at": now,
                    "next_attempt_at": now,
                    "payload": dict(payload),
                }
            )
            for person in recipients
        ]
        cursor = self.driver.cursor()
        try:
            cursor.executemany(prepared.sql, rows)
        finally:
            cursor.close()

    def enterprise_credit_codes(self, ids: Sequence[int]) -> dict[int, str | None]:
        """统一社会信用代码 by enterprise id; reads the names too, so `enterprise_names` then asks nothing."""
        missing = set(ids) - self._enterprise_codes.keys()
        if missing:
            query = select(enterprises.c.id, enterprises.c.name, enterprises.c.credit_code).where(
                enterprises.c.id.in_(list(missing))
            )
            for row in self.connection.execute(query):
                self._enterprise_names[row.id] = row.name
                self._enterprise_codes[row.id] = row.credit_code
        return {i: self._enterprise_codes[i] for i in set(ids) if i in self._enterprise_codes}

    def enterprise_names(self, ids: Sequence[int]) -> dict[int, str]:
        missing = set(ids) - self._enterprise_names.keys()
        if missing:
            query = select(enterprises.c.id, enterprises.c.name).where(enterprises.c.id.in_(list(missing)))
            self._enterprise_names.update({row.id: row.name for row in self.connection.execute(query)})
        return {i: self._enterprise_names[i] for i in set(ids) if i in self._enterprise_names}

    def unit_by_code(self, code: str) -> Row[Any] | None:
        return self.connection.execute(select(units).where(units.c.code == code)).first()

    def units_by_id(self, ids: Sequence[int]) -> dict[int, Row[Any]]:
        rows = self.connection.execute(select(units).where(units.c.id.in_(list(ids)))).all()
        return {row.id: row for row in rows}

    def all_units(self) -> list[Row[Any]]:
        return list(self.connection.execute(select(units).order_by(units.c.id)).all())

    def enterprises_of(self, building_ids: Sequence[int] | None = None) -> list[Row[Any]]:
        query = select(enterprises).order_by(enterprises.c.id)
        if building_ids is not None:
            query = query.where(enterprises.c.building_id.in_(list(building_ids)))
        return list(self.connection.execute(query).all())

    def users(self, role: str | None = None, unit_path: str | None = None) -> list[Row[Any]]:
        query = (
            select(users, units.c.code.label("unit_code"), units.c.name.label("unit_name"))
            .join(units, units.c.id == users.c.unit_id)
            .order_by(users.c.role, users.c.username)
        )
        if role is not None:
            query = query.where(users.c.role == role)
        if unit_path is not None:
            query = query.where(units.c.path.startswith(unit_path, autoescape=True))
        return list(self.connection.execute(query).all())

    def usernames(self, ids: Sequence[int]) -> dict[int, str]:
        if not ids:
            return {}
        rows = self.connection.execute(select(users.c.id, users.c.username).where(users.c.id.in_(list(ids))))
        return {row.id: row.username for row in rows}

    # --- definitions -------------------------------------------------------------------
    def definition_versions(self, name: str | None = None) -> list[Row[Any]]:
        query = select(definition_versions).order_by(definition_versions.c.name, definition_versions.c.version)
        if name is not None:
            query = query.where(definition_versions.c.name == name)
        return list(self.connection.execute(query).all())

    def definition_version(self, definition_id: int) -> Row[Any] | None:
        query = select(definition_versions).where(definition_versions.c.id == definition_id)
        return self.connection.execute(query).first()

    def insert_definition_version(self, values: Mapping[str, Any]) -> int:
        result = self.connection.execute(insert(definition_versions).returning(definition_versions.c.id), dict(values))
        return int(result.scalar_one())

    def open_appeals_on(self, definition_id: int) -> int:
        query = select(func.count()).select_from(appeals).where(appeals.c.definition_id == definition_id, IS_OPEN)
        return int(self.connection.execute(query).scalar_one())

    def appeals_on(self, definition_id: int) -> int:
        query = select(func.count()).select_from(appeals).where(appeals.c.definition_id == definition_id)
        return int(self.connection.execute(query).scalar_one())

    def replace_definition_source(self, definition_id: int, values: Mapping[str, Any]) -> None:
        self.connection.execute(
            update(definition_versions).where(definition_versions.c.id == definition_id).values(**values)
        )

    # --- appeals -----------------------------------------------------------------------
    def next_number(self, prefix: str, year: int) -> int:
        builder = pg_insert if self.dialect == "postgresql" else sqlite_insert
        self.connection.execute(
            builder(number_sequences).values(prefix=prefix, year=year, last=0).on_conflict_do_nothing()
        )
        result = self.connection.execute(
            update(number_sequences)
            .where(number_sequences.c.prefix == prefix, number_sequences.c.year == year)
            .values(last=number_sequences.c.last + 1)
            .returning(number_sequences.c.last)
        )
        return int(result.scalar_one())

    def appeal(self, number: str) -> AppealRecord | None:
        row = self.connection.execute(APPEAL_BY_NUMBER, {"number": number}).first()
        return _appeal(row) if row is not None else None

    def appeal_by_id(self, appeal_id: int, *, lock: bool = False) -> AppealRecord | None:
        """The appeal; with lock, its row stays locked (PostgreSQL) until the transaction ends, taken
        before any timer row so that sweeper and users lock in the same order."""
        rows = self._rows(APPEAL_BY_ID_LOCKED if lock else APPEAL_BY_ID, {"id": appeal_id})
        return self._appeal_with_name(rows[0]) if rows else None

    def _appeal_with_name(self, row: tuple[Any, ...]) -> AppealRecord:
        appeal = AppealRecord(**dict(zip(_APPEAL_KEYS, row[:-1], strict=True)))
        self._enterprise_names[appeal.enterprise_id] = row[-1]
        return appeal

    def lock_and_finish(
        self, appeal_id: int, timer_id: int, node: str, now: datetime
    ) -> tuple[AppealRecord | None, bool]:
        """`appeal_by_id(lock=True)` then `finish_timer`, in that order; on PostgreSQL in one round trip
        (with the transaction's BEGIN), as a pipeline."""
        if self.dialect != "postgresql":
            return self.appeal_by_id(appeal_id, lock=True), self.finish_timer(timer_id, node, now)
        load, finish = self._on_driver(APPEAL_BY_ID_LOCKED), self._on_driver(FINISH_TIMER)
        driver = self.driver
        with driver.cursor() as loading, driver.cursor() as finishing:
            with driver.pipeline():
                loading.execute(load.sql, load.parameters({"id": appeal_id}))
                finishing.execute(finish.sql, finish.parameters({"timer_id": timer_id, "node": node, "now": now}))
            rows = loading.fetchall()
            finished = finishing.rowcount == 1
        return (self._appeal_with_name(load.row(rows[0])) if rows else None), finished

    def running_appeal_ids(self, after: int, limit: int) -> list[int]:
        query = (
            select(appeals.c.id)
            .where(IS_OPEN, appeals.c.clock == "running", appeals.c.id > after)
            .order_by(appeals.c.id)
            .limit(limit)
        )
        return list(self.connection.execute(query).scalars())

    # --- timers ------------------------------------------------------------------------
    def claim_timers(self, node: str, now: datetime, lease_until: datetime, batch: int) -> list[Row[Any]]:
        """Take up to `batch` due timers, oldest first, of appeals no other node holds a live lease on.

        A node that holds timers of an appeal fires all of that appeal's due timers, in due order
        (services/sweeper.py), so an appeal is leased whole: its timers are skipped while another node's
        lease on any of them runs. On PostgreSQL the candidates are locked (SKIP LOCKED), then their appeals
        (SKIP LOCKED: an appeal being fired or changed now waits for the next claim), and only then is each
        appeal's lease checked again, which now sees every claim committed before. SQLite's writer lock
        makes the whole claim exclusive."""
        mine = timers.alias("held")
        leased = (
            select(mine.c.id)
            .where(mine.c.appeal_id == timers.c.appeal_id, mine.c.status == "claimed", mine.c.lease_until >= now)
            .exists()
        )
        due = (
            select(timers.c.id, timers.c.appeal_id)
            .where(LIVE_TIMER, timers.c.due_at <= now, _takeable(now), ~leased)
            .order_by(timers.c.due_at, timers.c.id)
            .limit(batch)
        )
        if self.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True, of=timers)
        # Not UPDATE ... WHERE id IN (that SELECT): PostgreSQL may run the subquery again for each row it
        # updates, skip the rows it has just locked, and so claim more than `batch` (see notifications/outbox.py).
        candidates = self.connection.execute(due).all()
        if not candidates:
            return []
        appeal_ids = sorted({row.appeal_id for row in candidates})
        if self.dialect == "postgresql":
            locked = select(appeals.c.id).where(appeals.c.id.in_(appeal_ids)).with_for_update(skip_locked=True)
            free = set(self.connection.execute(locked).scalars())
            held = select(timers.c.appeal_id).where(
                timers.c.appeal_id.in_(list(free)), timers.c.status == "claimed", timers.c.lease_until >= now
            )
            free -= set(self.connection.execute(held).scalars())
        else:
            free = set(appeal_ids)
        ids = [row.id for row in candidates if row.appeal_id in free]
        if not ids:
            return []
        claimed = (
            update(timers)
            .where(timers.c.id.in_(ids), LIVE_TIMER, _takeable(now))
            .values(status="claimed", claimed_by=node, lease_until=lease_until, attempts=timers.c.attempts + 1)
            .returning(timers.c.id, timers.c.appeal_id, timers.c.clock, timers.c.threshold, timers.c.due_at)
        )
        rows = list(self.connection.execute(claimed).all())
        return sorted(rows, key=lambda r: (r.due_at, r.id))

    def next_due_timer(self, appeal_id: int, now: datetime) -> DueTimer | None:
        """The appeal's earliest live timer due by `now` (ties by id), whoever holds it. Read with the
        appeal locked, so that nobody fires or adds timers of it meanwhile."""
        rows = self._rows(NEXT_DUE_TIMER, {"appeal_id": appeal_id, "now": now})
        return DueTimer(*rows[0]) if rows else None

    def take_timer(self, timer_id: int, node: str, now: datetime) -> bool:
        """Mark a live timer done by this node; a timer this node had not claimed counts as one more attempt.
        The caller holds the appeal's lock and has checked that no live lease of another node covers it."""
        return self._write(TAKE_TIMER, {"timer_id": timer_id, "node": node, "now": now}) == 1

    def lease_due_timers(self, appeal_id: int, node: str, now: datetime, lease_until: datetime) -> int:
        """Renew this node's lease on the appeal's due timers and claim those nobody holds (an escalation adds
        timers that may be due already), so that the catch-up keeps the appeal; how many it newly claimed."""
        values = {"appeal_id": appeal_id, "node": node, "now": now, "lease_until": lease_until}
        self._write(RENEW_DUE_TIMERS, values)
        return self._write(LEASE_DUE_TIMERS, values)

    def breach_due_between(self, appeal_id: int, since: datetime, now: datetime) -> bool:
        """Whether a live breach timer of the appeal fell due in [since, now]."""
        return bool(self._rows(BREACH_DUE_BETWEEN, {"appeal_id": appeal_id, "since": since, "now": now}))

    def add_breach(self, values: Mapping[str, Any]) -> None:
        self._write(ADD_BREACH, values)

    def breaches_of(self, appeal_ids: Sequence[int]) -> dict[int, list[Row[Any]]]:
        """Each appeal's breaches, oldest first."""
        found: dict[int, list[Row[Any]]] = {i: [] for i in appeal_ids}
        if not appeal_ids:
            return found
        query = (
            select(breaches)
            .where(breaches.c.appeal_id.in_(list(appeal_ids)))
            .order_by(breaches.c.appeal_id, breaches.c.due_at, breaches.c.id)
        )
        for row in self.connection.execute(query):
            found[row.appeal_id].append(row)
        return found

    def finish_timer(self, timer_id: int, node: str, now: datetime) -> bool:
        """Mark a claimed timer done; False if the claim was lost (cancelled, or retaken after its lease)."""
        return self._write(FINISH_TIMER, {"timer_id": timer_id, "node": node, "now": now}) == 1

    def live_timers(self, appeal_id: int) -> list[Row[Any]]:
        query = select(timers).where(timers.c.appeal_id == appeal_id, LIVE_TIMER).order_by(timers.c.due_at)
        return list(self.connection.execute(query).all())

    def current_version(self, appeal_id: int) -> int | None:
        return self.connection.execute(select(appeals.c.version).where(appeals.c.id == appeal_id)).scalar()

    def insert_appeal(self, values: Mapping[str, Any]) -> int:
        return int(self.connection.execute(INSERT_APPEAL, dict(values)).scalar_one())

    def append_event(self, values: Mapping[str, Any], chain: ChainHead) -> None:
        """An audit event that leaves the appeal row as it is (a submission's first, a comment), linked to
        the appeal's chain (`chain`: the head as read; a head moved meanwhile is followed)."""
        self.hot.append_event(self.driver, values, chain)

    def change_appeal(
        self,
        appeal_id: int,
        expected_version: int,
        values: Mapping[str, Any],
        event: Mapping[str, Any],
        chain: ChainHead,
        cancel: tuple[bool, bool] = (False, False),
        timers: Sequence[Mapping[str, Any]] = (),
    ) -> bool:
        """Compare-and-set plus the audit event linked to the appeal's chain (`chain`: its head as read),
        cancelled (state, overall) and new timers; False, with nothing written, when the version moved on."""
        change = {"appeal_id": appeal_id, "expected_version": expected_version, **values}
        return self.hot.change_and_log(self.driver, change, event, chain, cancel, list(timers))

    def insert_timers(self, appeal_id: int, now: datetime, timers: Sequence[Mapping[str, Any]]) -> None:
        self.hot.insert_timers(self.driver, appeal_id, now, list(timers))

    def events(self, appeal_id: int) -> list[EventRecord]:
        query = select(events).where(events.c.appeal_id == appeal_id).order_by(events.c.seq)
        return [EventRecord(**row._mapping) for row in self.connection.execute(query)]

    # --- what the authorization rules read (workflow.domain.authorization) -------------------------------
    def units_of_users(self, ids: Iterable[int]) -> dict[int, int]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        rows = self.connection.execute(select(users.c.id, users.c.unit_id).where(users.c.id.in_(wanted)))
        return {int(row.id): int(row.unit_id) for row in rows}

    def unit_ids(self, codes: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        rows = self.connection.execute(select(units.c.code, units.c.id).where(units.c.code.in_(wanted)))
        return {str(row.code): int(row.id) for row in rows}

    def assign_candidates(self, holding_path: str, department_unit: int | None) -> list[Actor]:
        """Active people whose scope is the unit holding an appeal, or who work in `department_unit`: a superset
        of whom the appeal may be given, which the domain rule narrows."""
        reach = [_scope_path == holding_path]
        if department_unit is not None:
            reach.append(users.c.unit_id == department_unit)
        query = (
            select(*_ACTOR_COLUMNS)
            .select_from(_actor_from)
            .where(users.c.active == True, users.c.role != "enterprise_contact", or_(*reach))  # noqa: E712
            .order_by(users.c.username)
        )
        return [_actor(row) for row in self.connection.execute(query)]

    def list_appeals(
        self,
        *,
        state: str | None = None,
        type: str | None = None,
        unit_path: str | None = None,
        scope: Actor | None = None,
        routed: Mapping[int, Sequence[str]] | None = None,
        open_only: bool = False,
        limit: int = 100,
        offset: int = 0,
        since: datetime | None = None,
        extra: Sequence[Any] = (),
    ) -> tuple[list[AppealRecord], int]:
        conditions = list(extra)
        if state is not None:
            conditions.append(appeals.c.state == state)
        if type is not None:
            conditions.append(appeals.c.type == type)
        if unit_path is not None:
            conditions.append(_building.c.path.startswith(unit_path, autoescape=True))
        if open_only:
            conditions.append(IS_OPEN)
        if since is not None:
            conditions.append(appeals.c.created_at >= since)
        if scope is not None:
            conditions.append(scope_condition(scope, routed or {}))
        where = and_(True, *conditions)
        total = self.connection.execute(select(func.count()).select_from(_appeal_from).where(where)).scalar_one()
        query = (
            select(*_APPEAL_COLUMNS)
            .select_from(_appeal_from)
            .where(where)
            .order_by(appeals.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [_appeal(row) for row in self.connection.execute(query)], int(total)


def scope_condition(actor: Actor, routed: Mapping[int, Sequence[str]]) -> Any:
    """The SQL form of `authorization.can_see`, so lists never show what a page could not open (a test compares
    the two). `routed`: per definition version, the states that name the actor's department."""
    if actor.role == "system":
        return True
    if actor.role == "enterprise_contact":
        return appeals.c.enterprise_id == actor.enterprise_id
    if actor.role == "bureau_officer":
        return or_(appeals.c.assignee_id == actor.id, department_condition(actor.unit_id, routed))
    reach = [_building.c.path.startswith(actor.scope_path, autoescape=True), appeals.c.assignee_id == actor.id]
    if actor.role == "specialist":
        reach.append(enterprises.c.specialist_id == actor.id)
    return or_(*reach)


def department_condition(unit_id: int, routed: Mapping[int, Sequence[str]]) -> Any:
    """`authorization.Trail`, in SQL: an event of the appeal assigned it to someone of the department, or entered
    a state that names the department. Reads only the appeals table and its events."""
    members = select(users.c.id).where(users.c.unit_id == unit_id)
    touched = [events.c.payload["assignee_id"].as_integer().in_(members)]
    touched += [
        and_(appeals.c.definition_id == definition_id, events.c.to_state.in_(list(states)))
        for definition_id, states in sorted(routed.items())
        if states
    ]
    return exists().where(events.c.appeal_id == appeals.c.id, or_(*touched))
