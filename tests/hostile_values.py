"""A corpus of hostile values: what a careless or malicious client sends in place of an honest field.

Each value has a name for the report. Strings go everywhere (path, query, form, JSON); the rest only where JSON
can carry them. Lone surrogates reach the server as JSON escapes ("\\ud800"), and NaN as JSON's NaN token, since
a client that means harm does not use an encoder that refuses them.
"""

from __future__ import annotations

from typing import Any

HOSTILE_STRINGS: dict[str, str] = {
    "lone high surrogate": "\ud800",
    "lone low surrogate inside text": "开业\udfff活动",
    "NUL": "\x00",
    "NUL inside text": "a\x00b",
    "CRLF header injection": "活动\r\nBcc: victim@example.com\r\nSubject: 中奖",
    "script tag": "<script>alert(document.cookie)</script>",
    "attribute breakout": '"><img src=x onerror=alert(1)>',
    "Jinja expression": "{{7*7}}",
    "Jinja statement": "{% for x in range(9999999) %}{% endfor %}",
    "format string": "{0.__class__} %s %n ${7*7}",
    "SQL quote": "'; DROP TABLE appeals; --",
    "path traversal": "../../../../etc/passwd",
    "percent-encoded NUL": "%00",
    "empty": "",
    "blanks": " \t ",
    "terminal escapes": "\x07\x1b[31m红色\x1b]0;owned\x07",
    "C1 control": "\x9b2J",
    "RTL override": "\u202egnp.exe",
    "RTL and LTR marks": "\u200f\u200e\u061c",
    "zero-width and BOM": "\u200b\u200d\ufeff",
    "emoji sequence": "👨‍👩‍👧‍👦🏳️‍🌈😀",
    "full-width digits": "１２３",
    "huge number as text": "1" + "0" * 400,
    "negative number as text": "-1",
    "NaN as text": "NaN",
    "1 MB string": "x" * 1_000_000,
    "1 MB of CJK": "长" * 350_000,
}

HOSTILE_OTHERS: dict[str, Any] = {
    "huge integer": 10**40,
    "int64 overflow": 2**63,
    "negative": -1,
    "huge negative": -(10**40),
    "zero": 0,
    "float": 1.5,
    "largest float": 1.7976931348623157e308,
    "NaN": float("nan"),
    "infinity": float("inf"),
    "true": True,
    "null": None,
    "empty list": [],
    "list of strings": ["a", "b"],
    "empty object": {},
    "object": {"a": {"b": ["c", {"\ud800": 1}]}},
}

HOSTILE_VALUES: dict[str, Any] = {**HOSTILE_STRINGS, **HOSTILE_OTHERS}


def as_text(value: Any) -> str:
    """A value as it arrives in a URL or a form field, where everything is text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
