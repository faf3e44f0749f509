"""The kinds of notice the engine sends, and who a definition may address them to."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from workflow.domain.org import Role


class NoticeKind(StrEnum):
    APPEAL_RECEIVED = "appeal_received"  # to the enterprise, on submission
    ASSIGNED = "assigned"  # to whoever now holds the appeal
    MATERIALS_REQUESTED = "materials_requested"  # to the enterprise
    INSPECTION_SCHEDULED = "inspection_scheduled"  # to the enterprise, the specialist and the bureau officer
    DECISION = "decision"  # to the enterprise
    REMINDER = "reminder"  # to the assignee, at a threshold of a time limit
    ESCALATED = "escalated"  # to the people of the level the appeal climbed to
    ESCALATED_AWAY = "escalated_away"  # to the level left behind
    BREACHED = "breached"  # over the limit at the top of the chain
    SENT_DOWN = "sent_down"  # to the level it was sent back to
    SENT_DOWN_AWAY = "sent_down_away"
    DAILY_DIGEST = "daily_digest"  # to supervisors, 08:30 on working days
    FOLLOW_UP = "follow_up"  # to the enterprise after closing: how did it go?


# Besides roles, a rule may address the appeal's current assignee or the contact who submitted it.
ASSIGNEE = "assignee"
SUBMITTER = "submitter"
NOTICE_RECIPIENTS = frozenset({ASSIGNEE, SUBMITTER, *(r.value for r in Role if r is not Role.SYSTEM)})


@dataclass(frozen=True)
class NoticeRule:
    """`notify: [{notice: decision, to: [submitter]}]` on a state (on entry) or a transition."""

    kind: NoticeKind
    to: tuple[str, ...]
