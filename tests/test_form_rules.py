"""Form checks beyond one field: rules between fields (an end not before a start, a start not in the past),
mainland phone numbers and the unified social credit code (统一社会信用代码)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.conftest import OUTDOOR_EVENT, START
from tests.test_pages import browser, csrf_in
from workflow.clock import FrozenClock
from workflow.definitions import load_definition_text
from workflow.domain.credit_code import check_character, credit_code_problem, is_credit_code
from workflow.domain.forms import clean_form, is_mainland_phone
from workflow.domain.spec import FieldSpec, FieldType
from workflow.errors import DefinitionError, FormInvalid
from workflow.services.walkthrough import sample_value
from workflow.services.workflow import Workflow

# Codes printed on real business licences (each checked by hand against GB 32100-2015's worked method).
REAL_CODES = [
    "91350100M000100Y43",
    "914403001922038216",
    "9144030071526726XG",
    "91330100716105852F",
    "91110108717743469K",
]


# --- the unified social credit code ---------------------------------------------------------------------


@pytest.mark.parametrize("code", REAL_CODES)
def test_real_credit_codes_pass_their_check_character(code: str) -> None:
    assert credit_code_problem(code) is None
    assert check_character(code[:17]) == code[17]


@pytest.mark.parametrize("code", REAL_CODES)
def test_every_other_check_character_is_refused_and_the_right_one_named(code: str) -> None:
    for wrong in "0123456789ABCDEFGHJKLMNPQRTUWXY".replace(code[17], ""):
        problem = credit_code_problem(code[:17] + wrong)
        assert problem == f"has check character {wrong!r} where {code[17]!r} belongs: a character is mistyped"


def test_a_credit_code_of_the_wrong_length_or_with_letters_outside_the_code_set_is_refused() -> None:
    assert credit_code_problem("91350100M000100Y4") == "has 17 characters; a unified social credit code has 18"
    assert credit_code_problem("91350100M000100Y431") == "has 19 characters; a unified social credit code has 18"
    # I, O, S, V and Z are not in the standard's set (they read like 1, 0, 5, U and 2).
    assert credit_code_problem("91350100MO00100Y43") == (
        "contains 'O'; a unified social credit code uses only 0-9 and the capitals A-H J-N P Q R T U W X Y"
    )
    assert not is_credit_code("9135010OM000100Y4I")


def test_a_uscc_field_takes_a_real_code_in_any_case_and_refuses_a_mistyped_one() -> None:
    field = FieldSpec("credit_code", FieldType.USCC, {"zh-CN": "统一社会信用代码", "en": "Credit code"})
    cleaned, problems = clean_form([field], {"credit_code": " 9144030071526726xg "})
    assert (cleaned, problems) == ({"credit_code": "9144030071526726XG"}, [])
    _, problems = clean_form([field], {"credit_code": "9144030071526726XH"})
    assert [str(p) for p in problems] == [
        "credit_code: is not a unified social credit code: '9144030071526726XH' has check character 'H' "
        "where 'G' belongs: a character is mistyped"
    ]


# --- phone numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "13812345678",
        "138 1234 5678",
        "138-1234-5678",
        "+8613812345678",
        "19912345678",
        "0731-88886666",
        "0731-8888 6666",
        "073188886666",
        "010-62345678",
        "0755 2345678",
        "(0731)88886666",
        "0731-88886666-123",
        "0731-88886666转8001",
        "0731-88886666 ext 12",
    ],
)
def test_mainland_mobiles_and_landlines_with_area_code_are_phone_numbers(number: str) -> None:
    assert is_mainland_phone(number)


@pytest.mark.parametrize(
    "number",
    [
        "call me",
        "12812345678",
        "1381234567",
        "138123456789",
        "88886666",
        "0731-0888666",
        "731-88886666",
        "0731-888866661",
        "+1 415 555 0100",
        "110",
    ],
)
def test_other_numbers_are_not_mainland_phone_numbers(number: str) -> None:
    assert not is_mainland_phone(number)


def test_a_phone_field_names_the_formats_it_takes() -> None:
    field = FieldSpec("contact_phone", FieldType.PHONE, {"zh-CN": "电话", "en": "Phone"})
    _, problems = clean_form([field], {"contact_phone": "12345"})
    assert [p.message for p in problems] == [
        "is not a mainland phone number: '12345'; give a mobile like 13812345678 or a landline with its area code "
        "like 0731-88886666 (extension -123)"
    ]


# --- rules in definitions: the loader ------------------------------------------------------------------

SAMPLE = """\
name: sample
version: 1
prefix: SA
title: {zh-CN: 样例, en: Sample}
fields:
  - {name: first_day, type: date, title: {zh-CN: 开始, en: First day}}
  - {name: last_day, type: date, title: {zh-CN: 结束, en: Last day}}
  - {name: people, type: integer, title: {zh-CN: 人数, en: People}}
  - {name: note, type: string, title: {zh-CN: 备注, en: Note}}
