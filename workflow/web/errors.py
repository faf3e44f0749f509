"""One JSON error shape for every failure: {"error": code, "message": text, "details": ...}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from workflow.errors import (
    AppealNotFound,
    Conflict,
    InvalidInput,
    NotFound,
    NotPermitted,
    OutsideJurisdiction,
    WorkflowError,
)
from workflow.services.accounts import NotSignedIn, TooManyAttempts

log = logging.getLogger(__name__)


class ErrorBody(BaseModel):
    error: str
    message: str
    details: Any = None


def status_of(error: WorkflowError) -> int:
    if isinstance(error, NotSignedIn):
        return 401
    if isinstance(error, TooManyAttempts):
        return 429
    if isinstance(error, NotFound):
        return 404
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
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyAttempts) else None
        return error_response(status_of(exc), exc.code, str(exc), exc.details(), headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
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
        code = {404: "not_found", 405: "method_not_allowed", 401: "not_signed_in"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; it has been logged")
