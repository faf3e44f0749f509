"""Signing in safely, on SQLite and PostgreSQL: throttling per (account, address) and per address with growing
delays, forwarded addresses trusted only from configured proxies, passwords that are not common or trivial,
password changes that end every session, session cookies apart from API tokens, and security headers everywhere."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import table_counts
from workflow.clock import FrozenClock
from workflow.errors import InvalidInput
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.services import sign_in_limits
from workflow.services.accounts import Accounts
from workflow.services.password_policy import WeakPassword, check_password
from workflow.services.workflow import Workflow
from workflow.web.app import create_app
from workflow.web.server import proxy_options
from workflow.web.settings import WebSettings

SECRET = "test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "appeals-test-2026"
ATTACKER, OWNER_HOME, OTHER = "203.0.113.66", "198.51.100.7", "192.0.2.44"


def make_app(wf: Workflow, **settings: object) -> FastAPI:
    return create_app(wf, WebSettings(secret_key=SECRET, **settings))  # type: ignore[arg-type]


def from_address(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 50000), raise_server_exceptions=False)


def set_password(wf: Workflow, clock: FrozenClock, username: str, password: str = PASSWORD) -> None:
    with UnitOfWork(wf.engine) as uow:
        Accounts(clock).set_password(uow, username, password)
        uow.commit()


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


@pytest.fixture
def app(demo: Workflow, clock: FrozenClock) -> Iterator[FastAPI]:
    set_password(demo, clock, "contact-0001")
    yield make_app(demo)


# --- throttling -----------------------------------------------------------------------------------


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out_from_another(app: FastAPI) -> None:
    attacker, owner = from_address(app, ATTACKER), from_address(app, OWNER_HOME)
    for attempt in range(5):
        sign_in(attacker, "CONTACT-0001", f"guess-number-{attempt}")  # usernames are case-folded
    assert sign_in(attacker, "contact-0001").status_code == 429, "the failing address is held back"
    answer = sign_in(owner, "contact-0001")
    assert answer.status_code == 200, f"the owner, from an address that has not failed: {answer.text}"


def test_failures_from_one_address_meet_delays_that_double_up_to_a_quarter_hour(
    app: FastAPI, clock: FrozenClock
) -> None:
    attacker = from_address(app, ATTACKER)
    for attempt in range(3):
        assert sign_in(attacker, "contact-0001", f"guess-{attempt}").status_code == 401
    waits = []
    for attempt in range(14):
        refused = sign_in(attacker, "contact-0001")  # even the right password, while held back
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["error"] == "too_many_attempts"
        waits.append(int(refused.headers["Retry-After"]))
        unit = "second" if waits[-1] == 1 else "seconds"
        assert body["message"] == f"too many failed sign-ins; try again in {waits[-1]} {unit}"
        assert body["details"] == {"retry_after": waits[-1]}
        clock.advance(timedelta(seconds=waits[-1]))
        assert sign_in(attacker, "contact-0001", f"more-{attempt}").status_code == 401
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900, 900]
    assert sign_in(attacker, "contact-0001").status_code == 429
    clock.advance(timedelta(seconds=900))
    assert sign_in(attacker, "contact-0001").status_code == 200, "the right password once the delay is over"
    assert sign_in(attacker, "contact-0001", "one-more-typo").status_code == 401, "success forgets the failures"
    assert sign_in(attacker, "contact-0001").status_code == 200


def test_one_address_failing_across_many_accounts_is_held_back_for_every_account(
    app: FastAPI, clock: FrozenClock
) -> None:
    sprayer, owner = from_address(app, ATTACKER), from_address(app, OWNER_HOME)
    for attempt in range(20):
        answer = sign_in(sprayer, f"contact-{attempt + 100:04d}", "Spring2026!!")
        assert answer.status_code == 401, f"attempt {attempt}: {answer.text}"
    refused = sign_in(sprayer, "contact-0001")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1", refused.text
    clock.advance(timedelta(seconds=1))
    assert sign_in(sprayer, "nobody-at-all", "Spring2026!!").status_code == 401
    assert sign_in(sprayer, "contact-0001").headers["Retry-After"] == "2", "the delay doubles"
    assert sign_in(owner, "contact-0001").status_code == 200, "other addresses are not held back"


def test_failures_counted_at_the_same_moment_on_several_nodes_are_all_counted(
    demo: Workflow, clock: FrozenClock
) -> None:
    limits = sign_in_limits.limits_for("contact-0001", ATTACKER)
    start = threading.Barrier(6)

    def fail_once() -> None:
        start.wait(timeout=30)  # SQLite writers queue at BEGIN IMMEDIATE; PostgreSQL's run side by side
        with UnitOfWork(demo.engine) as uow:
            sign_in_limits.count_failure(uow, limits, clock.now())
            uow.commit()

    with ThreadPoolExecutor(max_workers=6) as pool:
        for done in [pool.submit(fail_once) for _ in range(6)]:
            done.result(timeout=60)
    with UnitOfWork(demo.engine, read_only=True) as uow:
        rows = uow.connection.execute(select(sign_in_limits.attempts)).all()
    assert {row.key: row.failures for row in rows} == {limits[0].key: 6, limits[1].key: 6}
    with UnitOfWork(demo.engine, read_only=True) as uow, pytest.raises(sign_in_limits.TooManyAttempts) as held:
        sign_in_limits.check(uow, limits, clock.now())
    assert held.value.retry_after == 8, "the sixth failure of a pair waits 2**(6-3) seconds"


def test_the_owner_sees_the_failed_attempts_since_the_previous_sign_in(app: FastAPI, clock: FrozenClock) -> None:
    owner, attacker = from_address(app, OWNER_HOME), from_address(app, ATTACKER)
    assert sign_in(owner, "contact-0001").status_code == 200
    clock.advance(timedelta(hours=1))
    for attempt in range(2):
        sign_in(attacker, "contact-0001", f"guess-{attempt}")
    sign_in(from_address(app, OTHER), "contact-0001", "guess-from-elsewhere")
    clock.advance(timedelta(hours=1))
    token = sign_in(owner, "contact-0001").json()["access_token"]
    me = owner.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    history = me.json()["sign_in"]
    assert history["failed_attempts_since_previous"] == 3
    assert history["previous_at"] == "2026-11-26T10:00:00+08:00" and history["previous_address"] == OWNER_HOME
    assert history["recent_failures"] == [
        {"at": "2026-11-26T11:00:00+08:00", "address": OTHER},
        {"at": "2026-11-26T11:00:00+08:00", "address": ATTACKER},
        {"at": "2026-11-26T11:00:00+08:00", "address": ATTACKER},
    ]
    again = sign_in(owner, "contact-0001").json()["access_token"]
    later = owner.get("/api/v1/me", headers={"Authorization": f"Bearer {again}"}).json()["sign_in"]
    assert later["failed_attempts_since_previous"] == 0 and later["recent_failures"] == []


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def page_sign_in(client: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    form = client.get("/login")
    return client.post(
        "/login", data={"username": username, "password": password, "csrf": csrf_in(form.text), "next": "/portal"}
    )


def test_the_page_after_signing_in_tells_of_failed_attempts_once(app: FastAPI) -> None:
    for attempt in range(2):
        sign_in(from_address(app, ATTACKER), "contact-0001", f"guess-{attempt}")
    browser = from_address(app, OWNER_HOME)
    landed = page_sign_in(browser, "contact-0001")
    assert landed.status_code == 200 and landed.url.path == "/portal", landed.text
    assert "自上次登录以来有 2 次失败的登录尝试" in landed.text
    assert "自上次登录以来" not in browser.get("/portal").text, "said once, not on every page"
    english = from_address(app, OWNER_HOME)
    sign_in(from_address(app, ATTACKER), "contact-0001", "guess-again")
    english.get("/login?lang=en")
    assert "1 failed sign-in attempt since your previous sign-in" in page_sign_in(english, "contact-0001").text


def test_the_sign_in_page_holds_back_the_failing_address_but_not_the_owner(app: FastAPI) -> None:
    attacker = from_address(app, ATTACKER)
    for attempt in range(3):
        assert page_sign_in(attacker, "contact-0001", f"guess-{attempt}").status_code == 401
    held = page_sign_in(attacker, "contact-0001")
    assert held.status_code == 429 and held.headers["Retry-After"] == "1"
    assert "登录失败次数过多，请 1 秒后再试。" in held.text
    owner = page_sign_in(from_address(app, OWNER_HOME), "contact-0001")
    assert owner.status_code == 200 and owner.url.path == "/portal"
    assert "自上次登录以来有 3 次失败的登录尝试" in owner.text


# --- forwarded addresses --------------------------------------------------------------------------


def served(app: FastAPI, settings: WebSettings) -> FastAPI:
    """The ASGI app as `appeals serve` hands it to uvicorn, with uvicorn's proxy-header middleware or without."""
    config = uvicorn.Config(app, **proxy_options(settings))
    config.load()
    return config.loaded_app  # type: ignore[no-any-return]


