"""Builds the FastAPI application around a Workflow: API, pages, static assets, error handlers."""

from __future__ import annotations

from fastapi import FastAPI

from workflow.services.accounts import Accounts
from workflow.services.workflow import Workflow
from workflow.web import api, attachment_routes, errors, pages
from workflow.web.settings import WebSettings


def create_app(wf: Workflow, settings: WebSettings) -> FastAPI:
    app = FastAPI(
        title="Enterprise appeals",
        version="1.0",
        description="Appeals of enterprises to the district: submit, advance, supervise. "
        "Sign in with POST /api/v1/auth/token, then send Authorization: Bearer TOKEN.",
        openapi_url="/openapi.json",
    )
    app.state.wf = wf
    app.state.settings = settings
    app.state.accounts = Accounts(wf.clock, settings.token_ttl)
    errors.install(app)
    app.include_router(api.router)
    app.include_router(attachment_routes.api_router)
    app.include_router(attachment_routes.page_router)
    pages.install(app)  # after the JSON handlers: it wraps them to answer pages in HTML
    return app
