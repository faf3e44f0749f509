"""`appeals case ...`: submit, advance and read appeals."""

from __future__ import annotations

import argparse
from typing import Any

from workflow.cli import file_commands
from workflow.cli.common import add_json_flag, json_argument, open_workflow
from workflow.cli.output import emit_json, emit_line, emit_table


def register(commands: Any) -> None:
    case = commands.add_parser("case", help="submit, advance and read appeals", description="Work on appeals.")
    sub = case.add_subparsers(dest="case_command", metavar="ACTION", required=True)

    p = sub.add_parser("submit", help="submit a new appeal", description="Submit an appeal of TYPE for an enterprise.")
    p.add_argument(
        "type", metavar="TYPE", help="appeal type, e.g. outdoor_event_permit (see `appeals definitions list`)"
    )
    p.add_argument("--enterprise", type=int, required=True, metavar="ID", help="enterprise id")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER", help="username of the submitter")
    p.add_argument("--data", required=True, metavar="JSON|@FILE", help="the form fields as a JSON object")
    p.add_argument("--channel", default="online", help="online (default), offline, hotline or onsite_session")
    add_json_flag(p)
    p.set_defaults(handler=_submit)

    p = sub.add_parser("fire", help="fire a trigger", description="Move an appeal along a transition as a user.")
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("trigger", metavar="TRIGGER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--comment", metavar="TEXT")
    p.add_argument("--data", metavar="JSON|@FILE", help="fields the transition asks for, as a JSON object")
    p.add_argument("--expected-version", type=int, metavar="N", help="refuse if the appeal is no longer at version N")
    add_json_flag(p)
    p.set_defaults(handler=_fire)

    p = sub.add_parser("show", help="show one appeal", description="Show an appeal.")
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", metavar="USER", help="show only if this user may see it")
    p.add_argument("--locale", default="zh-CN", choices=["zh-CN", "en"])
    add_json_flag(p)
    p.set_defaults(handler=_show)

    p = sub.add_parser("list", help="list appeals", description="List appeals, newest first.")
    p.add_argument("--state", metavar="S")
    p.add_argument("--type", metavar="T")
    p.add_argument("--unit", metavar="U", help="unit code; its whole subtree is included")
    p.add_argument("--as", dest="as_user", metavar="USER", help="only what this user may see")
    p.add_argument("--open", action="store_true", help="only open appeals")
    p.add_argument("--overdue", action="store_true", help="only open appeals past a time limit (breached)")
    p.add_argument(
        "--at-risk", action="store_true", help="only open appeals past their last reminder, not yet breached"
    )
    p.add_argument("--limit", type=int, default=100, metavar="N")
    p.add_argument("--offset", type=int, default=0, metavar="N")
    add_json_flag(p)
    p.set_defaults(handler=_list)

    p = sub.add_parser(
        "history", help="the audit trail of an appeal", description="Every event of an appeal, oldest first."
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", metavar="USER")
    add_json_flag(p)
    p.set_defaults(handler=_history)

    p = sub.add_parser(
        "actions",
        help="everything a user may do now",
        description="Everything USER may do on the appeal now: the definition's triggers, then escalate, send down, "
        "assign (with whom to) and comment, each with what it requires.",
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--locale", default="zh-CN", choices=["zh-CN", "en"])
    add_json_flag(p)
    p.set_defaults(handler=_actions)

    p = sub.add_parser("assign", help="assign or reassign", description="Give an appeal to another user.")
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--to", dest="to_user", required=True, metavar="USER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--comment", metavar="TEXT")
    add_json_flag(p)
    p.set_defaults(handler=_assign)

    p = sub.add_parser("comment", help="add a comment", description="Add a comment to an appeal's timeline.")
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--text", required=True)
    add_json_flag(p)
    p.set_defaults(handler=_comment)

    p = sub.add_parser(
        "escalate", help="move one level up the chain", description="Escalate: beyond this level's power."
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--reason", required=True)
    add_json_flag(p)
    p.set_defaults(handler=_escalate)

    p = sub.add_parser(
        "send-down", help="send back one level down", description="Send an appeal one level down with instructions."
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--instructions", required=True)
    add_json_flag(p)
    p.set_defaults(handler=_send_down)

    file_commands.register(sub)


def _print_appeal(appeal: dict[str, Any]) -> None:
    emit_line(f"{appeal['number']}  {appeal['type_title']} ({appeal['type']} v{appeal['definition']['version']})")
    emit_line(f"  state:      {appeal['state_title']} ({appeal['state']}){'' if appeal['is_open'] else ', finished'}")
    emit_line(f"  enterprise: {appeal['enterprise']['name']} (#{appeal['enterprise']['id']})")
    emit_line(f"  level:      {appeal['level']} / {appeal['unit']['name']} ({appeal['unit']['code']})")
    emit_line(f"  assignee:   {appeal['assignee'] or '-'}    version: {appeal['version']}")
    sla = appeal["sla"]
    left = sla["working_time_left"]["text"] if sla["working_time_left"] else "-"
    provisional = "  (provisional: holiday data estimated)" if sla["provisional"] else ""
    emit_line(f"  time limit: {sla['status']}, due {sla['due_at'] or '-'}, working time left {left}{provisional}")
    emit_line(f"  submitted:  {appeal['created_at']} by {appeal['submitted_by']} via {appeal['channel']}")
    for key, value in appeal["data"].items():
        emit_line(f"  · {key}: {value}")


def _submit(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    appeal = wf.submit(
        args.type,
        enterprise_id=args.enterprise,
        as_user=args.as_user,
        data=json_argument(args.data, "--data"),
        channel=args.channel,
    )
    emit_json(appeal) if args.json else _print_appeal(appeal)
    return 0


def _outcome(args: argparse.Namespace, wf: Any, number: str) -> None:
    appeal = wf.show(number)
    if args.json:
        emit_json(appeal)
    else:
        emit_line(
            f"{number}: now {appeal['state_title']} ({appeal['state']}), version {appeal['version']}, "
            f"assignee {appeal['assignee'] or '-'}, level {appeal['level']}"
        )


def _fire(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    wf.fire(
        args.number,
        args.trigger,
        as_user=args.as_user,
        comment=args.comment,
        data=json_argument(args.data, "--data"),
        expected_version=args.expected_version,
    )
    _outcome(args, wf, args.number)
    return 0


def _show(args: argparse.Namespace) -> int:
    appeal = open_workflow(args).show(args.number, as_user=args.as_user, locale=args.locale)
    emit_json(appeal) if args.json else _print_appeal(appeal)
    return 0


def _list(args: argparse.Namespace) -> int:
    appeals, total = open_workflow(args).list_appeals(
        as_user=args.as_user,
        state=args.state,
        type=args.type,
        unit=args.unit,
        open_only=args.open,
        overdue=args.overdue,
        at_risk=args.at_risk,
        limit=args.limit,
        offset=args.offset,
    )
    if args.json:
        emit_json({"total": total, "appeals": appeals})
        return 0
    emit_table(
        ["NUMBER", "TYPE", "STATE", "LEVEL", "UNIT", "ASSIGNEE", "SLA", "DUE"],
        [
            [
                a["number"],
                a["type"],
                a["state"],
                a["level"],
                a["unit"]["code"],
                a["assignee"] or "-",
                a["sla"]["status"],
                a["sla"]["due_at"] or "-",
            ]
            for a in appeals
        ],
    )
    emit_line(f"{len(appeals)} of {total} appeal(s)")
    return 0


def _history(args: argparse.Namespace) -> int:
    events = open_workflow(args).history(args.number, as_user=args.as_user)
    if args.json:
        emit_json(events)
        return 0
    for e in events:
        move = f"{e['from'] or '-'} -> {e['to']}" if e["to"] and e["from"] != e["to"] else (e["from"] or "")
        note = f"  “{e['comment']}”" if e["comment"] else ""
        who = e["actor"] or "system"
        emit_line(f"{e['at']}  v{e['version']:<3} {who:<20} {e['kind']:<10} {e['trigger'] or '':<20} {move}{note}")
    return 0


def _actions(args: argparse.Namespace) -> int:
    actions = open_workflow(args).actions(args.number, as_user=args.as_user, locale=args.locale)
    if args.json:
        emit_json(actions)
        return 0
    if not any(a["kind"] == "transition" for a in actions):
        emit_line(f"{args.as_user} can fire nothing on {args.number} now")
    for action in actions:
        if action["kind"] == "transition":
            needs = ", ".join(f["name"] + ("*" if f["required"] else "") for f in action["fields"])
            comment = " (comment required)" if action["comment_required"] else ""
            emit_line(
                f"{action['trigger']:<22} -> {action['dest']:<28} {action['title']}{comment}"
                + (f"  fields: {needs}" if needs else "")
            )
        elif "level" in action:
            emit_line(f"{action['action']:<22} -> {action['level'] + ' level':<28} {action['title']} (reason required)")
        elif action["action"] == "assign":
            emit_line(f"{action['action']:<22} -> {', '.join(t['username'] for t in action['targets'])}")
        else:
            emit_line(f"{action['action']:<22}    {'':<28} {action['title']}")
    return 0


def _assign(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    wf.assign(args.number, args.to_user, as_user=args.as_user, comment=args.comment)
    _outcome(args, wf, args.number)
    return 0


def _comment(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    wf.comment(args.number, args.text, as_user=args.as_user)
    _outcome(args, wf, args.number)
    return 0


def _escalate(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    wf.escalate(args.number, as_user=args.as_user, reason=args.reason)
    _outcome(args, wf, args.number)
    return 0


def _send_down(args: argparse.Namespace) -> int:
    wf = open_workflow(args)
    wf.send_down(args.number, as_user=args.as_user, instructions=args.instructions)
    _outcome(args, wf, args.number)
    return 0
