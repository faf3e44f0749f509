"""Engine throughput: appeals walked through the outdoor-event-permit path, one transaction per step.

Prints our steps per second beside the floor (plain sqlite3 / psycopg doing one UPDATE plus one
INSERT per transaction) and peak RSS for two sizes, measured in fresh child processes.

    python benchmarks/engine.py                       # SQLite (WAL) and PostgreSQL, 2,000 appeals
    python benchmarks/engine.py --appeals 5000 --backend sqlite
    python benchmarks/engine.py --rss                 # peak RSS at 2,000 and 20,000 appeals
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from bench_databases import EVENT, drop_database, fresh_database, plain_url
from sqlalchemy import text

from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.demo_data import load_demo

# (trigger, actor for building B01, data)
PATH = [
    ("start_pre_check", "staff-b01", None),
    ("pass_pre_check", "staff-b01", None),
    ("file_application", "specialist-b01", {"materials_complete": True}),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ("approve", "bureau-approval-01", {"inspection_findings": "ok"}),
    ("close", "specialist-b01", None),
]


def run_engine(url: str, appeals: int) -> dict[str, float]:
    clock = FrozenClock(datetime(2026, 11, 26, 2, tzinfo=UTC))
    wf = connect(url, clock=clock, upgrade=True)
    with UnitOfWork(wf.engine) as uow:
        load_demo(uow, clock)
        uow.commit()
    started = time.perf_counter()
    numbers = [
        wf.submit("outdoor_event_permit", enterprise_id=1 + i % 30, as_user=f"contact-{1 + i % 30:04d}", data=EVENT)[
            "number"
        ]
        for i in range(appeals)
    ]
    submit_seconds = time.perf_counter() - started
    steps = 0
    started = time.perf_counter()
    for number in numbers:
        for trigger, actor, data in PATH:
            wf.fire(number, trigger, as_user=actor, data=data)
            steps += 1
        clock.advance(timedelta(seconds=1))
    fire_seconds = time.perf_counter() - started
    with wf.engine.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM appeal_events")).scalar_one()
    assert events == appeals * (1 + len(PATH)), events
    wf.engine.dispose()
    return {"steps_per_s": steps / fire_seconds, "submits_per_s": appeals / submit_seconds, "steps": steps}


def sqlite_floor(workdir: Path, transactions: int) -> float:
    path = workdir / "floor.db"
    conn = sqlite3.connect(path, isolation_level=None)
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


def postgres_floor(url: str, transactions: int) -> float:
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


def measure(backend: str, appeals: int) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        url = fresh_database(backend, workdir, "bench")
        try:
            ours = run_engine(url, appeals)
            floor = sqlite_floor(workdir, 20_000) if backend == "sqlite" else postgres_floor(url, 5_000)
        finally:
            drop_database(url)
    return {
        "backend": backend,
        "appeals": appeals,
        **ours,
        "floor_tx_per_s": floor,
        "ratio_of_floor": ours["steps_per_s"] / floor,
    }


def peak_rss(backend: str, appeals: int) -> float:
    """Run in a fresh process so each size starts from the same baseline; MiB."""
    out = subprocess.run(
        [sys.executable, __file__, "--child-rss", backend, str(appeals)], check=True, capture_output=True, text=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appeals", type=int, default=2000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--rss", action="store_true", help="also measure peak RSS at 2,000 and 20,000 appeals")
    parser.add_argument("--child-rss", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_rss:
        backend, count = args.child_rss[0], int(args.child_rss[1])
        measure(backend, count)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        return
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        result = measure(backend, args.appeals)
        results.append(result)
        print(
            f"{backend:<10} {result['steps_per_s']:>8.0f} steps/s  floor {result['floor_tx_per_s']:>8.0f} tx/s  "
            f"ratio {result['ratio_of_floor']:.0%}  ({result['submits_per_s']:.0f} submits/s)"
        )
        if args.rss:
            small, large = peak_rss(backend, 2000), peak_rss(backend, 20000)
            result.update(rss_2000_mib=small, rss_20000_mib=large, rss_growth_mib=large - small)
            print(
                f"{backend:<10} peak RSS {small:.1f} MiB at 2,000 appeals, {large:.1f} MiB at 20,000 "
                f"(growth {large - small:.1f} MiB)"
            )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
