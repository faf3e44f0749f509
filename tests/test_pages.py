"""The server-rendered pages, through a browser's eyes: cookies, CSRF, jurisdiction, and what each page shows."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from notifications.inbox import unread_count
from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.clock import FrozenClock
from workflow.definitions import load_definitions, shipped_definition_files
from workflow.domain.org import Role
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.scheduling.jobs import Housekeeping
from workflow.services.accounts import Accounts
from workflow.services.attachments import Attachments
from workflow.services.workflow import Workflow
from workflow.web import charts, pages
from workflow.web.app import create_app
from workflow.web.diagram import layers, state_diagram
from workflow.web.settings import WebSettings

PASSWORD = "pages-test-2026"
SHANGHAI_10AM = datetime(2026, 11, 26, 2, 0, tzinfo=UTC)  # the conftest START: Thursday 10:00 in Shanghai


def make_app(wf: Workflow, *, secure: bool = False) -> FastAPI:
    app = create_app(wf, WebSettings("x" * 40, secure_cookies=secure))
    if not any(getattr(route, "path", None) == "/login" for route in app.routes):
        pages.install(app)  # until create_app installs the pages itself
    return app


def with_passwords(wf: Workflow, clock: FrozenClock, *usernames: str) -> None:
    with UnitOfWork(wf.engine) as uow:
        for username in usernames:
            Accounts(clock).set_password(uow, username, PASSWORD)
        uow.commit()


def csrf_in(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> TestClient:
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={"username": username, "password": password, "csrf": csrf_in(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def browser(wf: Workflow, clock: FrozenClock, username: str) -> TestClient:
    with_passwords(wf, clock, username)
    return sign_in(TestClient(make_app(wf)), username)


def submit(wf: Workflow, contact: int, **changes: object) -> str:
    appeal = wf.submit(
        "outdoor_event_permit",
        enterprise_id=contact,
        as_user=f"contact-{contact:04d}",
        data={**OUTDOOR_EVENT, **changes},
    )
    return str(appeal["number"])


def numbers_in(html: str) -> list[str]:
    return re.findall(r'data-number="([^"]+)"', html)


def overdue_section(html: str) -> str:
    found = re.search(r'<section class="card panel" id="overdue">.*?</section>', html, re.S)
    assert found, "no list of breached appeals on the dashboard"
    return found.group(0)


def triggers_in(html: str) -> list[str]:
    """Every action the page offers: the definition's triggers and the chain's moves (escalate, assign, comment...)."""
    return sorted(re.findall(r'data-(?:trigger|move)="([^"]+)"', html))


def allowed(wf: Workflow, number: str, username: str) -> list[str]:
    return sorted(a["trigger"] for a in wf.actions(number, as_user=username))


# --- sign-in, cookies, CSRF ------------------------------------------------------------------------


def test_signing_in_sets_an_httponly_samesite_lax_session_cookie(demo: Workflow, clock: FrozenClock) -> None:
    with_passwords(demo, clock, "specialist-b01")
    client = TestClient(make_app(demo))
    form = client.get("/login")
    assert form.status_code == 200
    assert "登录" in form.text
    answer = client.post(
        "/login",
        data={"username": "specialist-b01", "password": PASSWORD, "csrf": csrf_in(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("appeals_session="))
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "Secure" not in cookie  # plain HTTP in this test
    assert client.get("/", follow_redirects=False).headers["location"] == "/worklist"

    secure = TestClient(make_app(demo, secure=True), base_url="https://testserver")
    form = secure.get("/login")
    answer = secure.post(
        "/login",
        data={"username": "specialist-b01", "password": PASSWORD, "csrf": csrf_in(form.text)},
        follow_redirects=False,
    )
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("appeals_session="))
    assert "Secure" in cookie


def test_a_wrong_password_shows_the_form_again_without_a_session(demo: Workflow, clock: FrozenClock) -> None:
    with_passwords(demo, clock, "specialist-b01")
    client = TestClient(make_app(demo))
    form = client.get("/login?lang=en")
    answer = client.post(
        "/login",
        data={"username": "specialist-b01", "password": "not-the-password", "csrf": csrf_in(form.text)},
        follow_redirects=False,
    )
    assert answer.status_code == 401
    assert "Wrong username or password." in answer.text
    assert not any(c.startswith("appeals_session=") for c in answer.headers.get_list("set-cookie"))


def test_pages_send_strangers_to_sign_in_and_back_but_never_off_site(demo: Workflow, clock: FrozenClock) -> None:
    with_passwords(demo, clock, "staff-b01")
    client = TestClient(make_app(demo))
    answer = client.get("/worklist?view=all", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fworklist%3Fview%3Dall"
    form = client.get(answer.headers["location"])
    assert 'name="next" value="/worklist?view=all"' in form.text
    for target, expected in (("/worklist?view=all", "/worklist?view=all"), ("//evil.example/", "/")):
        client.cookies.clear()
        form = client.get("/login")
        answer = client.post(
            "/login",
            data={"username": "staff-b01", "password": PASSWORD, "csrf": csrf_in(form.text), "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == expected


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(demo: Workflow, clock: FrozenClock) -> None:
    number = submit(demo, 1)
    client = browser(demo, clock, "staff-b01")
    page = client.get(f"/appeals/{number}")
    token = csrf_in(page.text)
    for data in ({"text": "no token"}, {"text": "wrong token", "csrf": token[:-2] + "xx"}):
        answer = client.post(f"/appeals/{number}/comments", data=data, follow_redirects=False)
        assert answer.status_code == 403
        assert "表单已过期或来源不明" in answer.text
        answer = client.post(f"/appeals/{number}/actions/start_pre_check", data=data, follow_redirects=False)
        assert answer.status_code == 403
    assert [e["kind"] for e in demo.history(number)] == ["submitted"]
    assert demo.show(number)["state"] == "submitted"

    answer = client.post(f"/appeals/{number}/comments", data={"text": "已电话联系企业", "csrf": token})
    assert answer.status_code == 200
    assert "已电话联系企业" in answer.text
    assert [e["kind"] for e in demo.history(number)] == ["submitted", "commented"]

    # The sign-in form has its own token, bound to a cookie.
    fresh = TestClient(make_app(demo))
    answer = fresh.post("/login", data={"username": "staff-b01", "password": PASSWORD}, follow_redirects=False)
    assert answer.status_code == 403


def test_logging_out_revokes_the_session(demo: Workflow, clock: FrozenClock) -> None:
    client = browser(demo, clock, "staff-b01")
    token = csrf_in(client.get("/worklist").text)
    session = client.cookies.get("appeals_session")
    answer = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    client.cookies.set("appeals_session", str(session))  # replaying the old cookie does not help
    assert client.get("/worklist", follow_redirects=False).status_code == 303


# --- worklist --------------------------------------------------------------------------------------


def test_the_worklist_puts_breached_first_then_at_risk_then_the_soonest_due(demo: Workflow, clock: FrozenClock) -> None:
    clock.set(SHANGHAI_10AM)
    early = submit(demo, 1)  # Thursday 10:00; four working hours: due 16:00
    clock.advance(timedelta(hours=1))
    middle = submit(demo, 2)  # 11:00, due 17:00
    clock.advance(timedelta(minutes=30))
    later = submit(demo, 3)  # 11:30, due 17:30
    clock.advance(timedelta(hours=2, minutes=30))
    newest = submit(demo, 4)  # 14:00, due Friday 09:30
    clock.advance(timedelta(hours=2, minutes=30))  # 16:30
    status = {n: demo.show(n)["sla"]["status"] for n in (early, middle, later, newest)}
    assert status == {early: "breached", middle: "at_risk", later: "on_track", newest: "on_track"}

    client = browser(demo, clock, "staff-b01")
    page = client.get("/worklist")
    assert page.status_code == 200
    assert numbers_in(page.text) == [early, middle, later, newest]  # newest first would be the reverse
    first = page.text.index(f'data-number="{early}"')
    assert "sla-breached" in page.text[first : first + 600]
    assert 'href="/appeals/' + early + '"' in page.text  # one click to the appeal
    assert "超时 0小时30分" in page.text  # the countdown of the breached one, in working time
    assert numbers_in(client.get("/worklist?view=all").text) == [early, middle, later, newest]


# --- the appeal page -------------------------------------------------------------------------------


def test_the_appeal_page_shows_exactly_the_actions_the_user_may_take(demo: Workflow, clock: FrozenClock) -> None:
    number = submit(demo, 1)
    with_passwords(demo, clock, "staff-b01", "contact-0001", "bureau-approval-01")
    staff = sign_in(TestClient(make_app(demo)), "staff-b01")
    contact = sign_in(TestClient(make_app(demo)), "contact-0001")
    bureau = sign_in(TestClient(make_app(demo)), "bureau-approval-01")

    page = staff.get(f"/appeals/{number}")
    assert triggers_in(page.text) == allowed(demo, number, "staff-b01") == [
        "assign", "comment", "escalate", "start_pre_check"
    ]
    contact_page = contact.get(f"/appeals/{number}").text
    assert triggers_in(contact_page) == allowed(demo, number, "contact-0001") == ["comment", "withdraw"]
    assert bureau.get(f"/appeals/{number}").status_code == 404, "not routed to the department: out of its reach"
    for part in ("户外活动审批", "香水品牌开业活动", "场地平面图", "办理记录", "<svg", 'class="state current"'):
        assert part in page.text, part

    answer = staff.post(
        f"/appeals/{number}/actions/start_pre_check",
        data={"csrf": csrf_in(page.text), "expected_version": "1"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    page = staff.get(answer.headers["location"])
    assert "已办理：受理并开始预审" in page.text
    assert demo.show(number)["state"] == "pre_check"
    assert triggers_in(page.text) == allowed(demo, number, "staff-b01") == [
        "assign", "comment", "escalate", "pass_pre_check", "request_materials"
    ]
    assert 'data-state="pre_check"' in page.text


def test_a_refused_action_is_explained_next_to_its_fields(demo: Workflow, clock: FrozenClock) -> None:
    number = submit(demo, 1)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    client = browser(demo, clock, "staff-b01")
    token = csrf_in(client.get(f"/appeals/{number}").text)
    answer = client.post(f"/appeals/{number}/actions/request_materials", data={"csrf": token, "comment": " "})
    assert answer.status_code == 422
    assert 'class="problem">此项必填' in answer.text
    assert re.search(r'<details class="action" data-trigger="request_materials" open>', answer.text)
    answer = client.post(
        f"/appeals/{number}/actions/request_materials",
        data={"csrf": token, "comment": "请补充场地方同意书", "expected_version": "1"},
    )
    assert answer.status_code == 409
    assert "该诉求刚被他人更新" in answer.text
    assert demo.show(number)["state"] == "pre_check"


def test_the_enterprise_answers_materials_requested_from_its_appeal_page(demo: Workflow, clock: FrozenClock) -> None:
    number = submit(demo, 1)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "request_materials", as_user="staff-b01", comment="请补充场地方同意书")
    client = browser(demo, clock, "contact-0001")
    portal = client.get("/portal")
    assert "需要您处理" in portal.text and number in portal.text
    page = client.get(f"/appeals/{number}")
    assert "请补充场地方同意书" in page.text  # the request, shown above the actions
    assert triggers_in(page.text) == ["comment", "provide_materials", "withdraw"]
    assert 'data-move="escalate"' not in page.text  # waiting on the enterprise makes it no chain level
    answer = client.post(
        f"/appeals/{number}/actions/provide_materials",
        data={"csrf": csrf_in(page.text), "comment": "同意书已交楼宇服务站"},
    )
    assert answer.status_code == 200
    assert demo.show(number)["state"] == "pre_check"
    assert "同意书已交楼宇服务站" in answer.text


def test_the_chain_moves_escalate_and_reassign_from_the_appeal_page(demo: Workflow, clock: FrozenClock) -> None:
    number = submit(demo, 1)
    client = browser(demo, clock, "staff-b01")
    page = client.get(f"/appeals/{number}")
    assert 'data-move="escalate"' in page.text and 'data-move="send_down"' not in page.text  # building is the bottom
    assert 'value="specialist-b01"' in page.text  # a candidate for reassignment
    token = csrf_in(page.text)
    answer = client.post(f"/appeals/{number}/assign", data={"csrf": token, "username": "specialist-b01"})
    assert answer.status_code == 200 and "已办理：改派承办人" in answer.text
    assert demo.show(number)["assignee"] == "specialist-b01"
    answer = client.post(f"/appeals/{number}/escalate", data={"csrf": token, "reason": ""})
    assert answer.status_code == 422 and 'class="problem">此项必填' in answer.text
    reason = "涉及社区公共场地，楼宇无权审批"
    answer = client.post(f"/appeals/{number}/escalate", data={"csrf": token, "reason": reason})
    assert answer.status_code == 200
    appeal = demo.show(number)
    assert appeal["level"] == "community" and appeal["assignee"] == "community-c01"
    assert reason in answer.text
    supervisor = browser(demo, clock, "community-c01")
    page = supervisor.get(f"/appeals/{number}")
    assert 'data-move="send_down"' in page.text and 'data-move="escalate"' in page.text


def test_another_buildings_specialist_gets_the_same_404_as_for_a_missing_number(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit(demo, 1)  # enterprise 1 is in building B01
    outsider = browser(demo, clock, "specialist-b02")
    hidden = outsider.get(f"/appeals/{number}")
    missing = outsider.get("/appeals/OE-2026-999999")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(number, "N") == missing.text.replace("OE-2026-999999", "N")  # only the URL differs
    assert "找不到该页面或诉求，或您无权查看。" in hidden.text
    token = csrf_in(outsider.get("/worklist").text)
    for path in (f"/appeals/{number}/actions/start_pre_check", f"/appeals/{number}/comments"):
        assert outsider.post(path, data={"csrf": token, "text": "x"}).status_code == 404
    assert number not in outsider.get("/worklist?view=all").text
    assert demo.show(number)["state"] == "submitted"
    stranger = browser(demo, clock, "contact-0002")  # another enterprise in the same building
    assert stranger.get(f"/appeals/{number}").status_code == 404


# --- portal ----------------------------------------------------------------------------------------


def test_the_portal_form_names_each_bad_field_then_creates_the_appeal(demo: Workflow, clock: FrozenClock) -> None:
    client = browser(demo, clock, "contact-0001")
    form = client.get("/portal/new/outdoor_event_permit")
    assert form.status_code == 200
    for name in ("event_name", "event_kind", "venue", "start_date", "expected_attendance", "contact_phone"):
        assert f'name="{name}"' in form.text
    assert '<option value="opening">开业活动</option>' in form.text  # choices show their titles
    token = csrf_in(form.text)
    bad = {**OUTDOOR_EVENT, "event_name": "", "expected_attendance": "很多", "contact_phone": "call me", "csrf": token}
    answer = client.post("/portal/new/outdoor_event_permit", data=bad)
    assert answer.status_code == 422
    assert "请修改标红的字段后重新提交" in answer.text
    problems = dict(re.findall(r'<p class="problem" id="([a-z_]+)-problem">([^<]*)</p>', answer.text))
    assert set(problems) == {"event_name", "expected_attendance", "contact_phone"}
    assert problems["event_name"] == "此项必填"
    assert problems["expected_attendance"] == "请填写整数"
    assert problems["contact_phone"].startswith("不是有效的电话号码")
    assert 'value="长沙国金中心北广场"' in answer.text  # what was typed stays
    assert demo.list_appeals()[1] == 0

    good = {**OUTDOOR_EVENT, "expected_attendance": "500", "csrf": token}
    answer = client.post("/portal/new/outdoor_event_permit", data=good, follow_redirects=False)
    assert answer.status_code == 303
    number = answer.headers["location"].split("/")[2].split("?")[0]
    page = client.get(answer.headers["location"])
    assert f"诉求 {number} 已提交。" in page.text
    appeal = demo.show(number)
    assert appeal["data"]["expected_attendance"] == 500 and appeal["enterprise"]["id"] == 1
    assert number in client.get("/portal").text


def test_a_specialist_submits_for_an_enterprise_of_their_building_only(demo: Workflow, clock: FrozenClock) -> None:
    client = browser(demo, clock, "specialist-b01")
    form = client.get("/portal/new/outdoor_event_permit")
    assert 'name="enterprise_id"' in form.text
    token = csrf_in(form.text)
    answer = client.post(
        "/portal/new/outdoor_event_permit", data={**OUTDOOR_EVENT, "enterprise_id": "31", "csrf": token}
    )
    assert answer.status_code == 422  # enterprise 31 is in building B02
    assert 'id="enterprise_id"' in answer.text and demo.list_appeals()[1] == 0
    answer = client.post(
        "/portal/new/outdoor_event_permit",
        data={**OUTDOOR_EVENT, "enterprise_id": "7", "channel": "offline", "csrf": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    (appeal,), _ = demo.list_appeals()
    assert appeal["enterprise"]["id"] == 7 and appeal["channel"] == "offline"


# --- dashboard -------------------------------------------------------------------------------------


def test_the_dashboard_draws_svg_charts_with_tables_for_the_callers_area(demo: Workflow, clock: FrozenClock) -> None:
    first = submit(demo, 1)
    second = submit(demo, 31)  # building B02, also community C01
    demo.fire(first, "start_pre_check", as_user="staff-b01")
    with_passwords(demo, clock, "district-01", "community-c02", "specialist-b01")
    before = sign_in(TestClient(make_app(demo)), "district-01")
    assert numbers_in(overdue_section(before.get("/dashboard").text)) == []
    clock.advance(timedelta(days=2))
    district = sign_in(TestClient(make_app(demo)), "district-01")  # the first session has expired by now
    page = district.get("/dashboard")
    assert page.status_code == 200
    assert sorted(numbers_in(overdue_section(page.text))) == sorted([first, second])
    assert page.text.count("<svg") >= 4 and page.text.count("<table") >= 4
    for part in (
        'id="sla"',
        'id="trend"',
        'id="workload"',
        'id="buildings"',
        "长沙国金中心",
        "平和堂商务楼",
        "staff-b01",
    ):
        assert part in page.text, part
    assert "<script" not in page.text.split("</head>")[1]  # charts are drawn on the server
    english = district.get("/dashboard?lang=en")
    assert "Changsha IFS" in english.text and "Weekly response and resolution rates" in english.text

    elsewhere = sign_in(TestClient(make_app(demo)), "community-c02")  # C02 holds B03 and B04 only
    page = elsewhere.get("/dashboard")
    assert page.status_code == 200 and "长沙国金中心" not in page.text
    assert numbers_in(overdue_section(page.text)) == []  # both breached appeals are outside C02
    assert elsewhere.get("/dashboard?unit=B01").status_code == 404
    assert district.get("/dashboard?unit=S01").status_code == 200
    specialist = sign_in(TestClient(make_app(demo)), "specialist-b01")
    assert specialist.get("/dashboard").status_code == 403


# --- inbox -----------------------------------------------------------------------------------------


def test_the_inbox_shows_the_unread_count_and_marks_notices_read(demo: Workflow, clock: FrozenClock) -> None:
    submit(demo, 1)
    submit(demo, 2)
    client = browser(demo, clock, "staff-b01")
    staff = demo.users(role=Role.BUILDING_STAFF, unit="B01")[0]
    actor_id = staff["id"]
    with UnitOfWork(demo.engine, read_only=True) as uow:
        actor = uow.repo.actor_by_id(actor_id)
    assert actor is not None
    unread = unread_count(demo.engine, actor)
    assert unread >= 2
    page = client.get("/inbox")
    assert re.search(rf'<span class="badge" id="unread-count"[^>]*>{unread}</span>', page.text)
    ids = re.findall(r'name="id" value="(\d+)"', page.text)
    assert len(ids) == unread
    answer = client.post("/inbox/read", data={"csrf": csrf_in(page.text), "id": ids[0], "all": "0"})
    assert "已将 1 条消息标为已读" in answer.text
    assert unread_count(demo.engine, actor) == unread - 1
    answer = client.post("/inbox/read", data={"csrf": csrf_in(answer.text), "all": "1"})
    assert unread_count(demo.engine, actor) == 0
    assert 'id="unread-count"' not in answer.text and "0 条未读" in answer.text


# --- language --------------------------------------------------------------------------------------


def test_the_english_switch_is_remembered_and_chinese_is_the_default(demo: Workflow, clock: FrozenClock) -> None:
    client = browser(demo, clock, "specialist-b01")
    page = client.get("/worklist")
    assert '<html lang="zh-CN">' in page.text and "我的工作台" in page.text
    assert 'href="/worklist?lang=en"' in page.text
    page = client.get("/worklist?lang=en")
    assert '<html lang="en">' in page.text and "My worklist" in page.text
    assert client.cookies.get("appeals_lang") == "en"
    assert "My worklist" in client.get("/worklist").text
    assert "我的工作台" in client.get("/worklist?lang=zh-CN").text
    assert "我的工作台" in client.get("/worklist").text
    own = browser(demo, clock, "district-02")  # a user whose own locale is English
    assert "Supervision dashboard" in own.get("/dashboard").text


def test_the_api_keeps_its_json_errors_next_to_the_pages(demo: Workflow) -> None:
    client = TestClient(make_app(demo))
    answer = client.get("/api/v1/appeals/OE-2026-000001")
    assert answer.status_code == 401 and answer.json()["error"] == "not_signed_in"
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert client.get("/static/app.css").status_code == 200


# --- charts and the diagram, no database -----------------------------------------------------------


def test_charts_escape_their_text_and_need_nothing_from_outside() -> None:
    svg = charts.bar_chart(['<script>alert("x")</script>', "B&B"], [3, 1], title="a <b> & c")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "B&amp;B" in svg
    assert "a &lt;b&gt; &amp; c" in svg
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    stacked = charts.stacked_bars(["x"], [("one", charts.BREACHED, [1]), ("two", charts.AT_RISK, [2])], title="t")
    assert stacked.count("<rect") >= 4  # two legend swatches, two parts
    line = charts.line_chart(["1/1", "1/8", "1/15"], [("rate", charts.BLUE, [0.5, None, 1.0])], title="t")
    assert "<polyline" not in line  # a gap leaves no two neighbours to join
    assert line.count("<circle") == 2
    with pytest.raises(ValueError, match="series 'rate' has 1 values for 3 labels"):
        charts.line_chart(["a", "b", "c"], [("rate", charts.BLUE, [0.5])], title="t")
    assert "No data" in charts.bar_chart([], [], title="t", empty="No data")


def test_the_diagram_puts_states_in_rows_and_highlights_the_current_one() -> None:
    spec = next(d for d in load_definitions(shipped_definition_files()) if d.name == "outdoor_event_permit")
    rows = layers(spec)
    assert rows["submitted"] == 0 and rows["pre_check"] == 1
    assert rows["awaiting_materials_pre_check"] == rows["collecting_materials"] == 2  # the loop back is no step down
    assert rows["closed"] > rows["approved"] > rows["site_inspection"] > rows["bureau_review"]
    svg = state_diagram(spec, current="bureau_review", visited={"submitted", "pre_check"}, locale="en")
    assert re.search(r'<g class="state current" data-state="bureau_review">', svg)
    assert svg.count('class="state current"') == 1
    assert ">Review at the<" in svg and ">approval bureau<" in svg  # wrapped onto two lines
    for definition in load_definitions(shipped_definition_files()):
        drawn = state_diagram(definition, current=definition.initial, locale="zh-CN")
        assert drawn.count('<g class="state') == len(definition.states), definition.name


def test_an_escalated_breach_shows_the_new_levels_clock_and_a_mark_where_it_breached(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = submit(demo, 1)
    clock.advance(timedelta(days=1))  # the 4-hour acceptance limit passed on Thursday 16:00: the sweep escalates it
    Housekeeping(demo).sweep()
    assert demo.show(number)["level"] == "community"
    page = browser(demo, clock, "community-c01").get(f"/appeals/{number}")
    # The community's 4 h run from Thursday 16:00 to Friday 11:30; it is Friday 10:00: its clock is on track.
    badge = re.search(r'<span class="sla sla-on_track">.*?</span>\s*</span>', page.text, re.S)
    assert badge, "no on-track badge for the community's own clock"
    assert "此前在楼宇超时" in badge.group(0) and "剩 " in badge.group(0)
    assert "上报后本级" not in page.text and "已超时" not in badge.group(0)
    assert "2026-11-26 16:00" in page.text, "超时时间 shows the due instant, in Shanghai time"
    clock.advance(timedelta(days=2))  # now the community's own limit has passed too: plainly overdue
    page = browser(demo, clock, "community-c01").get(f"/appeals/{number}")
    badge = re.search(r'<span class="sla sla-breached">.*?</span>\s*</span>', page.text, re.S)
    assert badge and "超时 " in badge.group(0) and "此前在楼宇超时" in badge.group(0)


def flat_routes(routes: list[Any]) -> list[Any]:
    """The routes of the app with included routers opened (FastAPI 0.16x keeps them nested, unprefixed here)."""
    flat = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        flat += flat_routes(inner.routes) if inner is not None else [route]
    return flat


# Users who may not see an appeal of enterprise 1 (building B01, community C01, sub-district S01). District
# departments' officers, like district supervisors, see the whole district, so none of them is here.
OUTSIDERS = ["contact-0002", "contact-0031", "specialist-b02", "staff-b02", "community-c02", "subdistrict-s02"]


def test_every_appeal_page_and_form_answers_404_to_each_role_outside_its_reach(
    demo: Workflow, clock: FrozenClock
) -> None:
    """Walks the app's own route table, so a page added later is walked too."""
    number = submit(demo, 1)
    enterprise = demo.show(number)["enterprise"]["name"]
    # A file on it, so its download page is walked with a real one.
    attached = Attachments(demo).attach(number, "a.pdf", iter([b"%PDF-1.7\n"]), as_user="contact-0001")
    version = demo.show(number)["version"]
    routes = [
        (method, route.path)
        for route in flat_routes(make_app(demo).routes)
        if "{number}" in getattr(route, "path", "") and not route.path.startswith("/api/")
        for method in sorted(getattr(route, "methods", None) or ())
    ]
    assert len(routes) >= 6, routes
    with_passwords(demo, clock, *OUTSIDERS)
    clients = {user: sign_in(TestClient(make_app(demo)), user) for user in OUTSIDERS}
    before = table_counts(demo.engine)
    for user, client in clients.items():
        token = csrf_in(client.get("/inbox").text)
        form = {
            "csrf": token,
            "expected_version": "1",
            "comment": "x",
            "text": "x",
            "reason": "x",
            "username": "specialist-b01",
        }
        for method, path in routes:
            url = path.replace("{number}", number).replace("{trigger}", "start_pre_check")
            url = url.replace("{attachment_id}", str(attached["id"]))
            answer = client.request(method, url, data=form if method == "POST" else None, follow_redirects=False)
            assert answer.status_code == 404, f"{user} {method} {url}: {answer.status_code}"
            assert enterprise not in answer.text, f"{user} {method} {url} names the enterprise"
    assert table_counts(demo.engine) == before  # nothing written by any of them
    assert demo.show(number)["version"] == version
