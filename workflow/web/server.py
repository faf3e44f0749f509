"""Runs the web application: the app factory uvicorn's workers call, with the sweeper alongside."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from workflow.bootstrap import connect
from workflow.scheduling.jobs import Housekeeping
from workflow.scheduling.scheduler import SweepScheduler
from workflow.web.app import create_app
from workflow.web.settings import WebSettings

log = logging.getLogger(__name__)
DEMO_VARIABLE = "APPEALS_DEMO"
NO_SWEEPER_VARIABLE = "APPEALS_NO_SWEEPER"
INTERVAL_VARIABLE = "APPEALS_SWEEP_INTERVAL"


def app_from_environment() -> FastAPI:
    """Called in each uvicorn worker: configuration arrives through the environment."""
    demo = os.environ.get(DEMO_VARIABLE) == "1"
    wf = connect(os.environ.get("APPEALS_DATABASE_URL"))
    app = create_app(wf, WebSettings.from_environment(demo=demo))
    if os.environ.get(NO_SWEEPER_VARIABLE) == "1":
        return app
    scheduler = SweepScheduler(Housekeeping(wf), interval=float(os.environ.get(INTERVAL_VARIABLE, "5")))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Every worker sweeps: claims keep each timer and notice to one of them.
        scheduler.start()
        yield
        scheduler.shutdown()

    app.router.lifespan_context = lifespan
    return app
