"""HTTP throughput and latency: `appeals serve` on PostgreSQL with worker processes, under concurrent API clients.

Builds a fresh database (`--database`, dropped and recreated at the start, dropped at the end unless
--keep-db): the demo district and demo appeals, then `--appeals` outdoor-event permits submitted through
the Workflow API and walked in-process to the states where building staff, specialists and the approval
bureau act, so that every kind of client finds actions to fire; the setup's notices are marked sent, so
that the servers' sweepers start from an empty outbox. Starts `appeals serve --workers N` as a real
(non-demo) server in its own process group (stopped with it on any exit; its log is kept in $TMPDIR as
DATABASE-server.log), signs the demo users in, times each request class one request at a time, and runs
`--clients` clients (asyncio + httpx, spread over `--client-processes` processes so that one Python process
is not the bottleneck) for `--warmup` plus `--duration` seconds. Each client is one demo user working their queue:
worklist pages (`GET /api/v1/appeals?assignee=me`), appeal pages (`GET /api/v1/appeals/{number}`), the
SLA summary for supervisors, and actions (`POST /api/v1/appeals/{number}/actions/{trigger}` with
`expected_version`: a trigger from the appeal's `actions`, its fields filled from their descriptions).
A 409 is a race lost to another client; it is counted apart from the errors (5xx, transport errors,
any other 4xx).

Prints requests/s, p50/p95/p99 per request class, errors and conflicts, where the CPU went (clients,
server, the PostgreSQL backends of this database, everything else on the machine), database time and
transactions per request (pg_stat_database), and the engine's own steps/s, measured right after the
load with benchmarks/engine.py on the same PostgreSQL server. Targets: 0 errors, p95 of reads under
200 ms, at >= 200 requests/s. APPEALS_BENCH_PG_URL names the server and the database to connect to for
creating and dropping (default postgresql+psycopg://postgres@127.0.0.1:5432/test, as engine.py).

    python benchmarks/http.py                            # 60 s, 50 clients, 2 workers
    python benchmarks/http.py --rate 200                 # paced clients: latency at 200 requests/s
    python benchmarks/http.py --duration 15 --clients 20 --appeals 300 --no-engine    # smoke run
"""

from __future__ import annotations

import os
import sys

# This file is named http.py: running it puts its folder first on sys.path, where it would shadow the
# standard library's `http` package for everything imported below (httpx, urllib, uvicorn).
_HERE = os.path.dirname(os.path.realpath(__file__))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or os.curdir) != _HERE]
sys.path.append(_HERE)  # last: the shared benchmark helpers, after the standard library

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import secrets  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from pathlib import Path  # noqa: E402
from types import FrameType  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from bench_databases import EVENT, PG_URL, drop_database, plain_url, recreate_database  # noqa: E402
from sqlalchemy import text  # noqa: E402

from workflow.bootstrap import connect  # noqa: E402
from workflow.persistence.unit_of_work import UnitOfWork  # noqa: E402
from workflow.scheduling.jobs import Housekeeping  # noqa: E402
from workflow.services.accounts import hash_password  # noqa: E402
from workflow.services.demo_appeals import seed_demo_appeals  # noqa: E402
from workflow.services.demo_data import DEMO_PASSWORD, load_demo  # noqa: E402

