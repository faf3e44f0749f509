"""The `appeals` command line: parses arguments, maps errors to exit codes (1 bad input, 2 usage)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from workflow.cli import admin_commands, audit_commands, case_commands, notice_commands, time_commands, web_commands
from workflow.cli.common import close_workflows
from workflow.cli.output import printable
from workflow.errors import WorkflowError
from workflow.local_time import ShanghaiLogFormatter

log = logging.getLogger("workflow.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but every usage error says what is allowed and exits 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="appeals",
        description="Enterprise-appeal workflow engine: submit, advance and supervise appeals.",
    )
    parser.add_argument(
        "--db",
        metavar="URL",
        help="database URL (default: $APPEALS_DATABASE_URL or sqlite:///appeals.db in the working directory)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v info, -vv debug)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    admin_commands.register(commands)
    case_commands.register(commands)
    time_commands.register(commands)
    notice_commands.register(commands)
    web_commands.register(commands)
    audit_commands.register(commands)
    for leaf in _leaf_parsers(parser):
        # `appeals case show N --db URL` works as well as `appeals --db URL case show N`.
        leaf.add_argument("--db", metavar="URL", default=argparse.SUPPRESS, help="same as appeals --db URL")
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [parser]
    leaves: list[argparse.ArgumentParser] = []
    for child in dict.fromkeys(subs[0].choices.values()):
        leaves.extend(_leaf_parsers(child))
    return leaves


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    handler = logging.StreamHandler(sys.stderr)  # never stdout: --json output stays nothing but JSON
    handler.setFormatter(ShanghaiLogFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    try:
        code = args.handler(args)
        return int(code or 0)
    except WorkflowError as exc:
        _fail(str(exc))
        return 1
    except OperationalError as exc:
        _fail(f"cannot use the database: {_first_line(str(exc.orig) if exc.orig else str(exc))}")
        return 1
    except SQLAlchemyError as exc:
        log.debug("database error", exc_info=True)
        _fail(f"database error: {_first_line(str(exc))}")
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); say nothing more and keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # never a traceback for users; -vv shows it in the log
        log.debug("unexpected error", exc_info=True)
        _fail(f"internal error ({type(exc).__name__}): {_first_line(str(exc))}; rerun with -vv for details")
        return 1
    finally:
        close_workflows()


def _fail(message: str) -> None:
    lines = message.splitlines() or [message]
    sys.stderr.write(f"appeals: error: {printable(lines[0])}\n")
    for line in lines[1:]:  # a DefinitionError lists one problem per line
        sys.stderr.write(f"{printable(line)}\n")


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def run() -> None:
    sys.exit(main())
