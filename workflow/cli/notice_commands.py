"""`appeals notices ...`: check and preview templates, deliver, inspect failures, read the inbox."""

from __future__ import annotations

import argparse
from typing import Any

from notifications.channels import channel_from_environment, sender_address
from notifications.dispatcher import Dispatcher, max_attempts_from_environment
from notifications.inbox import inbox_view, mark_read
from notifications.outbox import MODES, Outbox
from notifications.rendering import LOCALES, Renderer, RenderError
from notifications.samples import render_extras, sample_context
from workflow.bootstrap import definition_paths
from workflow.cli.common import add_json_flag, open_workflow
from workflow.cli.output import emit_json, emit_line, emit_table
from workflow.definitions import load_definitions
from workflow.domain.notices import NoticeKind
from workflow.errors import InvalidInput, NotFound, UserNotFound
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.commands import load_actor
from workflow.services.sweeper import node_name
from workflow.services.views import local_time

KINDS = [kind.value for kind in NoticeKind]


def register(commands: Any) -> None:
    notices = commands.add_parser(
        "notices",
        help="templated notices: check, preview, deliver, inbox",
        description="Notices: templates, the outbox and the in-app inbox.",
    )
    sub = notices.add_subparsers(dest="notices_command", metavar="ACTION", required=True)

    p = sub.add_parser(
        "check",
        help="render every template against every definition's sample data",
        description="Render every notice kind in every locale against sample data of every "
        "definition; report missing variables and templates. Exit 1 if any fail.",
    )
    add_json_flag(p)
    p.set_defaults(handler=_check)

    p = sub.add_parser(
        "preview",
        help="print a rendered notice for an appeal",
        description="Render notice KIND for appeal NUMBER as its current data stands.",
    )
    p.add_argument("kind", metavar="KIND", choices=KINDS, help=", ".join(KINDS))
    p.add_argument("--case", dest="number", required=True, metavar="NUMBER")
    p.add_argument("--locale", default="zh-CN", choices=list(LOCALES))
    p.add_argument("--html", action="store_true", help="print the HTML body instead of the text body")
    add_json_flag(p)
    p.set_defaults(handler=_preview)

    p = sub.add_parser(
        "dispatch",
        help="deliver pending notices once",
        description="Deliver pending notices once (SMTP if APPEALS_SMTP_URL, else ./maildir).",
    )
    add_json_flag(p)
    p.set_defaults(handler=_dispatch)

    p = sub.add_parser(
        "failed",
        help="notices that could not be delivered",
        description="Notices given up on (incidents), newest first, a page at a time with the total: "
        "retry them with `appeals notices retry ID`.",
    )
    p.add_argument("--limit", type=_count, default=100, metavar="N", help="notices per page (default 100)")
    p.add_argument("--offset", type=_count, default=0, metavar="N", help="skip the N newest (default 0)")
    p.add_argument("--all", action="store_true", help="every failed notice, however many (ignores --limit)")
    add_json_flag(p)
    p.set_defaults(handler=_failed)

    p = sub.add_parser("retry", help="queue a failed notice again", description="Queue a failed notice again.")
    p.add_argument("id", type=int, metavar="ID")
    add_json_flag(p)
    p.set_defaults(handler=_retry)

    p = sub.add_parser("inbox", help="a user's in-app notices", description="A user's in-app notices, newest first.")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--unread", action="store_true")
    p.add_argument("--limit", type=int, default=20, metavar="N")
    add_json_flag(p)
    p.set_defaults(handler=_inbox)

    p = sub.add_parser("read", help="mark notices read", description="Mark in-app notices read.")
    p.add_argument("ids", type=int, nargs="+", metavar="ID")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_json_flag(p)
    p.set_defaults(handler=_read)

    p = sub.add_parser(
        "prefs",
        help="a user's email preferences per notice kind",
        description="Show or set email preferences: email (default), off, or digest only.",
    )
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument(
        "--set",
        dest="changes",
        action="append",
        default=[],
        metavar="KIND=MODE",
        help=f"e.g. reminder=digest; modes: {', '.join(MODES)}; KIND may be 'all'",
    )
    add_json_flag(p)
    p.set_defaults(handler=_prefs)


def _check(args: argparse.Namespace) -> int:
    renderer = Renderer()
    problems: list[dict[str, str]] = []
    checked = 0
    for definition in load_definitions(definition_paths()):
        for kind in KINDS:
            for locale in LOCALES:
                checked += 1
                try:
                    renderer.render(kind, locale, sample_context(kind, definition))
                except RenderError as exc:
                    problems.append({"definition": definition.name, "kind": kind, "locale": locale, "error": str(exc)})
    if args.json:
        emit_json({"checked": checked, "problems": problems})
    else:
        for p in problems:
            emit_line(f"{p['definition']}: {p['error']}")
        emit_line(f"{checked} renderings checked, {len(problems)} problem(s)")
    return 1 if problems else 0


