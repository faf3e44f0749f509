"""Text no database stores is refused at the door: NUL and lone surrogates, in any request string or key.

PostgreSQL text and jsonb cannot hold U+0000, and neither backend can encode a lone surrogate (U+D800-U+DFFF),
which `json.loads` happily returns for "\\ud800". Left to the database, both end as a 500 halfway through a
transaction. One check walks path and query parameters, the parsed JSON body (every string and every key) and
page form fields, and answers 422 with the usual error shape, naming each field.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from email.message import Message
from typing import Any

from fastapi import Request

from workflow.errors import FieldProblem, InvalidInput

NUL_MESSAGE = "must not contain NUL characters (U+0000)"
SURROGATE_MESSAGE = "must not contain lone surrogates (U+D800-U+DFFF); send well-formed UTF-8 text"


class UnstorableText(InvalidInput):
    """The request carries text with NUL or a lone surrogate; each field is named."""

    code = "invalid_request"

    def __init__(self, problems: Iterable[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("bad request: " + "; ".join(map(str, self.problems)))

    def details(self) -> object:
        return [{"field": p.field, "message": p.message} for p in self.problems]


def text_problem(text: str) -> str | None:
    """Why a database cannot store this text, or None when it can."""
    if "\x00" in text:
        return NUL_MESSAGE
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return SURROGATE_MESSAGE
    return None


def shown(text: str) -> str:
    """A key or name fit to quote in an answer: an answer holding a lone surrogate could not be sent at all."""
    return text if text_problem(text) is None else text.encode("unicode_escape").decode("ascii")


def problems_in(value: Any, field: str) -> list[FieldProblem]:
    """Every string and key under `value`, named by its dotted path ("data.materials.1")."""
    if isinstance(value, str):
        problem = text_problem(value)
        return [FieldProblem(field, problem)] if problem else []
    found: list[FieldProblem] = []
    if isinstance(value, dict):
        for key, item in value.items():
            key_text = str(key)
            problem = text_problem(key_text)
            if problem:
                found.append(FieldProblem(field, f"key {key_text!r} {problem}"))
                continue
            found += problems_in(item, f"{field}.{key_text}" if field else key_text)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += problems_in(item, f"{field}.{index}" if field else str(index))
    return found


def pairs_problems(pairs: Iterable[tuple[str, Any]]) -> list[FieldProblem]:
    """Problems of name/value pairs: path and query parameters, form fields (files are not text)."""
    found: list[FieldProblem] = []
    for name, value in pairs:
        problem = text_problem(name)
        if problem:
            found.append(FieldProblem(shown(name), f"the name {problem}"))
        elif isinstance(value, str):
            found += problems_in(value, name)
    return found


def refuse_unstorable(problems: list[FieldProblem]) -> None:
    if problems:
        raise UnstorableText(problems)


def _is_json(request: Request) -> bool:
    """As FastAPI decides whether to parse a body as JSON."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return False
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


async def check_request_text(request: Request) -> None:
    """The app-wide dependency: path and query parameters, and a JSON body (already parsed, so read from the
    request's cache). Page forms are checked where they are read (`page_support.form_of`)."""
    problems = pairs_problems(request.path_params.items())
    problems += pairs_problems(request.query_params.multi_items())
    if _is_json(request) and await request.body():
        # Not JSON at all: a route that reads the body says so (400); one that does not ignores it.
        with suppress(ValueError):
            problems += problems_in(await request.json(), "")
    refuse_unstorable(problems)
