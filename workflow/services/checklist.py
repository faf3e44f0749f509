"""The materials checklist's file rule: a transition guarded by `materials_complete` also needs a file
on every item its definition marks `requires_file: true`."""

from __future__ import annotations

from workflow.domain.appeal import AppealRecord
from workflow.domain.guards import GUARDS
from workflow.domain.spec import AppealDefinition, TransitionSpec, pick_title
from workflow.errors import GuardRejected
from workflow.persistence import attachment_rows
from workflow.persistence.unit_of_work import UnitOfWork

CHECKLIST_GUARD = "materials_complete"


def require_files(uow: UnitOfWork, definition: AppealDefinition, appeal: AppealRecord, spec: TransitionSpec) -> None:
    """GuardRejected naming every required item that has no file yet."""
    if CHECKLIST_GUARD not in spec.guards:
        return
    needed = [m for m in definition.materials if m.requires_file]
    if not needed:
        return
    present = attachment_rows.items_with_files(uow.connection, appeal.id)
    missing = [m for m in needed if m.name not in present]
    if missing:
        names = ", ".join(f"{m.name} ({pick_title(m.title, 'zh-CN')})" for m in missing)
        raise GuardRejected(
            appeal.number,
            spec.trigger,
            CHECKLIST_GUARD,
            f"{GUARDS[CHECKLIST_GUARD].explanation}; these items need a file attached: {names}",
        )
