"""The REST API under /api/v1 on SQLite and PostgreSQL: signing in, appeals, actions, supervision, notices."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from tests.conftest import OUTDOOR_EVENT, START
from workflow.bootstrap import connect
from workflow.clock import FrozenClock
from workflow.errors import OutsideJurisdiction
from workflow.persistence.database import create_database_engine
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.workflow import Workflow
from workflow.web.api import router as api_router
from workflow.web.app import create_app
from workflow.web.attachment_routes import api_router as attachment_api_router
from workflow.web.settings import WebSettings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "appeals-test-2026"
CHINESE_PASSWORD = "长沙芙蓉楼宇企业服务" * 6 + "诉求受理"
TTL = timedelta(hours=8)
GENERAL_APPEAL = {
    "category": "tax",
    "subject": "发票领用额度不足",
    "description": "本月业务量增长，申请提高增值税发票领用额度。",
    "urgency": "normal",
    "contact_phone": "0731-8888 7777",
}
ERROR_KEYS = {"error", "message", "details"}


class Api:
    """A TestClient over the demo district that acts as any demo user."""

    def __init__(self, app: FastAPI, wf: Workflow, clock: FrozenClock, client: TestClient) -> None:
        self.app = app
        self.wf = wf
        self.clock = clock
        self.client = client
        self.accounts = Accounts(clock, TTL)
        self._tokens: dict[str, str] = {}

    def set_passwords(self, passwords: dict[str, str]) -> None:
        """scrypt costs ~50 ms a hash: only the users that sign in through the API get one, in one transaction."""
        with UnitOfWork(self.wf.engine) as uow:
            for username, password in passwords.items():
                self.accounts.set_password(uow, username, password)
            uow.commit()

    def sign_in(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.client.post("/api/v1/auth/token", json={"username": username, "password": password})

    def token(self, username: str) -> str:
        """A token as signing in gives, issued without paying for a password check."""
        if username not in self._tokens:
            with UnitOfWork(self.wf.engine) as uow:
                self._tokens[username], _ = self.accounts.issue(uow, username)
                uow.commit()
        return self._tokens[username]

    def headers(self, username: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(username)}"}

    def get(self, path: str, as_: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(f"/api/v1{path}", headers=self.headers(as_), **kwargs)

    def post(self, path: str, as_: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.client.post(f"/api/v1{path}", headers=self.headers(as_), json=json, **kwargs)

    def submit(self, as_: str = "contact-0001", **overrides: Any) -> dict[str, Any]:
        body = {"type": "outdoor_event_permit", "enterprise_id": 1, "data": OUTDOOR_EVENT, **overrides}
        answer = self.post("/appeals", as_, json=body)
        assert answer.status_code == 201, answer.text
        result: dict[str, Any] = answer.json()
        return result

    def fire(self, number: str, trigger: str, as_: str, **body: Any) -> httpx.Response:
        return self.post(f"/appeals/{number}/actions/{trigger}", as_, json=body)


@pytest.fixture
def api(demo: Workflow, clock: FrozenClock) -> Iterator[Api]:
    app = create_app(demo, WebSettings(secret_key=SECRET, token_ttl=TTL))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Api(app, demo, clock, client)


def expect_error(answer: httpx.Response, status: int, code: str, message: str) -> dict[str, Any]:
    assert answer.status_code == status, f"expected {status}, got {answer.status_code}: {answer.text}"
    body: dict[str, Any] = answer.json()
    assert set(body) == ERROR_KEYS, f"not the one error shape: {body}"
    assert body["error"] == code, body
    assert message in body["message"], f"{message!r} not in {body['message']!r}"
    return body


def numbers(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [a["number"] for a in answer.json()["appeals"]]


# --- signing in ---------------------------------------------------------------------------


def test_signing_in_gives_a_bearer_token_that_expires_after_the_configured_time(api: Api) -> None:
    api.set_passwords({"staff-b01": PASSWORD})
    answer = api.sign_in("staff-b01")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "bearer"
    assert body["expires_at"] == (START + TTL).isoformat()
    assert (body["username"], body["role"]) == ("staff-b01", "building_staff")
    assert len(body["access_token"]) >= 32, "a bearer token needs enough randomness"
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "staff-b01"


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(api: Api) -> None:
    api.set_passwords({"contact-0001": PASSWORD})
    wrong = api.sign_in("contact-0001", "not-the-password")
    body = expect_error(wrong, 401, "sign_in_failed", "wrong username or password")
    assert body["details"] is None
    unknown = api.sign_in("nobody-at-all", "not-the-password")
    assert unknown.json() == body, "the answer must not tell which usernames exist"


def test_an_unknown_user_costs_the_same_password_check_as_a_known_one(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.set_passwords({"contact-0001": PASSWORD})
    checks: list[int] = []
    real_scrypt = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        checks.append(1)
        return real_scrypt(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    expect_error(api.sign_in("contact-0001", "not-the-password"), 401, "sign_in_failed", "wrong username")
    known = len(checks)
    expect_error(api.sign_in("nobody-at-all", "not-the-password"), 401, "sign_in_failed", "wrong username")
    assert (known, len(checks) - known) == (1, 1), "an unknown user must cost one scrypt, like a known one"


def test_a_64_character_chinese_password_signs_in(api: Api) -> None:
    assert len(CHINESE_PASSWORD) == 64
    api.set_passwords({"contact-0001": CHINESE_PASSWORD})
    answer = api.sign_in("contact-0001", CHINESE_PASSWORD)
    assert answer.status_code == 200, answer.text
    expect_error(api.sign_in("contact-0001", CHINESE_PASSWORD[:-1]), 401, "sign_in_failed", "wrong username")


def test_a_token_stops_working_once_its_time_is_up(api: Api) -> None:
    headers = api.headers("staff-b01")
    api.clock.advance(TTL - timedelta(seconds=1))
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    api.clock.advance(timedelta(seconds=1))
    expect_error(
        api.client.get("/api/v1/me", headers=headers), 401, "not_signed_in", "the token has expired; sign in again"
    )


def test_deleting_the_token_signs_that_token_out_only(api: Api) -> None:
    api.set_passwords({"staff-b01": PASSWORD})
    first, second = (api.sign_in("staff-b01").json()["access_token"] for _ in range(2))
    revoked = api.client.delete("/api/v1/auth/token", headers={"Authorization": f"Bearer {first}"})
    assert revoked.status_code == 204, revoked.text
    expect_error(
        api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {first}"}),
        401,
        "not_signed_in",
        "the token is not valid",
    )
    still = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {second}"})
    assert still.status_code == 200, "signing out one session must leave the others alone"


def test_a_401_challenges_for_a_bearer_token_and_names_a_bad_one_invalid_token(api: Api) -> None:
    """RFC 6750 3.1: WWW-Authenticate on every 401; error="invalid_token" when the token sent does not work."""

    def challenge(answer: httpx.Response, message: str) -> str:
        expect_error(answer, 401, answer.json().get("error", "?"), message)
        return answer.headers.get("WWW-Authenticate", "<none>")

    def invalid(description: str) -> str:
        return f'Bearer error="invalid_token", error_description="{description}"'

    assert challenge(api.client.get("/api/v1/me"), "send Authorization: Bearer TOKEN") == "Bearer"
    basic = {"Authorization": "Basic Y29udGFjdC0wMDAxOnBhc3N3b3Jk"}
    assert challenge(api.client.get("/api/v1/me", headers=basic), "send Authorization: Bearer TOKEN") == "Bearer"
    unknown = {"Authorization": "Bearer not-a-token-at-all"}
    assert challenge(api.client.get("/api/v1/me", headers=unknown), "not valid") == invalid(
        "the token is not valid; sign in again"
    )
    api.set_passwords({"staff-b01": PASSWORD})
    token = api.sign_in("staff-b01").json()["access_token"]
    revoked = {"Authorization": f"Bearer {token}"}
    assert api.client.delete("/api/v1/auth/token", headers=revoked).status_code == 204
    assert challenge(api.client.get("/api/v1/appeals", headers=revoked), "not valid") == invalid(
        "the token is not valid; sign in again"
    )
    expiring = api.headers("contact-0001")
    api.clock.advance(TTL)
    assert challenge(api.client.post("/api/v1/appeals", headers=expiring, json={}), "expired") == invalid(
        "the token has expired; sign in again"
    )
    assert challenge(api.sign_in("staff-b01", "not-the-password"), "wrong username") == "Bearer"


def test_disabling_an_account_revokes_its_tokens_at_once(api: Api) -> None:
    api.set_passwords({"staff-b01": PASSWORD})
    headers = api.headers("staff-b01")
    assert api.client.get("/api/v1/me", headers=headers).status_code == 200
    with UnitOfWork(api.wf.engine) as uow:  # what `appeals user disable staff-b01` does
        api.accounts.disable(uow, "staff-b01")
        uow.commit()
    expect_error(api.client.get("/api/v1/appeals", headers=headers), 401, "not_signed_in", "sign in again")
    expect_error(api.sign_in("staff-b01"), 401, "sign_in_failed", "wrong username or password")


def test_failed_sign_ins_hold_back_the_failing_address_on_every_node(api: Api, db_url: str, clock: FrozenClock) -> None:
    api.set_passwords({"contact-0001": PASSWORD})
    for attempt in range(1, 4):
        answer = api.sign_in("contact-0001", f"guess-number-{attempt}")
        assert answer.status_code == 401, f"attempt {attempt}: {answer.text}"
    refused = api.sign_in("contact-0001")  # even the right password, from the address that has been failing
    body = expect_error(refused, 429, "too_many_attempts", "too many failed sign-ins; try again in 1 second")
    assert refused.headers["Retry-After"] == "1"
    assert body["details"] == {"retry_after": 1}
    other_engine = create_database_engine(db_url)
    try:
        other_node = create_app(connect(engine=other_engine, clock=clock), WebSettings(secret_key=SECRET))
        with TestClient(other_node) as other:
            elsewhere = other.post("/api/v1/auth/token", json={"username": "contact-0001", "password": PASSWORD})
            expect_error(elsewhere, 429, "too_many_attempts", "try again in 1 second")
    finally:
        other_engine.dispose()
    clock.advance(timedelta(seconds=1))
    assert api.sign_in("contact-0001").status_code == 200, "the delay is over"


def test_twenty_failures_from_one_address_hold_back_that_address_for_every_account(api: Api) -> None:
    api.set_passwords({"contact-0001": PASSWORD})
    for attempt in range(20):
        answer = api.sign_in(f"guessed-user-{attempt}", "guessed-password")
        assert answer.status_code == 401, f"attempt {attempt}: {answer.text}"
    expect_error(api.sign_in("contact-0001"), 429, "too_many_attempts", "try again in 1 second")


# --- appeal types and submitting ------------------------------------------------------------


def test_appeal_types_list_every_definition_with_its_fields(api: Api) -> None:
    answer = api.get("/appeal-types", "contact-0001")
    assert answer.status_code == 200, answer.text
    types = {t["name"]: t for t in answer.json()}
    assert set(types) == {
        "financing_support",
        "general_appeal",
        "outdoor_event_permit",
        "party_branch_formation",
        "policy_fulfilment",
    }
    for name, definition in types.items():
        assert definition["fields"], f"{name} lists no fields"
        for field in definition["fields"]:
            assert {"name", "type", "required", "title", "choices"} <= set(field), f"{name}: {field}"
    fields = {f["name"]: f for f in types["outdoor_event_permit"]["fields"]}
    assert list(fields) == [
        "event_name",
        "event_kind",
        "venue",
        "start_date",
        "end_date",
        "expected_attendance",
        "temporary_structures",
        "contact_phone",
    ]
    assert fields["expected_attendance"] | {"title": None} == {
        "name": "expected_attendance",
        "type": "integer",
        "required": True,
        "title": None,
        "choices": [],
        "min": 1,
        "max": 50000,
    }
    assert fields["event_kind"]["choices"][0] == "opening"


def test_submitting_answers_201_with_number_state_level_assignee_and_sla(api: Api) -> None:
    answer = api.post(
        "/appeals", "contact-0001", json={"type": "outdoor_event_permit", "enterprise_id": 1, "data": OUTDOOR_EVENT}
    )
    assert answer.status_code == 201, answer.text
    appeal = answer.json()
    assert appeal["number"] == "OE-2026-000001"
    assert (appeal["state"], appeal["version"], appeal["level"], appeal["assignee"]) == (
        "submitted",
        1,
        "building",
        "staff-b01",
    )
    assert appeal["unit"]["code"] == "B01"
    assert appeal["data"] == OUTDOOR_EVENT
    # Submitted at 10:00 on a working Thursday; the first step has four working hours.
    assert appeal["sla"]["due_at"] == "2026-11-26T16:00:00+08:00"
    assert appeal["sla"]["status"] == "on_track"
    assert appeal["sla"]["overall_due_at"] == "2026-12-03T10:00:00+08:00"
    assert [a["trigger"] for a in appeal["actions"]] == ["withdraw", "comment"], "the contact may withdraw, comment"


def test_every_bad_form_field_is_named_in_the_422_and_nothing_is_stored(api: Api) -> None:
    bad = {**OUTDOOR_EVENT, "event_kind": "parade", "expected_attendance": 0, "colour": "red"}
    del bad["venue"]
    answer = api.post(
        "/appeals", "contact-0001", json={"type": "outdoor_event_permit", "enterprise_id": 1, "data": bad}
    )
    body = expect_error(answer, 422, "invalid_fields", "has 4 bad field(s)")
    assert {p["field"] for p in body["details"]} == {"event_kind", "expected_attendance", "colour", "venue"}
    assert "'parade' is not one of: opening" in body["message"]

    shapeless = api.post("/appeals", "contact-0001", json={"type": "", "enterprise_id": "first", "data": []})
    body = expect_error(shapeless, 422, "invalid_request", "bad request: ")
    assert {p["field"] for p in body["details"]} == {"type", "enterprise_id", "data"}
    for field in ("type", "enterprise_id", "data"):
        assert f"{field}: " in body["message"], f"{field} not named in {body['message']!r}"

    assert api.get("/appeals", "contact-0001").json()["total"] == 0


# --- listing --------------------------------------------------------------------------------


def test_the_list_filters_by_state_type_level_unit_and_assignee_newest_first(api: Api) -> None:
    wf = api.wf
    first = api.submit()["number"]
    second = api.submit()["number"]
    general = api.submit(type="general_appeal", data=GENERAL_APPEAL)["number"]
    neighbour = api.submit("contact-0031", enterprise_id=31)["number"]
    wf.fire(first, "start_pre_check", as_user="staff-b01")
    wf.escalate(second, as_user="staff-b01", reason="场地涉及市政道路，超出楼宇权限")

    everything = api.get("/appeals", "community-c01")
    assert numbers(everything) == [neighbour, general, second, first]
    assert everything.json()["total"] == 4
    assert numbers(api.get("/appeals", "staff-b01")) == [general, second, first], "B02 is not staff-b01's"

    def listed(user: str, **query: Any) -> list[str]:
        return numbers(api.get("/appeals", user, params=query))

    assert listed("community-c01", state="pre_check") == [first]
    assert listed("community-c01", type="general_appeal") == [general]
    assert listed("community-c01", level="community") == [second]
    assert listed("community-c01", unit="B02") == [neighbour]
    assert listed("staff-b01", assignee="me") == [general, first]
    assert listed("community-c01", assignee="me") == [second]
    assert listed("community-c01", assignee="staff-b02") == [neighbour]
    assert listed("community-c01", state="submitted", unit="B01") == [general, second]

    page = api.get("/appeals", "community-c01", params={"page": 2, "page_size": 3}).json()
    assert (page["total"], page["page"], page["page_size"]) == (4, 2, 3)
    assert [a["number"] for a in page["appeals"]] == [first]

    expect_error(
        api.get("/appeals", "community-c01", params={"level": "planet"}),
        422,
        "invalid_input",
        "unknown level 'planet'; allowed: building, community, subdistrict, district",
    )
    body = expect_error(
        api.get("/appeals", "community-c01", params={"page": 0, "page_size": 500}), 422, "invalid_request", "page"
    )
    assert {p["field"] for p in body["details"]} == {"page", "page_size"}


def test_the_list_finds_appeals_at_risk_and_overdue_by_the_clock(api: Api) -> None:
    started = api.submit()["number"]
    api.wf.fire(started, "start_pre_check", as_user="staff-b01")  # a fresh working day for this step
    waiting = api.submit()["number"]  # four working hours, due 16:00, at risk from 15:12

    assert numbers(api.get("/appeals", "staff-b01", params={"at_risk": True})) == []
    api.clock.advance(timedelta(hours=5, minutes=30))  # 15:30 in Shanghai
    assert numbers(api.get("/appeals", "staff-b01", params={"at_risk": True})) == [waiting]
    assert numbers(api.get("/appeals", "staff-b01", params={"overdue": True})) == []
    api.clock.advance(timedelta(hours=1))  # 16:30
    assert numbers(api.get("/appeals", "staff-b01", params={"overdue": True})) == [waiting]
    assert numbers(api.get("/appeals", "staff-b01", params={"at_risk": True})) == []
    shown = api.get(f"/appeals/{waiting}", "staff-b01").json()
    assert shown["sla"]["status"] == "breached"
    assert shown["sla"]["working_time_left"] == {"seconds": -1800, "text": "-0h30m"}


# --- one appeal and its actions -----------------------------------------------------------------


def test_an_appeal_shows_each_viewer_the_actions_they_may_take_with_their_fields(api: Api) -> None:
    number = api.submit()["number"]
    api.wf.fire(number, "start_pre_check", as_user="staff-b01")
    api.wf.fire(number, "pass_pre_check", as_user="staff-b01")

    seen = api.get(f"/appeals/{number}", "specialist-b01")
    assert seen.status_code == 200, seen.text
    actions = {a["trigger"]: a for a in seen.json()["actions"]}
    assert list(actions) == ["file_application", "escalate", "assign", "comment"]
    filing = actions["file_application"]
    assert filing["required_fields"] == ["materials_complete"]
    assert [(f["name"], f["type"], f["required"]) for f in filing["fields"]] == [
        ("materials_complete", "boolean", True),
        ("collection_notes", "text", False),
    ]
    assert filing["guards"] == ["materials_complete"]
    assert filing["dest"] == "bureau_review"
    contact = api.get(f"/appeals/{number}", "contact-0001").json()["actions"]
    assert [a["trigger"] for a in contact] == ["withdraw", "comment"]
    escalate = actions["escalate"]
    assert (escalate["kind"], escalate["level"], escalate["comment_required"], escalate["fields"]) == (
        "chain",
        "community",
        True,
        [],
    )
    assign = actions["assign"]
    assert (assign["required_fields"], [t["username"] for t in assign["targets"]]) == (["username"], ["staff-b01"])
    assert [a["trigger"] for a in api.get(f"/appeals/{number}", "community-c01").json()["actions"]] == [
        "assign",
        "comment",
    ], "a level above may assign it, nothing more"


def test_firing_an_action_answers_200_with_the_new_state_and_the_next_actions(api: Api) -> None:
    number = api.submit()["number"]
    answer = api.fire(number, "start_pre_check", "staff-b01", expected_version=1, comment="已受理")
    assert answer.status_code == 200, answer.text
    appeal = answer.json()
    assert (appeal["state"], appeal["version"], appeal["assignee"]) == ("pre_check", 2, "staff-b01")
    assert [a["trigger"] for a in appeal["actions"]] == [
        "request_materials",
        "pass_pre_check",
        "escalate",
        "assign",
        "comment",
    ]
    assert api.get(f"/appeals/{number}/history", "staff-b01").json()[-1]["comment"] == "已受理"


def test_a_stale_expected_version_is_a_409_naming_both_versions(api: Api) -> None:
    number = api.submit()["number"]
    assert api.fire(number, "start_pre_check", "staff-b01", expected_version=1).status_code == 200
    stale = api.fire(number, "request_materials", "staff-b01", expected_version=1, comment="请补充")
    body = expect_error(stale, 409, "version_conflict", "expected version 1 (it is now at version 2); reload")
    assert body["details"] == {"number": number, "expected_version": 1, "actual_version": 2}
    assert api.get(f"/appeals/{number}", "staff-b01").json()["state"] == "pre_check"


def test_a_trigger_not_possible_in_this_state_is_a_409_naming_the_allowed_ones(api: Api) -> None:
    number = api.submit()["number"]
    answer = api.fire(number, "approve", "staff-b01")
    body = expect_error(
        answer,
        409,
        "transition_not_allowed",
        "is in state 'submitted', where 'approve' is not possible; possible here: start_pre_check",
    )
    assert body["details"] == {"state": "submitted", "trigger": "approve", "allowed": ["start_pre_check"]}


def test_a_trigger_outside_the_callers_role_is_a_403(api: Api) -> None:
    number = api.submit()["number"]
    body = expect_error(
        api.fire(number, "start_pre_check", "contact-0001"),
        403,
        "forbidden",
        "user 'contact-0001' has role 'enterprise_contact', but 'start_pre_check' is allowed only to: "
        "building_staff, specialist",
    )
    assert body["details"] == {"allowed_roles": ["building_staff", "specialist"]}
    assert api.get(f"/appeals/{number}", "contact-0001").json()["version"] == 1


def test_bad_action_fields_are_a_422_naming_each_field(api: Api) -> None:
    number = api.submit()["number"]
    api.wf.fire(number, "start_pre_check", as_user="staff-b01")
    expect_error(
        api.fire(number, "request_materials", "staff-b01"), 422, "comment_required", "'request_materials' on appeal"
    )
    api.wf.fire(number, "pass_pre_check", as_user="staff-b01")
    answer = api.fire(
        number,
        "file_application",
        "specialist-b01",
        data={"materials_complete": "perhaps", "collection_notes": "备" * 1001, "stamp": "red"},
    )
    body = expect_error(answer, 422, "invalid_fields", "has 3 bad field(s)")
    assert {p["field"] for p in body["details"]} == {"materials_complete", "collection_notes", "stamp"}

    shapeless = api.post(
        f"/appeals/{number}/actions/file_application",
        "specialist-b01",
        json={"comment": "x" * 4001, "data": "all there", "expected_version": 0},
    )
    body = expect_error(shapeless, 422, "invalid_request", "bad request: ")
    assert {p["field"] for p in body["details"]} == {"comment", "data", "expected_version"}
    assert api.get(f"/appeals/{number}", "specialist-b01").json()["version"] == 3, "nothing moved"


# --- history and comments ---------------------------------------------------------------------


def test_a_comment_answers_201_and_joins_the_history_without_moving_the_version(api: Api) -> None:
    number = api.submit()["number"]
    api.wf.fire(number, "start_pre_check", as_user="staff-b01")
    answer = api.post(f"/appeals/{number}/comments", "specialist-b01", json={"text": "  已电话联系企业  "})
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"number": number, "version": 2, "comment": "已电话联系企业"}
    history = api.get(f"/appeals/{number}/history", "contact-0001")
    assert history.status_code == 200, history.text
    assert [(e["kind"], e["actor"], e["version"]) for e in history.json()] == [
        ("submitted", "contact-0001", 1),
        ("fired", "staff-b01", 2),
        ("commented", "specialist-b01", 2),
    ]
    assert history.json()[-1]["comment"] == "已电话联系企业"
    assert api.get(f"/appeals/{number}", "staff-b01").json()["version"] == 2
    body = expect_error(
        api.post(f"/appeals/{number}/comments", "staff-b01", json={"text": ""}), 422, "invalid_request", "text"
    )
    assert [p["field"] for p in body["details"]] == ["text"]


# --- supervision --------------------------------------------------------------------------------


def test_the_sla_summary_counts_per_level_and_unit_with_rates_for_a_supervisor(api: Api) -> None:
    api.submit()
    api.submit("contact-0031", enterprise_id=31)
    escalated = api.submit()["number"]
    api.wf.fire(escalated, "start_pre_check", as_user="staff-b01")
    api.wf.escalate(escalated, as_user="staff-b01", reason="超出楼宇权限")

    answer = api.get("/sla/summary", "district-01")
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert summary["unit"]["code"] == "D01"
    assert summary["totals"]["open"] == 3
    levels = {lv["level"]: lv for lv in summary["levels"]}
    assert list(levels) == ["building", "community", "subdistrict", "district"]
    assert {u["unit"]["code"]: u["open"] for u in levels["building"]["units"]} == {"B01": 1, "B02": 1}
    assert {u["unit"]["code"]: u["open"] for u in levels["community"]["units"]} == {"C01": 1}
    rates = summary["rates"]
    assert (rates["submitted"], rates["responded"]) == (3, 1)
    assert rates["response_rate"] == 0.3333, "rates are rounded to four places"

    narrow = api.get("/sla/summary", "community-c01", params={"unit": "B02"}).json()
    assert narrow["totals"]["open"] == 1
    expect_error(
        api.get("/sla/summary", "community-c01", params={"unit": "B03"}),
        403,
        "forbidden",
        "unit 'B03' is outside the jurisdiction of user 'community-c01'",
    )
    expect_error(
        api.get("/sla/summary", "contact-0001"),
        403,
        "forbidden",
        "the SLA summary is for supervisors; user 'contact-0001' has role 'enterprise_contact'",
    )


# --- notices ------------------------------------------------------------------------------------


def test_the_inbox_lists_notices_newest_first_and_marks_only_ones_own_read(api: Api) -> None:
    number = api.submit()["number"]
    inbox = api.get("/inbox", "staff-b01")
    assert inbox.status_code == 200, inbox.text
    assert inbox.json()["unread"] == 1
    notice = inbox.json()["notices"][0]
    assert (notice["kind"], notice["number"], notice["read"]) == ("assigned", number, False)
    assert number in notice["subject"]

    someone_else = api.post("/inbox/read", "contact-0001", json={"ids": [notice["id"]]})
    assert someone_else.json()["marked"] == 0, "a notice is marked read only by its addressee"
    assert api.get("/inbox", "staff-b01").json()["unread"] == 1
    marked = api.post("/inbox/read", "staff-b01", json={"ids": [notice["id"]]})
    assert marked.status_code == 200, marked.text
    assert marked.json() == {"marked": 1, "unread": 0}
    assert api.get("/inbox", "staff-b01", params={"unread": True}).json() == {"unread": 0, "notices": []}
    assert api.get("/inbox", "staff-b01").json()["notices"][0]["read"] is True
    body = expect_error(api.post("/inbox/read", "staff-b01", json={"ids": []}), 422, "invalid_request", "ids")
    assert [p["field"] for p in body["details"]] == ["ids"]


def test_a_notice_id_beyond_any_column_is_a_422_not_a_500(api: Api) -> None:
    answer = api.post("/inbox/read", "staff-b01", json={"ids": [2**63]})
    body = expect_error(answer, 422, "invalid_request", "ids.0")
    assert [p["field"] for p in body["details"]] == ["ids.0"]


def test_submitting_for_an_enterprise_out_of_reach_says_which_enterprise(api: Api) -> None:
    answer = api.post("/appeals", "staff-b01", json={"type": "outdoor_event_permit", "enterprise_id": 31})
    expect_error(answer, 403, "forbidden", "enterprise 31 is outside the jurisdiction of user 'staff-b01'")
    assert api.get("/appeals", "community-c01").json()["total"] == 0


# --- the whole path -------------------------------------------------------------------------------


def test_openapi_lists_every_route_of_the_api(api: Api) -> None:
    schema = api.client.get("/openapi.json")
    assert schema.status_code == 200
    documented = {
        (path, method.upper())
        for path, ops in schema.json()["paths"].items()
        if path.startswith("/api/v1/")
        for method in ops
    }
    routed = {
        (route.path, method)
        for route in [*api_router.routes, *attachment_api_router.routes]
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    assert documented == routed
    assert {path for path, _ in documented} == {
        "/api/v1/auth/token",
        "/api/v1/me",
        "/api/v1/appeal-types",
        "/api/v1/appeals",
        "/api/v1/appeals/{number}",
        "/api/v1/appeals/{number}/actions",
        "/api/v1/appeals/{number}/actions/{trigger}",
        "/api/v1/appeals/{number}/escalate",
        "/api/v1/appeals/{number}/send-down",
        "/api/v1/appeals/{number}/assign",
        "/api/v1/appeals/{number}/history",
        "/api/v1/appeals/{number}/comments",
        "/api/v1/sla/summary",
        "/api/v1/inbox",
        "/api/v1/inbox/read",
        "/api/v1/appeals/{number}/attachments",
        "/api/v1/appeals/{number}/attachments/{attachment_id}",
    }


def test_a_body_that_is_not_json_is_a_400_in_the_one_error_shape_and_changes_nothing(api: Api) -> None:
    number = api.submit()["number"]
    api.wf.fire(number, "start_pre_check", as_user="staff-b01")
    paths = [
        "/appeals",
        f"/appeals/{number}/actions/request_materials",
        f"/appeals/{number}/escalate",
        f"/appeals/{number}/assign",
        f"/appeals/{number}/comments",
        "/inbox/read",
    ]
    unreadable = {
        b'{"reason": "\xe8\xb6\x85\xe5\x87\xba"': "the body is not valid JSON: Expecting ',' delimiter at character 15",
        b"[1, 2": "the body is not valid JSON: Expecting ',' delimiter at character 5",
        b'"\x80"': "the body cannot be read",
    }
    for path in paths:
        for raw, reason in unreadable.items():
            headers = {**api.headers("staff-b01"), "Content-Type": "application/json"}
            answer = api.client.post(f"/api/v1{path}", content=raw, headers=headers)
            body = expect_error(answer, 400, "invalid_request", f"bad request: {reason}")
            assert body["details"] == [{"field": "", "message": body["message"].removeprefix("bad request: ")}]
    signing_in = api.client.post("/api/v1/auth/token", content=b"{", headers={"Content-Type": "application/json"})
    expect_error(signing_in, 400, "invalid_request", "not valid JSON: Expecting property name enclosed in double")
    shown = api.get(f"/appeals/{number}", "staff-b01").json()
    assert (shown["version"], shown["level"], shown["assignee"]) == (2, "building", "staff-b01"), "nothing moved"
    assert api.get(f"/appeals/{number}/history", "staff-b01").json()[-1]["kind"] == "fired"


def test_escalating_sending_down_and_assigning_answer_the_appeal_with_the_callers_actions(api: Api) -> None:
    """The same appeal, `actions` included, as GET /appeals/{number} gives the caller right after."""
    number = api.submit()["number"]
    api.wf.fire(number, "start_pre_check", as_user="staff-b01")
    moves = [
        ("staff-b01", "escalate", {"reason": "场地涉及市政道路，超出楼宇权限", "expected_version": 2}),
        ("community-c01", "send-down", {"reason": "请楼宇继续办理"}),
        ("staff-b01", "assign", {"username": "specialist-b01", "comment": "请跟进材料"}),
    ]
    seen = []
    for user, move, body in moves:
        answer = api.post(f"/appeals/{number}/{move}", user, json=body)
        assert answer.status_code == 200, f"{move}: {answer.text}"
        moved = answer.json()
        assert "actions" in moved, f"{move} answers without actions: {sorted(moved)}"
        assert moved == api.get(f"/appeals/{number}", user).json(), f"{move} answers another shape than GET"
        seen.append((moved["level"], moved["assignee"], moved["version"], [a["trigger"] for a in moved["actions"]]))
    assert seen == [
        ("community", "community-c01", 3, ["comment"]),  # the community holds it now, not the building
        ("building", "staff-b01", 4, ["assign", "comment"]),  # the community may still assign it
        ("building", "specialist-b01", 5, ["request_materials", "pass_pre_check", "escalate", "assign", "comment"]),
    ]
    filing = api.get(f"/appeals/{number}", "staff-b01").json()["actions"][0]
    assert {"trigger", "fields", "required_fields", "comment_required"} <= set(filing), "each action names its fields"


def test_after_a_change_an_appeal_out_of_the_callers_reach_comes_with_no_actions(api: Api) -> None:
    """What every changing endpoint answers with: the change went through, so a 404 now would invite a retry.
    (No demo user loses reach by a change of their own; another building's specialist stands in.)"""
    number = api.submit()["number"]
    with pytest.raises(OutsideJurisdiction):
        api.wf.show_with_actions(number, as_user="specialist-b02")
    after = api.wf.show_with_actions(number, as_user="specialist-b02", after_change=True)
    assert (after["number"], after["actions"]) == (number, [])
    own = api.wf.show_with_actions(number, as_user="staff-b01", after_change=True)
    assert [a["trigger"] for a in own["actions"]] == [a["trigger"] for a in api.wf.actions(number, as_user="staff-b01")]
    answer = api.post(f"/appeals/{number}/assign", "community-c01", json={"username": "specialist-b01"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["assignee"] == "specialist-b01"
    assert answer.json()["actions"] == api.wf.actions(number, as_user="community-c01")


# --- the schema -------------------------------------------------------------------------------------

ERROR_STATUSES = ("400", "401", "403", "404", "409", "422", "429")


def api_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method, op in ops.items()
    ]


def test_the_schema_declares_every_error_status_with_the_one_error_shape(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    error_body = schema["components"]["schemas"]["ErrorBody"]
    assert set(error_body["required"]) == ERROR_KEYS, "every error answer carries error, message and details"
    for method, path, op in api_operations(schema):
        for status in ERROR_STATUSES:
            declared = op["responses"].get(status)
            assert declared is not None, f"{method} {path} does not declare {status}"
            assert declared["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert op["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True, f"{method} {path}"
        assert op["responses"]["429"]["headers"]["Retry-After"]["required"] is True, f"{method} {path}"
        assert "HTTPValidationError" not in str(op["responses"]), f"{method} {path}: FastAPI's own 422 shape"
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_the_schema_asks_for_the_bearer_token_on_every_operation_but_signing_in(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert {name: (s["type"], s["scheme"]) for name, s in schemes.items()} == {"bearer": ("http", "bearer")}
    for method, path, op in api_operations(schema):
        headers = [p["name"].lower() for p in op.get("parameters", []) if p["in"] == "header"]
        assert "authorization" not in headers, f"{method} {path}: the token belongs to the security scheme"
        if (method, path) == ("POST", "/api/v1/auth/token"):
            assert "security" not in op, "signing in needs no token"
        else:
            assert op.get("security") == [{"bearer": []}], f"{method} {path} does not ask for the token"


def test_every_answer_with_an_appeal_declares_the_appeal_with_its_actions(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    appeal = {"$ref": "#/components/schemas/AppealWithActions"}
    operations = {(method, path): op for method, path, op in api_operations(schema)}
    for method, path, status in [
        ("POST", "/api/v1/appeals", "201"),
        ("GET", "/api/v1/appeals/{number}", "200"),
        ("POST", "/api/v1/appeals/{number}/actions/{trigger}", "200"),
        ("POST", "/api/v1/appeals/{number}/escalate", "200"),
        ("POST", "/api/v1/appeals/{number}/send-down", "200"),
        ("POST", "/api/v1/appeals/{number}/assign", "200"),
    ]:
        declared = operations[(method, path)]["responses"][status]["content"]["application/json"]["schema"]
        assert declared == appeal, f"{method} {path}: {declared}"
    components = schema["components"]["schemas"]
    assert {"number", "state", "version", "level", "assignee", "sla", "actions"} <= set(
        components["AppealWithActions"]["required"]
    )
    assert {"trigger", "fields", "required_fields", "comment_required"} <= set(components["Action"]["required"])
    assert "204" in operations[("DELETE", "/api/v1/auth/token")]["responses"]
    assert "content" not in operations[("DELETE", "/api/v1/auth/token")]["responses"]["204"]


def test_signing_out_answers_an_empty_204_without_a_content_type(api: Api) -> None:
    answer = api.client.delete("/api/v1/auth/token", headers=api.headers("staff-b01"))
    assert (answer.status_code, answer.content) == (204, b"")
    assert "content-type" not in answer.headers, "a 204 has no content to type"


def test_the_article_path_runs_through_the_api_and_the_contact_sees_the_approval(api: Api) -> None:
    people = ["contact-0001", "staff-b01", "specialist-b01", "bureau-approval-01"]
    api.set_passwords({user: PASSWORD for user in people})
    headers: dict[str, dict[str, str]] = {}
    for user in people:
        signed = api.sign_in(user)
        assert signed.status_code == 200, signed.text
        headers[user] = {"Authorization": f"Bearer {signed.json()['access_token']}"}

    def act(user: str, method: str, path: str, json: Any = None) -> Any:
        answer = api.client.request(method, f"/api/v1{path}", headers=headers[user], json=json)
        assert answer.status_code in (200, 201), f"{user} {method} {path}: {answer.text}"
        return answer.json()

    submitted = act(
        "contact-0001", "POST", "/appeals", {"type": "outdoor_event_permit", "enterprise_id": 1, "data": OUTDOOR_EVENT}
    )
    number = submitted["number"]
    steps = [
        ("staff-b01", "start_pre_check", {}, "pre_check", "staff-b01"),
        ("staff-b01", "pass_pre_check", {}, "collecting_materials", "specialist-b01"),
        ("specialist-b01", "file_application", {"materials_complete": True}, "bureau_review", "bureau-approval-01"),
        (
            "bureau-approval-01",
            "schedule_inspection",
            {"inspection_time": "2026-11-27T10:00+08:00"},
            "site_inspection",
            "bureau-approval-01",
        ),
        ("bureau-approval-01", "approve", {"inspection_findings": "场地安全，准予举办"}, "approved", "specialist-b01"),
    ]
    version = submitted["version"]
    for user, trigger, data, state, assignee in steps:
        offered = [a["trigger"] for a in act(user, "GET", f"/appeals/{number}")["actions"]]
        assert trigger in offered, f"{user} is not offered {trigger}: {offered}"
        moved = act(user, "POST", f"/appeals/{number}/actions/{trigger}", {"data": data, "expected_version": version})
        assert (moved["state"], moved["assignee"], moved["version"]) == (state, assignee, version + 1), trigger
        version += 1

    seen = act("contact-0001", "GET", f"/appeals/{number}")
    assert (seen["state"], seen["state_title"]) == ("approved", "已批准")
    assert seen["data"]["inspection_findings"] == "场地安全，准予举办"
    assert (seen["sla"]["status"], seen["sla"]["decided_at"]) == ("stopped", "2026-11-26T10:00:00+08:00")
    history = act("contact-0001", "GET", f"/appeals/{number}/history")
    assert [e["trigger"] for e in history] == ["submit"] + [s[1] for s in steps]
    mine = act("contact-0001", "GET", "/appeals")
    assert [a["state"] for a in mine["appeals"]] == ["approved"]
    kinds = [n["kind"] for n in act("contact-0001", "GET", "/inbox")["notices"] if n["number"] == number]
    assert "decision" in kinds, f"the contact was not told of the decision: {kinds}"


def test_get_actions_answers_the_same_list_as_the_appeal_and_the_command_line_for_every_viewer(api: Api) -> None:
    """GET /appeals/{number}/actions, the appeal's `actions` and Workflow.actions (what `appeals case actions`
    prints) are one list; out of reach it is the same 404 as a missing appeal."""
    number = api.submit()["number"]
    api.wf.fire(number, "start_pre_check", as_user="staff-b01")
    api.wf.escalate(number, as_user="staff-b01", reason="超出楼宇权限")
    for user in ("contact-0001", "staff-b01", "specialist-b01", "community-c01", "subdistrict-s01", "district-01"):
        listed = api.get(f"/appeals/{number}/actions", user)
        assert listed.status_code == 200, listed.text
        assert listed.json() == api.get(f"/appeals/{number}", user).json()["actions"], user
        assert listed.json() == api.wf.actions(number, as_user=user), user
    community = [a["action"] for a in api.get(f"/appeals/{number}/actions", "community-c01").json()]
    assert community == ["request_materials", "pass_pre_check", "escalate", "send_down", "comment"]
    expect_error(api.get(f"/appeals/{number}/actions", "staff-b02"), 404, "not_found", number)
