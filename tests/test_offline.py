"""Offline intranets: no page, the API's documentation included, asks for anything from outside the server.

A real Chromium visits every page with every request routed through a guard that lets through only requests to
the test server and aborts and records the rest; /docs must render the operations from assets served here.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from tests.conftest import OUTDOOR_EVENT
from tests.live_server import LiveServer
from tests.test_browser import PASSWORD, server, with_passwords  # noqa: F401 - fixtures
from workflow.clock import FrozenClock
from workflow.services.workflow import Workflow


class Outside:
    """Aborts and remembers every request to another host than the server's."""

    def __init__(self, server_url: str) -> None:
        self.host = urlsplit(server_url).netloc
        self.requests: list[str] = []

    def __call__(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != self.host:
            self.requests.append(url)
            route.abort()
            return
        route.continue_()


def guarded_page(browser: Browser, live: LiveServer, outside: Outside, username: str | None = None) -> Page:
    context: BrowserContext = browser.new_context(base_url=live.url, locale="zh-CN")
    context.set_default_timeout(15_000)
    context.route("**/*", outside)
    page = context.new_page()
    if username is not None:
        page.goto("/login")
        page.fill("#username", username)
        page.fill("#password", PASSWORD)
        page.click("form[action='/login'] button[type=submit]")
        expect(page.locator("header .user")).to_be_visible()
    return page


def visit(page: Page, path: str, ready: Callable[[Page], None] | None = None) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    if ready is not None:
        ready(page)


def test_no_page_asks_for_anything_outside_the_server_and_the_api_docs_render_offline(
    chromium: Browser,
    server: LiveServer,  # noqa: F811
    demo: Workflow,
    clock: FrozenClock,
) -> None:
    with_passwords(demo, clock, "staff-b01", "contact-0001", "community-c01")
    appeal = demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)
    number = str(appeal["number"])
    outside = Outside(server.url)
    operations = sum(len(ops) for ops in demo_schema_paths(server))

    stranger = guarded_page(chromium, server, outside)
    visit(stranger, "/login")
    visit(stranger, "/login?lang=en")
    visit(stranger, "/docs", lambda p: expect(p.locator(".opblock")).to_have_count(operations, timeout=20_000))
    expect(stranger.locator(".opblock-summary-path").first).to_be_visible()
    redoc_operations = "[data-section-id*='/operation/']"
    visit(stranger, "/redoc", lambda p: expect(p.locator(redoc_operations)).to_have_count(operations, timeout=20_000))
    expect(stranger.locator("h1", has_text="Enterprise appeals")).to_be_visible()

    staff = guarded_page(chromium, server, outside, "staff-b01")
    staff_pages = ["/worklist", "/worklist?view=all", f"/appeals/{number}", f"/appeals/{number}?lang=en", "/inbox"]
    for path in [*staff_pages, "/dashboard", "/appeals/OE-2026-999999"]:
        visit(staff, path)
    contact = guarded_page(chromium, server, outside, "contact-0001")
    for path in ("/portal", *(f"/portal/new/{d['name']}" for d in demo.definitions()), f"/appeals/{number}"):
        visit(contact, path)
    community = guarded_page(chromium, server, outside, "community-c01")
    visit(community, "/dashboard")
    assert not outside.requests, f"requests outside the server: {sorted(set(outside.requests))}"


def demo_schema_paths(live: LiveServer) -> list[dict[str, object]]:
    schema = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    return [
        {m: op for m, op in ops.items() if m in ("get", "post", "put", "patch", "delete")}
        for ops in schema["paths"].values()
    ]
