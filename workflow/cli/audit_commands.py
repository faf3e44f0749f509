"""`appeals audit seal|verify` and `appeals backup`: is the audit trail whole, and a copy to keep."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.cli.common import add_json_flag, open_engine, open_workflow
from workflow.cli.output import emit_json, emit_line
from workflow.services import audit
from workflow.services.backup import backup_sqlite


def register(commands: Any) -> None:
    group = commands.add_parser(
        "audit",
        help="verify and seal the audit trail",
        description="Every audit event is hashed into its appeal's chain; verify recomputes the chains and "
        "replays each appeal, seal records every chain's head to check against later.",
    )
    sub = group.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "verify",
        help="check every chain and replay every appeal",
        description="Recompute every appeal's hash chain, replay its events and compare them with its row. "
        "Lists each problem with the appeal number and event sequence (altered_event, missing_event, "
        "forged_event, row_changed_without_event, seal_mismatch). Exit 0 when clean, 1 when anything is wrong.",
    )
    p.add_argument("--appeal", metavar="NUMBER", help="only this appeal")
    p.add_argument("--seal", metavar="FILE", type=Path, help="also check that every chain passes through this seal")
    add_json_flag(p)
    p.set_defaults(handler=_verify)

    p = sub.add_parser(
        "seal",
        help="record the head of every chain",
        description="Record the head of every appeal's chain with a seal hash in the database; with --out also "
        "write them to FILE, to keep outside the database (verify --seal FILE then catches a history "
        "rewritten consistently from the start).",
    )
    p.add_argument("--out", metavar="FILE", type=Path, help="also write the seal here (never overwritten)")
    add_json_flag(p)
    p.set_defaults(handler=_seal)

    p = commands.add_parser(
        "backup",
        help="copy a SQLite database while it serves",
        description="Copy the SQLite database to FILE with SQLite's online backup API (safe while the "
        "application serves). On PostgreSQL use pg_dump -Fc and pg_restore (see the README).",
    )
    p.add_argument("file", metavar="FILE", type=Path, help="where to write the copy (must not exist)")
    add_json_flag(p)
    p.set_defaults(handler=_backup)


def _verify(args: argparse.Namespace) -> int:
    sealed = audit.read_seal(args.seal) if args.seal is not None else None
    wf = open_workflow(args)
    report = audit.verify(wf, number=args.appeal, sealed=sealed)
    if args.json:
        emit_json(report.as_dict())
    else:
        for problem in report.problems:
            emit_line(str(problem))
        verdict = "clean" if report.ok else f"{len(report.problems)} problems"
        sealed_by = f", checked against seal {report.sealed['seal'][:12]}" if report.sealed else ""
        emit_line(f"{report.appeals} appeals, {report.events} events verified{sealed_by}: {verdict}")
    return 0 if report.ok else 1


def _seal(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    made = audit.seal(wf, out=args.out)
    if args.json:
        emit_json(
            {
                "seal": made.digest,
                "sealed_at": made.sealed_at.isoformat(),
                "appeals": len(made.heads),
                "events": made.events,
                "file": str(args.out) if args.out else None,
            }
        )
    else:
        written = f"; written to {args.out}" if args.out else ""
        emit_line(f"sealed {len(made.heads)} appeals, {made.events} events: seal {made.digest}{written}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    report = backup_sqlite(open_engine(args), args.file)
    if args.json:
        emit_json(vars(report))
    else:
        emit_line(
            f"backup written to {report.path}: {report.bytes} bytes, {report.appeals} appeals, {report.events} events"
        )
    return 0
