"""`appeals case attach|files|detach`: files on appeals from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from workflow.cli.common import add_json_flag, open_workflow
from workflow.cli.output import emit_json, emit_line, emit_table
from workflow.errors import InvalidInput
from workflow.persistence.attachment_store import read_chunks
from workflow.services.attachments import Attachments


def register(case: Any) -> None:
    """Adds the file actions to the `case` subcommands."""
    p = case.add_parser(
        "attach",
        help="add a file to an appeal",
        description="Add FILE to appeal NUMBER as USER; its type is judged by its content "
        "(APPEALS_FILE_TYPES), its size by APPEALS_MAX_UPLOAD_BYTES; stored under APPEALS_FILES_DIR.",
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("file", metavar="FILE", type=Path, help="path of the file to add")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    p.add_argument("--item", metavar="NAME", help="the materials checklist item the file satisfies")
    p.add_argument("--name", metavar="NAME", help="the name to show (default: the file's own name)")
    add_json_flag(p)
    p.set_defaults(handler=_attach)

    p = case.add_parser(
        "files", help="list an appeal's files", description="The files of appeal NUMBER, as USER sees them."
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_json_flag(p)
    p.set_defaults(handler=_files)

    p = case.add_parser(
        "detach",
        help="remove a file from an appeal",
        description="Take file ID off appeal NUMBER; the audit keeps its record and the stored file.",
    )
    p.add_argument("number", metavar="NUMBER")
    p.add_argument("id", metavar="ID", type=int, help="the file's id (see `appeals case files`)")
    p.add_argument("--as", dest="as_user", required=True, metavar="USER")
    add_json_flag(p)
    p.set_defaults(handler=_detach)


def _attach(args: argparse.Namespace) -> int:
    path: Path = args.file
    if not path.is_file():
        raise InvalidInput(f"FILE {str(path)!r} is not a readable file")
    files = Attachments(open_workflow(args))
    added = files.attach(args.number, args.name or path.name, read_chunks(path), as_user=args.as_user, item=args.item)
    if args.json:
        emit_json(added)
    else:
        emit_line(f"{args.number}: file {added['id']} {added['name']} ({added['size']} bytes, {added['content_type']})")
    return 0


def _files(args: argparse.Namespace) -> int:
    files = Attachments(open_workflow(args))
    listed = files.files(args.number, as_user=args.as_user)
    if args.json:
        emit_json({"attachments": listed, "checklist": files.checklist(args.number, as_user=args.as_user)})
        return 0
    emit_table(
        ["ID", "NAME", "SIZE", "TYPE", "ITEM", "BY", "AT"],
        [
            [f["id"], f["name"], f["size"], f["content_type"], f["item"] or "-", f["uploaded_by"], f["uploaded_at"]]
            for f in listed
        ],
    )
    emit_line(f"{len(listed)} file(s)")
    return 0


def _detach(args: argparse.Namespace) -> int:
    gone = Attachments(open_workflow(args)).remove(args.number, args.id, as_user=args.as_user)
    emit_json(gone) if args.json else emit_line(f"{args.number}: file {gone['id']} {gone['name']} removed")
    return 0
