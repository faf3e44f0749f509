"""Who may do what, on SQLite and PostgreSQL: the chain's rules (only the holding level assigns, someone can act
at every level an appeal reaches, a department officer's powers follow the department), who sees what, and the
one list of everything a user may do on an appeal now."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import OUTDOOR_EVENT
from workflow.definitions import load_definitions, shipped_definition_files
from workflow.domain.org import Level
from workflow.errors import InvalidInput, OutsideJurisdiction, RoleNotAllowed
from workflow.services.workflow import Workflow

GENERAL_APPEAL = {
    "category": "tax",
    "subject": "发票领用额度不足",
    "description": "本月业务量增长，申请提高增值税发票领用额度。",
    "urgency": "normal",
    "contact_phone": "0731-8888 7777",
}
# The lead of each level over enterprise 1 (building B01, community C01, sub-district S01).
LEAD_OVER_B01 = {
    Level.BUILDING: "staff-b01",
    Level.COMMUNITY: "community-c01",
    Level.SUBDISTRICT: "subdistrict-s01",
    Level.DISTRICT: "district-01",
}
STAFF = [
    "staff-b01", "specialist-b01", "staff-b02", "community-c01", "community-c02", "subdistrict-s01",
    "subdistrict-s02", "district-01", "bureau-approval-01", "bureau-approval-02", "bureau-finance-01", "bureau-tax-01",
]  # fmt: skip


def general_appeal(wf: Workflow) -> str:
    return str(wf.submit("general_appeal", enterprise_id=1, as_user="contact-0001", data=GENERAL_APPEAL)["number"])


def outdoor_event(wf: Workflow) -> str:
    return str(wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"])


def climb_to(wf: Workflow, number: str, level: Level) -> None:
    """Escalate, each level's lead in turn, until the appeal sits at `level`."""
    current = Level(wf.show(number)["level"])
    while current != level:
        wf.escalate(number, as_user=LEAD_OVER_B01[current], reason=f"{current} 权限不足")
        current = Level(wf.show(number)["level"])


def names(actions: list[dict[str, Any]], kind: str | None = None) -> list[str]:
    return [a["action"] for a in actions if kind is None or a["kind"] == kind]


# --- a lower level takes over an appeal a higher level holds -------------------------------------------------


def test_a_lower_level_cannot_take_over_an_appeal_the_subdistrict_holds(demo: Workflow) -> None:
    number = general_appeal(demo)
    climb_to(demo, number, Level.SUBDISTRICT)
    before = demo.show(number)
    with pytest.raises(RoleNotAllowed, match=r"user 'staff-b01' has role 'building_staff', but 'assign' is allowed"):
        demo.assign(number, "staff-b01", as_user="staff-b01")
    after = demo.show(number)
    assert (after["assignee"], after["level"], after["version"]) == (
        "subdistrict-s01",
        "subdistrict",
        before["version"],
    )
    assert "assign" not in names(demo.actions(number, as_user="staff-b01"))


def test_the_holding_level_assigns_only_to_people_of_the_holding_level(demo: Workflow) -> None:
    number = general_appeal(demo)
    climb_to(demo, number, Level.COMMUNITY)
    with pytest.raises(InvalidInput) as refused:
        demo.assign(number, "staff-b01", as_user="community-c01")
    assert str(refused.value) == (
        f"cannot assign appeal {number} to 'staff-b01': only people of the community level holding it "
        "(the unit C01) may be given it"
    )
    # A level above may assign it too, but still only to the holding level's people.
    with pytest.raises(InvalidInput, match="only people of the community level holding it"):
        demo.assign(number, "subdistrict-s01", as_user="district-01")
    done = demo.assign(number, "community-c01", as_user="subdistrict-s01", comment="社区继续办理")
    assert (done.assignee_id is not None, demo.show(number)["assignee"]) == (True, "community-c01")


# --- someone can act in every state at every level it can reach --------------------------------------------


@pytest.mark.parametrize("level", [Level.COMMUNITY, Level.SUBDISTRICT, Level.DISTRICT])
def test_an_appeal_escalated_while_submitted_can_be_worked_by_the_level_it_reaches(
    demo: Workflow, level: Level
) -> None:
    number = general_appeal(demo)
    climb_to(demo, number, level)
    lead = LEAD_OVER_B01[level]
    assert "start_triage" in names(demo.actions(number, as_user=lead), "transition")
    demo.fire(number, "start_triage", as_user=lead)
    triaged = demo.show(number)
    # The work stays with the level that holds the appeal, not back with the building.
    assert (triaged["state"], triaged["level"], triaged["assignee"]) == ("triage", level.value, lead)
    demo.fire(number, "start_handling", as_user=lead)
    demo.fire(number, "answer", as_user=lead, data={"answer": "已协调税务部门提高额度"})
    assert demo.show(number)["state"] == "answered"


