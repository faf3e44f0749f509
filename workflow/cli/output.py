"""How the command line prints: JSON for scripts, short aligned text for people.

Text for people passes through `printable`: stored values come from enterprise contacts, and a raw ESC or BEL
in them would drive the officer's terminal (colours, titles, cleared screens, hidden text). JSON needs no such
care: it escapes control characters itself.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

# C0 but newline and tab, DEL, C1, and the bidi embeddings, overrides and isolates that reorder what is shown.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CELL_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, one_line: bool = False) -> str:
    """Control characters as visible escapes (ESC -> \\x1b); newlines and tabs kept unless `one_line`."""
    return (_CELL_CONTROLS if one_line else _CONTROLS).sub(_escape, text)


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def emit_line(text: str = "") -> None:
    sys.stdout.write(printable(text) + "\n")


def emit_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    rows = [["" if cell is None else printable(str(cell), one_line=True) for cell in row] for row in rows]
    widths = [max([_width(h), *(_width(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    for row in [list(headers), *rows]:
        emit_line("  ".join(_pad(cell, widths[i]) for i, cell in enumerate(row)).rstrip())


def _width(text: str) -> int:
    """Display width: CJK characters take two columns in a terminal."""
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
