"""Checks submitted data against field specs and lists every bad field at once."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from workflow.domain.credit_code import credit_code_problem
from workflow.domain.spec import FieldSpec, FieldType
from workflow.errors import FieldProblem

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Mainland numbers, read with spaces taken out: a mobile is 1[3-9] and 9 more digits (+86 allowed); a landline
# is a 3- or 4-digit area code starting with 0 (or in brackets), a 7- or 8-digit local number not starting
# with 0 or 1, and an optional extension after -, 转, ext or #.
_MOBILE = re.compile(r"^(?:\+?86-?)?1[3-9]\d(?:-?\d{4}){2}$")
_LANDLINE = re.compile(r"^(?:0\d{2,3}-?|\(0\d{2,3}\))[2-9]\d{2,3}-?\d{4}(?:(?:-|转|ext\.?|#)\d{1,6})?$", re.IGNORECASE)
PHONE_FORMATS = "a mobile like 13812345678 or a landline with its area code like 0731-88886666 (extension -123)"
DEFAULT_MAX_LENGTH = {FieldType.STRING: 200, FieldType.TEXT: 5000}


def clean_form(fields: Sequence[FieldSpec], data: Mapping[str, Any]) -> tuple[dict[str, Any], list[FieldProblem]]:
    """Return the cleaned values and every problem found; unknown names are problems too."""
    if not isinstance(data, Mapping):
        return {}, [FieldProblem("(form)", f"must be a JSON object of field values, got {type(data).__name__}")]
    known = {f.name: f for f in fields}
    problems = [
        FieldProblem(name, f"unknown field; allowed: {', '.join(known) or 'none'}")
        for name in data
        if name not in known
    ]
    cleaned: dict[str, Any] = {}
    for spec in fields:
        value = data.get(spec.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if spec.required:
                problems.append(FieldProblem(spec.name, "is required"))
            continue
        try:
            cleaned[spec.name] = _clean_value(spec, value)
        except ValueError as exc:
            problems.append(FieldProblem(spec.name, str(exc)))
    return cleaned, problems


def _clean_value(spec: FieldSpec, value: Any) -> Any:
    kind = spec.type
    if kind is FieldType.USCC:
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {type(value).__name__}")
        code = value.strip().upper()
        problem = credit_code_problem(code)
        if problem is not None:
            raise ValueError(f"is not a unified social credit code: {code!r} {problem}")
        return code
    if kind in (FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE):
        if not isinstance(value, str):
            raise ValueError(f"must be text, got {type(value).__name__}")
        text = value.strip()
        if "\x00" in text:
            raise ValueError("must not contain NUL characters")
        if kind in (FieldType.STRING, FieldType.EMAIL, FieldType.PHONE) and ("\n" in text or "\r" in text):
            raise ValueError("must be a single line")
        if kind is FieldType.EMAIL and not _EMAIL.match(text):
            raise ValueError(f"is not an email address: {text!r}")
        if kind is FieldType.PHONE and not is_mainland_phone(text):
            raise ValueError(f"is not a mainland phone number: {text!r}; give {PHONE_FORMATS}")
        _check_length(spec, text)
        return text
    if kind is FieldType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"must be true or false, got {value!r}")
        return value
    if kind in (FieldType.INTEGER, FieldType.NUMBER):
        number = _to_number(value, integer=kind is FieldType.INTEGER)
        if spec.minimum is not None and number < spec.minimum:
            raise ValueError(f"must be at least {spec.minimum:g}, got {number}")
        if spec.maximum is not None and number > spec.maximum:
            raise ValueError(f"must be at most {spec.maximum:g}, got {number}")
        return number
    if kind is FieldType.DATE:
        if not isinstance(value, str):
            raise ValueError(f"must be a date written YYYY-MM-DD, got {value!r}")
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"must be a date written YYYY-MM-DD, got {value!r}") from None
    if kind is FieldType.DATETIME:
        if not isinstance(value, str):
            raise ValueError(f"must be a date and time in ISO 8601 with an offset, got {value!r}")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"must be a date and time in ISO 8601, e.g. 2026-05-01T10:00+08:00, got {value!r}"
            ) from None
        if moment.tzinfo is None:
            raise ValueError(f"needs a UTC offset, e.g. {value}+08:00")
        return moment.isoformat()
    if kind is FieldType.CHOICE:
        if value not in spec.choices:
            raise ValueError(f"{value!r} is not one of: {', '.join(spec.choices)}")
        return value
    if kind is FieldType.MULTICHOICE:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("must be a list of choices")
        bad = [v for v in value if v not in spec.choices]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))} not among: {', '.join(spec.choices)}")
        return sorted(set(value), key=spec.choices.index)
    raise ValueError(f"has unsupported type {kind}")  # pragma: no cover - the loader refuses unknown types


def is_mainland_phone(text: str) -> bool:
    """A mainland mobile or landline number; spaces between digit groups are allowed and ignored."""
    compact = re.sub(r"\s+", "", text)
    return bool(_MOBILE.match(compact) or _LANDLINE.match(compact))


def _check_length(spec: FieldSpec, text: str) -> None:
    longest = spec.max_length if spec.max_length is not None else DEFAULT_MAX_LENGTH.get(spec.type, 200)
    if len(text) > longest:
        raise ValueError(f"is {len(text)} characters long; at most {longest} allowed")
    if spec.min_length is not None and len(text) < spec.min_length:
        raise ValueError(f"is {len(text)} characters long; at least {spec.min_length} needed")


def _to_number(value: Any, *, integer: bool) -> int | float:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    if integer:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        raise ValueError(f"must be a whole number, got {value!r}")
    number: float | None = None
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None:
        raise ValueError(f"must be a number, got {value!r}")
    if not math.isfinite(number):  # NaN passes every min/max check; neither is valid JSON
        raise ValueError(f"must be a finite number, got {value!r}")
    return number
