"""Runs the web application: the app factory uvicorn's workers call, with the sweeper alongside."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from workflow.bootstrap import connect
from workflow.scheduling.jobs import SCHEDULED_BATCHES, Housekeeping
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
    interval = float(os.environ.get(INTERVAL_VARIABLE, "5"))
    scheduler = SweepScheduler(Housekeeping(wf, max_batches=SCHEDULED_BATCHES), interval=interval)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Every worker sweeps: claims keep each timer and notice to one of them.
        scheduler.start()
        yield
        scheduler.shutdown()

    app.router.lifespan_context = lifespan
    return app


def proxy_options(settings: WebSettings) -> dict[str, Any]:
    """uvicorn's proxy-header options: forwarded client addresses and schemes only from the configured proxies.

    Off by default: uvicorn would otherwise believe X-Forwarded-For from 127.0.0.1 (or FORWARDED_ALLOW_IPS), and a
    client that can reach the server directly could name any address it likes and so dodge the sign-in limits."""
    if not settings.trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": list(settings.trusted_proxies)}


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with TCP_NODELAY on every connection.

    With --workers N uvicorn binds the listening socket itself, with proto 0; accepted sockets inherit it and
    asyncio then leaves Nagle's algorithm on (it sets TCP_NODELAY only when proto is IPPROTO_TCP; uvicorn issue
    #3149). The response head and body go out as two writes, so on a keep-alive connection the body waits for
    the client's delayed ACK: ~40 ms added to every request after the first (benchmarks/http.py).
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
