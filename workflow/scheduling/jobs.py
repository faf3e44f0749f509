"""What a sweep pass does, in order: fire due timers, write the day's digests, deliver the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from notifications.channels import Channel, channel_from_environment, sender_address
from notifications.digest import write_daily_digests
from notifications.dispatcher import Dispatcher, max_attempts_from_environment
from workflow.services.sweeper import Sweeper, node_name
from workflow.services.workflow import Workflow

SCHEDULED_BATCHES = 5  # batches of notices a scheduled pass delivers (500 by default): seconds of work


class Housekeeping:
    """One pass of every periodic job; `appeals sweep` runs it once, `appeals worker` on a schedule."""

    def __init__(
        self,
        wf: Workflow,
        *,
        node: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        channel: Channel | None = None,
        max_batches: int | None = None,
    ) -> None:
        self.node = node or node_name()
        # A scheduled pass delivers at most this many batches of notices and leaves the rest to the next pass:
        # stopping a scheduler waits for its pass, and a pass draining a backlog of thousands kept
        # `appeals serve` from stopping on SIGTERM. None (the one-off `appeals sweep`) drains it all.
        self.max_batches = max_batches
        self.wf = wf
        self.sweeper = Sweeper(wf, node=self.node, lease=lease)
        self.dispatcher = Dispatcher(
            wf.engine,
            wf.clock,
            channel or channel_from_environment(),
            node=self.node,
            sender=sender_address(),
            max_attempts=max_attempts_from_environment(),
        )

    def sweep(self) -> dict[str, Any]:
        report = self.sweeper.sweep().as_dict()
        report["digests"] = write_daily_digests(self.wf, self.node)
        report["notices"] = self.dispatcher.dispatch(self.max_batches).as_dict()
        return report
