"""One JSON error shape for every failure: {"error": code, "message": text, "details": ...}."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from workflow.errors import (
    AppealNotFound,
    Conflict,
    FileTooLarge,
    InvalidInput,
    NotFound,
    NotPermitted,
    OutsideJurisdiction,
    WorkflowError,
)
from workflow.services.accounts import NotSignedIn, TooManyAttempts
from workflow.web.security_headers import json_security_headers

log = logging.getLogger(__name__)
# The boundary refuses what no database stores (request_text.py); this is the net under it.
DATA_REFUSED = "a value in the request cannot be stored (the database refused it; it has been logged)"


class ErrorBody(BaseModel):
    """Every error answer of the API: a stable code, one line for people, and facts for programs (or null)."""

    error: str
    message: str
    details: Any


class InvalidToken(NotSignedIn):
    """A bearer token was sent but is unknown, revoked, expired or its account disabled (RFC 6750 invalid_token)."""


def bearer_challenge(error: NotSignedIn) -> str:
    """The WWW-Authenticate of a 401 (RFC 6750 section 3): plain without a token, invalid_token with a bad one."""
    if not isinstance(error, InvalidToken):
        return "Bearer"
    description = re.sub(r'[^\x20-\x7e]|["\\]', "", str(error))
    return f'Bearer error="invalid_token", error_description="{description}"'


def status_of(error: WorkflowError) -> int:
    if isinstance(error, NotSignedIn):
        return 401
    if isinstance(error, TooManyAttempts):
        return 429
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, FileTooLarge):
        return 413
    if isinstance(error, NotPermitted):
        return 403
    if isinstance(error, Conflict):
        return 409
    if isinstance(error, InvalidInput):
        return 422
    return 400


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "details": details}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(WorkflowError)
    async def workflow_error(request: Request, exc: WorkflowError) -> JSONResponse:
        if isinstance(exc, OutsideJurisdiction) and "number" in request.path_params:
            # Same answer as for a number that does not exist: guessing numbers reveals nothing.
            hidden = AppealNotFound(str(request.path_params["number"]))
            return error_response(404, hidden.code, str(hidden))
        headers: dict[str, str] | None = None
        if isinstance(exc, TooManyAttempts):
            headers = {"Retry-After": str(exc.retry_after)}
        elif isinstance(exc, NotSignedIn):
            headers = {"WWW-Authenticate": bearer_challenge(exc)}
        return error_response(status_of(exc), exc.code, str(exc), exc.details(), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        unreadable = next((e for e in exc.errors() if e.get("type") == "json_invalid"), None)
        if unreadable is not None:
            # Malformed syntax is a 400 (RFC 9110 15.5.1); 422 is for JSON that parses but does not fit.
            where = unreadable.get("loc", ())[-1:]
            reason = (unreadable.get("ctx") or {}).get("error") or unreadable.get("msg", "")
            text = f"the body is not valid JSON: {reason}" + (f" at character {where[0]}" if where else "")
            return error_response(400, "invalid_request", f"bad request: {text}", [{"field": "", "message": text}])
        problems = [
            {
                "field": ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")),
                "message": e.get("msg", ""),
            }
            for e in exc.errors()
        ]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return error_response(422, "invalid_request", f"bad request: {text}", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode at all (bytes that are not UTF-8, say).
            text = f"the body cannot be read: {exc.detail}"
            return error_response(400, "invalid_request", f"bad request: {text}", [{"field": "", "message": text}])
        if exc.status_code == 401:
            headers.setdefault("WWW-Authenticate", "Bearer")
        code = {404: "not_found", 405: "method_not_allowed", 401: "not_signed_in", 413: "body_too_large"}.get(
            exc.status_code, "http_error"
        )
        return error_response(exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(DataError)
    async def data_refused(request: Request, exc: DataError) -> JSONResponse:
        log.warning("the database refused a value on %s %s: %s", request.method, request.url.path, exc.orig)
        return error_response(422, "invalid_request", DATA_REFUSED)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        hsts = bool(getattr(getattr(request.app.state, "settings", None), "secure_cookies", False))
        headers = json_security_headers(hsts=hsts)
        return error_response(500, "internal_error", "internal error; it has been logged", headers=headers)
