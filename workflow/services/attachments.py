"""Files on appeals: upload (with the checklist item they satisfy), list, download, remove.

Who may: anyone who can see the appeal (the jurisdiction rule, `can_reach`) may upload, list and
download; a file is removed by its uploader or by staff. The bytes go to the content-addressed blob
store first (persistence.attachment_store); the metadata row and its audit event then commit together,
moving the appeal's version like any other change. An upload refused for its size or type leaves
nothing behind; a removal keeps the row and the blob, so the audit trail can still point at them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL

from workflow.domain.appeal import Actor, AppealRecord, EventKind
from workflow.domain.audit_chain import ChainHead
from workflow.domain.file_types import DEFAULT_TYPES, FILE_TYPES, clean_name, describe, parse_types, sniff
from workflow.domain.org import Role
from workflow.errors import (
    AttachmentNotFound,
    FileRefused,
    FileTooLarge,
    InvalidInput,
    NotPermitted,
    TransitionNotAllowed,
    VersionConflict,
)
from workflow.persistence import attachment_rows
from workflow.persistence.attachment_rows import AttachmentRow
from workflow.persistence.attachment_store import BlobStore, Received, TooLarge, Upload
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.clocks import unchanged_columns
from workflow.services.commands import load_actor, load_reachable
from workflow.services.workflow import Workflow

log = logging.getLogger(__name__)

FILES_DIR = "APPEALS_FILES_DIR"
MAX_UPLOAD = "APPEALS_MAX_UPLOAD_BYTES"
TYPES = "APPEALS_FILE_TYPES"
DEFAULT_MAX_UPLOAD = 20 * 1024 * 1024


@dataclass(frozen=True)
class FileSettings:
    files_dir: Path
    max_bytes: int = DEFAULT_MAX_UPLOAD
    types: frozenset[str] = DEFAULT_TYPES

    @classmethod
    def from_environment(cls, database: URL) -> FileSettings:
        """APPEALS_FILES_DIR (default: `appeals-files` beside the SQLite file, else ./appeals-files),
        APPEALS_MAX_UPLOAD_BYTES (default 20 MiB), APPEALS_FILE_TYPES (default all known types)."""
        folder = os.environ.get(FILES_DIR, "")
        if folder:
            files_dir = Path(folder)
        elif database.get_backend_name() == "sqlite" and database.database not in (None, "", ":memory:"):
            files_dir = Path(str(database.database)).resolve().parent / "appeals-files"
        else:
            files_dir = Path("appeals-files").resolve()
        text = os.environ.get(MAX_UPLOAD, "")
        try:
            max_bytes = int(text) if text else DEFAULT_MAX_UPLOAD
        except ValueError:
            raise InvalidInput(f"{MAX_UPLOAD} must be a whole number of bytes, got {text!r}") from None
        if max_bytes < 1:
            raise InvalidInput(f"{MAX_UPLOAD} must be at least 1, got {max_bytes}")
        types_text = os.environ.get(TYPES, "")
        try:
            types = parse_types(types_text) if types_text else DEFAULT_TYPES
        except ValueError as exc:
            raise InvalidInput(f"{TYPES}: {exc}") from None
        return cls(files_dir, max_bytes, types)


class Attachments:
    """The attachments of one database's appeals; every call is one transaction, as with Workflow."""

    def __init__(self, wf: Workflow, settings: FileSettings | None = None) -> None:
        self.wf = wf
        self.settings = settings or FileSettings.from_environment(wf.engine.url)
        self.store = BlobStore(self.settings.files_dir)

    def precheck(self, number: str, *, as_user: str, item: str | None = None) -> None:
        """Refuse before a byte is written: the user must see the appeal, and it must be open."""
        with UnitOfWork(self.wf.engine, read_only=True) as uow:
            actor = load_actor(uow, as_user)
            self._check_may_add(uow, load_reachable(uow, self.wf.registry, number, actor), _item(item))

    def upload(self) -> Upload:
        """Where an entry point streams a file's bytes, the size limit counted as they come."""
        return self.store.upload(self.settings.max_bytes)

    def attach(
        self, number: str, filename: str, chunks: Iterator[bytes], *, as_user: str, item: str | None = None
    ) -> dict[str, Any]:
        self.precheck(number, as_user=as_user, item=item)
        try:
            received = self.store.receive(chunks, self.settings.max_bytes)
        except TooLarge:
            raise FileTooLarge(filename or "file", self.settings.max_bytes) from None
        return self.attach_received(number, filename, received, as_user=as_user, item=item)

    def attach_received(
        self, number: str, filename: str, received: Received, *, as_user: str, item: str | None = None
    ) -> dict[str, Any]:
        """Judge a received file by its content, keep it, and record it with its audit event."""
        item = _item(item)
        shown = filename or "file"
        kind = sniff(received.path)
        if kind is None or kind.name not in self.settings.types:
            self.store.discard(received)
            what = "its content is not" if kind is None else f"its content is {kind.name.upper()}, not"
            raise FileRefused(shown, f"{what} one of the allowed types: {describe(self.settings.types)}")
        name = clean_name(filename, kind)
        try:
            self.precheck(number, as_user=as_user, item=item)
        except BaseException:
            self.store.discard(received)
            raise
        self.store.keep(received)  # before the commit: a rollback leaves a harmless orphan blob
        with UnitOfWork(self.wf.engine) as uow:
            actor = load_actor(uow, as_user)
            appeal = load_reachable(uow, self.wf.registry, number, actor)
            self._check_may_add(uow, appeal, item)
            now = self.wf.clock.now()
            values = {
                "appeal_id": appeal.id,
                "name": name,
                "size": received.size,
                "content_type": kind.media_type,
                "sha256": received.sha256,
                "item": item,
                "uploaded_by_id": actor.id,
                "uploaded_at": now,
                "removed_at": None,
                "removed_by_id": None,
            }
            attachment_id = attachment_rows.insert_row(uow.connection, values)
            payload = {k: values[k] for k in ("name", "size", "content_type", "sha256", "item")}
            self._log_change(uow, appeal, actor, EventKind.FILE_ADDED, {"attachment_id": attachment_id, **payload})
            uow.commit()
            found = attachment_rows.row(uow.connection, appeal.id, attachment_id)
        log.info("appeal %s: %s added file %s (%s bytes)", number, as_user, attachment_id, received.size)
        assert found is not None
        return attachment_view(number, found)

    def files(self, number: str, *, as_user: str) -> list[dict[str, Any]]:
        with UnitOfWork(self.wf.engine, read_only=True) as uow:
            appeal = load_reachable(uow, self.wf.registry, number, load_actor(uow, as_user))
            return [attachment_view(number, r) for r in attachment_rows.rows_of(uow.connection, appeal.id)]

    def checklist(self, number: str, *, as_user: str) -> list[dict[str, Any]]:
        """Each materials item of the appeal's definition with the files that satisfy it."""
        files = self.files(number, as_user=as_user)
        with UnitOfWork(self.wf.engine, read_only=True) as uow:
            appeal = load_reachable(uow, self.wf.registry, number, load_actor(uow, as_user))
            spec = self.wf.registry.get(uow, appeal.definition_id).spec
        return [
            {
                "item": m.name,
                "title": dict(m.title),
                "requires_file": getattr(m, "requires_file", False),
                "files": [f for f in files if f["item"] == m.name],
            }
            for m in spec.materials
        ]

    def open(self, number: str, attachment_id: int, *, as_user: str) -> tuple[dict[str, Any], Path]:
        """The file's metadata and where its bytes are, for a download."""
        with UnitOfWork(self.wf.engine, read_only=True) as uow:
            appeal = load_reachable(uow, self.wf.registry, number, load_actor(uow, as_user))
            found = attachment_rows.row(uow.connection, appeal.id, attachment_id)
        if found is None or found.removed_at is not None:
            raise AttachmentNotFound(number, attachment_id)
        path = self.store.path_of(found.sha256)
        if not path.is_file():
            log.error("appeal %s: the blob of file %s (%s) is missing from %s", number, found.id, found.sha256, path)
            raise AttachmentNotFound(number, attachment_id)
        return attachment_view(number, found), path

    def remove(self, number: str, attachment_id: int, *, as_user: str) -> dict[str, Any]:
        with UnitOfWork(self.wf.engine) as uow:
            actor = load_actor(uow, as_user)
            appeal = load_reachable(uow, self.wf.registry, number, actor)
            found = attachment_rows.row(uow.connection, appeal.id, attachment_id)
            if found is None or found.removed_at is not None:
                raise AttachmentNotFound(number, attachment_id)
            if actor.role == Role.ENTERPRISE_CONTACT and found.uploaded_by_id != actor.id:
                raise NotPermitted(f"{as_user!r} may remove only files they uploaded; file {attachment_id} is not one")
            if not appeal.is_open:
                raise TransitionNotAllowed(number, appeal.state, "remove a file", [])
            now = self.wf.clock.now()
            if not attachment_rows.mark_removed(uow.connection, attachment_id, now, actor.id):
                raise AttachmentNotFound(number, attachment_id)
            payload = {"attachment_id": attachment_id, "name": found.name, "sha256": found.sha256, "item": found.item}
            self._log_change(uow, appeal, actor, EventKind.FILE_REMOVED, payload)
            uow.commit()
            gone = attachment_rows.row(uow.connection, appeal.id, attachment_id)
        assert gone is not None
        return attachment_view(number, gone)

    def _check_may_add(self, uow: UnitOfWork, appeal: AppealRecord, item: str | None) -> None:
        if not appeal.is_open:
            raise TransitionNotAllowed(appeal.number, appeal.state, "add a file", [])
        if item is not None:
            materials = [m.name for m in self.wf.registry.get(uow, appeal.definition_id).spec.materials]
            if item not in materials:
                known = ", ".join(materials) or "none"
                raise InvalidInput(f"appeal {appeal.number} has no checklist item {item!r}; its items: {known}")

    def _log_change(
        self, uow: UnitOfWork, appeal: AppealRecord, actor: Actor, kind: str, payload: dict[str, Any]
    ) -> None:
        """The audit event, moving the version by one (compare-and-set), as every change does."""
        now = self.wf.clock.now()
        changed = {**unchanged_columns(appeal), "version": appeal.version + 1, "updated_at": now}
        event = {
            "kind": kind,
            "actor_id": actor.id,
            "trigger": None,
            "from_state": appeal.state,
            "to_state": appeal.state,
            "comment": None,
            "payload": payload,
        }
        chain = ChainHead(appeal.number, appeal.audit_seq, appeal.audit_head)
        if not uow.repo.change_appeal(appeal.id, appeal.version, changed, event, chain):
            raise VersionConflict(appeal.number, appeal.version, uow.repo.current_version(appeal.id))


def _item(item: str | None) -> str | None:
    return (item or "").strip() or None


def attachment_view(number: str, row: AttachmentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "appeal": number,
        "name": row.name,
        "size": row.size,
        "content_type": row.content_type,
        "sha256": row.sha256,
        "item": row.item,
        "uploaded_by": row.uploaded_by,
        "uploaded_at": row.uploaded_at.isoformat(),
        "removed_at": row.removed_at.isoformat() if row.removed_at else None,
        "url": f"/api/v1/appeals/{number}/attachments/{row.id}",
    }


__all__ = ["FILE_TYPES", "Attachments", "FileSettings", "attachment_view"]