def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(app: FastAPI) -> None:
    direct = from_address(served(app, WebSettings(secret_key=SECRET)), "127.0.0.1")
    statuses = []
    for n in range(60):
        direct.headers["X-Forwarded-For"] = f"10.{n}.0.1"
        statuses.append(sign_in(direct, "contact-0001", f"guess-{n}").status_code)
    assert statuses == [401] * 3 + [429] * 57, "rotating X-Forwarded-For must not dodge the limits"


def test_a_trusted_proxy_names_the_client_and_the_client_cannot_forge_it(app: FastAPI) -> None:
    settings = WebSettings(secret_key=SECRET, trusted_proxies=("127.0.0.0/8", "::1"))
    proxy = from_address(served(app, settings), "127.0.0.1")
    statuses = []
    for n in range(10):
        proxy.headers["X-Forwarded-For"] = f"10.{n}.0.1, {ATTACKER}"  # the client's lie, then what the proxy saw
        statuses.append(sign_in(proxy, "contact-0001", f"guess-{n}").status_code)
    assert statuses == [401, 401, 401] + [429] * 7
    proxy.headers["X-Forwarded-For"] = OWNER_HOME
    assert sign_in(proxy, "contact-0001").status_code == 200, "another client behind the same proxy"


def test_trusted_proxies_come_from_the_environment_and_bad_entries_are_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("APPEALS_SECRET_KEY", SECRET)
    monkeypatch.delenv("APPEALS_TRUSTED_PROXIES", raising=False)
    assert WebSettings.from_environment().trusted_proxies == ()
    assert proxy_options(WebSettings.from_environment()) == {"proxy_headers": False}
    monkeypatch.setenv("APPEALS_TRUSTED_PROXIES", " 10.0.0.5, 10.1.0.0/16 ,::1")
    settings = WebSettings.from_environment()
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16", "::1")
    assert proxy_options(settings) == {"proxy_headers": True, "forwarded_allow_ips": ["10.0.0.5", "10.1.0.0/16", "::1"]}
    monkeypatch.setenv("APPEALS_TRUSTED_PROXIES", "10.0.0.5,proxy.internal,*")
    with pytest.raises(InvalidInput) as refused:
        WebSettings.from_environment()
    assert str(refused.value) == (
        "APPEALS_TRUSTED_PROXIES: 'proxy.internal', '*' are not IP addresses or networks; "
        "give a comma-separated list such as 10.0.0.5,10.1.0.0/16"
    )


