"""A refused action on the appeal page sends the browser back to the appeal page (303, a GET), which shows the
objection and what was typed: a refresh reloads that page and posts nothing again."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

from fastapi.testclient import TestClient

from tests.test_pages import browser, csrf_in, submit
from workflow.clock import FrozenClock
from workflow.services.workflow import Workflow

NOTES = "五项材料中缺场地方同意书，明日补收。"


def to_collecting_materials(demo: Workflow) -> str:
    number = submit(demo, 1)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "pass_pre_check", as_user="staff-b01")
    return number


def refuse(client: TestClient, path: str, data: dict[str, str]) -> str:
    """POST a form the engine refuses; the answer must be a 303 to a GET page of the appeal."""
    answer = client.post(path, data=data, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert urlsplit(location).path == "/".join(path.split("/")[:3]), location  # /appeals/N, which GET shows
    return location


def test_a_refused_action_lands_on_the_appeal_page_with_what_was_typed_and_a_refresh_posts_nothing(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = to_collecting_materials(demo)
    client = browser(demo, clock, "specialist-b01")
    token = csrf_in(client.get(f"/appeals/{number}").text)
    events = len(demo.history(number))
    form = {"csrf": token, "collection_notes": NOTES, "comment": "代为申报"}  # "all collected" left unticked
    location = refuse(client, f"/appeals/{number}/actions/file_application", form)
    assert re.fullmatch(rf"/appeals/{number}\?refused=[\w-]+", location), location

    for _ in range(2):  # the page, then a refresh of it: the same GET, nothing posted again
        page = client.get(location)
        assert page.status_code == 409
        assert re.search(r'<details class="action" data-trigger="file_application" open>', page.text)
        assert NOTES in page.text and "代为申报" in page.text  # what was typed stays
        assert "材料清单中的每一项都收齐后才能申报" in page.text  # the guard's objection, in Chinese
    assert len(demo.history(number)) == events
    assert demo.show(number)["state"] == "collecting_materials"

    # Someone else following the link sees the plain page (if they may see the appeal at all).
    staff = browser(demo, clock, "staff-b01")
    plain = staff.get(location)
    assert plain.status_code == 200 and NOTES not in plain.text
    # After an hour the refusal is no longer shown; the page is plain again.
    clock.advance(timedelta(hours=1, minutes=1))
    later = client.get(location)
    assert later.status_code == 200 and NOTES not in later.text


def test_a_bad_field_a_missing_comment_and_a_missing_reason_are_shown_after_the_redirect(
    demo: Workflow, clock: FrozenClock
) -> None:
    number = to_collecting_materials(demo)
    client = browser(demo, clock, "staff-b01")
    token = csrf_in(client.get(f"/appeals/{number}").text)
    page = client.get(refuse(client, f"/appeals/{number}/comments", {"csrf": token, "text": "  "}))
    assert page.status_code == 422 and "此项必填" in page.text
    page = client.get(refuse(client, f"/appeals/{number}/escalate", {"csrf": token, "reason": ""}))
    assert page.status_code == 422 and 'class="problem">此项必填' in page.text
    assert [e["kind"] for e in demo.history(number)] == ["submitted", "fired", "fired"]


def test_a_form_with_a_nul_character_is_refused_where_it_comes_in_and_keeps_nothing(
    demo: Workflow, clock: FrozenClock
) -> None:
    # NUL is refused by the request-text check before the action runs: no flash to store, nothing changed.
    number = to_collecting_materials(demo)
    client = browser(demo, clock, "specialist-b01")
    token = csrf_in(client.get(f"/appeals/{number}").text)
    version = demo.show(number)["version"]
    form = {"csrf": token, "materials_complete": "on", "collection_notes": "收齐\x00了"}
    page = client.post(f"/appeals/{number}/actions/file_application", data=form, follow_redirects=False)
    assert page.status_code == 422 and "collection_notes" in page.text, page.text[:500]
    assert demo.show(number)["version"] == version
