"""The APScheduler adapter: it only wakes the sweeper; what is due lives in our timers table."""

from __future__ import annotations

import logging
import threading
from datetime import UTC
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from workflow.clock import Clock, SystemClock


class Sweeps(Protocol):
    node: str

    def sweep(self) -> Any: ...


log = logging.getLogger(__name__)


class SweepScheduler:
    """Runs a sweep every `interval` seconds in a background thread; overlapping runs are skipped."""

    def __init__(self, sweeper: Sweeps, interval: float = 5.0, wall_clock: Clock | None = None) -> None:
        if interval <= 0:
            raise ValueError(f"the sweep interval must be positive, got {interval}")
        self.sweeper = sweeper
        self.interval = interval
        # APScheduler counts intervals on the real clock; ours only says "first run now".
        self.wall_clock = wall_clock or SystemClock()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self.passes = 0
        self._lock = threading.Lock()

    def _run(self) -> None:
        try:
            self.sweeper.sweep()
        except Exception:  # a failed pass must not stop the next one; it is logged with its cause
            log.exception("sweep failed; will retry in %.0f s", self.interval)
        with self._lock:
            self.passes += 1

    def start(self) -> None:
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=self.interval,
            max_instances=1,
            coalesce=True,
            next_run_time=self.wall_clock.now(),
            id="sweep",  # wake-up time only; the sweep reads the injected clock
        )
        self._scheduler.start()
        log.info("sweeper %s started, every %.1f s", self.sweeper.node, self.interval)

    def shutdown(self) -> None:
        self._scheduler.shutdown(wait=True)
        log.info("sweeper %s stopped", self.sweeper.node)
