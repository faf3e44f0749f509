"""The YAML loader: the shipped definitions load, and every kind of mistake is reported with its file and line."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from workflow.definitions import (
    FIELD_KEYS,
    MATERIAL_KEYS,
    RESERVED_TRIGGERS,
    STATE_KEYS,
    TOP_KEYS,
    TRANSITION_KEYS,
    load_definition_text,
    load_definitions,
    shipped_definition_files,
)
from workflow.domain.guards import GUARDS
from workflow.domain.org import CHAIN, DEFINITION_ROLES
from workflow.domain.spec import ClockMode
from workflow.errors import DefinitionError, Problem
from workflow.services.views import field_view

# A small valid definition; each test below breaks it in one place (or several) and reads the report.
SAMPLE = """\
name: sample
version: 1
prefix: SA
title: {zh-CN: 样例, en: Sample}
time_limit: 3d
reminders: [50, 80]
fields:
  - name: kind
    type: choice
    required: true
    choices: [rent, talent]
    title: {zh-CN: 类型, en: Kind}
  - name: amount_yuan
    type: number
    min: 0
    title: {zh-CN: 金额（元）, en: Amount (yuan)}
materials:
  - {name: licence, title: {zh-CN: 营业执照, en: Business licence}}
states:
  submitted:
    initial: true
    title: {zh-CN: 已提交, en: Submitted}
    role: specialist
    limit: 1d
  waiting:
    title: {zh-CN: 待补充材料, en: Waiting for materials}
    role: enterprise_contact
    clock: paused
  closed:
    title: {zh-CN: 已办结, en: Closed}
    terminal: true
transitions:
  - trigger: request_materials
    from: submitted
    to: waiting
    roles: [specialist]
    title: {zh-CN: 退回补充材料, en: Return for materials}
  - trigger: provide_materials
    from: waiting
    to: submitted
    roles: [enterprise_contact]
    title: {zh-CN: 已补充材料, en: Materials provided}
  - trigger: close
    from: submitted
    to: closed
    roles: [specialist, chain]
    guards: [amount_within_policy_cap]
    fields:
      - name: note
        type: text
        title: {zh-CN: 备注, en: Note}
    title: {zh-CN: 办结, en: Close}
