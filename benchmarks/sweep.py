"""Sweep cost against open appeals, escalations per second, and the supervisors' summary at 1,000,000 appeals.

For each backend, two fresh databases: one holding only the due appeals (10,000 open, all due) and one
holding 1,000,000 open appeals of which the same 10,000 are due. Each is migrated with
`connect(url, upgrade=True)`, given the demo district, then bulk-loaded straight into the tables
(COPY on PostgreSQL, executemany in large transactions on SQLite; secondary indexes dropped for the load
and rebuilt from their own definitions, then VACUUM ANALYZE / ANALYZE): appeals of `outdoor_event_permit`
in running states, with their three state timers (50 / 80 / 100 %) and the submission event. Timers
whose instant has passed are stored as done (the reminders already went out), except the breach
timers of the due appeals, which are pending: a sweep has exactly `--due` timers to fire, each a
breach that escalates its appeal one level (appeal row, audit event, cancelled and new timers,
notices, one transaction each).

The sweep cost should follow the number of due timers, not the number of open appeals, so the
script prints both sweep times and their ratio, escalations per second beside what the bare driver
does at that moment; it also times `sla_summary` over the large database (median of warm runs, in this
process, beside a plain grouped count as a yardstick), prints EXPLAIN for the summary and the claim
query, and peak RSS. Each backend runs in its own child process so that its RSS starts from the same
baseline (the bulk loader, not the sweep, sets the peak).

    python benchmarks/sweep.py                          # both backends, 1,000,000 open, 10,000 due
    python benchmarks/sweep.py --quick --backend sqlite # smoke run: 10,000 and 100,000 open
    python benchmarks/sweep.py --open 300000 --due 5000 --backend postgresql
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import psycopg
from bench_databases import EVENT, drop_database, fresh_database, plain_url
from sqlalchemy import Engine, event, func, select, text
from sqlalchemy.engine import make_url

from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.persistence.repository import IS_OPEN, appeals
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.demo_data import load_demo
from workflow.services.sla_report import sla_summary
from workflow.services.sweeper import Sweeper
from workflow.services.workflow import Workflow

NOW = datetime(2026, 11, 26, 2, tzinfo=UTC)  # 10:00 on a Thursday in Shanghai, a working day
TARGETS = {
    "ratio": 1.5,  # sweep at the large size / sweep at the small size
    "escalations_per_s": {"sqlite": 1000.0, "postgresql": 500.0},
    "summary_ms": {"sqlite": 150.0, "postgresql": 100.0},
}
CHUNK = 25_000  # appeals per load transaction
SUMMARY_RUNS = 7

# (state, limit in minutes of wall-clock time, version when entered at the building level, weight)
STATES = [
    ("pre_check", 24 * 60, 3, 15),
    ("collecting_materials", 48 * 60, 4, 25),
    ("bureau_review", 24 * 60, 5, 40),
    ("site_inspection", 24 * 60, 6, 20),
]
FILED = {"bureau_review", "site_inspection"}  # states reached with materials_complete in the data
# Appeals above the building level got there by an earlier breach.
LEVELS = [("building", 90), ("community", 7), ("subdistrict", 3)]

APPEAL_COLUMNS = (
    "id, number, type, definition_id, state, level, unit_id, enterprise_id, assignee_id, submitted_by_id, channel, "
    "data, version, is_open, created_at, updated_at, closed_at, clock, state_entered_at, state_due_at, "
    "state_at_risk_at, overall_used_s, overall_running_since, overall_due_at, overall_at_risk_at, due_at, "
    "at_risk_at, breached_at, provisional, first_response_at, first_response_s, decided_at, decision_s, "
    "audit_seq, audit_head"
)
TIMER_COLUMNS = (
    "id, appeal_id, clock, threshold, due_at, status, claimed_by, lease_until, attempts, created_at, fired_at"
)
EVENT_COLUMNS = (
    "id, appeal_id, version, kind, actor_id, at, trigger, from_state, to_state, comment, payload, seq, prev_hash, hash"
)
# The loaded trail is a stand-in (one event per appeal, whatever its version): the sweep never verifies it.
UNCHAINED = "0" * 64


# --- databases ---------------------------------------------------------------------------------
# --- the district the demo loaded --------------------------------------------------------------
@dataclass(frozen=True)
class District:
    definition_id: int
    enterprises: list[tuple[int, int, int, int]]  # (enterprise, building, contact, specialist)
    parent: dict[int, int]  # unit -> parent unit
    staff: dict[int, int]  # building -> its building staff
    supervisor: dict[int, int]  # community or sub-district -> its supervisor
    bureau: list[int]  # officers of the approval bureau


def read_district(engine: Engine) -> District:
    with engine.connect() as conn:
        definition_id = conn.execute(
            text("SELECT id FROM definition_versions WHERE name = 'outdoor_event_permit' ORDER BY version DESC")
        ).scalar_one()
        parent = {r.id: r.parent_id for r in conn.execute(text("SELECT id, parent_id FROM units")) if r.parent_id}
        enterprises = [
            (r.id, r.building_id, r.contact, r.specialist_id)
            for r in conn.execute(
                text(
                    "SELECT e.id, e.building_id, e.specialist_id, min(u.id) AS contact FROM enterprises e "
                    "JOIN users u ON u.enterprise_id = e.id AND u.role = 'enterprise_contact' "
                    "GROUP BY e.id, e.building_id, e.specialist_id ORDER BY e.id"
                )
            )
        ]
        people = conn.execute(text("SELECT id, role, unit_id FROM users WHERE enterprise_id IS NULL"))
        staff: dict[int, int] = {}
        supervisor: dict[int, int] = {}
        bureau: list[int] = []
        for person in people:
            if person.role == "building_staff":
                staff[person.unit_id] = person.id
            elif person.role in ("community_supervisor", "subdistrict_supervisor"):
                supervisor[person.unit_id] = person.id
            elif person.role == "bureau_officer":
                bureau.append(person.id)
        approval = (
            conn.execute(
                text(
                    "SELECT u.id FROM users u JOIN units n ON n.id = u.unit_id "
                    "WHERE n.code = 'DEP-APPROVAL' ORDER BY u.id"
                )
            )
            .scalars()
            .all()
        )
    return District(definition_id, enterprises, parent, staff, supervisor, list(approval) or bureau)


# --- rows --------------------------------------------------------------------------------------
class Encoding:
    """How one backend wants timestamps and documents written by the loader."""

    def __init__(self, backend: str) -> None:
        self.sqlite = backend == "sqlite"

    @cache  # noqa: B019 - two instances per run; timestamps fall on whole minutes, so the cache stays small
    def ts(self, minutes: int) -> str:
        moment = NOW + timedelta(minutes=minutes)
        # The text SQLAlchemy stores on SQLite (naive UTC), and a UTC literal for PostgreSQL's COPY.
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else moment.strftime("%Y-%m-%d %H:%M:%S+00")

    @cache  # noqa: B019
    def doc(self, key: str) -> str:
        value = {"": {}, "filed": {**EVENT, "materials_complete": True}, "draft": EVENT}[key]
        encoded = json.dumps(value)
        return encoded if self.sqlite else _copy_escape(encoded)


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


@dataclass
class Batch:
    appeals: list[tuple[Any, ...]]
    timers: list[tuple[Any, ...]]
    events: list[tuple[Any, ...]]


def generate(district: District, enc: Encoding, open_appeals: int, due: int, seed: int = 2026) -> Iterator[Batch]:
    """Open appeals in running states, `due` of them past their state limit, spread evenly by id."""
    rng = random.Random(seed)
    step = max(open_appeals // due, 1) if due else open_appeals + 1
    state_weights = [s[3] for s in STATES]
    level_weights = [w for _, w in LEVELS]
    ts = enc.ts
    batch = Batch([], [], [])
    for i in range(open_appeals):
        appeal_id = i + 1
        is_due = i % step == 0 and i // step < due
        enterprise, building, contact, specialist = rng.choice(district.enterprises)
        state, limit, version, _ = rng.choices(STATES, state_weights)[0]
        level = rng.choices(LEVELS, level_weights)[0][0]
        if is_due:  # the breach instant passed between a minute and half a limit ago
            elapsed = limit + rng.randint(1, limit // 2)
        else:
            band = rng.random()
            if band < 0.60:
                elapsed = rng.randint(0, limit // 2 - 1)  # on track
            elif band < 0.85:
                elapsed = rng.randint(limit // 2, limit * 8 // 10 - 1)  # first reminder sent
            else:
                elapsed = rng.randint(limit * 8 // 10, limit - 1)  # at risk
        entered = -elapsed
        half, risk, breach = entered + limit // 2, entered + limit * 8 // 10, entered + limit
        created = entered - rng.randint(120, 3 * 24 * 60)
        responded = created + rng.randint(10, 110)
        unit, breached_at = building, None
        if state == "pre_check":
            assignee = district.staff[building]
        elif state == "collecting_materials":
            assignee = specialist
        else:
            assignee = rng.choice(district.bureau)
        if level != "building":  # escalated on an earlier breach, which restarted the state clock
            unit = district.parent[building] if level == "community" else district.parent[district.parent[building]]
            assignee, breached_at, version = district.supervisor[unit], ts(entered), version + 1
        batch.appeals.append(
            (
                appeal_id,
                f"OE-2026-{appeal_id:06d}",
                "outdoor_event_permit",
                district.definition_id,
                state,
                level,
                unit,
                enterprise,
                assignee,
                contact,
                "online",
                enc.doc("filed" if state in FILED else "draft"),
                version,
                True,
                ts(created),
                ts(entered),
                None,
                "running",
                ts(entered),
                ts(breach),
                ts(risk),
                0,
                None,
                None,
                None,
                ts(breach),
                ts(risk),
                breached_at,
                False,
                ts(responded),
                (responded - created) * 60,
                None,
                None,
                1,
                UNCHAINED,
            )
        )
        for k, (threshold, at) in enumerate(((50, half), (80, risk), (100, breach))):
            fired = at <= 0 and not (threshold == 100 and is_due)
            batch.timers.append(
                (
                    3 * i + k + 1,
                    appeal_id,
                    "state",
                    threshold,
                    ts(at),
                    "done" if fired else "pending",
                    "loader" if fired else None,
                    ts(at + 1) if fired else None,
                    1 if fired else 0,
                    ts(entered),
                    ts(at) if fired else None,
                )
            )
        batch.events.append(
            (
                appeal_id,
                appeal_id,
                1,
                "submitted",
                contact,
                ts(created),
                "submit",
                None,
                "submitted",
                None,
                enc.doc(""),
                1,
                None,
                UNCHAINED,
            )
        )
        if len(batch.appeals) == CHUNK:
            yield batch
            batch = Batch([], [], [])
    if batch.appeals:
        yield batch


def _copy_line(row: tuple[Any, ...]) -> str:
    return "\t".join("\\N" if v is None else ("t" if v else "f") if isinstance(v, bool) else str(v) for v in row) + "\n"


LOADED = ("appeals", "timers", "appeal_events")


def secondary_indexes(conn: Any, backend: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the loaded tables' indexes that back no constraint."""
    if backend == "sqlite":
        query = (
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN {LOADED!r} ORDER BY name"
        )
    else:
        query = (
            f"SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
            f"JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            f"WHERE t.relname IN {LOADED!r} "
            f"AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY 1"
        )
    return [(name, sql) for name, sql in conn.execute(query).fetchall()]


