"""Security headers on every answer, not only on pages: JSON gets the pages' headers, and HSTS comes with secure
cookies (a site that marks its cookies Secure is served over HTTPS only)."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow.web.page_support import SECURITY_HEADERS

HSTS = "max-age=31536000"  # a year; without includeSubDomains, which would bind hosts this app does not serve
EVERYWHERE = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


def json_security_headers(*, hsts: bool) -> dict[str, str]:
    """For answers made outside the middleware: the 500 answer, which Starlette sends from its outermost layer."""
    return {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if hsts else {})}


class SecurityHeaders:
    """Adds what an answer lacks: all of the pages' headers to JSON, the harmless ones to everything else (static
    files keep their caching, the API docs page its scripts)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                is_json = headers.get("content-type", "").startswith("application/json")
                for name in SECURITY_HEADERS if is_json else EVERYWHERE:
                    if name not in headers:
                        headers[name] = SECURITY_HEADERS[name]
                if self.hsts:
                    headers["Strict-Transport-Security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
