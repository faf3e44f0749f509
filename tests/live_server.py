"""The web application served by uvicorn in a thread, on the test's own Workflow and clock, for a real browser."""

from __future__ import annotations

import socket
import threading
from types import TracebackType

import uvicorn

from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.settings import WebSettings


class LiveServer:
    """Listens before the server loop starts, so the browser's first request simply waits in the backlog."""

    def __init__(self, wf: Workflow) -> None:
        app = create_app(wf, WebSettings("live-server-test-secret-" + "x" * 20))
        self._socket = socket.create_server(("127.0.0.1", 0))
        host, port = self._socket.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        # No lifespan: the test drives the sweeper itself, at the instants it chooses.
        config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError("the live server did not stop within 10 s")
