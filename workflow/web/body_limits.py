"""Request bodies over the limit are refused with 413 before anyone reads them.

The limit is chosen by the body's media type (JSON and forms: `APPEALS_MAX_BODY_BYTES`, 1 MiB by default; a
type listed in `per_type` gets its own, e.g. a larger one for file uploads). A declared Content-Length over the
limit is refused at the first read, before a byte is taken; a body without one (chunked) is counted as it
arrives and refused the moment it passes the limit. The refusal is raised inside the app, so the API answers
in its JSON error shape and the pages with their error page.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int, media_type: str) -> None:
        self.limit = limit
        what = media_type or "a body without a Content-Type"
        super().__init__(413, f"the request body is larger than the {limit} bytes allowed for {what}")


class BodyLimits:
    """ASGI middleware: a byte limit per media type, and a default for every other body."""

    def __init__(self, app: ASGIApp, *, default: int, per_type: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.per_type = {media.lower(): limit for media, limit in (per_type or {}).items()}

    def limit_for(self, media_type: str) -> int:
        return self.per_type.get(media_type, self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.limit_for(media_type)
        declared = headers.get("content-length", "").strip()
        over_at_once = declared.isdigit() and int(declared) > limit
        received = 0

        async def limited() -> Message:
            nonlocal received
            if over_at_once:
                raise BodyTooLarge(limit, media_type)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, media_type)
            return message

        await self.app(scope, limited, send)