# --- passwords ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "rule", "english", "chinese"),
    [
        ("        ", "length", "at least 10 characters (any script); this one has 8", "至少 10 个字符"),
        ("12345678", "length", "at least 10 characters (any script); this one has 8", "至少 10 个字符"),
        ("password", "length", "at least 10 characters (any script); this one has 8", "至少 10 个字符"),
        pytest.param(
            "x" * 257, "length", "at most 256 characters (any script); this one has 257", "最多 256 个字符", id="257-x"
        ),
        ("          ", "repeated", "repeats one short pattern", "重复"),
        ("aaaaaaaaaaaa", "repeated", "repeats one short pattern", "重复"),
        ("abcabcabcabc", "repeated", "repeats one short pattern", "重复"),
        ("1234567890", "sequence", "runs along a sequence", "连续"),
        ("9876543210", "sequence", "runs along a sequence", "连续"),
        ("abcdefghijk", "sequence", "runs along a sequence", "连续"),
        ("QWERTYUIOP", "sequence", "runs along a sequence", "连续"),
        ("1q2w3e4r5t6y", "sequence", "runs along a sequence", "连续"),
        ("my-contact-0001-pw", "username", "contains the username", "用户名"),
        ("password123", "common", "one of the most common passwords", "常见密码"),
        ("Password123", "common", "one of the most common passwords", "常见密码"),
        ("iloveyou12", "common", "one of the most common passwords", "常见密码"),
    ],
)
def test_weak_passwords_are_refused_naming_the_rule(password: str, rule: str, english: str, chinese: str) -> None:
    with pytest.raises(WeakPassword) as refused:
        check_password(password, username="contact-0001")
    assert refused.value.rule == rule
    assert english in str(refused.value)
    assert chinese in refused.value.message("zh-CN")
    assert refused.value.details() == {"rule": rule}


