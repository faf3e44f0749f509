"""Hostile input gets a clear refusal, never a 500: text no database stores, bodies over the limit, page
forms that must refuse rather than cut, and a corpus of hostile values driven through every API operation and
every page form on both backends.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import text as sql

from tests.conftest import OUTDOOR_EVENT, table_counts
from tests.hostile_values import HOSTILE_STRINGS, HOSTILE_VALUES, as_text
from tests.test_access_control import Operation, Walker
from workflow.clock import FrozenClock
from workflow.errors import InvalidInput
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.errors import DATA_REFUSED
from workflow.web.settings import DEFAULT_MAX_BODY_BYTES, WebSettings

SECRET = "hostile-input-test-secret-0123456789abcdef"
PASSWORD = "hostile-test-2026"
# Tables a refused request may still write: sign-in failures and the tokens it is given.
AUTH_TABLES = {"auth_tokens", "login_attempts", "sign_in_events", "page_flashes"}  # sign-in and page-session state


def raw_json(value: Any) -> bytes:
    """JSON as a hostile client writes it: lone surrogates as \\ud800 escapes (httpx refuses to encode them)."""
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def make_app(wf: Workflow, **settings: Any) -> FastAPI:
    return create_app(wf, WebSettings(secret_key=SECRET, **settings))


class Api:
    def __init__(self, wf: Workflow, clock: FrozenClock, client: TestClient) -> None:
        self.wf, self.clock, self.client = wf, clock, client

    def token(self, username: str) -> str:
        with UnitOfWork(self.wf.engine) as uow:
            token, _ = Accounts(self.clock).issue(uow, username)
            uow.commit()
        return token

    def send(self, method: str, path: str, username: str | None, body: Any = None, **options: Any) -> httpx.Response:
        headers = dict(options.pop("headers", {}))
        if username is not None:
            headers["Authorization"] = f"Bearer {self.token(username)}"
        if body is not None:
            headers["Content-Type"] = "application/json"
            options["content"] = raw_json(body)
        return self.client.request(method, path, headers=headers, **options)


@pytest.fixture
def api(demo: Workflow, clock: FrozenClock) -> Iterator[Api]:
    with TestClient(make_app(demo), raise_server_exceptions=False) as client:
        yield Api(demo, clock, client)


def submit(wf: Workflow, **changes: Any) -> str:
    data = {**OUTDOOR_EVENT, **changes}
    return str(wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=data)["number"])


def refusal(answer: httpx.Response, status: int, field: str) -> dict[str, Any]:
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text[:500]}"
    body = answer.json()
    assert set(body) == {"error", "message", "details"}, body
    assert field in {d["field"] for d in body["details"]}, body
    assert field in body["message"], body
    return dict(body)


def unchanged(wf: Workflow) -> dict[str, int]:
    return {k: v for k, v in table_counts(wf.engine).items() if k not in AUTH_TABLES}


# --- lone surrogates and NUL --------------------------------------------------------------------------------


def test_a_lone_surrogate_in_any_json_string_or_key_is_a_422_naming_the_field(api: Api) -> None:
    number = submit(api.wf)
    before = unchanged(api.wf)
    bad_value = {"type": "outdoor_event_permit", "enterprise_id": 1, "data": {**OUTDOOR_EVENT, "venue": "北\ud800广场"}}
    body = refusal(api.send("POST", "/api/v1/appeals", "contact-0001", bad_value), 422, "data.venue")
    assert body["error"] == "invalid_request"
    assert "surrogate" in body["message"], body

    bad_key = {"type": "outdoor_event_permit", "enterprise_id": 1, "data": {**OUTDOOR_EVENT, "x\udfff": "1"}}
    body = refusal(api.send("POST", "/api/v1/appeals", "contact-0001", bad_key), 422, "data")
    assert "key" in body["message"] and "\\udfff" in body["message"], body

    nested = {"data": {"materials": ["ok", {"deep\ud83d": True}]}}
    answer = api.send("POST", f"/api/v1/appeals/{number}/actions/start_pre_check", "staff-b01", nested)
    refusal(answer, 422, "data.materials.1")
    answer = api.send("POST", f"/api/v1/appeals/{number}/comments", "staff-b01", {"text": "已联系\udc00"})
    refusal(answer, 422, "text")
    assert unchanged(api.wf) == before, "a refused request changed the database"


def test_a_nul_character_anywhere_is_a_4xx_with_the_usual_error_shape(api: Api) -> None:
    number = submit(api.wf)
    before = unchanged(api.wf)
    answer = api.send("POST", f"/api/v1/appeals/{number}/assign", "staff-b01", {"username": "specialist\x00-b01"})
    refusal(answer, 422, "username")
    refusal(api.send("GET", "/api/v1/appeals/a%00b", "staff-b01"), 422, "number")
    refusal(api.send("GET", "/api/v1/appeals", "staff-b01", params={"assignee": "me\x00"}), 422, "assignee")
    answer = api.send("POST", "/api/v1/auth/token", None, {"username": "staff\x00b01", "password": "x"})
    body = refusal(answer, 422, "username")
    assert "NUL" in body["message"], body
    assert unchanged(api.wf) == before, "a refused request changed the database"


def test_a_refusal_of_bad_text_comes_after_the_missing_token(api: Api) -> None:
    """Without a token the caller learns nothing, not even that the text is bad."""
    answer = api.send("POST", "/api/v1/appeals/OE-2026-000001/comments", None, {"text": "a\x00b"})
    assert answer.status_code == 401, answer.text
    assert api.send("GET", "/api/v1/appeals/a%00b", None).status_code == 401


def page_client(wf: Workflow, clock: FrozenClock, username: str, **settings: Any) -> TestClient:
    with UnitOfWork(wf.engine) as uow:
        Accounts(clock).set_password(uow, username, PASSWORD)
        uow.commit()
    client = TestClient(make_app(wf, **settings), raise_server_exceptions=False)
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf": csrf_in(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def test_pages_refuse_nul_with_an_error_page_not_a_500(demo: Workflow, clock: FrozenClock) -> None:
    number = submit(demo)
    staff = page_client(demo, clock, "staff-b01")
    before = unchanged(demo)
    token = csrf_in(staff.get(f"/appeals/{number}").text)
    answer = staff.post(
        f"/appeals/{number}/assign",
        data={"csrf": token, "username": "specialist\x00-b01", "expected_version": "1"},
        follow_redirects=False,
    )
    assert answer.status_code == 422, answer.text[:500]
    assert "username" in answer.text and "NUL" in answer.text
    answer = staff.get("/appeals/a%00b")
    assert answer.status_code == 422 and "number" in answer.text, answer.text[:500]

    stranger = TestClient(make_app(demo), raise_server_exceptions=False)
    form = stranger.get("/login")
    answer = stranger.post("/login", data={"username": "staff\x00b01", "password": "x", "csrf": csrf_in(form.text)})
    assert answer.status_code == 422, answer.text[:500]
    assert "username" in answer.text
    assert unchanged(demo) == before


def test_a_value_the_database_refuses_is_a_422_never_a_500(demo: Workflow) -> None:
    """The net under the boundary: a real DataError of the backend, raised under an API path and a page path."""
    refused = "SELECT zeroblob(2000000000)" if demo.engine.dialect.name == "sqlite" else "SELECT CAST('x' AS integer)"

    def store_something() -> None:
        with demo.engine.connect() as conn:
            conn.execute(sql(refused))

    app = make_app(demo)
    app.add_api_route("/api/v1/probe-data-error", store_something)
    app.add_api_route("/probe-data-error", store_something)
    client = TestClient(app, raise_server_exceptions=False)
    answer = client.get("/api/v1/probe-data-error")
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"error": "invalid_request", "message": DATA_REFUSED, "details": None}
    page = client.get("/probe-data-error")
    assert page.status_code == 422 and "<html" in page.text and DATA_REFUSED in page.text


# --- page forms refuse what the API refuses, instead of cutting it ------------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "extra"),
    [
        ("actions/start_pre_check", "comment", {}),
        ("comments", "text", {}),
        ("escalate", "reason", {}),
        ("assign", "reason", {"username": "specialist-b01"}),
    ],
)
def test_a_page_form_refuses_text_longer_than_the_api_allows_keeping_what_was_typed(
    demo: Workflow, clock: FrozenClock, path: str, field: str, extra: dict[str, str]
) -> None:
    number = submit(demo)
    staff = page_client(demo, clock, "staff-b01")
    page = staff.get(f"/appeals/{number}?lang=en")
    before = unchanged(demo), demo.show(number)["version"]
    typed = "x" * 9_999 + "尾"
    data = {"csrf": csrf_in(page.text), field: typed, "expected_version": "1", **extra}
    answer = staff.post(f"/appeals/{number}/{path}", data=data, follow_redirects=False)
    # Refused as every page action is: 303 back to the appeal page (a refresh does not post again), shown with 422.
    assert answer.status_code == 303, f"{answer.status_code}: {answer.headers.get('location')}"
    answer = staff.get(answer.headers["location"])
    assert answer.status_code == 422, answer.status_code
    assert "String should have at most 4000 characters" in answer.text  # the API's words
    assert typed in answer.text, "what was typed is gone"
    assert (unchanged(demo), demo.show(number)["version"]) == before, "the text was stored after all"

    # The API refuses the same text with the same words.
    api = TestClient(make_app(demo), raise_server_exceptions=False)
    with UnitOfWork(demo.engine) as uow:
        token, _ = Accounts(clock).issue(uow, "staff-b01")
        uow.commit()
    body = {"comments": {"text": typed}, "escalate": {"reason": typed}}.get(path, {"comment": typed, **extra})
    answer = api.post(f"/api/v1/appeals/{number}/{path}", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422, answer.text[:300]
    assert "String should have at most 4000 characters" in answer.json()["message"]


# --- request bodies over the limit --------------------------------------------------------------------------


def test_a_json_body_over_the_limit_is_a_413_before_it_is_parsed(api: Api) -> None:
    limit = DEFAULT_MAX_BODY_BYTES
    assert limit == 1_048_576
    number = submit(api.wf)
    token = api.token("staff-b01")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # Not even JSON: a 400 would mean it had been parsed.
    oversize = b"{" + b"x" * limit
    answer = api.client.post(f"/api/v1/appeals/{number}/comments", content=oversize, headers=headers)
    assert answer.status_code == 413, answer.text[:300]
    body = answer.json()
    assert body["error"] == "body_too_large" and "1048576 bytes" in body["message"], body

    # Streamed without a Content-Length (chunked): counted as it arrives.
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(40):
            yield b"x" * 65_536

    answer = api.client.post(f"/api/v1/appeals/{number}/comments", content=chunks(), headers=headers)
    assert answer.status_code == 413, answer.text[:300]
    assert answer.json()["error"] == "body_too_large"

    # Just under the limit is read as usual (and refused for its length by the model).
    fits = raw_json({"text": "x" * (limit - 20)})
    answer = api.client.post(f"/api/v1/appeals/{number}/comments", content=fits, headers=headers)
    assert answer.status_code == 422, answer.text[:300]
    assert api.wf.show(number)["version"] == 1


def test_the_body_limit_is_configured_and_applies_to_page_forms(
    demo: Workflow, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPEALS_SECRET_KEY", SECRET)
    monkeypatch.setenv("APPEALS_MAX_BODY_BYTES", "2000")
    settings = WebSettings.from_environment()
    assert settings.max_body_bytes == 2000
    number = submit(demo)
    staff = page_client(demo, clock, "staff-b01", max_body_bytes=2000)
    token = csrf_in(staff.get(f"/appeals/{number}").text)
    answer = staff.post(f"/appeals/{number}/comments", data={"csrf": token, "text": "x" * 3000})
    assert answer.status_code == 413
    assert "2000" in answer.text and "<html" in answer.text  # the page's own error page
    answer = staff.post(f"/appeals/{number}/comments", data={"csrf": token, "text": "x" * 1000})
    assert answer.status_code == 200
    for wrong in ("lots", "0", "-5"):
        monkeypatch.setenv("APPEALS_MAX_BODY_BYTES", wrong)
        with pytest.raises(InvalidInput, match="APPEALS_MAX_BODY_BYTES"):
            WebSettings.from_environment()


# --- the corpus, through every API operation and every page form ---------------------------------------------

SCRIPT = HOSTILE_STRINGS["script tag"]
# URLs and forms carry only text: the strings (numbers among them as text).
AS_FORM_TEXT = HOSTILE_STRINGS


URL_TEXT = 6_000  # a megabyte cannot travel in a URL: clients and servers stop near 64 KiB


def url_text(text: str, limit: int = URL_TEXT) -> str:
    """Percent-encoded as a hostile client would send it, lone surrogates included (as their UTF-8 bytes)."""
    return quote(text[:limit], safe="", errors="surrogatepass")


def form_text(text: str) -> str:
    return url_text(text, len(text))


@dataclass
class Tally:
    """Requests tried and the answers that broke a promise: any 5xx, and API errors outside the error shape."""

    backend: str
    tried: dict[str, int] = field(default_factory=lambda: {"api": 0, "pages": 0})
    server_errors: list[str] = field(default_factory=list)
    other_problems: list[str] = field(default_factory=list)

    def check(self, where: str, what: str, answer: httpx.Response) -> None:
        self.tried[where] += 1
        short = f"{what}: {answer.status_code} {answer.text[:200]!r}"
        if answer.status_code >= 500:
            self.server_errors.append(short)
            return
        if where == "api" and answer.status_code >= 400:
            body = json_or_none(answer)
            if not isinstance(body, dict) or set(body) != {"error", "message", "details"}:
                self.other_problems.append(f"not the error shape: {short}")
        if where == "pages" and SCRIPT in answer.text:
            self.other_problems.append(f"a script tag reached the page unescaped: {what}")

    def report(self) -> str:
        return (
            f"hostile corpus on {self.backend}: {len(HOSTILE_VALUES)} values; API {self.tried['api']} requests, "
            f"pages {self.tried['pages']} requests; {len(self.server_errors)} server errors"
        )


def json_or_none(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def page_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every route of the app, through FastAPI's included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from page_routes(route.original_router.routes)


class FormScraper(HTMLParser):
    """The POST forms of a page: action and every named field with the value the page put there."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self._fields: dict[str, str] | None = None
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self._fields = {}
            self.forms.append((a["action"], self._fields))
        elif self._fields is None or not a.get("name"):
            return
        elif tag == "input" and a.get("type") != "submit":
            if a.get("type") not in ("checkbox", "radio") or a["name"] not in self._fields:
                self._fields[a["name"]] = a.get("value", "on" if a.get("type") == "checkbox" else "")
        elif tag == "textarea":
            self._fields[a["name"]] = ""
            self._textarea = a["name"]
        elif tag == "select":
            self._select = a["name"]
            self._fields[a["name"]] = ""
        elif tag == "option" and self._select and not self._fields[self._select]:
            self._fields[self._select] = a.get("value", "")

    def handle_data(self, data: str) -> None:
        if self._fields is not None and self._textarea:
            self._fields[self._textarea] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._fields = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None


