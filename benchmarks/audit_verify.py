"""`appeals audit verify` throughput: events verified per second (chains recomputed, every appeal replayed).

Walks real appeals of the outdoor-event-permit path through the engine (submit, six transitions, a comment:
eight events each), then clones them into as many appeals as the event count asks, each clone's chain
computed afresh under its own number, and times `verify` over all of them, with and without a seal file.

    python benchmarks/audit_verify.py                  # SQLite, 200,000 events
    python benchmarks/audit_verify.py --quick          # SQLite, 20,000 events
    python benchmarks/audit_verify.py --backend both --events 100000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench_databases import EVENT, drop_database, fresh_database
from sqlalchemy import insert, select

from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.domain.audit_chain import ChainHead
from workflow.persistence.tables import Appeal, AppealEvent, table_of
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services import audit
from workflow.services.demo_data import load_demo
from workflow.services.workflow import Workflow

TARGET = {"sqlite": 20_000.0, "postgresql": None}  # events verified per second; the issue sets SQLite's
TEMPLATES = 30  # appeals walked for real, then cloned
ROUNDS = 3
PATH = [
    ("start_pre_check", "staff-b01", None),
    ("pass_pre_check", "staff-b01", None),
    ("file_application", "specialist-b01", {"materials_complete": True}),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ("approve", "bureau-approval-01", {"inspection_findings": "场地安全，同意举办"}),
    ("close", "specialist-b01", None),
]
appeals_t, events_t = table_of(Appeal), table_of(AppealEvent)


def walk_templates(wf: Workflow, clock: FrozenClock) -> None:
    for i in range(TEMPLATES):
        number = wf.submit(
            "outdoor_event_permit", enterprise_id=1 + i % 30, as_user=f"contact-{1 + i % 30:04d}", data=EVENT
        )["number"]
        for step, (trigger, actor, data) in enumerate(PATH):
            clock.advance(timedelta(minutes=7))
            wf.fire(number, trigger, as_user=actor, data=data, comment="已办理" if step % 2 else None)
            if step == 1:
                wf.comment(number, "已电话联系企业，约定上门收集材料", as_user="specialist-b01")


def clone(wf: Workflow, events_wanted: int) -> int:
    """Copies of the walked appeals, each with its own number and its own chain; returns the events written."""
    with UnitOfWork(wf.engine) as uow:
        conn = uow.connection
        templates = [dict(row._mapping) for row in conn.execute(select(appeals_t).order_by(appeals_t.c.id))]
        trail: dict[int, list[dict[str, Any]]] = {t["id"]: [] for t in templates}
        for row in conn.execute(select(events_t).order_by(events_t.c.appeal_id, events_t.c.seq)):
            trail[row.appeal_id].append(dict(row._mapping))
        next_id = max(trail) + 1
        written = sum(len(events) for events in trail.values())
        appeals: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        while written < events_wanted:
            template = templates[next_id % len(templates)]
            number = f"OE-2026-{next_id:06d}"
            head = ChainHead(number)
            for event in trail[template["id"]]:
                link = head.link({**event, "appeal_id": next_id})
                link.pop("id")
                events.append(link)
                head = ChainHead(number, link["seq"], link["hash"])
            appeals.append(
                {**template, "id": next_id, "number": number, "audit_seq": head.seq, "audit_head": head.hash}
            )
            written += len(trail[template["id"]])
            next_id += 1
            if len(events) >= 20_000:
                conn.execute(insert(appeals_t), appeals)
                conn.execute(insert(events_t), events)
                appeals, events = [], []
        if appeals:
            conn.execute(insert(appeals_t), appeals)
            conn.execute(insert(events_t), events)
        uow.commit()
    return written


def measure(backend: str, events_wanted: int, workdir: Path) -> dict[str, Any]:
    url = fresh_database(backend, workdir, "audit_verify")
    try:
        clock = FrozenClock(datetime(2026, 11, 26, 2, tzinfo=UTC))
        wf = connect(url, clock=clock, upgrade=True)
        with UnitOfWork(wf.engine) as uow:
            load_demo(uow, clock)
            uow.commit()
        walk_templates(wf, clock)
        events = clone(wf, events_wanted)
        seal_file = workdir / f"seal-{backend}.json"
        audit.seal(wf, out=seal_file)
        sealed = audit.read_seal(seal_file)
        runs = []
        for with_seal in (False, True) * ROUNDS:
            started, cpu = time.perf_counter(), time.process_time()
            report = audit.verify(wf, sealed=sealed if with_seal else None)
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
            assert report.ok and report.events == events, (report.events, events, report.problems[:3])
            runs.append((with_seal, report.events / seconds, report.events / cpu_seconds))
        wf.engine.dispose()
    finally:
        drop_database(url)
    return {
        "backend": backend,
        "events": events,
        # The median of the rounds: the machine is shared, single runs swing with its load.
        "events_per_s": statistics.median(wall for sealed_run, wall, _ in runs if not sealed_run),
        "events_per_s_with_seal": statistics.median(wall for sealed_run, wall, _ in runs if sealed_run),
        # Events per second of this process's own CPU time: what the run gives on a machine it has to itself.
        "events_per_cpu_s": statistics.median(cpu for sealed_run, _, cpu in runs if not sealed_run),
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--quick", action="store_true", help="20,000 events")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="sqlite")
    args = parser.parse_args()
    events = 20_000 if args.quick else args.events
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            result = measure(backend, events, Path(tmp))
            target = TARGET[backend]
            verdict = ""
            if target is not None:
                verdict = f" target >= {target:,.0f}/s: {'met' if result['events_per_s'] >= target else 'MISSED'}"
            print(
                f"{backend:<10} {result['events']:,} events: {result['events_per_s']:,.0f} events/s verified "
                f"({result['events_per_cpu_s']:,.0f} per CPU second), {result['events_per_s_with_seal']:,.0f} "
                f"events/s against a seal; load average {result['load_average']:.1f};{verdict}"
            )
            results.append(result)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