@pytest.mark.parametrize("password", [PASSWORD, "长沙芙蓉楼宇企业服务", "correct horse battery staple", "Xk9#mQ2$vL"])
def test_passwords_that_are_long_and_uncommon_are_accepted(password: str) -> None:
    check_password(password, username="contact-0001")


def test_a_refused_password_leaves_the_account_as_it_was(demo: Workflow, clock: FrozenClock) -> None:
    before = table_counts(demo.engine)
    with UnitOfWork(demo.engine) as uow, pytest.raises(WeakPassword, match="common"):
        Accounts(clock).add_user(
            uow, username="new-person", display_name="新人", role="specialist", unit_code="B01", password="qwerty123456"
        )
    with UnitOfWork(demo.engine) as uow, pytest.raises(WeakPassword, match="username"):
        Accounts(clock).set_password(uow, "staff-b01", "Staff-B01-2026")
    assert table_counts(demo.engine) == before


# --- sessions and tokens --------------------------------------------------------------------------


def test_changing_a_password_ends_every_token_and_session_of_that_user(
    app: FastAPI, demo: Workflow, clock: FrozenClock
) -> None:
    set_password(demo, clock, "staff-b01")
    api = from_address(app, OWNER_HOME)
    mine = sign_in(api, "contact-0001").json()["access_token"]
    theirs = sign_in(api, "staff-b01").json()["access_token"]
    browser = from_address(app, OWNER_HOME)
    page_sign_in(browser, "contact-0001")
    assert browser.get("/portal", follow_redirects=False).status_code == 200
    set_password(demo, clock, "contact-0001", "a-brand-new-password-2026")
    for token, status in ((mine, 401), (theirs, 200)):
        assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == status
    assert browser.get("/portal", follow_redirects=False).headers["location"].startswith("/login")
    assert sign_in(api, "contact-0001", "a-brand-new-password-2026").status_code == 200


def test_a_session_cookie_is_no_bearer_token_and_a_bearer_token_no_session(app: FastAPI) -> None:
    browser = from_address(app, OWNER_HOME)
    page_sign_in(browser, "contact-0001")
    cookie = browser.cookies["appeals_session"]
    answer = browser.get("/api/v1/me", headers={"Authorization": f"Bearer {cookie}"})
    assert answer.status_code == 401 and answer.json()["message"] == "the token is not valid; sign in again"
    token = sign_in(browser, "contact-0001").json()["access_token"]
    api_as_cookie = from_address(app, OWNER_HOME)
    api_as_cookie.cookies.set("appeals_session", token)
    assert api_as_cookie.get("/portal", follow_redirects=False).headers["location"].startswith("/login")


# --- headers --------------------------------------------------------------------------------------
PAGE_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")


@pytest.mark.parametrize("secure", [False, True])
def test_json_answers_carry_the_pages_security_headers_and_hsts_comes_with_secure_cookies(
    demo: Workflow, secure: bool
) -> None:
    app = make_app(demo, secure_cookies=secure)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    client = from_address(app, OWNER_HOME)
    page, ok, error = client.get("/login"), client.get("/openapi.json"), client.get("/api/v1/me")
    crashed = client.get("/api/v1/boom")
    assert error.status_code == 401 and crashed.status_code == 500
    for answer in (ok, error, crashed):
        for name in PAGE_HEADERS:
            assert answer.headers.get(name) == page.headers[name], f"{name} on {answer.url.path}"
        assert answer.headers["Cache-Control"] == "no-store"
    for answer in (page, ok, error, client.get("/static/app.css"), client.get("/api/v1/boom")):
        hsts = answer.headers.get("Strict-Transport-Security")
        assert hsts == ("max-age=31536000" if secure else None), answer.url.path
