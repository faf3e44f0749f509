"""Files on disk, content-addressed: each stored once under <dir>/ab/cd/<sha256>, never changed or deleted.

A file is received into a temporary file in the store's own folder while its SHA-256 and size are
counted, checked by the caller, then renamed atomically to its hash's name (fsynced first). The blob
is in place before the database transaction that records it commits: if that transaction rolls back,
an orphan blob remains, which is harmless (nothing points at it; the same content uploaded again
finds it already there).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 64 * 1024


class TooLarge(Exception):
    """More bytes arrived than the limit allows; the partial file is already gone."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"more than {limit} bytes")


@dataclass
class Received:
    """A file received but not yet kept: `path` is its temporary name until `BlobStore.keep`."""

    path: Path
    sha256: str
    size: int


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def upload(self, limit: int) -> Upload:
        """A temporary file to write a file into piece by piece, as it arrives."""
        self.root.mkdir(parents=True, exist_ok=True)
        return Upload(self.root, limit)

    def receive(self, chunks: Iterator[bytes], limit: int) -> Received:
        """Write `chunks` to a temporary file, counting; TooLarge as soon as they pass `limit` bytes."""
        upload = self.upload(limit)
        try:
            for chunk in chunks:
                upload.write(chunk)
        except BaseException:
            upload.abort()
            raise
        return upload.finish()

    def keep(self, received: Received) -> bool:
        """Move a received file to its content's name; False (and the copy dropped) when already stored."""
        target = self.path_of(received.sha256)
        if target.exists():
            received.path.unlink(missing_ok=True)
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(received.path, target)  # atomic within one file system: the temp file sits in the root
        _fsync_dir(target.parent)
        return True

    def discard(self, received: Received) -> None:
        received.path.unlink(missing_ok=True)


class Upload:
    """One file being received: its bytes counted and hashed on the way to a temporary file."""

    def __init__(self, root: Path, limit: int) -> None:
        handle, name = tempfile.mkstemp(prefix=".upload-", dir=root)
        self.path = Path(name)
        self.limit = limit
        self.size = 0
        self._digest = hashlib.sha256()
        self._out = os.fdopen(handle, "wb")

    def write(self, chunk: bytes) -> None:
        """TooLarge (and the partial file removed) once more than `limit` bytes have come."""
        self.size += len(chunk)
        if self.size > self.limit:
            self.abort()
            raise TooLarge(self.limit)
        self._digest.update(chunk)
        self._out.write(chunk)

    def finish(self) -> Received:
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        return Received(self.path, self._digest.hexdigest(), self.size)

    def abort(self) -> None:
        if not self._out.closed:
            self._out.close()
        self.path.unlink(missing_ok=True)


def read_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _fsync_dir(folder: Path) -> None:
    """So the rename itself survives a crash (POSIX; not possible on every platform)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
