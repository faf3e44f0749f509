"""An outdoor event permit walks the article's path, and every refusal leaves the database as it was."""

from __future__ import annotations

import re

import pytest

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.errors import (
    CommentRequired,
    FormInvalid,
    GuardRejected,
    OutsideJurisdiction,
    RoleNotAllowed,
    TransitionNotAllowed,
    VersionConflict,
)
from workflow.services.workflow import Workflow


def submit_event(wf: Workflow) -> str:
    appeal = wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)
    return str(appeal["number"])


def test_submitted_appeal_gets_a_readable_number_and_goes_to_the_building_committee(demo: Workflow) -> None:
    appeal = demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)
    assert re.fullmatch(r"OE-2026-\d{6}", appeal["number"])
    assert appeal["state"] == "submitted"
    assert appeal["assignee"] == "staff-b01"
    assert appeal["level"] == "building"
    assert appeal["unit"]["code"] == "B01"
    assert appeal["version"] == 1
    assert appeal["definition"]["name"] == "outdoor_event_permit"
    second = demo.submit("outdoor_event_permit", enterprise_id=2, as_user="contact-0002", data=OUTDOOR_EVENT)
    assert int(second["number"][-6:]) == int(appeal["number"][-6:]) + 1


def test_the_article_path_ends_approved_and_closed_with_one_event_per_step(demo: Workflow) -> None:
    number = submit_event(demo)
    steps = [
        ("start_pre_check", "staff-b01", {}, "pre_check", "staff-b01"),
        ("pass_pre_check", "staff-b01", {}, "collecting_materials", "specialist-b01"),
        ("file_application", "specialist-b01", {"materials_complete": True}, "bureau_review", "bureau-approval-01"),
        ("schedule_inspection", "bureau-approval-01", {"inspection_time": "2026-11-27T10:00+08:00"},
         "site_inspection", "bureau-approval-01"),
        ("approve", "bureau-approval-01", {"inspection_findings": "场地安全"}, "approved", "specialist-b01"),
        ("close", "specialist-b01", {}, "closed", None),
    ]
    for trigger, user, data, state, assignee in steps:
        demo.fire(number, trigger, as_user=user, data=data)
        shown = demo.show(number)
        assert (shown["state"], shown["assignee"]) == (state, assignee), trigger
    history = demo.history(number)
    assert [e["trigger"] for e in history] == ["submit"] + [s[0] for s in steps]
    assert [e["version"] for e in history] == list(range(1, 8))
    final = demo.show(number)
    assert final["is_open"] is False and final["closed_at"] is not None
    assert final["data"]["inspection_findings"] == "场地安全"


def test_returning_for_materials_waits_on_the_enterprise_and_comes_back(demo: Workflow) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "request_materials", as_user="staff-b01", comment="请补充场地方同意书")
    assert demo.show(number)["assignee"] == "contact-0001"
    actions = demo.actions(number, as_user="contact-0001")
    assert [a["trigger"] for a in actions] == ["provide_materials", "withdraw", "comment"]
    demo.fire(number, "provide_materials", as_user="contact-0001")
    assert demo.show(number)["state"] == "pre_check"


def test_every_bad_form_field_is_named_and_nothing_is_stored(demo: Workflow) -> None:
    before = table_counts(demo.engine)
    bad = {**OUTDOOR_EVENT, "event_kind": "parade", "expected_attendance": 0, "colour": "red"}
    del bad["venue"]
    with pytest.raises(FormInvalid) as caught:
        demo.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=bad)
    fields = {p.field for p in caught.value.problems}
    assert fields == {"event_kind", "expected_attendance", "colour", "venue"}
    assert "'parade' is not one of: opening" in str(caught.value)
    assert table_counts(demo.engine) == before


@pytest.mark.parametrize(
    ("trigger", "user", "kwargs", "error", "message"),
    [
        ("pass_pre_check", "staff-b01", {}, TransitionNotAllowed,
         "is in state 'submitted', where 'pass_pre_check' is not possible; possible here: start_pre_check"),
        ("start_pre_check", "contact-0001", {}, RoleNotAllowed, "has role 'enterprise_contact'"),
        ("provide_materials", "contact-0001", {}, TransitionNotAllowed, "possible here: withdraw"),
        ("start_pre_check", "district-01", {}, RoleNotAllowed,
         "has role 'district_supervisor', but 'start_pre_check' is allowed only to: building_staff, specialist"),
        ("start_pre_check", "bureau-approval-01", {}, OutsideJurisdiction,
         "outside the jurisdiction of user 'bureau-approval-01'"),  # not routed to the department yet
        ("start_pre_check", "staff-b02", {}, OutsideJurisdiction, "outside the jurisdiction of user 'staff-b02'"),
        ("withdraw", "contact-0002", {}, OutsideJurisdiction, "outside the jurisdiction of user 'contact-0002'"),
        ("start_pre_check", "staff-b01", {"expected_version": 7}, VersionConflict, "expected version 7"),
    ],
)
def test_a_refused_fire_names_the_reason_and_changes_nothing(
    demo: Workflow, trigger: str, user: str, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    number = submit_event(demo)
    before = table_counts(demo.engine), demo.show(number)
    with pytest.raises(error) as caught:
        demo.fire(number, trigger, as_user=user, **kwargs)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert (table_counts(demo.engine), demo.show(number)) == before


def test_guards_comments_and_required_fields_are_enforced(demo: Workflow) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    with pytest.raises(CommentRequired, match="requires a comment"):
        demo.fire(number, "request_materials", as_user="staff-b01")
    demo.fire(number, "pass_pre_check", as_user="staff-b01")
    with pytest.raises(FormInvalid, match="materials_complete: is required"):
        demo.fire(number, "file_application", as_user="specialist-b01")
    with pytest.raises(GuardRejected, match="refused by guard 'materials_complete'"):
        demo.fire(number, "file_application", as_user="specialist-b01", data={"materials_complete": False})
    assert demo.show(number)["state"] == "collecting_materials"
    assert demo.show(number)["version"] == 3


def test_replaying_the_audit_trail_reproduces_the_stored_appeal(demo: Workflow) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.comment(number, "已电话联系企业", as_user="specialist-b01")
    demo.assign(number, "specialist-b01", as_user="staff-b01")
    demo.escalate(number, as_user="specialist-b01", reason="场地涉及市政道路，超出楼宇权限")
    record, snapshot = demo.record(number), demo.replayed(number)
    assert (snapshot.state, snapshot.level, snapshot.unit_id, snapshot.assignee_id, snapshot.version) == (
        record.state, record.level, record.unit_id, record.assignee_id, record.version
    )
    assert snapshot.data == dict(record.data)
    assert record.level == "community"
    assert demo.show(number)["assignee"] == "community-c01"


def test_the_audit_trail_refuses_updates_and_deletes(demo: Workflow) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    submit_event(demo)
    for statement in ("UPDATE appeal_events SET comment = 'forged'", "DELETE FROM appeal_events"):
        with demo.engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))
