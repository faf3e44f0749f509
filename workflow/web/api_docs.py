"""/docs (Swagger UI) and /redoc, served with assets from an installed package, so they work offline.

FastAPI's own pages load Swagger UI, ReDoc, a favicon and Google Fonts from CDNs: on an intranet without
internet /docs stays blank. The package fastapi-offline ships Swagger UI 5 and ReDoc 2 (the pinned
swagger-ui-bundle holds Swagger UI 4, which cannot read the OpenAPI 3.1 that FastAPI writes).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs/assets"
ASSETS_DIR = files("fastapi_offline") / "static"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# No badge from the public validator: it would be a request to the internet from every visit.
SWAGGER_PARAMETERS = {"validatorUrl": None, "tryItOutEnabled": False, "persistAuthorization": True}
# Nothing from elsewhere, ever: ReDoc's footer shows a logo from its CDN, which this blocks (the logo then hides
# itself). Both pages start themselves with an inline script and style themselves inline.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _confined(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_POLICY
    return page


def install(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets; create the app with docs_url=None and redoc_url=None."""
    openapi_url = app.openapi_url or "/openapi.json"
    app.mount(ASSETS_URL, StaticFiles(directory=str(ASSETS_DIR)), name="api-docs-assets")

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _confined(
            get_swagger_ui_html(
                openapi_url=openapi_url,
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS_URL}/favicon.png",
                oauth2_redirect_url=OAUTH2_REDIRECT_URL,
                swagger_ui_parameters=SWAGGER_PARAMETERS,
            )
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _confined(
            get_redoc_html(
                openapi_url=openapi_url,
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{ASSETS_URL}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS_URL}/favicon.png",
                with_google_fonts=False,
            )
        )
