"""`appeals sweep|worker|calendar|sla`: time limits, the sweeper and the supervisors' report."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from workflow.cli.common import add_json_flag, open_workflow
from workflow.cli.output import emit_json, emit_line, emit_table
from workflow.errors import InvalidInput
from workflow.scheduling.jobs import SCHEDULED_BATCHES, Housekeeping
from workflow.scheduling.scheduler import SweepScheduler
from workflow.services.calendars import load_notice

SHANGHAI = ZoneInfo("Asia/Shanghai")
INTERVAL_VARIABLE = "APPEALS_SWEEP_INTERVAL"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "sweep",
        help="fire the timers due now, once, and exit",
        description="One sweep: fire every due reminder and breach, then exit (for cron).",
    )
    p.add_argument("--lease", type=float, default=60, metavar="S", help="seconds a claim holds (default 60)")
    add_json_flag(p)
    p.set_defaults(handler=_sweep)

    p = commands.add_parser(
        "worker",
        help="sweep every few seconds until stopped",
        description="Run the sweeper under APScheduler until SIGINT or SIGTERM.",
    )
    p.add_argument(
        "--interval",
        type=float,
        default=float(os.environ.get(INTERVAL_VARIABLE, "5")),
        metavar="S",
        help=f"seconds between sweeps (default ${INTERVAL_VARIABLE} or 5)",
    )
    p.set_defaults(handler=_worker)

    calendar = commands.add_parser(
        "calendar", help="the working-day calendar", description="Holidays, make-up working days and official notices."
    )
    sub = calendar.add_subparsers(dest="calendar_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "load",
        help="load a year's official notice",
        description="Load a notice file (definitions/calendar/cn-<year>.yaml format) into the "
        "database for every node; open deadlines are recomputed.",
    )
    p.add_argument("file", metavar="FILE")
    add_json_flag(p)
    p.set_defaults(handler=_calendar_load)
    p = sub.add_parser(
        "show",
        help="a year's holidays and make-up working days",
        description="List a year's holidays and make-up working days; says official or estimated.",
    )
    p.add_argument("year", type=int, metavar="YEAR")
    add_json_flag(p)
    p.set_defaults(handler=_calendar_show)

    sla = commands.add_parser("sla", help="time-limit reports", description="Time-limit reports for supervisors.")
    sub = sla.add_subparsers(dest="sla_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "report",
        help="open / at risk / breached / paused per level and unit",
        description="Open, at-risk, breached and paused appeals per chain level and unit, with "
        "average working time to first response and to resolution, and the rates.",
    )
    p.add_argument("--unit", metavar="U", help="unit code; its subtree only")
    p.add_argument(
        "--as-of",
        metavar="TIME",
        type=_moment,
        help="ISO time (Asia/Shanghai if no offset), e.g. 2026-12-01T09:00; default now",
    )
    p.add_argument("--since", metavar="DATE", type=_moment, help="rates over appeals submitted since then")
    add_json_flag(p)
    p.set_defaults(handler=_sla_report)


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time like 2026-12-01T09:00 or 2026-12-01") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=SHANGHAI)


def _sweep(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    report = Housekeeping(wf, lease=timedelta(seconds=args.lease)).sweep()
    if args.json:
        emit_json(report)
        return 1 if report["errors"] else 0
    n = report["notices"]
    emit_line(
        f"timers: claimed {report['claimed']}, fired {report['fired']} ({report['reminders']} reminders, "
        f"{report['late_reminders']} of them late, "
        f"{report['escalations']} escalations, {report['breaches_at_top']} breaches at the district), "
        f"{report['skipped']} skipped; digests written {report['digests']}; notices: sent {n['sent']}, "
        f"skipped {n['skipped']}, retrying {n['retried']}, failed {n['failed']}"
    )
    return 1 if report["errors"] else 0


def _worker(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    scheduler = SweepScheduler(Housekeeping(wf, max_batches=SCHEDULED_BATCHES), interval=args.interval)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    scheduler.start()
    stop.wait()
    scheduler.shutdown()
    return 0


def _calendar_load(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise InvalidInput(f"no such notice file: {path} (format: definitions/calendar/cn-2026.yaml)")
    override, recomputed = load_notice(open_workflow(args), path)
    result = {
        "year": override.year,
        "holidays": len(override.holidays),
        "workdays": len(override.workdays),
        "recomputed_appeals": recomputed,
    }
    if args.json:
        emit_json(result)
    else:
        emit_line(
            f"{override.year}: {len(override.holidays)} holidays, {len(override.workdays)} make-up working "
            f"days loaded; deadlines of {recomputed} open appeal(s) recomputed"
        )
    return 0


def _calendar_show(args: argparse.Namespace) -> int:
    if not 1900 < args.year < 2200:
        raise InvalidInput(f"year {args.year} is out of range; give a year between 1901 and 2199")
    info = open_workflow(args).planner.calendar.year_info(args.year)

    def days(items: list[tuple[date, str]]) -> list[dict[str, str]]:
        return [{"date": d.isoformat(), "weekday": d.strftime("%a"), "name": name} for d, name in items]

    view: dict[str, Any] = {
        "year": info.year,
        "official": info.official,
        "source": info.source,
        "holidays": days(info.holidays),
        "workdays": days(info.workdays),
    }
    if args.json:
        emit_json(view)
        return 0
    emit_line(f"{info.year}: {'official notice' if info.official else 'ESTIMATED'} ({info.source})")
    emit_line("\nholidays (days off):")
    emit_table(["DATE", "DAY", "NAME"], [[d["date"], d["weekday"], d["name"]] for d in view["holidays"]])
    emit_line("\nmake-up working days (调休):")
    emit_table(["DATE", "DAY", "NAME"], [[d["date"], d["weekday"], d["name"]] for d in view["workdays"]])
    return 0


def _sla_report(args: argparse.Namespace) -> int:
    report = open_workflow(args).sla_report(unit=args.unit, as_of=args.as_of, since=args.since)
    if args.json:
        emit_json(report)
        return 0
    emit_line(f"time limits as of {report['as_of']}" + (f" in {report['unit']['name']}" if report["unit"] else ""))
    rows = []
    for level in report["levels"]:
        for entry in level["units"]:
            rows.append(
                [
                    level["level"],
                    entry["unit"]["code"],
                    entry["unit"]["name"],
                    entry["open"],
                    entry["on_track"],
                    entry["at_risk"],
                    entry["breached"],
                    entry["paused"],
                ]
            )
    emit_table(["LEVEL", "UNIT", "NAME", "OPEN", "ON TRACK", "AT RISK", "BREACHED", "PAUSED"], rows)
    t = report["totals"]
    emit_line(f"total: {t['open']} open, {t['at_risk']} at risk, {t['breached']} breached, {t['paused']} paused")
    r = report["rates"]

    def pct(value: float | None) -> str:
        return f"{value:.0%}" if value is not None else "-"

    def span(value: dict[str, Any] | None) -> str:
        return value["text"] if value else "-"

    emit_line(
        f"submitted {r['submitted']}: response rate {pct(r['response_rate'])} (avg "
        f"{span(r['avg_working_time_to_first_response'])} working), resolution rate "
        f"{pct(r['resolution_rate'])} (avg {span(r['avg_working_time_to_resolution'])}), within limit "
        f"{pct(r['resolved_within_limit_rate'])}"
    )
    return 0