def bulk_load(url: str, backend: str, district: District, open_appeals: int, due: int) -> None:
    """Rows straight into the tables, secondary indexes dropped during the load and rebuilt from their
    own definitions afterwards, foreign keys unchecked (the generator only writes ids it read back)."""
    enc = Encoding(backend)
    tables = (("appeals", APPEAL_COLUMNS), ("timers", TIMER_COLUMNS), ("appeal_events", EVENT_COLUMNS))
    if backend == "sqlite":
        db = sqlite3.connect(make_url(url).database, isolation_level=None)
        db.execute("PRAGMA synchronous=OFF")  # a load that fails is thrown away with its database
        db.execute("PRAGMA cache_size=-262144")
        indexes = secondary_indexes(db, backend)
        for name, _ in indexes:
            db.execute(f"DROP INDEX {name}")
        statements = [
            f"INSERT INTO {name} ({columns}) VALUES ({', '.join('?' * (columns.count(',') + 1))})"
            for name, columns in tables
        ]
        for batch in generate(district, enc, open_appeals, due):
            db.execute("BEGIN")
            for statement, rows in zip(statements, (batch.appeals, batch.timers, batch.events), strict=True):
                db.executemany(statement, rows)
            db.execute("COMMIT")
        for _, create in indexes:
            db.execute(create)
        db.execute(f"INSERT OR REPLACE INTO number_sequences (prefix, year, last) VALUES ('OE', 2026, {open_appeals})")
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        return
    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("SET session_replication_role = replica")  # no foreign-key triggers during the load
        indexes = secondary_indexes(conn, backend)
        for name, _ in indexes:
            conn.execute(f"DROP INDEX {name}")
        with conn.cursor() as cur:
            for batch in generate(district, enc, open_appeals, due):
                for (name, columns), rows in zip(tables, (batch.appeals, batch.timers, batch.events), strict=True):
                    with cur.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
                        copy.write("".join(map(_copy_line, rows)))
            for name, _ in tables:
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
            cur.execute(
                "INSERT INTO number_sequences (prefix, year, last) VALUES ('OE', 2026, %s) "
                "ON CONFLICT (prefix, year) DO UPDATE SET last = excluded.last",
                (open_appeals,),
            )
        conn.execute("SET session_replication_role = DEFAULT")
        for _, create in indexes:
            conn.execute(create)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")


