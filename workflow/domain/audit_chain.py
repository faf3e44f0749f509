"""The audit trail's hash chain: what an event's hash covers, and the digest of a seal.

Each appeal has its own chain. Event number `seq` (1, 2, 3 ... in the order written) carries
`hash = sha256(canonical({"prev": hash of seq - 1, or None for the first, **content}))`, where the
content is the event's fields named in CHAINED_FIELDS. Changing, removing or inserting an event breaks
the links after it; rewriting the whole chain consistently is caught only against a seal kept outside
the database (the heads of every chain at one moment, with a digest over them).

To chain a new column (say `recorded_at`), add its name to CHAINED_FIELDS. Fields that are None are left
out of the canonical document, so rows written before the column existed (NULL there) keep their hashes;
a migration that backfills old rows with a value must recompute their chains, as 0006 does.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The event fields a hash covers, besides "prev". "appeal" is the appeal's number rather than its row id
# (what people quote and what survives any re-keying), "seq" the event's place in its appeal's chain.
CHAINED_FIELDS: tuple[str, ...] = (
    "appeal",
    "seq",
    "version",
    "kind",
    "actor_id",
    "at",
    "recorded_at",  # NULL on events written before 0007_catch_up, so their hashes stand
    "trigger",
    "from_state",
    "to_state",
    "comment",
    "payload",
)
HASH_LENGTH = 64  # sha256, hex
SEAL_FORMAT = "appeals-audit-seal/1"


_SCALARS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    """The JSON form that reads back the same from SQLite's text and PostgreSQL's JSONB.

    Dispatches on the exact type first: verifying calls this for every value of every event."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {key if type(key) is str else str(key): _plain(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if kind is float:
        # JSONB keeps 1e20 as 100000000000000000000, which Python then reads as an int.
        return int(value) if math.isfinite(value) and value.is_integer() else value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"audit times must be timezone-aware, got {value.isoformat()!r}")
        return (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat(timespec="microseconds")
    if isinstance(value, str | int):  # subclasses (enums) as their plain value
        return str(value) if isinstance(value, str) else int(value)
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise TypeError(f"cannot put a {type(value).__name__} into an audit hash")


def _dumps(plain: Mapping[str, Any]) -> bytes:
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical(document: Mapping[str, Any]) -> bytes:
    """Deterministic bytes: sorted keys, no spaces, UTF-8, UTC ISO times, None fields left out."""
    return _dumps({key: _plain(value) for key, value in document.items() if value is not None})


def event_hash(prev_hash: str | None, content: Mapping[str, Any], fields: tuple[str, ...] = CHAINED_FIELDS) -> str:
    """The hash of one event: its chained fields (read from `content`) linked to the previous hash; the same
    as sha256(canonical({"prev": prev_hash, **those fields}))."""
    document: dict[str, Any] = {} if prev_hash is None else {"prev": prev_hash}
    for name in fields:
        value = content.get(name)
        if value is not None:
            document[name] = _plain(value)
    return hashlib.sha256(_dumps(document)).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    """Where an appeal's chain ends: the number of its last event and that event's hash."""

    appeal: str  # the appeal's number
    seq: int = 0
    hash: str | None = None

    def link(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The event as the next link of this chain: with its `seq`, `prev_hash` and `hash`. Every event
        row is written through here."""
        seq = self.seq + 1
        return {
            **event,
            "seq": seq,
            "prev_hash": self.hash,
            "hash": event_hash(self.hash, {**event, "appeal": self.appeal, "seq": seq}),
        }

    def moved_to(self, seq: int, head: str | None) -> ChainHead:
        return ChainHead(self.appeal, seq, head)


def seal_digest(sealed_at: datetime, heads: Mapping[str, tuple[int, str]]) -> str:
    """The digest of a seal: when, and every appeal's chain head (number -> (seq, hash))."""
    document = {
        "format": SEAL_FORMAT,
        "sealed_at": sealed_at,
        "heads": {number: [seq, digest] for number, (seq, digest) in heads.items()},
    }
    return hashlib.sha256(canonical(document)).hexdigest()
