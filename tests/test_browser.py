"""End to end in real headless Chromium (Debian's package, driven by Playwright): the permit's whole road
from the enterprise's form to "approved", and a supervisor finding a breach after the clock moves on.

Each page the tests pass through is photographed; APPEALS_SCREENSHOTS=docs/screenshots keeps the photos
of the SQLite run for the README.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.live_server import LiveServer
from workflow.clock import FrozenClock
from workflow.persistence.unit_of_work import UnitOfWork
from workflow.scheduling.jobs import Housekeeping
from workflow.services.accounts import Accounts
from workflow.services.demo_appeals import seed_demo_appeals
from workflow.services.workflow import Workflow

CHROMIUM = os.environ.get("APPEALS_CHROMIUM", "/usr/bin/chromium")
# Quiet, deterministic Chromium: no GPU, no background traffic, no sandbox (tests run as root in CI).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "浏览器测试-2026"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def chromium_session() -> Iterator[Browser]:
    """One Chromium per test process (the `chromium` fixture in conftest): Playwright's sync API cannot
    start twice in one thread, so every module that drives the browser shares this one."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("APPEALS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium is required here but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium, or run .ci/run, which installs it")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@pytest.fixture
def server(demo: Workflow) -> Iterator[LiveServer]:
    with LiveServer(demo) as live:
        yield live