# --- measurements ------------------------------------------------------------------------------
def captured(engine: Engine, action: Callable[[], object]) -> list[tuple[str, Any]]:
    """The statements (as sent to the driver, with their parameters) that `action` runs."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    return seen


def explain(engine: Engine, statement: str, parameters: Any, *, analyze: bool = False) -> str:
    with engine.connect() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        if engine.dialect.name == "sqlite":
            cursor.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)
            depth: dict[int, int] = {0: 0}
            lines = []
            for node, parent, _, detail in cursor.fetchall():
                depth[node] = depth.get(parent, 0) + 1
                lines.append("  " * depth[node] + detail)
        else:
            options = "(ANALYZE, BUFFERS) " if analyze else ""
            cursor.execute(f"EXPLAIN {options}{statement}", parameters)
            lines = ["  " + row[0] for row in cursor.fetchall()]
        cursor.close()
        conn.rollback()
    return "\n".join(lines)


def summary_plan(wf: Workflow) -> str:
    def run() -> None:
        with UnitOfWork(wf.engine, read_only=True) as uow:
            sla_summary(uow, NOW)

    statement, parameters = next(s for s in captured(wf.engine, run) if "GROUP BY" in s[0])
    return explain(wf.engine, statement, parameters, analyze=True)


def claim_plan(wf: Workflow, batch: int) -> str:
    def run() -> None:
        with UnitOfWork(wf.engine) as uow:  # never committed: the claim is rolled back
            uow.repo.claim_timers("explain", NOW, NOW + timedelta(seconds=60), batch)

    statement, parameters = next(s for s in captured(wf.engine, run) if s[0].lstrip().startswith("UPDATE timers"))
    return explain(wf.engine, statement, parameters)


# The plain grouped count the issue quotes as a yardstick (about 20 ms on PostgreSQL, 55 ms on SQLite at
# 1M appeals on an idle machine): timed beside the summary so that figures taken under load can be read.
REFERENCE = (
    select(appeals.c.level, appeals.c.unit_id, func.count()).where(IS_OPEN).group_by(appeals.c.level, appeals.c.unit_id)
)


def _median_ms(action: Callable[[], object], runs: int) -> tuple[list[float], object]:
    samples, result = [], None
    for attempt in range(runs + 2):  # two warm-up runs
        started = time.perf_counter()
        result = action()
        if attempt >= 2:
            samples.append((time.perf_counter() - started) * 1000)
    return samples, result


def time_summary(wf: Workflow, runs: int = SUMMARY_RUNS) -> dict[str, Any]:
    def summary() -> dict[str, Any]:
        with UnitOfWork(wf.engine, read_only=True) as uow:
            return sla_summary(uow, NOW)

    def reference() -> object:
        with UnitOfWork(wf.engine, read_only=True) as uow:
            return uow.connection.execute(REFERENCE).all()

    samples, result = _median_ms(summary, runs)
    reference_samples, _ = _median_ms(reference, runs)
    totals = result["totals"]  # type: ignore[index]
    return {
        "median_ms": statistics.median(samples),
        "min_ms": min(samples),
        "max_ms": max(samples),
        "reference_median_ms": statistics.median(reference_samples),
        "open": totals["open"],
        "at_risk": totals["at_risk"],
        "breached": totals["breached"],
    }


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def floor_tx_per_s(url: str, backend: str, workdir: Path, transactions: int = 2000) -> float:
    """The driver alone, one UPDATE and one INSERT per committed transaction (as in benchmarks/engine.py):
    what this machine allows right now, to read the escalation rate against."""
    if backend == "sqlite":
        conn = sqlite3.connect(workdir / "floor.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, state TEXT, version INTEGER)")
        conn.execute("CREATE TABLE e (id INTEGER PRIMARY KEY, a_id INTEGER, at TEXT, payload TEXT)")
        conn.executemany("INSERT INTO a VALUES (?, 'x', 1)", [(i,) for i in range(1000)])
        started = time.perf_counter()
        for i in range(transactions):
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE a SET state = ?, version = version + 1 WHERE id = ?", (f"s{i % 7}", i % 1000))
            conn.execute("INSERT INTO e (a_id, at, payload) VALUES (?, ?, ?)", (i % 1000, "2026-11-26", "{}"))
            conn.execute("COMMIT")
        seconds = time.perf_counter() - started
        conn.close()
        return transactions / seconds
    with psycopg.connect(plain_url(url)) as conn:
        conn.execute("CREATE TABLE floor_a (id INTEGER PRIMARY KEY, state TEXT, version INTEGER)")
        conn.execute("CREATE TABLE floor_e (id BIGSERIAL PRIMARY KEY, a_id INTEGER, at TEXT, payload JSONB)")
        conn.execute("INSERT INTO floor_a SELECT g, 'x', 1 FROM generate_series(0, 999) g")
        conn.commit()
        started = time.perf_counter()
        for i in range(transactions):
            conn.execute("UPDATE floor_a SET state = %s, version = version + 1 WHERE id = %s", (f"s{i % 7}", i % 1000))
            conn.execute("INSERT INTO floor_e (a_id, at, payload) VALUES (%s, %s, %s)", (i % 1000, "2026-11-26", "{}"))
            conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE floor_a, floor_e")
        conn.commit()
    return transactions / seconds


def run_size(backend: str, workdir: Path, open_appeals: int, due: int, *, large: bool) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    url = fresh_database(backend, workdir, "sweep_large" if large else "sweep_small")
    try:
        clock = FrozenClock(NOW)
        wf = connect(url, clock=clock, upgrade=True)
        with UnitOfWork(wf.engine) as uow:
            load_demo(uow, clock)
            uow.commit()
        district = read_district(wf.engine)
        started = time.perf_counter()
        bulk_load(url, backend, district, open_appeals, due)
        load_s = time.perf_counter() - started
        wf.engine.dispose()  # new connections see the statistics ANALYZE wrote
        print(f"  {backend} {open_appeals:,} open: loaded in {load_s:.0f} s", flush=True)
        result: dict[str, Any] = {"open": open_appeals, "due": due, "load_s": round(load_s, 1)}
        if large:
            result["summary_plan"] = summary_plan(wf)
            result["claim_plan"] = claim_plan(wf, 500)
            result["summary"] = time_summary(wf)
        rss_before = rss_mib()
        sweeper = Sweeper(wf, batch=500, node="bench")
        started, cpu_started = time.perf_counter(), time.process_time()
        report = sweeper.sweep()
        sweep_s = time.perf_counter() - started
        # This process's own CPU: less at the mercy of other work on the machine than the wall clock.
        cpu_s = time.process_time() - cpu_started
        rss_after = rss_mib()
        assert report.claimed == due and report.escalations == due and not report.errors, report.as_dict()
        with wf.engine.connect() as conn:
            escalated = conn.execute(text("SELECT count(*) FROM appeal_events WHERE kind = 'escalated'")).scalar_one()
            notices = conn.execute(text("SELECT count(*) FROM notices")).scalar_one()
            left = conn.execute(
                text("SELECT count(*) FROM timers WHERE status IN ('pending', 'claimed') AND due_at <= :now"),
                {"now": Encoding(backend).ts(0) if backend == "sqlite" else NOW},
            ).scalar_one()
        assert escalated == due and left == 0, (escalated, left)
        result.update(
            sweep_s=sweep_s,
            escalations=report.escalations,
            escalations_per_s=report.escalations / sweep_s,
            cpu_ms_per_escalation=cpu_s * 1000 / report.escalations,
            claimed=report.claimed,
            notices=notices,
            rss_before_sweep_mib=round(rss_before, 1),
            rss_after_sweep_mib=round(rss_after, 1),
            loadavg_1m=(round(load_before, 2), round(os.getloadavg()[0], 2)),
        )
        if large:
            result["summary_after_sweep"] = time_summary(wf)
        wf.engine.dispose()
        return result
    finally:
        drop_database(url)


def measure(backend: str, open_appeals: int, due: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sweep_bench_") as tmp:
        small = run_size(backend, Path(tmp), due, due, large=False)
        large = run_size(backend, Path(tmp), open_appeals, due, large=True)
        url = fresh_database(backend, Path(tmp), "sweep_floor")
        try:
            floor = floor_tx_per_s(url, backend, Path(tmp))
        finally:
            drop_database(url)
    return {
        "backend": backend,
        "small": small,
        "large": large,
        "ratio": large["sweep_s"] / small["sweep_s"],
        "floor_tx_per_s": floor,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def report(result: dict[str, Any]) -> None:
    backend, small, large = result["backend"], result["small"], result["large"]
    ok = {True: "ok", False: "MISSED"}
    print(f"\n== {backend} ==")
    print(f"EXPLAIN sla_summary over {large['open']:,} open appeals:\n{large['summary_plan']}")
    print(f"EXPLAIN claim_timers (batch 500):\n{large['claim_plan']}")
    for size in (small, large):
        print(
            f"{backend:<10} sweep {size['due']:,} due of {size['open']:>9,} open: {size['sweep_s']:7.2f} s  "
            f"{size['escalations_per_s']:6.0f} escalations/s, {size['cpu_ms_per_escalation']:.2f} ms CPU each here  "
            f"(load avg {size['loadavg_1m'][0]}->{size['loadavg_1m'][1]})"
        )
    print(f"{backend:<10} driver floor now: {result['floor_tx_per_s']:.0f} tx/s (UPDATE + INSERT + COMMIT, no engine)")
    ratio, rate = result["ratio"], min(small["escalations_per_s"], large["escalations_per_s"])
    print(
        f"{backend:<10} ratio {ratio:.2f} (target <= {TARGETS['ratio']}: {ok[ratio <= TARGETS['ratio']]}); "
        f"slowest {rate:.0f} escalations/s (target >= {TARGETS['escalations_per_s'][backend]:.0f}: "
        f"{ok[rate >= TARGETS['escalations_per_s'][backend]]})"
    )
    for label, key in (("fresh after ANALYZE", "summary"), ("after the sweep", "summary_after_sweep")):
        s = large[key]
        target = TARGETS["summary_ms"][backend]
        print(
            f"{backend:<10} sla_summary {label}: median {s['median_ms']:.1f} ms (min {s['min_ms']:.1f}, max "
            f"{s['max_ms']:.1f}) over {s['open']:,} open, {s['at_risk']:,} at risk, {s['breached']:,} breached "
            f"(target < {target:.0f} ms: {ok[s['median_ms'] < target]}); plain grouped count "
            f"{s['reference_median_ms']:.1f} ms"
        )
    print(
        f"{backend:<10} peak RSS {result['peak_rss_mib']:.0f} MiB (RSS {large['rss_before_sweep_mib']:.0f} -> "
        f"{large['rss_after_sweep_mib']:.0f} MiB across the large sweep)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--open", type=int, default=None, help="open appeals in the large database (1,000,000)")
    parser.add_argument("--due", type=int, default=10_000, help="due breach timers in both databases (10,000)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 100,000 open appeals")
    parser.add_argument("--child", metavar="BACKEND", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    open_appeals = args.open or (100_000 if args.quick else 1_000_000)
    if open_appeals < args.due or args.due < 1:
        parser.error(f"--open ({open_appeals}) must be at least --due ({args.due}), which must be positive")
    if args.child:
        result = measure(args.child, open_appeals, args.due)
        Path(args.result_file).write_text(json.dumps(result))
        return
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    print(
        f"{open_appeals:,} open appeals, {args.due:,} due; {os.cpu_count()} cores, load average "
        f"{os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    for backend in backends:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    backend,
                    "--open",
                    str(open_appeals),
                    "--due",
                    str(args.due),
                    "--result-file",
                    out.name,
                ],
                check=True,
            )
            result = json.loads(Path(out.name).read_text())
        results.append(result)
        report(result)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
