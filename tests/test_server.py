"""The server's own protocol: every accepted connection has Nagle's algorithm off, however the socket was bound."""

from __future__ import annotations

import asyncio
import socket
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from uvicorn.server import ServerState

from workflow.web.server import NoDelayH11Protocol


async def nodelay_of_accepted_connection(protocol_class: type[NoDelayH11Protocol] | None) -> int:
    """Accept one loopback connection on a socket bound the way `uvicorn --workers N` binds it (proto 0)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0, as uvicorn's Config.bind_socket
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    config = uvicorn.Config(app=lambda scope, receive, send: None, lifespan="off")
    config.load()

    class Probe(NoDelayH11Protocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if protocol_class is not None:
                super().connection_made(transport)
            accepted = transport.get_extra_info("socket")
            seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(
        lambda: Probe(config=config, server_state=ServerState(), app_state={}), sock=listener
    )
    _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
    try:
        return await asyncio.wait_for(seen, timeout=10)
    finally:
        writer.close()
        server.close()
        await server.wait_closed()


def in_own_loop(protocol_class: type[NoDelayH11Protocol] | None) -> int:
    """A fresh thread and event loop: Playwright's sync API may hold a running loop in this thread."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(nodelay_of_accepted_connection(protocol_class))).result()


def test_accepted_connections_have_tcp_nodelay_even_on_a_proto_0_listener() -> None:
    assert in_own_loop(None) == 0  # what asyncio leaves: Nagle on
    assert in_own_loop(NoDelayH11Protocol) != 0