def test_every_shipped_type_escalated_at_once_leaves_the_new_level_something_to_fire(demo: Workflow) -> None:
    problems = []
    for definition in load_definitions(shipped_definition_files()):
        data = {"outdoor_event_permit": OUTDOOR_EVENT, "general_appeal": GENERAL_APPEAL}.get(definition.name)
        if data is None:
            continue  # the other types' forms are walked by the validator check below
        number = str(demo.submit(definition.name, enterprise_id=1, as_user="contact-0001", data=data)["number"])
        for level in (Level.COMMUNITY, Level.SUBDISTRICT, Level.DISTRICT):
            climb_to(demo, number, level)
            if not names(demo.actions(number, as_user=LEAD_OVER_B01[level]), "transition"):
                problems.append(f"{definition.name} at {level}: {LEAD_OVER_B01[level]} can fire nothing")
    assert not problems, problems


# --- a department officer's powers follow the department ---------------------------------------------------


def to_bureau_review(wf: Workflow) -> str:
    number = outdoor_event(wf)
    wf.fire(number, "start_pre_check", as_user="staff-b01")
    wf.fire(number, "pass_pre_check", as_user="staff-b01")
    wf.fire(number, "file_application", as_user="specialist-b01", data={"materials_complete": True})
    return number


def test_a_department_officer_is_not_offered_escalation_to_the_community(demo: Workflow) -> None:
    number = to_bureau_review(demo)
    shown = demo.show(number)
    assert (shown["state"], shown["level"], shown["assignee"]) == ("bureau_review", "building", "bureau-approval-01")
    actions = demo.actions(number, as_user="bureau-approval-01")
    assert "escalate" not in names(actions) and "send_down" not in names(actions)
    assert {"schedule_inspection", "reject"} <= set(names(actions, "transition"))
    with pytest.raises(RoleNotAllowed, match="'escalate' is allowed only to"):
        demo.escalate(number, as_user="bureau-approval-01", reason="超出本局权限")
    assert demo.show(number)["level"] == "building"


def test_a_department_officer_hands_a_department_step_only_to_a_colleague_of_the_department(demo: Workflow) -> None:
    number = to_bureau_review(demo)
    (assign,) = [a for a in demo.actions(number, as_user="bureau-approval-01") if a["action"] == "assign"]
    assert [t["username"] for t in assign["targets"]] == ["bureau-approval-02"]
    with pytest.raises(InvalidInput, match="cannot assign appeal"):
        demo.assign(number, "bureau-finance-01", as_user="bureau-approval-01")
    demo.assign(number, "bureau-approval-02", as_user="bureau-approval-01")
    assert demo.show(number)["assignee"] == "bureau-approval-02"


# --- who sees what ---------------------------------------------------------------------------------------


def visible_numbers(wf: Workflow, user: str) -> set[str]:
    items, total = wf.list_appeals(as_user=user, limit=1000)
    assert total == len(items)
    return {a["number"] for a in items}


def test_a_department_officer_sees_what_the_department_holds_held_or_was_routed_and_not_the_district(
    demo: Workflow,
) -> None:
    untouched = outdoor_event(demo)
    routed = to_bureau_review(demo)
    for user in ("bureau-approval-01", "bureau-approval-02", "bureau-finance-01"):
        with pytest.raises(OutsideJurisdiction):
            demo.show(untouched, as_user=user)
    assert visible_numbers(demo, "bureau-approval-02") == {routed}  # routed to the department, held by a colleague
    assert visible_numbers(demo, "bureau-finance-01") == set()
    demo.fire(
        routed, "schedule_inspection", as_user="bureau-approval-01", data={"inspection_time": "2026-11-27T10:00+08:00"}
    )
    demo.fire(routed, "approve", as_user="bureau-approval-01", data={"inspection_findings": "场地安全"})
    assert demo.show(routed)["assignee"] == "specialist-b01"
    assert visible_numbers(demo, "bureau-approval-02") == {routed}  # held before: still theirs to look up
    assert visible_numbers(demo, "district-01") == {untouched, routed}  # the district supervisor keeps the district


