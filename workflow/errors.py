"""Every error the engine raises on purpose, each built from the facts it names.

WorkflowError
 ├── DefinitionError            a definition file is wrong (lists every problem, file:line)
 ├── NotFound                   -> HTTP 404, CLI exit 1
 │    ├── AppealNotFound
 │    ├── DefinitionNotFound
 │    ├── EnterpriseNotFound
 │    ├── UnitNotFound
 │    └── UserNotFound
 ├── InvalidInput               -> HTTP 422, CLI exit 1
 │    ├── FormInvalid           every bad field, each named
 │    └── CommentRequired
 ├── NotPermitted               -> HTTP 403, CLI exit 1
 │    ├── RoleNotAllowed
 │    └── OutsideJurisdiction
 └── Conflict                   -> HTTP 409, CLI exit 1
      ├── VersionConflict       someone else changed the appeal first
      ├── TransitionNotAllowed  the trigger is not available in this state
      ├── GuardRejected         a named guard said no
      └── EscalationNotPossible
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


class WorkflowError(Exception):
    """Root of the engine's own errors; its message is one line meant for people."""

    code = "workflow_error"

    def details(self) -> object:
        return None


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a definition file, with where it is."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class DefinitionError(WorkflowError):
    code = "definition_invalid"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in definitions:\n" + "\n".join(map(str, problems))
        )

    def details(self) -> object:
        return [{"file": p.file, "line": p.line, "message": p.message} for p in self.problems]


class NotFound(WorkflowError):
    code = "not_found"


class AppealNotFound(NotFound):
    def __init__(self, number: str) -> None:
        self.number = number
        super().__init__(f"no appeal numbered {number!r} (numbers look like OE-2026-000123)")


class DefinitionNotFound(NotFound):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        self.name = name
        self.known = sorted(known)
        super().__init__(f"no appeal type {name!r}; known types: {', '.join(self.known) or 'none'}")


class EnterpriseNotFound(NotFound):
    def __init__(self, enterprise_id: object) -> None:
        super().__init__(f"no enterprise with id {enterprise_id!r} (see `appeals org show`)")


class UnitNotFound(NotFound):
    def __init__(self, unit: object) -> None:
        super().__init__(f"no unit {unit!r} (see `appeals org show` for unit codes)")


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        self.username = username
        super().__init__(f"no active user {username!r} (see `appeals user list`)")


class InvalidInput(WorkflowError):
    code = "invalid_input"


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str  # English, for scripts and the API
    words: Mapping[str, str] | None = None  # the definition's own message per locale (a form rule's), for pages

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class FormInvalid(InvalidInput):
    code = "invalid_fields"

    def __init__(self, what: str, problems: Sequence[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{what} has {len(self.problems)} bad field(s): " + "; ".join(map(str, problems)))

    def details(self) -> object:
        return [{"field": p.field, "message": p.message} for p in self.problems]


class CommentRequired(InvalidInput):
    code = "comment_required"

    def __init__(self, number: str, trigger: str) -> None:
        super().__init__(f"{trigger!r} on appeal {number} requires a comment (--comment TEXT)")


class NotPermitted(WorkflowError):
    code = "forbidden"


class RoleNotAllowed(NotPermitted):
    def __init__(self, username: str, role: str, action: str, allowed: Iterable[str]) -> None:
        self.allowed = sorted(allowed)
        super().__init__(
            f"user {username!r} has role {role!r}, but {action!r} is allowed only to: {', '.join(self.allowed)}"
        )

    def details(self) -> object:
        return {"allowed_roles": self.allowed}


class OutsideJurisdiction(NotPermitted):
    def __init__(self, username: str, number: str) -> None:
        super().__init__(f"appeal {number} is outside the jurisdiction of user {username!r}")


class Conflict(WorkflowError):
    code = "conflict"


class VersionConflict(Conflict):
    code = "version_conflict"

    def __init__(self, number: str, expected: int, actual: int | None = None) -> None:
        self.number = number
        self.expected = expected
        self.actual = actual
        now = f" (it is now at version {actual})" if actual is not None else ""
        super().__init__(
            f"appeal {number} was changed by someone else: expected version {expected}{now}; reload and retry"
        )

    def details(self) -> object:
        return {"number": self.number, "expected_version": self.expected, "actual_version": self.actual}


class TransitionNotAllowed(Conflict):
    code = "transition_not_allowed"

    def __init__(self, number: str, state: str, trigger: str, allowed: Iterable[str]) -> None:
        self.state = state
        self.trigger = trigger
        self.allowed = sorted(allowed)
        super().__init__(
            f"appeal {number} is in state {state!r}, where {trigger!r} is not possible; "
            f"possible here: {', '.join(self.allowed) or 'nothing (the appeal is finished)'}"
        )

    def details(self) -> object:
        return {"state": self.state, "trigger": self.trigger, "allowed": self.allowed}


class GuardRejected(Conflict):
    code = "guard_rejected"

    def __init__(self, number: str, trigger: str, guard: str, explanation: str) -> None:
        self.guard = guard
        super().__init__(f"{trigger!r} on appeal {number} refused by guard {guard!r}: {explanation}")

    def details(self) -> object:
        return {"guard": self.guard}


class EscalationNotPossible(Conflict):
    code = "escalation_not_possible"

    def __init__(self, number: str, reason: str) -> None:
        super().__init__(f"appeal {number} cannot move along the chain: {reason}")


class AttachmentNotFound(NotFound):
    def __init__(self, number: str, attachment_id: object) -> None:
        super().__init__(f"appeal {number} has no file with id {attachment_id!r} (see its list of attachments)")


class FileRefused(InvalidInput):
    """An upload broke one of the rules for files; the message names the rule and what is allowed."""

    code = "file_refused"

    def __init__(self, name: str, rule: str) -> None:
        self.rule = rule
        super().__init__(f"file {name!r} refused: {rule}")

    def details(self) -> object:
        return {"rule": self.rule}


class FileTooLarge(FileRefused):
    """-> HTTP 413."""

    code = "file_too_large"

    def __init__(self, name: str, limit: int) -> None:
        self.limit = limit
        super().__init__(name, f"files may be at most {limit} bytes ({limit / 1048576:g} MiB)")

    def details(self) -> object:
        return {"rule": self.rule, "limit": self.limit}
