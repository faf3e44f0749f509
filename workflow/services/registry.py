"""Keeps stored definition versions in step with the YAML files and compiles each version once."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError

from workflow.clock import Clock
from workflow.definitions import digest_of, legacy_digest_of, load_definition_text, load_definitions
from workflow.domain.machine import CompiledMachine
from workflow.domain.spec import AppealDefinition
from workflow.errors import DefinitionNotFound
from workflow.persistence.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedDefinition:
    id: int
    version: int
    spec: AppealDefinition
    machine: CompiledMachine


class DefinitionRegistry:
    """Per database: which stored version new appeals of each type use, and the compiled versions."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self._by_id: dict[int, LoadedDefinition] = {}
        self._current: dict[str, int] = {}

    def sync(self, uow: UnitOfWork, clock: Clock) -> None:
        """Register each file's content; a changed file becomes a new version, old ones stay for their appeals."""
        for definition in load_definitions(self.paths):
            digest = digest_of(definition.source)
            rows = uow.repo.definition_versions(definition.name)
            same = next((row for row in rows if row.digest == digest), None) or _registered_under_legacy_digest(
                rows, digest
            )
            if same is not None:
                self._current[definition.name] = same.id
                continue
            version = max([definition.version, *(row.version + 1 for row in rows)])
            if rows:
                log.warning(
                    "definition %s changed; registered as version %d, appeals on version %d keep theirs",
                    definition.name,
                    version,
                    rows[-1].version,
                )
            try:
                with uow.connection.begin_nested():
                    self._current[definition.name] = uow.repo.insert_definition_version(
                        {
                            "name": definition.name,
                            "version": version,
                            "declared_version": definition.version,
                            "digest": digest,
                            "source": definition.source,
                            "registered_at": clock.now(),
                        }
                    )
            except IntegrityError:  # another node registered the same file a moment ago
                rows = uow.repo.definition_versions(definition.name)
                self._current[definition.name] = next(row.id for row in rows if row.digest == digest)

    def current_spec(self, name: str) -> AppealDefinition:
        """The spec new appeals of `name` use; valid once `sync` or `get` has loaded it."""
        definition_id = self._current.get(name)
        if definition_id is None or definition_id not in self._by_id:
            raise DefinitionNotFound(name, self._current)
        return self._by_id[definition_id].spec

    def spec_of(self, definition_id: int) -> AppealDefinition:
        return self._by_id[definition_id].spec

    def names(self) -> list[str]:
        return sorted(self._current)

    def current(self, uow: UnitOfWork, name: str) -> LoadedDefinition:
        definition_id = self._current.get(name)
        if definition_id is None:
            raise DefinitionNotFound(name, self._current)
        return self.get(uow, definition_id)

    def get(self, uow: UnitOfWork, definition_id: int) -> LoadedDefinition:
        loaded = self._by_id.get(definition_id)
        if loaded is None:
            row = uow.repo.definition_version(definition_id)
            if row is None:
                raise DefinitionNotFound(f"#{definition_id}", self._current)
            spec = load_definition_text(row.source, f"{row.name} v{row.version} (stored)", stored=True)
            loaded = self._by_id[definition_id] = LoadedDefinition(row.id, row.version, spec, CompiledMachine(spec))
        return loaded


def _registered_under_legacy_digest(rows: Sequence[Row[Any]], digest: str) -> Row[Any] | None:
    """A stored version keyed by the bytes of its file (before digest_of) whose content is `digest`'s.

    Such rows keep their stored digest (versions are immutable); they are recognised by their content, so
    a database from before the change gets no duplicate version on restart. The newest one wins when edits
    of spacing alone once made several."""
    legacy = [row for row in rows if row.digest == legacy_digest_of(row.source)]
    return next((row for row in reversed(legacy) if digest_of(row.source) == digest), None)