def test_a_department_officer_sees_an_appeal_assigned_to_a_colleague_at_the_district_level(demo: Workflow) -> None:
    number = general_appeal(demo)
    climb_to(demo, number, Level.DISTRICT)
    assert visible_numbers(demo, "bureau-tax-01") == set()
    demo.assign(number, "bureau-tax-01", as_user="district-01", comment="请税务局办理")
    assert visible_numbers(demo, "bureau-tax-01") == {number}
    demo.assign(number, "district-01", as_user="district-01")
    assert visible_numbers(demo, "bureau-tax-01") == {number}
    assert visible_numbers(demo, "bureau-approval-01") == set()


def test_the_lists_show_exactly_the_appeals_the_domain_rule_lets_each_user_open(demo: Workflow) -> None:
    """The list query is the SQL form of the domain's rule: compared, user by user, appeal by appeal."""
    numbers = [outdoor_event(demo), to_bureau_review(demo), general_appeal(demo), general_appeal(demo)]
    climb_to(demo, numbers[3], Level.DISTRICT)
    demo.assign(numbers[3], "bureau-finance-01", as_user="district-01")
    numbers.append(str(demo.submit("outdoor_event_permit", enterprise_id=31, as_user="contact-0031",
                                   data=OUTDOOR_EVENT)["number"]))  # fmt: skip
    for user in [*STAFF, "contact-0001", "contact-0031"]:
        opened = set()
        for number in numbers:
            try:
                demo.show(number, as_user=user)
            except OutsideJurisdiction:
                continue
            opened.add(number)
        assert visible_numbers(demo, user) == opened, user


# --- the one list of what a user may do ----------------------------------------------------------------------


def test_the_actions_list_names_transitions_and_chain_moves_with_what_each_requires(demo: Workflow) -> None:
    number = general_appeal(demo)
    climb_to(demo, number, Level.COMMUNITY)
    actions = {a["action"]: a for a in demo.actions(number, as_user="community-c01", locale="en")}
    assert set(actions) == {"start_triage", "escalate", "send_down", "comment"}
    escalate = actions["escalate"]
    assert (escalate["kind"], escalate["level"], escalate["comment_required"]) == ("chain", "subdistrict", True)
    assert actions["send_down"]["level"] == "building"
    assert (actions["start_triage"]["kind"], actions["start_triage"]["dest"]) == ("transition", "triage")
    assert actions["comment"]["required_fields"] == ["text"]
    staff = {a["action"]: a for a in demo.actions(number, as_user="staff-b01")}
    assert set(staff) == {"comment"}  # the building sees the appeal, but the community holds it now
    assert set(names(demo.actions(number, as_user="contact-0001"))) == {"withdraw", "comment"}


def test_assign_lists_its_targets_as_a_required_choice(demo: Workflow) -> None:
    number = general_appeal(demo)
    (assign,) = [a for a in demo.actions(number, as_user="staff-b01") if a["action"] == "assign"]
    assert [t["username"] for t in assign["targets"]] == ["specialist-b01"]
    assert assign["required_fields"] == ["username"]
    assert assign["fields"][0]["choices"] == ["specialist-b01"]


# --- resolution rates ------------------------------------------------------------------------------------------


def test_withdrawn_appeals_are_counted_on_their_own_and_left_out_of_the_resolution_rate(demo: Workflow) -> None:
    kept, withdrawn = general_appeal(demo), general_appeal(demo)
    demo.fire(withdrawn, "withdraw", as_user="contact-0001")
    rates = demo.sla_report()["rates"]
    assert (rates["submitted"], rates["withdrawn"], rates["decided"], rates["resolution_rate"]) == (2, 1, 0, 0.0)
    demo.fire(kept, "start_triage", as_user="staff-b01")
    demo.fire(kept, "start_handling", as_user="staff-b01")
    demo.fire(kept, "answer", as_user="staff-b01", data={"answer": "已协调"})
    demo.fire(kept, "confirm", as_user="contact-0001", data={"satisfaction": "satisfied"})
    rates = demo.sla_report()["rates"]
    assert (rates["submitted"], rates["withdrawn"], rates["decided"], rates["resolution_rate"]) == (2, 1, 1, 1.0)
    assert rates["resolved_within_limit_rate"] == 1.0