class Photographer:
    """Saves a full-page screenshot of each page visited (into docs/screenshots when asked to)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, name: str) -> None:
        page.screenshot(path=self.folder / f"{name}.png", full_page=True)
        assert (self.folder / f"{name}.png").stat().st_size > 5_000, f"screenshot {name} is empty"


@pytest.fixture
def shoot(request: pytest.FixtureRequest, tmp_path: Path) -> Photographer:
    wanted = os.environ.get("APPEALS_SCREENSHOTS")
    backend = request.node.callspec.params.get("db_url")
    return Photographer(Path(wanted) if wanted and backend == "sqlite" else tmp_path / "screenshots")


def with_passwords(wf: Workflow, clock: FrozenClock, *usernames: str) -> None:
    with UnitOfWork(wf.engine) as uow:
        for username in usernames:
            Accounts(clock).set_password(uow, username, PASSWORD)
        uow.commit()


def signed_in(
    browser: Browser,
    server: LiveServer,
    username: str,
    viewport: dict[str, int] = DESKTOP,
    before: Callable[[Page], None] | None = None,
) -> Page:
    """A fresh browser context (its own cookies) signed in through the real form."""
    context: BrowserContext = browser.new_context(base_url=server.url, viewport=viewport, locale="zh-CN")
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.goto("/login")
    if before is not None:
        before(page)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    expect(page.locator("header .user")).to_be_visible()
    return page


def open_action(page: Page, trigger: str) -> None:
    page.click(f"details[data-trigger='{trigger}'] > summary")


def submit_action(page: Page, trigger: str) -> None:
    page.click(f"details[data-trigger='{trigger}'] form button[type=submit]")


def triggers_offered(page: Page) -> list[str]:
    return sorted(page.locator("details[data-trigger]").evaluate_all("nodes => nodes.map(n => n.dataset.trigger)"))


def state_shown(page: Page) -> str:
    return page.locator("h1 .state").inner_text().strip()


def no_sideways_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def test_a_permit_goes_from_the_enterprise_form_to_approved(
    chromium: Browser, server: LiveServer, demo: Workflow, clock: FrozenClock, shoot: Photographer
) -> None:
    with_passwords(demo, clock, "contact-0001", "staff-b01", "specialist-b01", "bureau-approval-01")

    # The enterprise contact submits the form; empty required fields are named one by one first.
    contact = signed_in(chromium, server, "contact-0001", before=lambda page: shoot(page, "01-sign-in"))
    expect(contact).to_have_url(re.compile(r"/portal$"))
    contact.click("a.type-link[href='/portal/new/outdoor_event_permit']")
    contact.click("main form button[type=submit]")
    expect(contact.locator("p.alert-error")).to_be_visible()
    for field in ("event_name", "venue", "start_date", "expected_attendance", "contact_phone"):
        expect(contact.locator(f"#{field}-problem")).to_be_visible()
        expect(contact.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    contact.fill("#event_name", "香水品牌开业活动")
    expect(contact.locator("#event_kind option[value='opening']")).to_have_text("开业活动")
    contact.select_option("#event_kind", "opening")
    contact.fill("#venue", "长沙国金中心北广场")
    contact.fill("#start_date", "2026-12-01")
    contact.fill("#end_date", "2026-11-30")  # before the first day: the permit's rule refuses it
    contact.fill("#expected_attendance", "0")  # below the field's minimum of 1
    contact.fill("#contact_phone", "0731-8888 6666")
    contact.click("main form button[type=submit]")
    expect(contact.locator("#expected_attendance-problem")).to_contain_text("不能小于 1")
    expect(contact.locator("#end_date-problem")).to_have_text("结束日期不能早于开始日期")
    expect(contact.locator("#event_name")).to_have_value("香水品牌开业活动")  # what was typed is kept
    shoot(contact, "02-portal-form-with-problems")
    contact.fill("#end_date", "2026-12-20")
    contact.fill("#expected_attendance", "500")
    contact.click("main form button[type=submit]")
    expect(contact).to_have_url(re.compile(r"/appeals/OE-\d{4}-\d+\?submitted=1$"))
    number = contact.locator("h1").inner_text().split()[0]
    assert state_shown(contact) == "已提交"
    assert demo.show(number, as_user="contact-0001")["data"]["expected_attendance"] == 500

    # The building committee accepts it and passes the pre-check, from its worklist.
    staff = signed_in(chromium, server, "staff-b01")
    expect(staff).to_have_url(re.compile(r"/worklist$"))
    staff.click(f"li[data-number='{number}'] a")
    assert triggers_offered(staff) == ["start_pre_check"]  # no more than this role may fire now
    open_action(staff, "start_pre_check")
    submit_action(staff, "start_pre_check")
    expect(staff.locator("h1 .state")).to_have_text("楼宇预审")

    # The committee asks for the venue owner's consent; the contact answers from the portal.
    open_action(staff, "request_materials")
    submit_action(staff, "request_materials")  # a return needs a reason: refused, nothing changes
    expect(staff.locator("#request_materials-comment")).to_have_attribute("aria-invalid", "true")
    expect(staff).to_have_url(re.compile(rf"/appeals/{number}\?refused=[\w-]+$"))  # a GET: refreshing posts nothing
    staff.fill("#request_materials-comment", "请补充场地方同意书。")
    submit_action(staff, "request_materials")
    expect(staff.locator("h1 .state")).to_have_text("待补充材料（预审）")
    contact.goto("/portal")
    waiting = contact.locator(f"li.waiting[data-number='{number}']")
    expect(waiting).to_contain_text("需要您处理")
    waiting.locator("a").click()
    expect(contact.locator("ol.timeline")).to_contain_text("请补充场地方同意书。")
    assert "provide_materials" in triggers_offered(contact)
    open_action(contact, "provide_materials")
    contact.fill("#provide_materials-comment", "场地方同意书已上传。")
    submit_action(contact, "provide_materials")
    expect(contact.locator("h1 .state")).to_have_text("楼宇预审")

    staff.reload()
    open_action(staff, "pass_pre_check")
    submit_action(staff, "pass_pre_check")
    expect(staff.locator("h1 .state")).to_have_text("专员上门收集材料")

    # The specialist collects the materials on site; filing without the checklist ticked is refused.
    specialist = signed_in(chromium, server, "specialist-b01", viewport=PHONE)
    specialist.goto("/worklist")
    expect(specialist.locator(f"li[data-number='{number}']")).to_be_visible()
    assert no_sideways_scroll(specialist), "the worklist scrolls sideways on a phone"
    shoot(specialist, "03-worklist-phone")
    specialist.click(f"li[data-number='{number}'] a")
    assert no_sideways_scroll(specialist), "the appeal page scrolls sideways on a phone"
    assert "file_application" in triggers_offered(specialist)
    open_action(specialist, "file_application")
    submit_action(specialist, "file_application")
    expect(specialist.locator("p.alert-error")).to_contain_text("材料清单中的每一项都收齐后才能申报")
    assert state_shown(specialist) == "专员上门收集材料"
    specialist.check("#file_application-materials_complete")
    specialist.fill("#file_application-collection_notes", "五项材料已上门收齐。")
    shoot(specialist, "04-appeal-action-phone")
    submit_action(specialist, "file_application")
    expect(specialist.locator("h1 .state")).to_have_text("审批局审查")
    expect(specialist.locator("p.alert-ok")).to_be_visible()

    # The bureau officer schedules the site inspection, records it and approves.
    officer = signed_in(chromium, server, "bureau-approval-01")
    officer.goto(f"/appeals/{number}")
    open_action(officer, "schedule_inspection")
    officer.fill("#schedule_inspection-inspection_time", "2026-11-27T10:00")
    submit_action(officer, "schedule_inspection")
    expect(officer.locator("h1 .state")).to_have_text("现场查勘")
    open_action(officer, "approve")
    officer.fill("#approve-inspection_findings", "场地安全通道畅通，临时舞台搭建符合要求。")
    submit_action(officer, "approve")
    expect(officer.locator("h1 .state")).to_have_text("已批准")
    expect(officer.locator(".diagram-box .state.current")).to_have_count(1)
    shoot(officer, "05-appeal-approved")

    # The contact sees "approved", the decision notice in the inbox, and the timeline of every step.
    contact.goto("/portal")
    row = contact.locator(f"li[data-number='{number}']")
    expect(row).to_contain_text("已批准")
    shoot(contact, "06-portal")
    expect(contact.locator("#unread-count")).to_be_visible()
    contact.goto("/inbox")
    expect(contact.locator("main")).to_contain_text(number)
    shoot(contact, "07-inbox")
    contact.goto(f"/appeals/{number}")
    assert state_shown(contact) == "已批准"
    facts = contact.locator("dl.facts").first.inner_text()
    assert "开业活动" in facts and "2026-11-27 10:00" in facts  # a choice's title, a time in Shanghai
    timeline = contact.locator("ol.timeline").inner_text()
    for who in ("staff-b01", "specialist-b01", "bureau-approval-01"):
        assert who in timeline, f"{who} is missing from the timeline"
    assert triggers_offered(contact) == []  # nothing left for the enterprise to do

    # The same page in English, with the switch in the header.
    contact.click("header a.lang")
    expect(contact.locator("h1 .state")).to_have_text("Approved")
    history = demo.history(number, as_user="contact-0001")
    assert [e["kind"] for e in history] == ["submitted"] + ["fired"] * 7  # each click one recorded step


def test_a_supervisor_sees_a_breached_appeal_after_the_clock_moves_on(
    chromium: Browser, server: LiveServer, demo: Workflow, clock: FrozenClock, shoot: Photographer
) -> None:
    seed_demo_appeals(demo)  # a lived-in district around the appeal under watch
    Housekeeping(demo).sweep()
    appeal = demo.submit(
        "outdoor_event_permit",
        enterprise_id=1,
        as_user="contact-0001",
        data={
            "event_name": "周年庆典",
            "event_kind": "promotion",
            "venue": "长沙国金中心南广场",
            "start_date": "2026-12-05",
            "end_date": "2026-12-06",
            "expected_attendance": 300,
            "contact_phone": "0731-8888 7777",
        },
    )
    number = str(appeal["number"])
    with_passwords(demo, clock, "community-c01", "specialist-b01")
    supervisor = signed_in(chromium, server, "community-c01")
    supervisor.goto("/dashboard")
    overdue = supervisor.locator("#overdue")
    expect(overdue).to_be_visible()
    expect(overdue.locator(f"li[data-number='{number}']")).to_have_count(0)  # on time: not listed

    # A working day later the 4-hour acceptance limit has long passed; the sweeper escalates it.
    clock.advance(timedelta(days=1))
    Housekeeping(demo).sweep()
    assert demo.show(number, as_user="community-c01")["level"] == "community"
    # The climb took effect at Thursday 16:00, so the community's own 4 h run to Friday 11:30: at Friday
    # 10:00 the appeal is on track there, marked as breached earlier at the building.
    supervisor = signed_in(chromium, server, "community-c01")  # yesterday's session has expired
    supervisor.goto(f"/appeals/{number}")
    expect(supervisor.locator(".heading .sla")).to_have_class(re.compile(r"sla-on_track"))
    expect(supervisor.locator(".heading .sla")).to_contain_text("此前在楼宇超时")
    clock.advance(timedelta(hours=2))  # Friday 12:00: the community's own limit has run out too
    supervisor.goto("/dashboard")
    listed = supervisor.locator(f"#overdue li[data-number='{number}']")
    expect(listed).to_be_visible()
    expect(listed.locator(".sla")).to_have_class(re.compile(r"sla-breached"))
    breached_total = int(supervisor.locator(".total.t-breached .total-n").inner_text())
    assert breached_total >= 1
    assert supervisor.locator("#sla svg").count() == 1 and supervisor.locator("#trend svg").count() == 1
    shoot(supervisor, "08-dashboard")
    listed.locator("a").click()
    expect(supervisor.locator("h1")).to_contain_text(number)
    expect(supervisor.locator(".heading .sla")).to_have_class(re.compile(r"sla-breached"))
    expect(supervisor.locator("ol.timeline")).to_contain_text("上报")
    # Submitted at 10:00; 10-12 and 14-16 are its four working hours.
    expect(supervisor.locator("ol.timeline")).to_contain_text("超过办理时限（本环节时限，2026-11-26 16:00 到期）")
    shoot(supervisor, "09-appeal-breached")

    specialist = signed_in(chromium, server, "specialist-b01")
    specialist.goto("/worklist?view=all")
    first = specialist.locator("ol.worklist li").first
    expect(first).to_have_class(re.compile(r"sla-edge-breached"))  # most urgent first
    shoot(specialist, "10-worklist")
    answer = specialist.goto("/dashboard")
    assert answer is not None and answer.status == 403
