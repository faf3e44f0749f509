"""`appeals init|demo|definitions|org|user`: set up the database and look at what it holds."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from workflow.bootstrap import database_url, definition_paths, grant_app_role
from workflow.cli.common import add_json_flag, open_workflow
from workflow.cli.output import emit_json, emit_line, emit_table
from workflow.definitions import load_definitions
from workflow.domain.org import Role
from workflow.errors import DefinitionError, InvalidInput
from workflow.persistence.database import normalise_url
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.demo_data import load_demo
from workflow.services.views import definition_view
from workflow.services.walkthrough import Walkthrough

log = logging.getLogger(__name__)
DEMO_URL = "sqlite:///appeals-demo.db"


def register(commands: Any) -> None:
    p = commands.add_parser(
        "init",
        help="create or upgrade the database schema",
        description="Create or upgrade the schema (Alembic migrations); --demo also loads a demo district.",
    )
    p.add_argument("--demo", action="store_true", help="also load the demo district (300 enterprises, every role)")
    p.add_argument(
        "--app-role",
        metavar="NAME",
        help="PostgreSQL only: create (LOGIN, no password) or update the role the application runs as: "
        "it owns nothing, may only SELECT and INSERT on the audit trail, and runs no DDL",
    )
    p.set_defaults(handler=_init)

    p = commands.add_parser(
        "demo",
        help="walk demo appeals through their paths",
        description="Create a fresh demo database and walk appeals of every type through their "
        f"paths, printing each step. Uses --db if given, else {DEMO_URL} (recreated).",
    )
    p.add_argument("--per-type", type=int, default=2, metavar="N", help="appeals walked per type (default 2)")
    p.set_defaults(handler=_demo)

    definitions = commands.add_parser(
        "definitions", help="check and show appeal definitions", description="Appeal type definitions (YAML)."
    )
    sub = definitions.add_subparsers(dest="definitions_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "validate",
        help="check definition files",
        description="Check YAML definitions; prints file:line: message per problem.",
    )
    p.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="files or folders (default: what the application loads, the shipped definitions with "
        "APPEALS_DEFINITIONS applied)",
    )
    add_json_flag(p)
    p.set_defaults(handler=_validate)
    p = sub.add_parser(
        "show", help="show one definition", description="Show an appeal type: fields, states, transitions."
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--locale", default="zh-CN", choices=["zh-CN", "en"])
    p.add_argument("--file", metavar="PATH", help="read this file instead of the registered definition")
    add_json_flag(p)
    p.set_defaults(handler=_show_definition)
    p = sub.add_parser("list", help="list appeal types", description="List the registered appeal types.")
    add_json_flag(p)
    p.set_defaults(handler=_list_definitions)

    org = commands.add_parser("org", help="the organisation", description="The four-level chain and its enterprises.")
    sub = org.add_subparsers(dest="org_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "show",
        help="the chain as a tree",
        description="District -> sub-districts -> communities -> buildings -> enterprises.",
    )
    p.add_argument("--no-enterprises", action="store_true", help="hide enterprises")
    add_json_flag(p)
    p.set_defaults(handler=_org_show)

    user = commands.add_parser("user", help="people and roles", description="Users of the engine.")
    sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="list users", description="List users, optionally by role or unit subtree.")
    p.add_argument("--role", choices=[r.value for r in Role])
    p.add_argument("--unit", metavar="U", help="unit code; its whole subtree is included")
    add_json_flag(p)
    p.set_defaults(handler=_user_list)


def _init(args: argparse.Namespace) -> int:
    if args.app_role is not None and make_url(normalise_url(database_url(args.db))).get_backend_name() != "postgresql":
        raise InvalidInput(
            "--app-role is for PostgreSQL only: SQLite has no roles (protect the database file's permissions instead)"
        )
    wf = open_workflow(args, upgrade=True)
    emit_line(f"schema ready at {wf.engine.url.render_as_string(hide_password=True)}")
    if args.app_role is not None:
        role = grant_app_role(wf.engine, args.app_role)
        emit_line(
            f"application role {role.name} {'created' if role.created else 'updated'} in schema {role.schema}: "
            f"SELECT/INSERT/UPDATE/DELETE on {len(role.read_write)} tables, only SELECT/INSERT on "
            f"{', '.join(role.append_only)}, no DDL"
        )
        for warning in role.warnings:
            log.warning("%s", warning)
    if args.demo:
        with UnitOfWork(wf.engine) as uow:
            summary = load_demo(uow, wf.clock)
            uow.commit()
        emit_line(
            f"demo district loaded: {summary.units} units, {summary.enterprises} enterprises, {summary.users} users"
        )
    return 0


def _demo(args: argparse.Namespace) -> int:
    url = args.db or DEMO_URL
    parsed = make_url(url)
    if args.db is None and parsed.database:
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.database + suffix).unlink(missing_ok=True)
    wf = open_workflow(args, url=url, upgrade=True)
    with UnitOfWork(wf.engine) as uow:
        summary = load_demo(uow, wf.clock)
        uow.commit()
    emit_line(
        f"demo district in {url}: {summary.units} units, {summary.enterprises} enterprises, {summary.users} users"
    )
    numbers = Walkthrough(wf, emit_line).run(per_type=args.per_type)
    emit_line(f"\n{len(numbers)} appeals walked. Look closer with: appeals --db {url} case history {numbers[0]}")
    return 0


def _expand(paths: list[str]) -> list[Path]:
    if not paths:  # exactly what every other command loads, so that "ok" here means they will start
        return definition_paths()
    files: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
        elif path.exists():
            files.append(path)
        else:
            raise InvalidInput(f"no such file or folder: {item}")
    return files


def _validate(args: argparse.Namespace) -> int:
    files = _expand(args.paths)
    try:
        definitions = load_definitions(files)
    except DefinitionError as exc:
        if args.json:
            emit_json({"valid": False, "problems": exc.details()})
        else:
            for problem in exc.problems:
                emit_line(str(problem))
        return 1
    if args.json:
        emit_json(
            {
                "valid": True,
                "definitions": [{"name": d.name, "version": d.version, "file": d.path} for d in definitions],
            }
        )
    else:
        for definition in definitions:
            emit_line(
                f"ok  {definition.path}  ({definition.name} v{definition.version}, "
                f"{len(definition.states)} states, {len(definition.transitions)} transitions)"
            )
    return 0


def _show_definition(args: argparse.Namespace) -> int:
    if args.file:
        (definition,) = load_definitions([Path(args.file)])
        view = definition_view(definition, locale=args.locale)
    else:
        view = _definition_from_files_or_db(args)
    if args.json:
        emit_json(view)
        return 0
    emit_line(
        f"{view['name']} v{view['version']}: {view['title'].get(args.locale) or view['title']['zh-CN']}"
        f"  (prefix {view['prefix']}, starts at {view['start_level']}, time limit {view['time_limit'] or '-'})"
    )
    emit_line("\nfields:")
    emit_table(
        ["NAME", "TYPE", "REQUIRED", "CHOICES", "TITLE"],
        [
            [f["name"], f["type"], "yes" if f["required"] else "", ",".join(f["choices"]), f["title"]]
            for f in view["fields"]
        ],
    )
    if view["rules"]:
        emit_line("\nrules:")
        emit_table(
            ["RULE", "MESSAGE"],
            [[" ".join(filter(None, [r["field"], r["op"], r["other"]])), r["message"]] for r in view["rules"]],
        )
    emit_line("\nstates:")
    emit_table(
        ["NAME", "ROLE", "CLOCK", "LIMIT", "TERMINAL", "TITLE"],
        [
            [s["name"], s["role"] or "", s["clock"], s["limit"] or "", "yes" if s["terminal"] else "", s["title"]]
            for s in view["states"]
        ],
    )
    emit_line("\ntransitions:")
    emit_table(
        ["TRIGGER", "FROM", "TO", "ROLES", "GUARDS", "FIELDS"],
        [
            [
                t["trigger"],
                ",".join(t["sources"]),
                t["dest"],
                ",".join(t["roles"]),
                ",".join(t["guards"]),
                ",".join(t["required_fields"]),
            ]
            for t in view["transitions"]
        ],
    )
    return 0


def _definition_from_files_or_db(args: argparse.Namespace) -> dict[str, Any]:
    """The registered version when the database is there; otherwise straight from the files."""
    url = database_url(args.db)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not Path(parsed.database).exists():
        by_name = {d.name: d for d in load_definitions(definition_paths())}
        if args.name not in by_name:
            from workflow.errors import DefinitionNotFound

            raise DefinitionNotFound(args.name, by_name)
        return definition_view(by_name[args.name], locale=args.locale)
    return open_workflow(args).definition(args.name, args.locale)


def _list_definitions(args: argparse.Namespace) -> int:
    definitions = load_definitions(definition_paths())
    views: list[dict[str, Any]] = [
        {"name": d.name, "version": d.version, "title": dict(d.title), "prefix": d.prefix, "file": d.path}
        for d in definitions
    ]
    if args.json:
        emit_json(views)
    else:
        emit_table(
            ["NAME", "VERSION", "PREFIX", "TITLE"],
            [[v["name"], v["version"], v["prefix"], v["title"]["zh-CN"]] for v in views],
        )
    return 0


def _org_show(args: argparse.Namespace) -> int:
    tree = open_workflow(args).org_tree()
    if args.json:
        emit_json(tree)
        return 0

    def walk(node: dict[str, Any], depth: int) -> None:
        emit_line(f"{'  ' * depth}{node['name']} [{node['code']}, {node['kind']}]")
        for child in node["children"]:
            walk(child, depth + 1)
        enterprises = node.get("enterprises", [])
        if enterprises and not args.no_enterprises:
            for enterprise in enterprises:
                code = f"  统一社会信用代码 {enterprise['credit_code']}" if enterprise["credit_code"] else ""
                emit_line(f"{'  ' * (depth + 1)}#{enterprise['id']} {enterprise['name']}{code}")

    for root in tree:
        walk(root, 0)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    users = open_workflow(args).users(role=args.role, unit=args.unit)
    if args.json:
        emit_json(users)
        return 0
    emit_table(
        ["USERNAME", "ROLE", "UNIT", "NAME", "ENTERPRISE"],
        [[u["username"], u["role"], u["unit"], u["display_name"], u["enterprise_id"] or ""] for u in users],
    )
    return 0