log = logging.getLogger("bench.http")
TARGET_ERRORS, TARGET_READ_P95_MS, TARGET_RPS = 0, 200.0, 200.0
READS = ("worklist", "detail", "summary")
CLASSES = (*READS, "action")
# The outdoor-event path; {b} is the building of the enterprise (enterprises 1-30 are in B01, ...).
PATH = [
    ("start_pre_check", "staff-b{b:02d}", None),
    ("pass_pre_check", "staff-b{b:02d}", None),
    ("file_application", "specialist-b{b:02d}", {"materials_complete": True}),
    ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"}),
    ("approve", "bureau-approval-01", {"inspection_findings": "ok"}),
]
# How far along PATH the extra appeals start (steps fired, weight): a queue for every role.
DEPTHS = [(0, 40), (2, 30), (3, 15), (4, 5), (5, 10)]
# Who the clients are: the people who act most, enterprises following their appeals, supervisors watching.
ROLE_SHARES = [("staff", 0.20), ("specialist", 0.24), ("bureau", 0.08), ("supervisor", 0.12), ("contact", 0.36)]
USERS = {
    "staff": [f"staff-b{b:02d}" for b in range(1, 11)],
    "specialist": [f"specialist-b{b:02d}" for b in range(1, 11)],
    "bureau": ["bureau-approval-01", "bureau-approval-02"],
    "supervisor": [*(f"community-c0{c}" for c in (1, 3, 5)), "subdistrict-s01", "subdistrict-s02", "district-01"],
    "contact": [f"contact-{e:04d}" for e in range(1, 301, 17)],
}
NEVER_FIRED = {"withdraw"}  # clients keep appeals alive; withdrawing ends them without work


# --- database -----------------------------------------------------------------------------------------
def prepare(url: str, appeals: int, seed: int) -> dict[str, Any]:
    """The demo district and appeals, then `appeals` outdoor-event permits spread along the path."""
    started = time.perf_counter()
    wf = connect(url, upgrade=True)
    with UnitOfWork(wf.engine) as uow:
        load_demo(uow, wf.clock, password_hash=hash_password(DEMO_PASSWORD))
        uow.commit()
    demo = len(seed_demo_appeals(wf))
    log.info("demo district and %d demo appeals loaded, %.0f s", demo, time.perf_counter() - started)
    rng = random.Random(seed)
    depths = [d for d, _ in DEPTHS]
    weights = [w for _, w in DEPTHS]
    steps = 0
    for i in range(appeals):
        enterprise = 1 + i % 300
        building = 1 + (enterprise - 1) // 30
        contact = f"contact-{enterprise:04d}"
        number = wf.submit("outdoor_event_permit", enterprise_id=enterprise, as_user=contact, data=EVENT)["number"]
        for trigger, actor, data in PATH[: rng.choices(depths, weights)[0]]:
            wf.fire(number, trigger, as_user=actor.format(b=building), data=data)
            steps += 1
        if (i + 1) % 500 == 0:
            log.info("prepared %d of %d extra appeals", i + 1, appeals)
    # The servers' sweepers would spend the measured minute on the setup's backlog instead of on what the
    # clients cause: mark the setup's notices sent (delivering them takes minutes), then sweep once to
    # escalate the demo appeals past their limits and deliver the few notices that causes.
    with wf.engine.begin() as conn:
        marked = conn.execute(
            text("UPDATE notices SET status = 'sent', sent_at = now(), attempts = 1 WHERE status = 'pending'")
        ).rowcount
    swept = Housekeeping(wf).sweep()
    log.info("setup: %d notices marked sent; then a sweep: %s", marked, swept)
    wf.engine.dispose()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # plans as a database that autovacuum has seen, not a just-loaded one
    seconds = time.perf_counter() - started
    log.info("database ready: %d demo + %d extra appeals, %d steps, %.0f s", demo, appeals, steps, seconds)
    delivered = swept["notices"]["sent"] + marked
    return {
        "demo_appeals": demo,
        "extra_appeals": appeals,
        "setup_steps": steps,
        "setup_notices": delivered,
        "setup_s": seconds,
    }


DB_COUNTERS = ("xact_commit", "xact_rollback", "active_time", "tup_returned", "tup_fetched", "sessions")


def db_stats(name: str) -> dict[str, float]:
    """The database's cumulative counters; active_time is ms spent running statements, by all backends."""
    with psycopg.connect(plain_url(PG_URL), autocommit=True) as conn:
        row = conn.execute(f"SELECT {', '.join(DB_COUNTERS)} FROM pg_stat_database WHERE datname = %s", (name,))
        values = row.fetchone() or (0,) * len(DB_COUNTERS)
    return {key: float(value or 0) for key, value in zip(DB_COUNTERS, values, strict=True)}


