"""What an uploaded file is, judged by its content (magic bytes, a ZIP's members), and a safe name for it.

The name a person gives a file says nothing about what it holds: an executable renamed `x.pdf` is
still an executable. So the type comes from the bytes, and the name is only cleaned for display.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

OOXML = "application/vnd.openxmlformats-officedocument"


@dataclass(frozen=True)
class FileType:
    name: str  # what configuration and messages call it: pdf, jpeg, ...
    media_type: str
    extension: str


FILE_TYPES: dict[str, FileType] = {
    t.name: t
    for t in (
        FileType("pdf", "application/pdf", ".pdf"),
        FileType("jpeg", "image/jpeg", ".jpg"),
        FileType("png", "image/png", ".png"),
        FileType("ofd", "application/ofd", ".ofd"),
        FileType("docx", f"{OOXML}.wordprocessingml.document", ".docx"),
        FileType("xlsx", f"{OOXML}.spreadsheetml.sheet", ".xlsx"),
    )
}
DEFAULT_TYPES = frozenset(FILE_TYPES)
MAX_NAME = 120  # characters; long enough for real names, short enough for a list and a header


def sniff(path: Path) -> FileType | None:
    """The type of the file at `path` by its content, or None when it is none of FILE_TYPES."""
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"%PDF-"):
        return FILE_TYPES["pdf"]
    if head.startswith(b"\xff\xd8\xff"):
        return FILE_TYPES["jpeg"]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FILE_TYPES["png"]
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(path)
    return None


def _zip_kind(path: Path) -> FileType | None:
    """OFD (GB/T 33190) and Office Open XML are ZIP packages; their members tell them apart."""
    try:
        with zipfile.ZipFile(path) as package:
            names = set(package.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "OFD.xml" in names:
        return FILE_TYPES["ofd"]
    if "[Content_Types].xml" in names:
        if "word/document.xml" in names:
            return FILE_TYPES["docx"]
        if "xl/workbook.xml" in names:
            return FILE_TYPES["xlsx"]
    return None


def parse_types(text: str) -> frozenset[str]:
    """A comma-separated list of type names (APPEALS_FILE_TYPES); unknown names are refused by name."""
    names = {part.strip().lower() for part in text.split(",") if part.strip()}
    unknown = sorted(names - set(FILE_TYPES))
    if unknown or not names:
        raise ValueError(f"unknown file type(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(FILE_TYPES)}")
    return frozenset(names)


def describe(types: Iterable[str]) -> str:
    """The allowed types as people read them: 'PDF, JPEG, PNG'."""
    return ", ".join(name.upper() for name in FILE_TYPES if name in set(types))


_RESERVED = re.compile(r'[<>:"/\\|?*]')


def clean_name(raw: str, kind: FileType) -> str:
    """A name safe to show and to put in a header: no folders, control or reserved characters, not too
    long; Chinese and other letters kept. An empty result becomes `file` with the type's extension."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C"))
    name = _RESERVED.sub("_", name).strip().strip(". ")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        keep = ("." + ext) if dot and 0 < len(ext) <= 10 else ""
        name = (stem if keep else name)[: MAX_NAME - len(keep)].rstrip() + keep
    return name or f"file{kind.extension}"
