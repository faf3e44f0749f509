"""`appeals serve` and `appeals user add|passwd|disable`: the web application and its accounts."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from notifications.dispatcher import SERVED_URL_VARIABLE
from workflow.bootstrap import database_url
from workflow.cli.common import add_json_flag, close_workflows, open_workflow
from workflow.cli.output import emit_json, emit_line, emit_table
from workflow.domain.org import Role
from workflow.errors import InvalidInput
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.scheduling.jobs import Housekeeping
from workflow.services.accounts import Accounts, hash_password
from workflow.services.demo_appeals import seed_demo_appeals
from workflow.services.demo_data import DEMO_PASSWORD, demo_loaded, load_demo

log = logging.getLogger(__name__)
DEMO_URL = "sqlite:///appeals-demo.db"
DEMO_LOGINS = [
    ("contact-0001", "enterprise_contact", "enterprise portal"),
    ("specialist-b01", "specialist", "worklist"),
    ("staff-b01", "building_staff", "building committee"),
    ("bureau-approval-01", "bureau_officer", "approval bureau"),
    ("community-c01", "community_supervisor", "dashboard"),
    ("subdistrict-s01", "subdistrict_supervisor", "dashboard"),
    ("district-01", "district_supervisor", "dashboard, whole district"),
]


def register(commands: Any) -> None:
    p = commands.add_parser(
        "serve",
        help="run the web application, the API and the sweeper",
        description="Serve the web pages, the REST API (/api/v1, schema at /openapi.json) and "
        "the sweeper. Needs APPEALS_SECRET_KEY unless --demo.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (each also sweeps)")
    p.add_argument(
        "--demo",
        action="store_true",
        help=f"demo district with appeals in every state ({DEMO_URL} unless --db), created if missing and "
        "kept if there; prints logins",
    )
    p.add_argument("--fresh", action="store_true", help="with --demo: delete the demo database and build it anew")
    p.add_argument("--no-sweeper", action="store_true", help="do not sweep in this process (cron runs it)")
    p.set_defaults(handler=_serve)

    user = commands._name_parser_map["user"]  # `user list` lives in admin_commands
    sub = next(a for a in user._actions if isinstance(a, argparse._SubParsersAction))
    p = sub.add_parser("add", help="create an account", description="Create an account with a password.")
    p.add_argument("username")
    p.add_argument("--name", required=True, help="display name")
    p.add_argument("--role", required=True, choices=[r.value for r in Role if r is not Role.SYSTEM])
    p.add_argument("--unit", required=True, metavar="CODE", help="home unit code, e.g. B01 (see `appeals org show`)")
    p.add_argument("--enterprise", type=int, metavar="ID", help="for enterprise_contact: the enterprise")
    p.add_argument("--email")
    p.add_argument("--locale", default="zh-CN", choices=["zh-CN", "en"])
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_json_flag(p)
    p.set_defaults(handler=_user_add)
    p = sub.add_parser("passwd", help="set a password", description="Set an account's password.")
    p.add_argument("username")
    p.add_argument("--password-stdin", action="store_true")
    p.set_defaults(handler=_user_passwd)
    p = sub.add_parser("disable", help="disable an account", description="Disable an account; its tokens stop working.")
    p.add_argument("username")
    p.set_defaults(handler=_user_disable)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise InvalidInput("the two passwords differ")
    return first


def _user_add(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    password = _password(args)
    with UnitOfWork(wf.engine) as uow:
        user_id = Accounts(wf.clock).add_user(
            uow,
            username=args.username,
            display_name=args.name,
            role=args.role,
            unit_code=args.unit,
            password=password,
            email=args.email,
            locale=args.locale,
            enterprise_id=args.enterprise,
        )
        uow.commit()
    if args.json:
        emit_json({"id": user_id, "username": args.username, "role": args.role})
    else:
        emit_line(f"user {args.username} ({args.role}) created")
    return 0


def _user_passwd(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    password = _password(args)
    with UnitOfWork(wf.engine) as uow:
        Accounts(wf.clock).set_password(uow, args.username, password)
        uow.commit()
    emit_line(f"password of {args.username} changed; every token and session of theirs is revoked")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    with UnitOfWork(wf.engine) as uow:
        Accounts(wf.clock).disable(uow, args.username)
        uow.commit()
    emit_line(f"user {args.username} disabled; their tokens are revoked")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from workflow.web.server import proxy_options
    from workflow.web.settings import WebSettings

    url = args.db or (DEMO_URL if args.demo else database_url(None))
    if args.fresh and not args.demo:
        raise InvalidInput("--fresh rebuilds the demo database; it goes with --demo")
    # Links in emails lead here unless APPEALS_BASE_URL says otherwise (a proxy, HTTPS); workers inherit it.
    os.environ[SERVED_URL_VARIABLE] = served_base_url(args.host, args.port)
    if args.demo:
        _prepare_demo(args, url, fresh=args.fresh)
    settings = WebSettings.from_environment(demo=args.demo)  # refuse a missing secret before starting workers
    os.environ["APPEALS_DATABASE_URL"] = url
    os.environ["APPEALS_DEMO"] = "1" if args.demo else "0"
    if args.no_sweeper:
        os.environ["APPEALS_NO_SWEEPER"] = "1"
    open_workflow(args, url=url)  # fails early with a clear message if the schema is missing
    close_workflows()
    uvicorn.run(
        "workflow.web.server:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        **proxy_options(settings),
        http="workflow.web.server:NoDelayH11Protocol",  # --workers N would leave Nagle on: see there
    )
    return 0


def served_base_url(host: str, port: int) -> str:
    """The address a browser can open for `--host H --port P`: every interface (0.0.0.0, ::) by the machine's name."""
    if host in ("", "0.0.0.0", "::"):
        host = socket.getfqdn()
    elif ":" in host:  # an IPv6 address goes in brackets in a URL
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _prepare_demo(args: argparse.Namespace, url: str, *, fresh: bool) -> None:
    """Keep a demo database that is already there (what people entered survives a restart); build it
    when it is missing or when --fresh asks for it."""
    parsed = make_url(url)
    is_file = parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:")
    if fresh and not is_file:
        where = parsed.render_as_string()
        raise InvalidInput(f"--fresh deletes a SQLite demo file; {where} is not one, drop it yourself")
    if fresh and parsed.database:
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
    wf = open_workflow(args, url=url, upgrade=True)
    with UnitOfWork(wf.engine, read_only=True) as uow:
        kept = demo_loaded(uow)
    name = Path(parsed.database).name if is_file and parsed.database else parsed.render_as_string()
    if kept:
        _, total = wf.list_appeals(as_user=None, limit=1)
        emit_line(f"kept the existing demo database {name} ({total} appeals); --fresh rebuilds it")
    else:
        with UnitOfWork(wf.engine) as uow:
            load_demo(uow, wf.clock, password_hash=hash_password(DEMO_PASSWORD))
            uow.commit()
        numbers = seed_demo_appeals(wf)
        Housekeeping(wf).sweep()  # the oldest demo appeals are past their limits: escalate them now
        emit_line(f"created the demo database {name}: demo district with {len(numbers)} appeals in every state")
    emit_line(f"sign in with any demo user and the password {DEMO_PASSWORD!r}, e.g.:")
    emit_table(["USERNAME", "ROLE", "SEES"], DEMO_LOGINS)
