"""Hostile input gets a clear refusal, never a 500: text no database stores, bodies over the limit, page
forms that must refuse rather than cut, and a corpus of hostile values driven through every API operation and
every page form on both backends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.clock import FrozenClock
from workflow.errors import InvalidInput
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.settings import DEFAULT_MAX_BODY_BYTES, WebSettings

SECRET = "hostile-input-test-secret-0123456789abcdef"
PASSWORD = "hostile-test-2026"
# Tables a refused request may still write: sign-in failures and the tokens it is given.
AUTH_TABLES = {"auth_tokens", "login_attempts"}


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
    assert answer.status_code == 422, f"{answer.status_code}: {answer.headers.get('location')}"
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
