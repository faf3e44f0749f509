"""Every endpoint of /openapi.json, as every role, against an appeal outside that role's reach: refused, and silent.

The operations are read from the schema, so a new endpoint is walked as soon as it is routed. An appeal
out of reach must be indistinguishable from one that does not exist: same status, same body once the
number is swapped, and nothing of it (enterprise, form data, state, people) in any answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.clock import FrozenClock
from workflow.errors import OutsideJurisdiction
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services.accounts import Accounts
from workflow.services.attachments import Attachments
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.settings import WebSettings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
MISSING = "OE-2026-999999"
PROBE_PDF = b"%PDF-1.7\n%%EOF\n"
# Demo enterprises: 1 in B01 (C01, S01), 31 in B02 (C01, S01), 121 in B05 (C03, S02).
OUT_OF_REACH = {
    "contact-0001": 31,
    "contact-0031": 1,
    "specialist-b01": 31,
    "specialist-b02": 1,
    "staff-b01": 31,
    "staff-b02": 1,
    "community-c01": 121,  # C01 holds B01 and B02
    "community-c02": 1,
    "subdistrict-s01": 121,
    "subdistrict-s02": 1,
    # A district department sees only what it holds, has held or was routed to: a new appeal is none of these.
    "bureau-approval-01": 1,
    "bureau-finance-01": 1,
}
# Tables a refused request may still write: sign-in failures and the tokens each request is given.
AUTH_TABLES = {"auth_tokens", "login_attempts", "sign_in_events"}
COUNT_KEYS = {"total", "open", "at_risk", "breached", "paused", "on_track", "submitted", "responded", "decided"}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation: dict[str, Any]

    @property
    def names_an_appeal(self) -> bool:
        return "{number}" in self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Target:
    """The appeal a caller must not reach, and the facts about it that must not leak."""

    number: str
    enterprise_id: int
    shown: dict[str, Any]
    public: frozenset[str]  # choice values: printed in every definition, so no secret

    def secrets(self, caller: str, *, with_state: bool) -> set[str]:
        """Strings of the appeal no answer may carry; the state only where the path names the appeal,
        since state names are public in the definitions."""
        found = {self.shown["enterprise"]["name"]}
        found |= {v for v in self.shown["data"].values() if isinstance(v, str) and len(v) >= 4} - self.public
        found |= {p for p in (self.shown["assignee"], self.shown["submitted_by"]) if p and p != caller}
        if with_state:
            found |= {self.shown["state"], self.shown["state_title"]}
        return found


class Walker:
    def __init__(self, wf: Workflow, clock: FrozenClock, client: TestClient) -> None:
        self.wf = wf
        self.client = client
        self.accounts = Accounts(clock)
        self.components: dict[str, Any] = {}
        self.attachment_id = 0

    def operations(self) -> list[Operation]:
        schema = self.client.get("/openapi.json").json()
        self.components = schema.get("components", {}).get("schemas", {})
        found = [
            Operation(method.upper(), path, op)
            for path, ops in schema["paths"].items()
            for method, op in ops.items()
            if method in {"get", "post", "put", "patch", "delete"}
        ]
        assert len(found) >= 16, f"the schema lists only {len(found)} operations: {[str(o) for o in found]}"
        return found

    def fresh_token(self, username: str) -> str:
        """A token per request: DELETE /auth/token may revoke the one before."""
        with UnitOfWork(self.wf.engine) as uow:
            token, _ = self.accounts.issue(uow, username)
            uow.commit()
        return token

    def submit(self, enterprise_id: int) -> Target:
        contact = f"contact-{enterprise_id:04d}"
        appeal = self.wf.submit(
            "outdoor_event_permit", enterprise_id=enterprise_id, as_user=contact, data=OUTDOOR_EVENT
        )
        definition = self.wf.definition("outdoor_event_permit")
        public = frozenset(choice for field in definition["fields"] for choice in field["choices"])
        # A file on it, so the attachment routes are walked with a real one.
        added = Attachments(self.wf).attach(appeal["number"], "probe.pdf", iter([PROBE_PDF]), as_user=contact)
        self.attachment_id = added["id"]
        return Target(appeal["number"], enterprise_id, self.wf.show(appeal["number"]), public)

    # --- requests built from the schema -----------------------------------------------------
    def triggers(self) -> list[str]:
        definition = self.wf.definition("outdoor_event_permit")
        return [*sorted({t["trigger"] for t in definition["transitions"]}), "no_such_trigger"]

    def paths(self, op: Operation, number: str) -> list[str]:
        path = op.path.replace("{number}", number).replace("{attachment_id}", str(self.attachment_id))
        if "{trigger}" in path:
            return [path.replace("{trigger}", trigger) for trigger in self.triggers()]
        assert "{" not in path, f"{op}: fill the new path parameter in this test"
        return [path]

    def body(self, op: Operation, caller: str, target: Target) -> Any:
        content = op.operation.get("requestBody", {}).get("content", {})
        if "application/json" not in content:
            return None
        facts = {"username": caller, "enterprise_id": target.enterprise_id, "type": "outdoor_event_permit"}
        return self.example(content["application/json"]["schema"], facts)

    def example(self, schema: dict[str, Any], facts: dict[str, Any], name: str = "") -> Any:
        """The smallest valid value of a schema, with fields named in `facts` pointing at the target."""
        if "$ref" in schema:
            return self.example(self.components[schema["$ref"].split("/")[-1]], facts, name)
        if "anyOf" in schema:
            choice = next(s for s in schema["anyOf"] if s.get("type") != "null")
            return self.example(choice, facts, name)
        if name in facts:
            return facts[name]
        kind = schema.get("type")
        if kind == "object":
            return {
                key: self.example(sub, facts, key)
                for key, sub in schema.get("properties", {}).items()
                if key in schema.get("required", [])
            }
        if kind == "array":
            return [self.example(schema.get("items", {}), facts)] * max(1, schema.get("minItems", 1))
        if kind == "integer":
            return max(1, schema.get("minimum", 1))
        if kind == "number":
            return 1
        if kind == "boolean":
            return True
        text = "probe-text"
        return (text * 8)[: max(schema.get("minLength", 1), min(len(text), schema.get("maxLength", len(text))))]

    def queries(self, op: Operation, target: Target) -> list[dict[str, str]]:
        """No filters, then every filter the operation takes that can point at the target."""
        pointing = {
            "unit": target.shown["unit"]["code"],
            "state": target.shown["state"],
            "type": target.shown["type"],
            "assignee": target.shown["assignee"],
            "level": target.shown["level"],
        }
        names = {p["name"] for p in op.operation.get("parameters", []) if p["in"] == "query"}
        aimed = {name: value for name, value in pointing.items() if name in names and value}
        return [{}, aimed] if aimed else [{}]

    def call(
        self,
        op: Operation,
        path: str,
        caller: str | None,
        body: Any,
        query: dict[str, str],
        authorization: str | None = None,
    ) -> httpx.Response:
        headers = {}
        if authorization is not None:
            headers["Authorization"] = authorization
        elif caller is not None:
            headers["Authorization"] = f"Bearer {self.fresh_token(caller)}"
        if "multipart/form-data" in op.operation.get("requestBody", {}).get("content", {}):
            files = {"file": ("probe.pdf", PROBE_PDF, "application/pdf")}
            return self.client.request(op.method, path, headers=headers, params=query, files=files)
        return self.client.request(op.method, path, headers=headers, params=query, json=body)


@pytest.fixture
def walker(demo: Workflow, clock: FrozenClock) -> Iterator[Walker]:
    app = create_app(demo, WebSettings(secret_key=SECRET))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Walker(demo, clock, client)


def json_of(answer: httpx.Response) -> Any:
    """The JSON of an answer, or {} for one that is not JSON (a page, an empty 204)."""
    try:
        return answer.json()
    except ValueError:
        return {}


def counts_in(value: Any, key: str = "") -> list[tuple[str, int]]:
    """Every (key, number) pair under a key that counts appeals, anywhere in a JSON answer."""
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in counts_in(v, k)]
    if isinstance(value, list):
        return [pair for v in value for pair in counts_in(v, key)]
    if key in COUNT_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return [(key, value)]
    return []


@pytest.mark.parametrize("caller", sorted(OUT_OF_REACH))
def test_an_appeal_out_of_reach_looks_like_no_appeal_at_all_on_every_endpoint(walker: Walker, caller: str) -> None:
    target = walker.submit(OUT_OF_REACH[caller])
    with pytest.raises(OutsideJurisdiction):  # the premise: this appeal really is out of the caller's reach
        walker.wf.show(target.number, as_user=caller)
    before = {k: v for k, v in table_counts(walker.wf.engine).items() if k not in AUTH_TABLES}
    problems: list[str] = []
    for op in walker.operations():
        body = walker.body(op, caller, target)
        for path in walker.paths(op, target.number):
            for query in walker.queries(op, target):
                answer = walker.call(op, path, caller, body, query)
                where = f"{op.method} {path} {query or ''} as {caller}"
                text = answer.text
                short = text[:300]
                leaked = {s for s in target.secrets(caller, with_state=op.names_an_appeal) if s in text}
                if leaked:
                    problems.append(f"{where}: {answer.status_code} leaks {sorted(leaked)}: {short}")
                if answer.status_code >= 500:
                    problems.append(f"{where}: {answer.status_code}: {short}")
                    continue
                if not op.names_an_appeal:
                    if target.number in text:
                        problems.append(f"{where}: names the appeal: {short}")
                    counts = counts_in(json_of(answer)) if answer.status_code == 200 else []
                    if any(n for _, n in counts):
                        problems.append(f"{where}: counts the appeal: {counts}")
                    continue
                if answer.status_code not in (403, 404):
                    problems.append(f"{where}: expected 403 or 404, got {answer.status_code}: {short}")
                    continue
                if answer.status_code == 403 and target.number in text:
                    problems.append(f"{where}: a 403 names the appeal: {short}")
                if answer.status_code == 404 and json_of(answer).get("error") != "not_found":
                    problems.append(f"{where}: a 404 that is not a plain not-found: {short}")
                missing = walker.call(op, path.replace(target.number, MISSING), caller, body, query)
                if (answer.status_code, text.replace(target.number, MISSING)) != (missing.status_code, missing.text):
                    problems.append(
                        f"{where}: told apart from a missing appeal: {answer.status_code} {short} "
                        f"vs {missing.status_code} {missing.text[:300]}"
                    )
    after = {k: v for k, v in table_counts(walker.wf.engine).items() if k not in AUTH_TABLES}
    assert after == before, "a refused request changed the database"
    assert walker.wf.show(target.number)["version"] == target.shown["version"]
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)


ROLE_FORBIDDEN = [
    # District supervisors reach the whole district, the building and its community see it: only roles stop them.
    ("district-01", "POST", "/api/v1/appeals", "'submit outdoor_event_permit' is allowed only to"),
    ("district-01", "POST", "/api/v1/appeals/{number}/actions/start_pre_check", "'start_pre_check' is allowed only"),
    ("district-01", "POST", "/api/v1/appeals/{number}/escalate", "'escalate' is allowed only to"),
    ("district-01", "POST", "/api/v1/appeals/{number}/send-down", "'send_down' is allowed only to"),
    ("district-01", "POST", "/api/v1/appeals/{number}/actions/withdraw", "'withdraw' is allowed only to"),
    ("community-c01", "POST", "/api/v1/appeals/{number}/escalate", "'escalate' is allowed only to"),
    ("specialist-b01", "POST", "/api/v1/appeals/{number}/assign", "'assign' is allowed only to"),
    ("bureau-approval-01", "POST", "/api/v1/appeals", "'submit outdoor_event_permit' is allowed only to"),
    ("specialist-b01", "GET", "/api/v1/sla/summary", "the SLA summary is for supervisors"),
    ("contact-0001", "GET", "/api/v1/sla/summary", "the SLA summary is for supervisors"),
    ("contact-0001", "POST", "/api/v1/appeals/{number}/assign", "'assign' is allowed only to"),
]


@pytest.mark.parametrize(("caller", "method", "template", "message"), ROLE_FORBIDDEN)
def test_a_role_forbidden_action_is_a_403_that_names_the_role_and_changes_nothing(
    walker: Walker, caller: str, method: str, template: str, message: str
) -> None:
    target = walker.submit(1)
    operations = {(op.method, op.path): op for op in walker.operations()}
    schema_path = template if "/actions/" not in template else "/api/v1/appeals/{number}/actions/{trigger}"
    op = operations[(method, schema_path)]
    before = {k: v for k, v in table_counts(walker.wf.engine).items() if k not in AUTH_TABLES}
    body = walker.body(op, "staff-b01", target)
    answer = walker.call(op, template.replace("{number}", target.number), caller, body, {})
    assert answer.status_code == 403, f"{method} {template} as {caller}: {answer.status_code} {answer.text}"
    refusal = answer.json()
    assert (refusal["error"], set(refusal)) == ("forbidden", {"error", "message", "details"})
    assert message in refusal["message"], refusal["message"]
    assert f"user {caller!r} has role " in refusal["message"], refusal["message"]
    after = {k: v for k, v in table_counts(walker.wf.engine).items() if k not in AUTH_TABLES}
    assert after == before, "a refused request changed the database"


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-token-at-all", "Bearer ", "Basic Y29udGFjdC0wMDAxOnBhc3N3b3Jk", "bearer"],
    ids=["none", "garbage", "empty", "basic", "scheme-only"],
)
def test_without_a_valid_token_every_endpoint_but_signing_in_answers_401(
    walker: Walker, authorization: str | None
) -> None:
    target = walker.submit(1)
    # RFC 6750 3.1: a bad token sent is named invalid_token; no token (or another scheme) gets the bare challenge.
    sent_a_token = (
        authorization is not None and authorization.startswith("Bearer ") and authorization.strip() != "Bearer"
    )
    expected_challenge = (
        'Bearer error="invalid_token", error_description="the token is not valid; sign in again"'
        if sent_a_token
        else "Bearer"
    )
    problems = []
    for op in walker.operations():
        body = walker.body(op, "contact-0001", target)
        for path in walker.paths(op, target.number)[:1]:
            answer = walker.call(op, path, None, body, {}, authorization=authorization)
            payload = json_of(answer)
            if (op.method, op.path) == ("POST", "/api/v1/auth/token"):
                if payload.get("error") != "sign_in_failed":
                    problems.append(f"{op}: signing in must not need a token: {answer.status_code} {answer.text}")
                if answer.headers.get("WWW-Authenticate") != "Bearer":
                    problems.append(f"{op}: a 401 needs a challenge (RFC 9110 11.6.1): {answer.headers}")
                continue
            if (
                answer.status_code != 401
                or payload.get("error") != "not_signed_in"
                or set(payload) != {"error", "message", "details"}
            ):
                problems.append(f"{op}: expected a 401 not_signed_in, got {answer.status_code} {answer.text}")
            challenge = answer.headers.get("WWW-Authenticate")
            if challenge != expected_challenge:
                problems.append(f"{op}: WWW-Authenticate {challenge!r}, expected {expected_challenge!r}")
            if target.number in answer.text:
                problems.append(f"{op}: names the appeal without a token: {answer.text}")
    schema = walker.client.get("/openapi.json")
    assert schema.status_code == 200, "the schema is public"
    assert not problems, "\n".join(problems)


def test_a_missing_request_body_still_answers_401_before_422(walker: Walker) -> None:
    """Without a token the caller learns nothing, not even what the body should look like."""
    problems = []
    for op in walker.operations():
        if "requestBody" not in op.operation or op.path == "/api/v1/auth/token":
            continue
        path = walker.paths(op, MISSING)[0]
        answer = walker.client.request(op.method, path)
        if answer.status_code != 401:
            problems.append(f"{op}: {answer.status_code} {answer.text}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("raw", [b'{"reason": "probe"', b'"\x80"'], ids=["not-json", "not-utf8"])
def test_a_body_that_is_not_json_still_answers_401_before_400(walker: Walker, raw: bytes) -> None:
    """FastAPI reads the body before the token: an unreadable body must not be reported to a caller without one."""
    problems = []
    for op in walker.operations():
        if "requestBody" not in op.operation:
            continue
        path = walker.paths(op, MISSING)[0]
        answer = walker.client.request(op.method, path, content=raw, headers={"Content-Type": "application/json"})
        expected = 400 if op.path == "/api/v1/auth/token" else 401
        if answer.status_code != expected or set(json_of(answer)) != {"error", "message", "details"}:
            problems.append(f"{op}: expected {expected}, got {answer.status_code} {answer.text}")
    assert not problems, "\n".join(problems)
