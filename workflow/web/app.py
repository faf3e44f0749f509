"""Builds the FastAPI application around a Workflow: API, pages, static assets, error handlers."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from workflow.services.accounts import Accounts
from workflow.services.attachments import FileSettings
from workflow.services.workflow import Workflow
from workflow.web import api, api_docs, attachment_routes, errors, pages
from workflow.web.body_limits import BodyLimits
from workflow.web.request_text import check_request_text
from workflow.web.security_headers import SecurityHeaders
from workflow.web.settings import WebSettings

MULTIPART_OVERHEAD = 64 * 1024  # boundaries, headers and the small fields beside the file


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
    # File uploads stream against their own, larger limit (counted again per file while they are read).
    uploads = FileSettings.from_environment(wf.engine.url).max_bytes + MULTIPART_OVERHEAD
    app.add_middleware(BodyLimits, default=settings.max_body_bytes, per_type={"multipart/form-data": uploads})
    app.state.wf = wf
    app.state.settings = settings
    app.state.accounts = Accounts(wf.clock, settings.token_ttl)
    errors.install(app)
    app.include_router(api.router)
    app.include_router(attachment_routes.api_router)
    app.include_router(attachment_routes.page_router)
    api_docs.install(app)
    pages.install(app)  # after the JSON handlers: it wraps them to answer pages in HTML
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    return app