# --- the server ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, port: int, workers: int, workdir: Path, sweeper: bool) -> subprocess.Popen[bytes]:
    """`appeals serve` as deployed (secret key set, not --demo), in its own process group so that it can
    be stopped as a whole and Ctrl-C in this terminal reaches only us."""
    env = {
        **os.environ,
        "APPEALS_SECRET_KEY": secrets.token_urlsafe(48),
        "APPEALS_MAILDIR": str(workdir / "maildir"),  # the sweepers deliver notices; keep them out of the repo
    }
    command = [sys.executable, "-m", "workflow.cli", "serve", "--db", url, "--port", str(port)]
    command += ["--workers", str(workers), *([] if sweeper else ["--no-sweeper"])]
    logfile = (workdir / "server.log").open("wb")
    log.info("starting: appeals serve --db %s --port %d --workers %d", url, port, workers)
    return subprocess.Popen(
        command, cwd=workdir, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(server: subprocess.Popen[bytes], base: str, workdir: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}:\n{server_log_tail(workdir)}")
        try:
            if httpx.get(f"{base}/openapi.json", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {timeout:.0f} s:\n{server_log_tail(workdir)}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (uvicorn's supervisor and its workers), then SIGKILL."""
    if server.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(grace)
            return
        except subprocess.TimeoutExpired:
            log.warning("server group %d still running after %s", server.pid, sig.name)


def server_log_tail(workdir: Path, lines: int = 30) -> str:
    path = workdir / "server.log"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def sign_in(base: str, usernames: list[str]) -> dict[str, str]:
    """One token per user, before the clock starts (each sign-in is a deliberate scrypt)."""
    tokens = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for username in usernames:
            reply = client.post("/api/v1/auth/token", json={"username": username, "password": DEMO_PASSWORD})
            reply.raise_for_status()
            tokens[username] = reply.json()["access_token"]
    return tokens


# --- CPU and load on the machine ----------------------------------------------------------------------
TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds, CPU seconds of its children that exited), None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, (int(fields[13]) + int(fields[14])) / TICK


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_snapshot(server_pid: int, database: str) -> dict[str, Any]:
    """CPU seconds used so far by the server's processes, by the PostgreSQL backends of the database and by
    backends that have exited (the postmaster collects their time), plus the machine's busy jiffies."""
    procs = {
        int(e.name): stat for e in Path("/proc").iterdir() if e.name.isdigit() and (stat := _proc_stat(int(e.name)))
    }
    tree, grew = {server_pid}, True
    while grew:
        children = {pid for pid, (ppid, _, _) in procs.items() if ppid in tree} - tree
        tree |= children
        grew = bool(children)
    commands = {pid: _cmdline(pid) for pid in procs}
    backends = {pid for pid, c in commands.items() if c.startswith("postgres:") and f" {database} " in c}
    postmasters = {pid for pid, c in commands.items() if c.split(" ", 1)[0].endswith("/bin/postgres")}
    cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return {
        "server": {pid: procs[pid][1] for pid in tree if pid in procs},
        "backends": {pid: procs[pid][1] for pid in backends},
        "exited_backends_s": sum(procs[pid][2] for pid in postmasters),
        "busy_s": (sum(cpu) - cpu[3] - cpu[4]) / TICK,  # all but idle and iowait
        "loadavg": os.getloadavg(),
    }


def _delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def cpu_used(before: dict[str, Any], after: dict[str, Any], clients_s: float, seconds: float) -> dict[str, Any]:
    """Cores used on average over the window, by who."""
    server = _delta(before["server"], after["server"])
    backends = _delta(before["backends"], after["backends"])
    exited = after["exited_backends_s"] - before["exited_backends_s"]
    busy = after["busy_s"] - before["busy_s"]
    return {
        "cores": os.cpu_count(),
        "machine_busy": busy / seconds,
        "clients": clients_s / seconds,
        "server": server / seconds,
        "postgres_backends": backends / seconds,
        "postgres_exited_backends": exited / seconds,  # of any database: connections that closed in the window
        "everything_else": max(0.0, busy - server - backends - exited - clients_s) / seconds,
        "server_cpu_s": server,
        "loadavg_start": before["loadavg"],
        "loadavg_end": after["loadavg"],
    }


# --- the clients --------------------------------------------------------------------------------------
@dataclass
class Sample:
    kind: str
    started: float  # time.time()
    latency: float  # seconds, send to the whole body received
    outcome: str  # ok, conflict, error
    code: str  # HTTP status, or the transport error's class name


@dataclass
class ClientSpec:
    username: str
    group: str  # a key of USERS
    token: str


@dataclass
class Window:
    start: float  # time.time() the clients begin
    measure_from: float
    measure_to: float
    rate: float | None  # requests/s for all clients together, None for as fast as they go
    clients: int
    action_share: float
    seed: int


@dataclass
class Client:
    """One person working their queue: the worklist, an appeal, now and then an action on it."""

    spec: ClientSpec
    http: httpx.AsyncClient
    rng: random.Random
    action_share: float
    numbers: list[str] = field(default_factory=list)
    pages: int = 1
    current: dict[str, Any] | None = None  # an appeal just read that has actions for us
    samples: list[Sample] = field(default_factory=list)
    messages: Counter[str] = field(default_factory=Counter)

    async def step(self) -> None:
        roll = self.rng.random()
        if self.spec.group == "supervisor" and roll < 0.4:
            await self.summary()
        elif self.current is not None and self.rng.random() < self.action_share:
            await self.act(self.current)
        elif self.numbers and roll < 0.75:
            await self.detail(self.rng.choice(self.numbers))
        else:
            await self.worklist()

    async def worklist(self) -> None:
        page = 1 if self.rng.random() < 0.7 else self.rng.randint(1, min(self.pages, 5))
        params: dict[str, Any] = {"page": page, "page_size": 20}
        if self.spec.group not in ("contact", "supervisor"):
            params["assignee"] = "me"  # contacts and supervisors look at everything in their reach
        body = await self.call("worklist", "GET", "/api/v1/appeals", params=params)
        if body is not None:
            self.pages = max(1, math.ceil(body["total"] / 20))
            open_ones = [a["number"] for a in body["appeals"] if a["is_open"]]
            self.numbers = open_ones or [a["number"] for a in body["appeals"]]

    async def detail(self, number: str) -> None:
        body = await self.call("detail", "GET", f"/api/v1/appeals/{number}")
        self.current = body if body is not None and fireable(body) else None

    async def summary(self) -> None:
        await self.call("summary", "GET", "/api/v1/sla/summary")

    async def act(self, appeal: dict[str, Any]) -> None:
        action = self.rng.choice(fireable(appeal))
        payload = {
            "data": fill(action["fields"], self.rng),
            "comment": f"压测：{action['title']}" if action["comment_required"] else None,
            "expected_version": appeal["version"],
        }
        path = f"/api/v1/appeals/{appeal['number']}/actions/{action['trigger']}"
        body = await self.call("action", "POST", path, json=payload)
        # Carry on with the same appeal while it has work for us, as a person at the appeal page would.
        self.current = body if body is not None and fireable(body) else None

    async def call(self, kind: str, method: str, path: str, **options: Any) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {self.spec.token}"}
        started, clock = time.time(), time.perf_counter()
        try:
            reply = await self.http.request(method, path, headers=headers, **options)
        except httpx.TransportError as exc:
            self.record(kind, started, time.perf_counter() - clock, "error", type(exc).__name__, str(exc))
            return None
        latency = time.perf_counter() - clock
        if reply.status_code < 300:
            self.record(kind, started, latency, "ok", str(reply.status_code))
            result: dict[str, Any] = reply.json()
            return result
        outcome = "conflict" if reply.status_code == 409 else "error"
        error = _error_code(reply)
        self.record(kind, started, latency, outcome, f"{reply.status_code} {error}", reply.text[:300])
        return None

    def record(self, kind: str, started: float, latency: float, outcome: str, code: str, text: str = "") -> None:
        self.samples.append(Sample(kind, started, latency, outcome, code))
        if outcome == "error":
            self.messages[f"{kind} {code}: {text}"] += 1


def _error_code(reply: httpx.Response) -> str:
    try:
        return str(reply.json().get("error", ""))
    except ValueError:
        return ""


def fireable(appeal: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in appeal.get("actions", []) if a["trigger"] not in NEVER_FIRED]


def fill(fields: list[dict[str, Any]], rng: random.Random) -> dict[str, Any]:
    """A valid value for each field from its description (type, choices, bounds), as a person would type."""
    values: dict[str, Any] = {}
    today = datetime.now(UTC) + timedelta(hours=8)
    for spec in fields:
        kind = spec["type"]
        if kind == "boolean":
            value: Any = True  # e.g. materials_complete: the guard wants it
        elif kind == "choice":
            value = spec["choices"][0]
        elif kind == "multichoice":
            value = spec["choices"][:1]
        elif kind in ("integer", "number"):
            low, high = spec.get("min", 1), spec.get("max", 1_000_000)
            value = max(low, min(high, rng.randint(1, 5000)))
        elif kind == "date":
            value = (today + timedelta(days=10)).date().isoformat()
        elif kind == "datetime":
            value = (today + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0).isoformat()
        elif kind == "email":
            value = "bench@example.com"
        elif kind == "phone":
            value = "0731-8888 0000"
        else:
            value = f"压测：{spec['title']}"[: spec.get("max_length", 200)]
        values[spec["name"]] = value
    return values


async def run_clients(base: str, specs: list[ClientSpec], window: Window, offset: int) -> list[Client]:
    # Drop idle connections before uvicorn does (timeout_keep_alive 5 s, httpx's default expiry is also 5 s):
    # with equal timeouts a request sent as the server closes the connection fails with ReadError.
    limits = httpx.Limits(max_connections=len(specs), max_keepalive_connections=len(specs), keepalive_expiry=2.0)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as http:
        clients = [
            Client(spec, http, random.Random(window.seed + offset + i), window.action_share)
            for i, spec in enumerate(specs)
        ]
        await asyncio.sleep(max(0.0, window.start - time.time()))
        await asyncio.gather(*(drive(c, window, offset + i) for i, c in enumerate(clients)))
    return clients


async def drive(client: Client, window: Window, index: int) -> None:
    """Back to back, or paced at rate/clients requests/s each (staggered so they do not arrive together)."""
    interval = window.clients / window.rate if window.rate else 0.0
    due = window.start + interval * index / window.clients
    while time.time() < window.measure_to:
        if interval:
            await asyncio.sleep(max(0.0, due - time.time()))
            due += interval
        await client.step()


async def probe(base: str, specs: list[ClientSpec], steps: int, seed: int) -> list[Sample]:
    """One request at a time, one person after another: each class's service time with no queue before it."""
    samples: list[Sample] = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for i, spec in enumerate(specs):
            client = Client(spec, http, random.Random(seed - 1 - i), action_share=0.5)
            for _ in range(steps):
                await client.step()
            samples += client.samples
    return samples


def client_process(base: str, specs: list[ClientSpec], window: Window, offset: int, out: Any) -> None:
    """Entry point of one client process; sends back its samples and the CPU it used in the window."""

    async def main() -> tuple[list[Client], float]:
        usage: list[float] = []

        async def meter() -> None:
            for moment in (window.measure_from, window.measure_to):
                await asyncio.sleep(max(0.0, moment - time.time()))
                ru = resource.getrusage(resource.RUSAGE_SELF)
                usage.append(ru.ru_utime + ru.ru_stime)

        metering = asyncio.create_task(meter())
        clients = await run_clients(base, specs, window, offset)
        await metering
        return clients, usage[1] - usage[0]

    clients, cpu = asyncio.run(main())
    samples = [s for c in clients for s in c.samples if window.measure_from <= s.started < window.measure_to]
    messages: Counter[str] = Counter()
    for c in clients:
        messages.update(c.messages)
    out.put({"samples": samples, "cpu_s": cpu, "messages": messages})


def assign_clients(count: int) -> list[tuple[str, str]]:
    """(username, group) per client, in the proportions of ROLE_SHARES; users repeat when there are
    more clients than people, and then race each other for the same appeals (409s)."""
    counts = {group: int(share * count) for group, share in ROLE_SHARES}
    for group, _ in ROLE_SHARES:
        if sum(counts.values()) >= count:
            break
        counts[group] += 1
    return [(USERS[group][i % len(USERS[group])], group) for group, n in counts.items() for i in range(n)]


def run_load(
    base: str, specs: list[ClientSpec], window: Window, processes: int, snapshot: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Runs the client processes; meanwhile takes `snapshot()` at the start and the end of the window."""
    context = multiprocessing.get_context("fork")  # nothing to re-import: the clients need what is loaded
    queue = context.Queue()
    shares = [specs[i::processes] for i in range(processes)]
    workers = [
        context.Process(target=client_process, args=(base, share, window, sum(map(len, shares[:i])), queue))
        for i, share in enumerate(shares)
        if share
    ]
    for worker in workers:
        worker.daemon = True  # never outlive us, whatever happens
        worker.start()
    try:
        time.sleep(max(0.0, window.measure_from - time.time()))
        before = snapshot()
        time.sleep(max(0.0, window.measure_to - time.time()))
        after = snapshot()
        results = [queue.get(timeout=120) for _ in workers]
    except BaseException:  # Ctrl-C, SIGTERM, a dead client: do not wait for the clients' minute to end
        for worker in workers:
            worker.terminate()
        raise
    finally:
        for worker in workers:
            worker.join(10)
            if worker.is_alive():
                worker.terminate()
    messages: Counter[str] = Counter()
    for result in results:
        messages.update(result["messages"])
    return {
        "samples": [s for r in results for s in r["samples"]],
        "clients_cpu_s": sum(r["cpu_s"] for r in results),
        "messages": messages,
        "before": before,
        "after": after,
    }


# --- figures ------------------------------------------------------------------------------------------
def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[max(0, math.ceil(p / 100 * len(sorted_values)) - 1)]


def summarise(samples: list[Sample], seconds: float) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        groups[s.kind].append(s)
        groups["reads" if s.kind in READS else "actions"].append(s)
        groups["all"].append(s)
    rows = {}
    for name in (*CLASSES, "reads", "actions", "all"):
        group = groups.get(name, [])
        latencies = sorted(s.latency * 1000 for s in group)
        outcomes = Counter(s.outcome for s in group)
        rows[name] = {
            "requests": len(group),
            "per_s": len(group) / seconds,
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1] if latencies else float("nan"),
            "ok": outcomes["ok"],
            "conflicts": outcomes["conflict"],
            "errors": outcomes["error"],
            "codes": dict(Counter(s.code for s in group if s.outcome != "ok")),
        }
    return rows


def verdicts(rows: dict[str, dict[str, Any]]) -> dict[str, bool]:
    return {
        "errors == 0": rows["all"]["errors"] <= TARGET_ERRORS,
        f"reads p95 < {TARGET_READ_P95_MS:.0f} ms": rows["reads"]["p95_ms"] < TARGET_READ_P95_MS,
        f"requests/s >= {TARGET_RPS:.0f}": rows["all"]["per_s"] >= TARGET_RPS,
    }


def measure_engine(appeals: int) -> dict[str, Any]:
    """benchmarks/engine.py on the same PostgreSQL server, in its own process, after the load."""
    command = [sys.executable, str(Path(_HERE) / "engine.py"), "--backend", "postgresql", "--appeals", str(appeals)]
    log.info("engine for comparison: %s", " ".join(command[1:]))
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(out[out.index("[") :])[0]
    return result


def print_report(report: dict[str, Any]) -> None:
    rows, cpu, db = report["classes"], report["cpu"], report["per_request"]
    print(f"\n{report['command']}  ({report['date']}, {cpu['cores']} cores, {report['duration_s']:.0f} s measured)")
    print(f"\n{'class':<10}{'requests':>10}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}", end="")
    print(f"{'409':>7}{'errors':>8}{'alone p50':>11}")
    for name, row in rows.items():
        print(
            f"{name:<10}{row['requests']:>10,}{row['per_s']:>9.1f}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}{row['conflicts']:>7}{row['errors']:>8}"
            f"{row['alone_p50_ms']:>11.1f}"
        )
    codes = rows["all"]["codes"]
    print(f"\nnot ok, by status and error code: {codes or 'none'}")
    for message, count in list(report["error_messages"].items())[:10]:
        print(f"  {count} x {message}")
    for line, count in report["server_log"]["problems"].items():
        print(f"  server log, {count} x {line}")
    print("\ntargets: " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in report["targets"].items()))
    print(
        f"\nCPU, cores used on average: machine {cpu['machine_busy']:.2f} of {cpu['cores']} = clients "
        f"{cpu['clients']:.2f} + server {cpu['server']:.2f} + PostgreSQL backends of the database "
        f"{cpu['postgres_backends']:.2f} + backends that exited in the window (any database) "
        f"{cpu['postgres_exited_backends']:.2f} + everything else {cpu['everything_else']:.2f}; load average "
        f"{_loads(cpu['loadavg_start'])} at the start, {_loads(cpu['loadavg_end'])} at the end"
    )
    print(
        f"per request: server CPU {db['server_cpu_ms']:.1f} ms, database active {db['active_ms']:.1f} ms, "
        f"{db['transactions']:.2f} transactions ({db['rollbacks']:.2f} rolled back), "
        f"{db['tuples']:.0f} tuples read; {report['db_sessions_opened']:.0f} new database sessions in the window"
    )
    engine = report.get("engine")
    if engine:
        actions = rows["actions"]["per_s"]
        print(
            f"actions completed {actions:.1f}/s over HTTP beside {rows['reads']['per_s']:.0f} reads/s; "
            f"the engine alone (engine.py, {engine['appeals']} appeals, one process): "
            f"{engine['steps_per_s']:.0f} steps/s (floor {engine['floor_tx_per_s']:.0f} tx/s)"
        )


def _loads(values: tuple[float, float, float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


# --- the run ------------------------------------------------------------------------------------------
@contextmanager
def terminated_cleanly() -> Iterator[None]:
    """SIGTERM becomes SystemExit so that the `finally` blocks stop the server and drop the database."""

    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> dict[str, Any]:
    url = recreate_database(args.database)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
            os.environ["APPEALS_MAILDIR"] = str(Path(tmp) / "maildir")  # the setup sweep's notices
            setup = prepare(url, args.appeals, args.seed)
            report = serve_and_load(args, url, Path(tmp))
            report["setup"] = setup
    finally:
        if args.keep_db:
            log.info("database %s kept", url)
        else:
            drop_database(url)
    if args.engine_appeals:
        report["engine"] = measure_engine(args.engine_appeals)
    return report


def serve_and_load(args: argparse.Namespace, url: str, workdir: Path) -> dict[str, Any]:
    port = args.port or free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(url, port, args.workers, workdir, sweeper=not args.no_sweeper)
    try:
        wait_ready(server, base, workdir)
        people = assign_clients(args.clients)
        tokens = sign_in(base, sorted({username for username, _ in people}))
        specs = [ClientSpec(username, group, tokens[username]) for username, group in people]
        alone = [next(s for s in specs if s.group == group) for group in sorted({s.group for s in specs})]
        log.info(
            "service times: %d steps each as %s, one request at a time",
            args.probe,
            ", ".join(a.username for a in alone),
        )
        probed = asyncio.run(probe(base, alone, args.probe, args.seed)) if args.probe else []
        start = time.time() + 2.0  # time for the client processes to start
        measure_from = start + args.warmup
        window = Window(
            start, measure_from, measure_from + args.duration, args.rate, len(specs), args.action_share, args.seed
        )
        log.info(
            "%d clients (%s) in %d processes: %.0f s warm-up, then %.0f s measured",
            len(specs),
            ", ".join(f"{group} {n}" for group, n in Counter(g for _, g in people).items()),
            args.client_processes,
            args.warmup,
            args.duration,
        )

        def snapshot() -> dict[str, Any]:
            return {"cpu": cpu_snapshot(server.pid, args.database), "db": db_stats(args.database)}

        load = run_load(base, specs, window, args.client_processes, snapshot)
        if server.poll() is not None:
            raise RuntimeError(f"the server died during the run:\n{server_log_tail(workdir)}")
        report = build_report(args, load, probed)
    finally:
        stop_server(server)
        kept = Path(tempfile.gettempdir()) / f"{args.database}-server.log"
        kept.write_bytes((workdir / "server.log").read_bytes())
        log.info("server log: %s", kept)
    report["server_log"] = {"path": str(kept), "problems": server_problems(kept)}
    return report


def server_problems(path: Path) -> dict[str, int]:
    """Lines of the server's log other than uvicorn's INFO lines (access log, start, stop), counted alike
    once their numbers are blanked: tracebacks, worker restarts, skipped sweeps, warnings."""
    lines = path.read_text(errors="replace").splitlines()
    return dict(Counter(re.sub(r"\d+", "#", line)[:200] for line in lines if not line.startswith("INFO:")))


def build_report(args: argparse.Namespace, load: dict[str, Any], probed: list[Sample]) -> dict[str, Any]:
    rows = summarise(load["samples"], args.duration)
    alone = summarise(probed, 1.0)
    for name, row in rows.items():
        row["alone_p50_ms"] = alone[name]["p50_ms"]  # the same class, one request at a time
    requests = max(1, rows["all"]["requests"])
    cpu = cpu_used(load["before"]["cpu"], load["after"]["cpu"], load["clients_cpu_s"], args.duration)
    db = {key: load["after"]["db"][key] - load["before"]["db"].get(key, 0.0) for key in load["after"]["db"]}
    return {
        "command": "python benchmarks/http.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).date().isoformat(),
        "duration_s": args.duration,
        "clients": args.clients,
        "workers": args.workers,
        "rate": args.rate,
        "classes": rows,
        "targets": verdicts(rows),
        "error_messages": dict(load["messages"].most_common()),
        "cpu": cpu,
        "per_request": {
            "server_cpu_ms": cpu["server_cpu_s"] * 1000 / requests,
            "active_ms": db["active_time"] / requests,
            "transactions": (db["xact_commit"] + db["xact_rollback"]) / requests,
            "rollbacks": db["xact_rollback"] / requests,
            "tuples": (db["tup_returned"] + db["tup_fetched"]) / requests,
        },
        "db_sessions_opened": db["sessions"],  # the pool's overflow connections are closed and opened again
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured (default 60)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring (default 5)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes (default 2)")
    parser.add_argument("--client-processes", type=int, default=2, help="processes the clients run in (default 2)")
    parser.add_argument("--rate", type=float, help="pace the clients to this many requests/s in all (default: none)")
    parser.add_argument(
        "--action-share", type=float, default=0.5, help="chance that a client holding an appeal with actions fires one"
    )
    parser.add_argument("--appeals", type=int, default=2000, help="outdoor-event permits added to the demo set")
    parser.add_argument("--engine-appeals", type=int, default=300, help="appeals for engine.py afterwards")
    parser.add_argument("--no-engine", dest="engine_appeals", action="store_const", const=0, help="skip engine.py")
    parser.add_argument("--database", default="appeals_bench_http", help="dropped and recreated at the start")
    parser.add_argument("--keep-db", action="store_true", help="leave the database for a look afterwards")
    parser.add_argument("--no-sweeper", action="store_true", help="serve --no-sweeper: no timers, no notice delivery")
    parser.add_argument("--probe", type=int, default=30, help="requests per person for the one-at-a-time service times")
    parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)  # our progress only: the engine logs every step at INFO
    with terminated_cleanly():
        report = run(args)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print_report(report)


if __name__ == "__main__":
    main()
