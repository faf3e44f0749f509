"""Builds the FastAPI application around a Workflow: API, pages, static assets, error handlers."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from workflow.services.accounts import Accounts
from workflow.services.workflow import Workflow
from workflow.web import api, api_docs, errors, pages
from workflow.web.body_limits import BodyLimits
from workflow.web.request_text import check_request_text
from workflow.web.security_headers import SecurityHeaders
from workflow.web.settings import WebSettings


def create_app(wf: Workflow, settings: WebSettings) -> FastAPI:
    app = FastAPI(
        title="Enterprise appeals",
        version="1.0",
        description="Appeals of enterprises to the district: submit, advance, supervise. "
        "Sign in with POST /api/v1/auth/token, then send Authorization: Bearer TOKEN.",
        openapi_url="/openapi.json",
        docs_url=None,  # api_docs serves /docs and /redoc with installed assets, not from a CDN
        redoc_url=None,
        dependencies=[Depends(check_request_text)],  # NUL and lone surrogates refused on every route
    )
    app.add_middleware(BodyLimits, default=settings.max_body_bytes)
    app.state.wf = wf
    app.state.settings = settings
    app.state.accounts = Accounts(wf.clock, settings.token_ttl)
    errors.install(app)
    app.include_router(api.router)
    api_docs.install(app)
    pages.install(app)  # after the JSON handlers: it wraps them to answer pages in HTML
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    return app