def _preview(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    record = wf.record(args.number)
    with UnitOfWork(wf.engine, read_only=True) as uow:
        definition = wf.registry.get(uow, record.definition_id).spec
    context = sample_context(args.kind, definition)
    shown = wf.show(args.number, locale=args.locale)
    context["appeal"] = {
        **context.get("appeal", {}),
        **{k: shown[k] for k in ("number", "state", "level")},
        "data": shown["data"],
        "enterprise": shown["enterprise"]["name"],
        "state_title": dict(definition.states[record.state].title),
        "due_at": shown["sla"]["due_at"],
        "link": f"/appeals/{args.number}",
    }
    context.update(
        render_extras(args.kind, notice_id=0, created_at=wf.clock.now(), display_name="（预览）", username="preview")
    )
    rendered = Renderer().render(args.kind, args.locale, context)
    if args.json:
        emit_json(
            {"subject": rendered.subject, "text": rendered.text, "html": rendered.html, "locale": rendered.locale}
        )
    else:
        emit_line(f"Subject: {rendered.subject}\n")
        emit_line(rendered.html if args.html else rendered.text)
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    report = Dispatcher(
        wf.engine,
        wf.clock,
        channel_from_environment(),
        node=node_name(),
        sender=sender_address(),
        max_attempts=max_attempts_from_environment(),
    ).dispatch()
    if args.json:
        emit_json(report.as_dict())
    else:
        emit_line(
            f"claimed {report.claimed}: sent {report.sent}, skipped {report.skipped}, "
            f"retrying {report.retried}, failed {report.failed}"
        )
    return 0


def _count(text: str) -> int:
    """--limit and --offset: a whole number, 0 or more (argparse turns the error into exit 2)."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number 0 or more")
    return int(text)


def _failed(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    limit = None if args.all else args.limit
    with UnitOfWork(wf.engine, read_only=True) as uow:
        outbox = Outbox(uow.connection)
        rows = outbox.failed(limit, args.offset)
        total = outbox.failed_count()
        names = uow.repo.usernames([r.recipient_id for r in rows])
    items = [
        {
            "id": r.id,
            "kind": r.kind,
            "recipient": names.get(r.recipient_id),
            "attempts": r.attempts,
            "created_at": local_time(r.created_at),
            "error": r.last_error,
            "number": (r.payload.get("appeal") or {}).get("number"),
        }
        for r in rows
    ]
    if args.json:
        emit_json({"total": total, "offset": args.offset, "limit": limit, "notices": items})
    else:
        emit_table(
            ["ID", "KIND", "APPEAL", "TO", "TRIES", "ERROR"],
            [[i["id"], i["kind"], i["number"] or "-", i["recipient"], i["attempts"], i["error"]] for i in items],
        )
        shown = f"{args.offset + 1}-{args.offset + len(items)}" if items else "none"
        emit_line(f"{shown} of {total} failed notice(s)")
        if args.offset + len(items) < total:
            emit_line(f"more: --offset {args.offset + len(items)} (or --all)")
    return 0


def _retry(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    with UnitOfWork(wf.engine) as uow:
        outbox = Outbox(uow.connection)
        row = outbox.get(args.id)
        if row is None:
            raise NotFound(f"no notice with id {args.id} (see `appeals notices failed`)")
        if not outbox.retry(args.id, wf.clock.now()):
            raise InvalidInput(f"notice {args.id} is {row.status!r}; only failed notices can be retried")
        uow.commit()
    if args.json:
        emit_json({"id": args.id, "status": "pending"})
    else:
        emit_line(f"notice {args.id} queued again")
    return 0


def _inbox(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    with UnitOfWork(wf.engine, read_only=True) as uow:
        actor = load_actor(uow, args.as_user)
    view = inbox_view(wf.engine, actor, unread_only=args.unread, limit=args.limit)
    if args.json:
        emit_json(
            {
                "unread": view["unread"],
                "notices": [{k: v for k, v in n.items() if k != "text"} for n in view["notices"]],
            }
        )
    else:
        emit_line(f"{args.as_user}: {view['unread']} unread")
        emit_table(
            ["ID", "", "WHEN", "SUBJECT"],
            [[n["id"], "" if n["read"] else "●", n["created_at"], n["subject"]] for n in view["notices"]],
        )
    return 0


def _read(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    with UnitOfWork(wf.engine, read_only=True) as uow:
        actor = load_actor(uow, args.as_user)
    result = mark_read(wf.engine, wf.clock, actor, args.ids)
    if args.json:
        emit_json(result)
    else:
        emit_line(f"{result['marked']} marked read; {result['unread']} unread left")
    return 0


def _prefs(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    with UnitOfWork(wf.engine) as uow:
        actor = uow.repo.actor(args.as_user)
        if actor is None:
            raise UserNotFound(args.as_user)
        outbox = Outbox(uow.connection)
        for change in args.changes:
            kind, _, mode = change.partition("=")
            if kind != "all" and kind not in KINDS:
                raise InvalidInput(f"unknown notice kind {kind!r}; known: all, {', '.join(KINDS)}")
            if mode not in MODES:
                raise InvalidInput(f"unknown mode {mode!r} for {kind}; allowed: {', '.join(MODES)}")
            for each in KINDS if kind == "all" else [kind]:
                outbox.set_preference(actor.id, each, mode)
        prefs = outbox.preferences(actor.id)
        uow.commit()
    view = {kind: prefs.get(kind, "email") for kind in KINDS}
    if args.json:
        emit_json(view)
    else:
        emit_table(["KIND", "MODE"], view.items())
    return 0