rules:
RULES
states:
  open:
    title: {zh-CN: 办理中, en: Open}
    role: specialist
  closed:
    title: {zh-CN: 已办结, en: Closed}
    terminal: true
transitions:
  - {trigger: close, from: open, to: closed, roles: [specialist, chain], title: {zh-CN: 办结, en: Close}}
"""
MESSAGE = "message: {zh-CN: 不对, en: Wrong}"


def problems_of(rules: str) -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        load_definition_text(SAMPLE.replace("RULES", rules), "sample.yaml")
    return [str(p) for p in raised.value.problems]


def test_rules_load_into_the_definition() -> None:
    source = SAMPLE.replace(
        "RULES",
        f'  - {{field: last_day, op: ">=", other: first_day, {MESSAGE}}}\n'
        f"  - {{field: first_day, op: not_in_past, {MESSAGE}}}",
    )
    definition = load_definition_text(source, "sample.yaml")
    assert [(r.field, r.op.value, r.other, dict(r.message)) for r in definition.rules] == [
        ("last_day", ">=", "first_day", {"zh-CN": "不对", "en": "Wrong"}),
        ("first_day", "not_in_past", None, {"zh-CN": "不对", "en": "Wrong"}),
    ]


def test_every_mistake_in_a_rule_is_reported_with_its_line() -> None:
    rules = "\n".join(
        [
            f'  - {{field: last_day, op: ">=", {MESSAGE}}}',  # line 11: a comparison without 'other'
            f'  - {{field: last_dy, op: ">=", other: first_day, {MESSAGE}}}',  # 12: no such field
            f"  - {{field: last_day, op: after, other: first_day, {MESSAGE}}}",  # 13: unknown op
            f'  - {{field: people, op: "<", other: first_day, {MESSAGE}}}',  # 14: a number with a date
            f"  - {{field: people, op: not_in_past, {MESSAGE}}}",  # 15: not a date
            f"  - {{field: first_day, op: not_in_past, other: last_day, {MESSAGE}}}",  # 16: other does not apply
            '  - {field: last_day, op: ">=", other: first_day, message: {zh-CN: 不对}}',  # 17: English missing
            '  - {field: last_day, op: ">=", other: first_day, colour: red}',  # 18: unknown key, no message
        ]
    )
    ops = "<, <=, >, >=, ==, !=, not_in_past, not_in_future"
    assert problems_of(rules) == [
        "sample.yaml:11: rule on 'last_day': op '>=' compares two fields; name the second in 'other'",
        "sample.yaml:12: rule on 'last_dy': no form field 'last_dy'; form fields: first_day, last_day, people, note",
        f"sample.yaml:13: rule on 'last_day': unknown op 'after'; allowed: {ops}",
        "sample.yaml:14: rule on 'people': cannot compare 'people' (integer) with 'first_day' (date); "
        "compare two dates, two datetimes or two numbers",
        "sample.yaml:15: rule on 'people': not_in_past applies to date and datetime fields, not integer",
        "sample.yaml:16: rule on 'first_day': op 'not_in_past' reads one field; 'other' does not apply",
        "sample.yaml:17: rule on 'last_day' message needs a title in every locale; missing: en",
        "sample.yaml:18: rule: unknown key 'colour'; allowed: field, message, op, other",
        "sample.yaml:18: rule: missing required key 'message'",
    ]


# --- rules at work: the outdoor event permit ------------------------------------------------------------


def submit_event(wf: Workflow, **changes: str) -> dict[str, object]:
    return wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data={**OUTDOOR_EVENT, **changes})


def test_the_permit_refuses_a_last_day_before_the_first(demo: Workflow) -> None:
    with pytest.raises(FormInvalid) as refused:
        submit_event(demo, start_date="2026-12-10", end_date="2026-12-09")
    assert refused.value.details() == [
        {
            "field": "end_date",
            "message": "The last day cannot be before the first day "
            "(end_date 2026-12-09 must be >= start_date 2026-12-10)",
        }
    ]
    assert refused.value.problems[0].words == {
        "zh-CN": "结束日期不能早于开始日期",
        "en": "The last day cannot be before the first day",
    }
    assert demo.list_appeals()[1] == 0
    assert submit_event(demo, start_date="2026-12-10", end_date="2026-12-10")["state"] == "submitted"  # one day


def test_the_permit_refuses_a_first_day_in_the_past_in_shanghai_and_takes_today(
    demo: Workflow, clock: FrozenClock
) -> None:
    # 2026-11-30 23:30 in Shanghai is still 15:30 UTC on the 30th; at 00:30 in Shanghai it is the 1st there.
    clock.set(clock.now().replace(year=2026, month=11, day=30, hour=15, minute=30))
    assert submit_event(demo, start_date="2026-11-30", end_date="2026-12-02")["state"] == "submitted"
    clock.advance(timedelta(hours=1))
    with pytest.raises(FormInvalid) as refused:
        submit_event(demo, start_date="2026-11-30", end_date="2026-12-02")
    assert str(refused.value) == (
        "the outdoor_event_permit form has 1 bad field(s): start_date: The first day cannot be in the past "
        "(start_date 2026-11-30 must not be in the past (today is 2026-12-01))"
    )
    assert submit_event(demo, start_date="2026-12-01", end_date="2026-12-02")["state"] == "submitted"


def test_every_problem_of_the_form_is_named_at_once_fields_and_rules_together(demo: Workflow) -> None:
    with pytest.raises(FormInvalid) as refused:
        submit_event(demo, start_date="2026-01-05", end_date="2026-01-04", contact_phone="12345")
    assert [p.field for p in refused.value.problems] == ["contact_phone", "end_date", "start_date"]


def test_the_portal_shows_a_rule_in_the_page_language_and_keeps_what_was_typed(
    demo: Workflow, clock: FrozenClock
) -> None:
    client = browser(demo, clock, "contact-0001")
    token = csrf_in(client.get("/portal/new/outdoor_event_permit").text)
    typed = {**OUTDOOR_EVENT, "start_date": "2026-12-10", "end_date": "2026-12-09", "csrf": token}
    for lang, words in (("zh-CN", "结束日期不能早于开始日期"), ("en", "The last day cannot be before the first day")):
        answer = client.post(f"/portal/new/outdoor_event_permit?lang={lang}", data=typed)
        assert answer.status_code == 422
        problems = dict(re.findall(r'<p class="problem" id="([a-z_]+)-problem">([^<]*)</p>', answer.text))
        assert problems == {"end_date": words}
        for name in ("start_date", "end_date", "venue", "contact_phone"):
            assert f'value="{typed[name]}"' in answer.text, name
    assert demo.list_appeals()[1] == 0


def test_definitions_show_and_the_api_list_the_rules_in_the_readers_language(demo: Workflow) -> None:
    (permit,) = [d for d in demo.definitions(locale="en") if d["name"] == "outdoor_event_permit"]
    assert permit["rules"] == [
        {
            "field": "end_date",
            "op": ">=",
            "other": "start_date",
            "message": "The last day cannot be before the first day",
        },
        {"field": "start_date", "op": "not_in_past", "other": None, "message": "The first day cannot be in the past"},
    ]
    assert demo.definition("outdoor_event_permit", "zh-CN")["rules"][0]["message"] == "结束日期不能早于开始日期"


def test_sample_data_for_a_uscc_field_is_a_valid_code() -> None:
    field = FieldSpec("code", FieldType.USCC, {"zh-CN": "代码", "en": "Code"})
    assert is_credit_code(sample_value(field, START))