def forms_in(html: str) -> list[tuple[str, dict[str, str]]]:
    scraper = FormScraper()
    scraper.feed(html)
    return scraper.forms


class Corpus:
    def __init__(self, wf: Workflow, clock: FrozenClock, app: FastAPI, backend: str) -> None:
        self.wf, self.clock, self.app = wf, clock, app
        self.client = TestClient(app, raise_server_exceptions=False)
        self.tally = Tally(backend)
        self.number = submit(wf)
        self.walker = Walker(wf, clock, self.client)
        self.token = self.walker.fresh_token("staff-b01")
        self.addresses = 0

    # --- API ----------------------------------------------------------------------------------------------
    def api_call(self, op: Operation, path_values: dict[str, str], query: dict[str, str], body: Any) -> None:
        path = op.path
        for name, value in path_values.items():
            path = path.replace("{" + name + "}", url_text(value))
        if query:
            path += "?" + "&".join(f"{url_text(k)}={url_text(v)}" for k, v in query.items())
        token = self.walker.fresh_token("staff-b01") if op.method == "DELETE" else self.token
        headers = {"Authorization": f"Bearer {token}"}
        content = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            content = raw_json(body)
        answer = self.client.request(op.method, path, headers=headers, content=content)
        self.tally.check("api", f"{op} {str(path_values)[:80]} {str(query)[:80]} {str(body)[:80]}", answer)

    def walk_api(self) -> None:
        facts = {"username": "specialist-b01", "enterprise_id": 1, "type": "outdoor_event_permit"}
        for op in self.walker.operations():
            params = op.operation.get("parameters", [])
            path_values = {"number": self.number, "trigger": "start_pre_check", "attachment_id": "1"}
            path_values = {p["name"]: path_values[p["name"]] for p in params if p["in"] == "path"}
            queries = [p["name"] for p in params if p["in"] == "query"]
            content = op.operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            body: Any = self.walker.example(schema, facts) if schema else None
            if op.path == "/api/v1/appeals" and op.method == "POST":
                body["data"] = dict(OUTDOOR_EVENT)
            properties = self.properties(schema) if schema else {}
            self.api_call(op, path_values, {}, body)
            for value in HOSTILE_VALUES.values():
                text = as_text(value)
                for name in path_values:
                    self.api_call(op, {**path_values, name: text}, {}, body)
                for name in queries:
                    self.api_call(op, path_values, {name: text}, body)
                for name, prop in properties.items():
                    self.api_call(op, path_values, {}, {**body, name: value})
                    if "object" in json.dumps(prop):  # the form data: a hostile value, and a hostile key
                        inner = {**OUTDOOR_EVENT, "event_name": value}
                        self.api_call(op, path_values, {}, {**body, name: inner})
                        self.api_call(op, path_values, {}, {**body, name: {text: "x"}})

    def properties(self, schema: dict[str, Any]) -> dict[str, Any]:
        if "$ref" in schema:
            schema = self.walker.components[schema["$ref"].split("/")[-1]]
        return dict(schema.get("properties", {}))

    # --- pages --------------------------------------------------------------------------------------------
    def signed_in(self, username: str) -> TestClient:
        with UnitOfWork(self.wf.engine) as uow:
            Accounts(self.clock).set_password(uow, username, PASSWORD)
            uow.commit()
        # Its own address: the walk's failed sign-ins lock the others out (as they should).
        self.addresses += 1
        client = TestClient(self.app, raise_server_exceptions=False, client=(f"192.0.2.{self.addresses}", 50000))
        form = client.get("/login")
        answer = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf": csrf_in(form.text)},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text[:300]
        return client

    def page_call(self, client: TestClient, method: str, url: str, form: dict[str, str] | None = None) -> None:
        content = None
        headers = {}
        if form is not None:
            content = "&".join(f"{form_text(k)}={form_text(v)}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        answer = client.request(method, url, content=content, headers=headers, follow_redirects=False)
        self.tally.check("pages", f"{method} {url[:100]} {str(form)[:120]}", answer)

    def walk_pages(self) -> None:
        staff, contact = self.signed_in("staff-b01"), self.signed_in("contact-0001")
        stranger = TestClient(self.app, raise_server_exceptions=False)
        types = [d["name"] for d in self.wf.definitions()]
        routes = [r for r in page_routes(self.app.routes) if not r.path.startswith("/api/")]
        posted: set[str] = set()
        post_routes = sorted((r.path for r in routes if "POST" in r.methods), key=len, reverse=True)
        for route in routes:
            client = contact if route.path.startswith("/portal") else staff
            valid = {
                "number": self.number,
                "type": "outdoor_event_permit",
                "trigger": "start_pre_check",
                "attachment_id": "1",
            }
            path_values = {p.name: valid[p.name] for p in route.dependant.path_params}
            queries = [p.name for p in route.dependant.query_params] + (["lang"] if route.path == "/login" else [])
            if "GET" not in route.methods:
                continue
            self.page_call(client, "GET", self.url(route.path, path_values))
            for text in AS_FORM_TEXT.values():
                for name in path_values:
                    self.page_call(client, "GET", self.url(route.path, {**path_values, name: text}))
                for name in queries:
                    self.page_call(client, "GET", self.url(route.path, path_values) + f"?{name}={url_text(text)}")
        # Fresh appeals for the forms: one the staff holds, one escalated for the community to send down.
        held, escalated = submit(self.wf), submit(self.wf)
        self.wf.escalate(escalated, as_user="staff-b01", reason="超出楼宇权限")
        community = self.signed_in("community-c01")
        pages = [(stranger, "/login"), (staff, f"/appeals/{held}"), (staff, "/inbox")]
        pages += [(community, f"/appeals/{escalated}"), (contact, f"/appeals/{held}")]
        pages += [(contact, f"/portal/new/{t}") for t in types]
        walked: set[tuple[str, str]] = set()
        for client, page in pages:
            for action, fields in forms_in(client.get(page).text):
                posted.add(action)
                base = {**fields, **{k: as_text(v) for k, v in OUTDOOR_EVENT.items() if k in fields}}
                for name in fields:
                    # A field the same handler reads under the same name (csrf, a shared form field) once.
                    handler = next((p for p in post_routes if re.fullmatch(pattern(p), action)), action)
                    if (handler, name) in walked:
                        continue
                    walked.add((handler, name))
                    for text in AS_FORM_TEXT.values():
                        self.page_call(client, "POST", action, {**base, name: text})
        # No hostile CSRF value is the session's own: the walk signed nobody out.
        for client in (staff, contact, community):
            assert client.get("/inbox", follow_redirects=False).status_code == 200
        unwalked = {p for p in post_routes if not any(re.fullmatch(pattern(p), action) for action in posted)}
        assert not unwalked, f"page forms never walked: {sorted(unwalked)}"
        # The pages again, now showing what the walk stored.
        for client, page in [*pages, (staff, "/worklist?view=all"), (contact, "/portal"), (staff, "/dashboard")]:
            self.page_call(client, "GET", page)

    @staticmethod
    def url(path: str, values: dict[str, str]) -> str:
        for name, value in values.items():
            path = path.replace("{" + name + "}", url_text(value))
        return path


def pattern(route_path: str) -> str:
    return re.sub(r"\{[^}]+\}", "[^/]+", route_path)


@pytest.mark.slow
def test_the_hostile_corpus_through_every_api_operation_and_page_form_never_meets_a_server_error(
    demo: Workflow, clock: FrozenClock, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # refusals and the odd logged 500 would flood the report
    backend = request.node.callspec.params["db_url"]
    corpus = Corpus(demo, clock, make_app(demo), backend)
    corpus.walk_api()
    corpus.walk_pages()
    tally = corpus.tally
    print(tally.report())  # the figures for the closing note (pytest -s or -rP)
    assert tally.tried["api"] > 1_500 and tally.tried["pages"] > 1_500, tally.report()
    assert not tally.server_errors, f"{len(tally.server_errors)} server error(s):\n" + "\n".join(
        tally.server_errors[:30]
    )
    assert not tally.other_problems, "\n".join(tally.other_problems[:30])