"""


def listed(names: Iterable[str]) -> str:
    """A list as the loader writes it in a message: sorted, comma-separated."""
    return ", ".join(sorted(names))


# Messages quote these lists; built from the loader's own tables so that adding a guard or a key
# does not break the tests, while the wording around them is still checked word for word.
ROLES = listed(DEFINITION_ROLES)
KNOWN_GUARDS = listed(GUARDS)
SHIPPED = {"outdoor_event_permit", "policy_fulfilment", "financing_support", "party_branch_formation", "general_appeal"}


def edit(source: str, old: str, new: str) -> str:
    """Replace the one occurrence of `old`, so that a test cannot silently edit nothing."""
    assert source.count(old) == 1, f"{old!r} occurs {source.count(old)} times"
    return source.replace(old, new)


def line_of(source: str, fragment: str, *, after: str | None = None) -> int:
    """1-based line of the first line holding `fragment` (below the line holding `after`, if given)."""
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) + 1 if after is not None else 0
    return next(i for i, line in enumerate(lines) if i >= start and fragment in line) + 1


def with_state(source: str, name: str) -> str:
    """The source with one more state, worked by the specialist on a one-day limit, listed before 'closed'."""
    state = f"  {name}:\n    title: {{zh-CN: 新状态, en: New state}}\n    role: specialist\n    limit: 1d\n"
    return edit(source, "  closed:\n", state + "  closed:\n")


def with_transition(source: str, trigger: str, from_: str, to: str, roles: str = "[specialist]") -> str:
    """The source with one more transition, appended after the others."""
    lines = [f"trigger: {trigger}", f"from: {from_}", f"to: {to}", f"roles: {roles}", "title: {zh-CN: 新, en: New}"]
    return source + "  - " + "\n    ".join(lines) + "\n"


def write(directory: Path, source: str, stem: str = "sample") -> str:
    path = directory / f"{stem}.yaml"
    path.write_text(source, encoding="utf-8")
    return str(path)


def problems_of(*paths: str) -> list[Problem]:
    """The problems the loader reports for these files; none if they load."""
    try:
        load_definitions(paths)
    except DefinitionError as error:
        return error.problems
    return []


def report(tmp_path: Path, source: str) -> tuple[str, list[str]]:
    path = write(tmp_path, source)
    return path, [str(p) for p in problems_of(path)]


# The shipped definitions


def test_every_shipped_definition_loads_and_is_named_after_its_file() -> None:
    files = shipped_definition_files()
    definitions = load_definitions(files)
    assert [d.name for d in definitions] == [f.stem for f in files]
    assert {d.name for d in definitions} >= SHIPPED


def test_shipped_definitions_have_distinct_prefixes() -> None:
    prefixes = [d.prefix for d in load_definitions(shipped_definition_files())]
    assert len(prefixes) == len(set(prefixes)), sorted(prefixes)


def test_shipped_definitions_limit_every_state_where_the_clock_runs() -> None:
    unlimited = [
        f"{d.name}.{s.name}"
        for d in load_definitions(shipped_definition_files())
        for s in d.states.values()
        if s.clock is ClockMode.RUNNING and s.limit is None
    ]
    assert unlimited == []


def test_shipped_definitions_set_an_overall_limit_and_remind_at_half_and_four_fifths() -> None:
    for definition in load_definitions(shipped_definition_files()):
        assert definition.time_limit is not None, definition.name
        assert definition.reminders == (50, 80), definition.name


def test_party_branch_formation_branches_on_the_number_of_party_members() -> None:
    (definition,) = load_definitions(f for f in shipped_definition_files() if f.stem == "party_branch_formation")
    own = definition.transition("committee_check", "found_own_branch")
    joint = definition.transition("committee_check", "join_joint_branch")
    assert own is not None and joint is not None
    assert own.guards == ("three_or_more_party_members",)
    assert joint.guards == ("fewer_than_three_party_members",)
    assert own.dest != joint.dest
    for members, passing in ((1, joint), (2, joint), (3, own), (12, own)):
        passed = [t.trigger for t in (own, joint) if all(GUARDS[g].check({"party_members": members}) for g in t.guards)]
        assert passed == [passing.trigger], members


def test_policy_claims_above_the_cap_go_to_the_district_instead_of_being_filed() -> None:
    (definition,) = load_definitions(f for f in shipped_definition_files() if f.stem == "policy_fulfilment")
    filing = definition.transition("collecting_documents", "file_claim")
    referral = definition.transition("collecting_documents", "refer_to_district")
    assert filing is not None and "amount_within_policy_cap" in filing.guards
    assert referral is not None and "amount_within_policy_cap" not in referral.guards
    assert definition.states[referral.dest].role == "district_supervisor"


def test_general_appeals_are_handled_by_the_chain_and_escalation_is_left_to_the_engine() -> None:
    (definition,) = load_definitions(f for f in shipped_definition_files() if f.stem == "general_appeal")
    assert definition.states["handling"].role == CHAIN
    assert all(t.trigger != "escalate" for t in definition.transitions)


# The sample and the ways to break it


def test_the_sample_used_below_loads_cleanly(tmp_path: Path) -> None:
    (definition,) = load_definitions([write(tmp_path, SAMPLE)])
    assert (definition.name, definition.initial, definition.reminders) == ("sample", "submitted", (50, 80))


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    limit: 1d\n", "    limit: 1d: 2d\n")
    path, problems = report(tmp_path, source)
    assert problems == [f"{path}:{line_of(source, 'limit: 1d: 2d')}: YAML syntax: mapping values are not allowed here"]


def test_an_unclosed_bracket_is_reported_where_the_parser_notices_it(tmp_path: Path) -> None:
    source = edit(SAMPLE, "choices: [rent, talent]", "choices: [rent, talent")
    path, problems = report(tmp_path, source)
    # The reader only knows the list is unclosed when it meets the next key, one line down.
    assert problems == [f"{path}:{line_of(source, 'choices:') + 1}: YAML syntax: expected ',' or ']', but got ':'"]


@pytest.mark.parametrize(
    ("old", "new", "fragment", "message"),
    [
        pytest.param(
            "prefix: SA\n",
            "prefix: SA\nowner: building_committee\n",
            "owner:",
            f"definition: unknown key 'owner'; allowed: {listed(TOP_KEYS)}",
            id="top",
        ),
        pytest.param(
            "    choices: [rent, talent]\n",
            "    choices: [rent, talent]\n    default: rent\n",
            "default:",
            f"form field: unknown key 'default'; allowed: {listed(FIELD_KEYS)}",
            id="field",
        ),
        pytest.param(
            "    limit: 1d\n",
            "    limit: 1d\n    deadline: 2d\n",
            "deadline:",
            f"state 'submitted': unknown key 'deadline'; allowed: {listed(STATE_KEYS)}",
            id="state",
        ),
        pytest.param(
            "    guards: [amount_within_policy_cap]",
            "    guard: [amount_within_policy_cap]",
            "guard:",
            f"transition: unknown key 'guard'; allowed: {listed(TRANSITION_KEYS)}",
            id="transition",
        ),
        pytest.param(
            "        type: text\n",
            "        type: text\n        hint: optional\n",
            "hint:",
            f"transition 'close' field: unknown key 'hint'; allowed: {listed(FIELD_KEYS)}",
            id="transition-field",
        ),
        pytest.param(
            "en: Business licence}}",
            "en: Business licence}, copies: 2}",
            "copies:",
            f"material: unknown key 'copies'; allowed: {listed(MATERIAL_KEYS)}",
            id="material",
        ),
    ],
)
def test_an_unknown_key_is_reported_with_its_line_at_every_level(
    tmp_path: Path, old: str, new: str, fragment: str, message: str
) -> None:
    source = edit(SAMPLE, old, new)
    path, problems = report(tmp_path, source)
    assert problems == [f"{path}:{line_of(source, fragment)}: {message}"]


def test_unknown_state_in_from_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    from: waiting\n", "    from: [waiting, draft]\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'draft')}: transition 'provide_materials': unknown state 'draft' in 'from'; "
        "states: submitted, waiting, closed"
    ]


def test_unknown_state_in_to_is_reported_with_its_line(tmp_path: Path) -> None:
    source = with_transition(SAMPLE, "archive", "submitted", "archived")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'to: archived')}: transition 'archive': unknown state 'archived' in 'to'; "
        "states: submitted, waiting, closed"
    ]


def test_unknown_role_of_a_state_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    role: enterprise_contact\n", "    role: enterprise\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'role: enterprise')}: state 'waiting': unknown role 'enterprise'; allowed: {ROLES}"
    ]


def test_unknown_role_of_a_transition_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    roles: [enterprise_contact]\n", "    roles: [enterprise_contact, janitor]\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'janitor')}: transition 'provide_materials': unknown role 'janitor'; allowed: {ROLES}"
    ]


def test_unknown_guard_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "guards: [amount_within_policy_cap]", "guards: [amount_within_policy_cap, paid_up]")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'paid_up')}: transition 'close': unknown guard 'paid_up'; "
        f"known guards: {KNOWN_GUARDS}"
    ]


def test_a_reserved_trigger_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "  - trigger: close\n", "  - trigger: escalate\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'trigger: escalate')}: transition 'escalate': the engine owns this trigger; "
        f"reserved: {listed(RESERVED_TRIGGERS)}"
    ]


def test_unreachable_state_is_reported_at_its_name(tmp_path: Path) -> None:
    source = with_transition(with_state(SAMPLE, "orphan"), "leave", "orphan", "closed")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'orphan:')}: state 'orphan' is unreachable from the initial state 'submitted'"
    ]


def test_non_terminal_dead_end_is_reported_at_its_name(tmp_path: Path) -> None:
    source = with_transition(with_state(SAMPLE, "on_hold"), "hold", "submitted", "on_hold")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'on_hold:')}: state 'on_hold' is a dead end: it is not terminal and no transition "
        "leaves it"
    ]


def test_a_terminal_state_with_an_exit_is_reported_at_the_source(tmp_path: Path) -> None:
    source = with_transition(SAMPLE, "reopen", "closed", "submitted", roles="[enterprise_contact]")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'from: closed')}: transition 'reopen': leaves terminal state 'closed'; "
        "a terminal state has no exits"
    ]


def test_two_transitions_with_one_trigger_from_one_state_are_reported_with_both_lines(tmp_path: Path) -> None:
    source = with_transition(SAMPLE, "close", "[waiting, submitted]", "closed")
    path, problems = report(tmp_path, source)
    first = line_of(source, "from: submitted", after="trigger: close")
    assert problems == [
        f"{path}:{line_of(source, 'from: [waiting, submitted]')}: transition 'close': state 'submitted' already has "
        f"a transition 'close' (line {first})"
    ]


@pytest.mark.parametrize(
    ("old", "key", "what"),
    [
        pytest.param("    limit: 1d\n", "    limit: ", "state 'submitted' limit", id="state-limit"),
        pytest.param("time_limit: 3d\n", "time_limit: ", "time_limit", id="time-limit"),
    ],
)
@pytest.mark.parametrize(
    ("duration", "why"),
    [
        pytest.param("3x", "write working time as days, hours and minutes, e.g. 2d, 4h, 1d4h30m", id="3x"),
        pytest.param("0d", "a time limit must be longer than zero", id="0d"),
    ],
)
def test_a_bad_duration_is_reported_with_its_line(
    tmp_path: Path, old: str, key: str, what: str, duration: str, why: str
) -> None:
    source = edit(SAMPLE, old, f"{key}{duration}\n")
    path, problems = report(tmp_path, source)
    assert problems == [f"{path}:{line_of(source, f'{key}{duration}')}: {what}: bad duration {duration!r}: {why}"]


@pytest.mark.parametrize("threshold", [100, 120])
def test_a_reminder_threshold_of_100_or_more_is_reported_at_its_item(tmp_path: Path, threshold: int) -> None:
    source = edit(SAMPLE, "reminders: [50, 80]\n", f"reminders:\n  - 50\n  - {threshold}\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, f'- {threshold}')}: reminder threshold {threshold}% must be between 1 and 99 "
        "(100% is the breach itself)"
    ]


def test_a_paused_state_with_no_way_back_to_a_running_one_is_reported_at_its_name(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    from: waiting\n    to: submitted\n", "    from: waiting\n    to: closed\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'waiting:')}: paused state 'waiting' has no way back to a state where the clock runs"
    ]


def test_a_limit_on_a_paused_state_is_reported_with_its_line(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    clock: paused\n", "    clock: paused\n    limit: 2d\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'limit: 2d')}: state 'waiting': a time limit needs a running clock, not paused"
    ]


def test_a_department_on_a_state_not_worked_by_a_bureau_officer_is_reported(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    limit: 1d\n", "    limit: 1d\n    department: DEP-FINANCE\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'department:')}: state 'submitted': a department applies only where role is "
        "bureau_officer"
    ]


def test_a_name_not_matching_the_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE, stem="policy_sample")
    assert [str(p) for p in problems_of(path)] == [f"{path}:1: name 'sample' must match the file name 'policy_sample'"]


def test_a_choice_field_without_choices_is_reported_at_the_field(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    choices: [rent, talent]\n", "")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, '- name: kind')}: form field 'kind': a choice field needs a non-empty 'choices' list"
    ]


def test_several_problems_in_one_file_are_all_reported_at_once(tmp_path: Path) -> None:
    source = SAMPLE
    for old, new in (
        ("prefix: SA\n", "prefix: SA\nowner: building_committee\n"),
        ("reminders: [50, 80]", "reminders: [50, 180]"),
        ("        type: text\n", "        type: memo\n"),
        ("    limit: 1d\n", "    limit: 3x\n"),
        ("    role: enterprise_contact\n", "    role: enterprise\n"),
        ("guards: [amount_within_policy_cap]", "guards: [within_cap]"),
    ):
        source = edit(source, old, new)
    path = write(tmp_path, source)
    problems = problems_of(path)
    assert len(problems) == 6
    assert {p.file for p in problems} == {path}
    found = sorted((p.line, p.message) for p in problems)
    assert [line for line, _ in found] == [
        line_of(source, "owner:"),
        line_of(source, "reminders:"),
        line_of(source, "limit: 3x"),
        line_of(source, "role: enterprise"),
        line_of(source, "within_cap"),
        line_of(source, "type: memo"),
    ]
    fragments = [
        "definition: unknown key 'owner'",
        "reminder threshold 180% must be between 1 and 99",
        "state 'submitted' limit: bad duration '3x'",
        "state 'waiting': unknown role 'enterprise'",
        "transition 'close': unknown guard 'within_cap'",
        "transition 'close' field 'note': unknown type 'memo'",
    ]
    for (_, message), fragment in zip(found, fragments, strict=True):
        assert fragment in message


def test_problems_in_several_files_are_reported_together_each_with_its_file(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    zero_limit = edit(SAMPLE, "    limit: 1d\n", "    limit: 0d\n")
    lower_prefix = edit(edit(SAMPLE, "name: sample", "name: other"), "prefix: SA", "prefix: sa")
    first = write(tmp_path / "one", zero_limit)
    second = write(tmp_path / "two", lower_prefix, stem="other")
    with pytest.raises(DefinitionError) as caught:
        load_definitions([first, second])
    assert [(p.file, p.line) for p in caught.value.problems] == [
        (first, line_of(zero_limit, "limit: 0d")),
        (second, line_of(lower_prefix, "prefix: sa")),
    ]
    assert str(caught.value).splitlines() == [
        "2 problems in definitions:",
        f"{first}:{line_of(zero_limit, 'limit: 0d')}: state 'submitted' limit: bad duration '0d': "
        "a time limit must be longer than zero",
        f"{second}:{line_of(lower_prefix, 'prefix: sa')}: prefix 'sa' must be 2 to 4 capital letters, e.g. OE "
        "(numbers look like OE-2026-000123)",
    ]


def test_the_same_appeal_type_in_two_files_is_reported(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first = write(tmp_path / "one", SAMPLE)
    second = write(tmp_path / "two", edit(SAMPLE, "prefix: SA", "prefix: SB"))
    assert [str(p) for p in problems_of(first, second)] == [
        f"{second}:1: appeal type 'sample' is also defined in {first}"
    ]


def test_definition_text_is_checked_against_the_path_it_is_given() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition_text(edit(SAMPLE, "version: 1", "version: 0"), "inline.yaml")
    assert [str(p) for p in caught.value.problems] == ["inline.yaml:2: version must be 1 or more, got 0"]


def test_an_empty_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    assert [str(p) for p in problems_of(path)] == [f"{path}:1: the file is empty"]


# Known loader bugs (see the report that came with this file): these flip to XPASS, and so fail, once fixed.


def test_states_written_as_a_list_are_reported_not_crashed_on(tmp_path: Path) -> None:
    source = edit(SAMPLE, "states:\n", "states: [submitted, waiting, closed]\nold_states:\n")
    path, problems = report(tmp_path, source)
    assert f"{path}:{line_of(source, 'states: [')}: states must be a mapping of state names to states" in problems


def test_a_value_yaml_cannot_build_is_reported_not_crashed_on(tmp_path: Path) -> None:
    source = edit(SAMPLE, "version: 1", "version: 2024-02-30")
    path, problems = report(tmp_path, source)
    assert [p.split(": ")[0] for p in problems] == [f"{path}:2"]


def test_a_choice_field_with_an_empty_choices_list_is_reported(tmp_path: Path) -> None:
    source = edit(SAMPLE, "choices: [rent, talent]", "choices: []")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, '- name: kind')}: form field 'kind': a choice field needs a non-empty 'choices' list"
    ]


def test_an_unknown_field_type_is_reported_once(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    type: number\n", "    type: money\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'type: money')}: form field 'amount_yuan': unknown type 'money'; allowed: "
        "string, text, integer, number, boolean, date, datetime, choice, multichoice, email, phone, uscc"
    ]


def test_a_wrong_name_is_reported_alongside_other_problems(tmp_path: Path) -> None:
    path = write(tmp_path, edit(SAMPLE, "    limit: 1d\n", "    limit: 3x\n"), stem="policy_sample")
    assert len(problems_of(path)) == 2


def test_two_appeal_types_with_one_prefix_are_reported(tmp_path: Path) -> None:
    first = write(tmp_path, SAMPLE)
    second = write(tmp_path, edit(SAMPLE, "name: sample", "name: other"), stem="other")
    assert [p.message for p in problems_of(first, second)] == [
        f"prefix 'SA' is already used by {first}; appeal numbers would not tell the two types apart"
    ]


# Choice titles


TITLED = "    choices: [rent, talent]\n    choice_titles:\n      rent: {zh-CN: 房租补贴, en: Rent}\n"


def test_choice_titles_are_loaded_and_shown_per_locale(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    choices: [rent, talent]\n", TITLED + "      talent: {zh-CN: 人才补贴, en: Talent}\n")
    (definition,) = load_definitions([write(tmp_path, source)])
    kind = definition.fields[0]
    assert kind.choice_titles == {
        "rent": {"zh-CN": "房租补贴", "en": "Rent"},
        "talent": {"zh-CN": "人才补贴", "en": "Talent"},
    }
    assert field_view(kind, "zh-CN")["choice_titles"] == {"rent": "房租补贴", "talent": "人才补贴"}
    assert field_view(kind, "en")["choice_titles"] == {"rent": "Rent", "talent": "Talent"}
    assert "choice_titles" not in field_view(definition.fields[1])  # untitled fields keep the old shape


def test_choice_titles_must_title_every_choice_and_nothing_else(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    choices: [rent, talent]\n", TITLED + "      tax: {zh-CN: 税, en: Tax}\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'tax:')}: form field 'kind' choice_titles: unknown key 'tax'; allowed: rent, talent",
        f"{path}:{line_of(source, 'choice_titles:') + 1}: form field 'kind': choice_titles lack: talent",
    ]


def test_choice_titles_need_both_locales_and_choices(tmp_path: Path) -> None:
    source = edit(SAMPLE, "    choices: [rent, talent]\n", TITLED + "      talent: {zh-CN: 人才补贴}\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'talent: {')}: form field 'kind' choice 'talent' title needs a title in every "
        "locale; missing: en"
    ]
    source = edit(SAMPLE, "    min: 0\n", "    min: 0\n    choice_titles: {low: {zh-CN: 低, en: Low}}\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'choice_titles:')}: form field 'amount_yuan': choice_titles need a 'choices' list "
        "to title"
    ]


def test_every_choice_of_the_shipped_definitions_has_titles() -> None:
    for definition in load_definitions(shipped_definition_files()):
        fields = [*definition.fields, *(f for t in definition.transitions for f in t.fields)]
        for field in fields:
            if field.choices:
                assert set(field.choice_titles) == set(field.choices), f"{definition.name}.{field.name}"


# Guards read fields: one that reads a field nobody can supply could never pass


def test_a_guard_reading_a_field_neither_the_form_nor_the_transition_defines_is_reported_at_the_guard(
    tmp_path: Path,
) -> None:
    source = edit(SAMPLE, "guards: [amount_within_policy_cap]", "guards: [amount_within_policy_cap, bank_matched]")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'bank_matched')}: transition 'close': guard 'bank_matched' reads field 'bank', "
        "which neither the form nor this transition's fields define, so the transition could never pass; "
        "add the field to the form or to the transition's fields"
    ]


def test_a_guard_whose_field_the_transition_asks_for_loads() -> None:
    source = edit(SAMPLE, "guards: [amount_within_policy_cap]", "guards: [amount_within_policy_cap, bank_matched]")
    source = edit(
        source,
        "      - name: note\n",
        "      - {name: bank, type: string, title: {zh-CN: 银行, en: Bank}}\n      - name: note\n",
    )
    definition = load_definition_text(source, "sample.yaml")
    (close,) = [t for t in definition.transitions if t.trigger == "close"]
    assert close.guards == ("amount_within_policy_cap", "bank_matched")


def test_every_shipped_guard_reads_a_field_its_transition_can_see() -> None:
    for definition in load_definitions(shipped_definition_files()):
        form = {f.name for f in definition.fields}
        for transition in definition.transitions:
            visible = form | {f.name for f in transition.fields}
            for guard in transition.guards:
                assert GUARDS[guard].reads <= visible, (definition.name, transition.trigger, guard)
def test_a_state_nobody_can_work_once_escalated_is_reported_at_its_name(tmp_path: Path) -> None:
    """An appeal can be escalated in any open state; at every level it reaches, someone must be able to act."""
    source = edit(SAMPLE, "    roles: [specialist, chain]\n", "    roles: [specialist]\n")
    path, problems = report(tmp_path, source)
    assert problems == [
        f"{path}:{line_of(source, 'submitted:', after='states:')}: state 'submitted': an appeal escalated while in "
        "it finds nobody who can act at the community (community_supervisor); subdistrict (subdistrict_supervisor); "
        "district (bureau_officer, district_supervisor) level: its transitions allow only specialist; add 'chain' "
        "(the people of the level holding the appeal) to the roles of a transition from it"
    ]
    # A version appeals already use is read back as it was registered, without checks added since.
    assert load_definition_text(source, "stored.yaml", stored=True).name == "sample"


def test_a_definition_starting_at_the_district_is_checked_only_there(tmp_path: Path) -> None:
    source = edit(SAMPLE, "reminders: [50, 80]\n", "reminders: [50, 80]\nlevel: district\n")
    source = edit(source, "    roles: [specialist, chain]\n", "    roles: [specialist, district_supervisor]\n")
    assert report(tmp_path, source)[1] == []
