"""Random people pressing random buttons: whatever they try, an appeal stays what its audit trail says it is."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, rule, run_state_machine_as_test
from sqlalchemy.exc import DBAPIError

from tests.conftest import OUTDOOR_EVENT, table_counts
from workflow.domain.authorization import may_fire
from workflow.domain.spec import FieldSpec, FieldType
from workflow.errors import FormInvalid, InvalidInput, WorkflowError
from workflow.services.commands import CHANNELS
from workflow.services.workflow import Workflow

TYPES = ["financing_support", "general_appeal", "outdoor_event_permit", "party_branch_formation", "policy_fulfilment"]
# Every appeal here belongs to enterprise 1 in building B01 (community C01, sub-district S01).
ENTERPRISE = 1
USERS = {
    "contact-0001": "enterprise_contact",
    "contact-0031": "enterprise_contact",  # another enterprise, in B02
    "staff-b01": "building_staff",
    "specialist-b01": "specialist",
    "staff-b02": "building_staff",  # outside
    "specialist-b02": "specialist",  # outside
    "community-c01": "community_supervisor",
    "community-c02": "community_supervisor",  # outside
    "subdistrict-s01": "subdistrict_supervisor",
    "subdistrict-s02": "subdistrict_supervisor",  # outside
    "district-01": "district_supervisor",
    "bureau-approval-01": "bureau_officer",
    "bureau-finance-01": "bureau_officer",
    "nobody-at-all": "",  # no such user
}
IN_REACH = {
    "contact-0001",
    "staff-b01",
    "specialist-b01",
    "community-c01",
    "subdistrict-s01",
    "district-01",
    "bureau-approval-01",
    "bureau-finance-01",
}
# The database's own refusal, wrapped by SQLAlchemy or raw from a driver cursor: never what a user should see.
DATABASE_ERRORS = (DBAPIError, psycopg.Error, sqlite3.Error)
SUBMITTERS = ["contact-0001", "staff-b01", "specialist-b01"]
PHONE = "0731-8888 6666"

# NUL and lone surrogates are left out: see the two bug tests at the end of this file.
SAFE_CHARS = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
LINE_CHARS = st.characters(exclude_categories=("Cs", "Zl", "Zp"), exclude_characters="\x00\n\r")
COMMENTS = st.one_of(
    st.none(),
    st.just(""),
    st.just("   "),
    st.text(SAFE_CHARS, max_size=30),
    st.just("长" * 4001),
    st.sampled_from(["请补充材料", "同意", "场地涉及市政道路"]),
)

SUBMISSIONS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "outdoor_event_permit": st.just(OUTDOOR_EVENT),
    "general_appeal": st.fixed_dictionaries(
        {
            "category": st.sampled_from(["tax", "property_and_premises", "other"]),
            "subject": st.just("写字楼空调停运"),
            "description": st.just("夏季空调停运影响办公"),
            "urgency": st.sampled_from(["normal", "urgent"]),
            "contact_phone": st.just(PHONE),
        }
    ),
    "financing_support": st.fixed_dictionaries(
        {
            "financing_kind": st.sampled_from(["credit_loan", "ip_pledge_loan"]),
            "amount_yuan": st.sampled_from([500_000, 8_000_000]),
            "term_months": st.integers(1, 120),
            "collateral": st.just("none"),
            "purpose": st.just("采购原材料"),
            "contact_phone": st.just(PHONE),
        }
    ),
    "party_branch_formation": st.fixed_dictionaries(
        {
            "party_members": st.sampled_from([1, 2, 3, 5]),
            "employees": st.integers(1, 500),
            "membership_records": st.sampled_from(["all_transferred", "none_transferred"]),
            "contact_phone": st.just(PHONE),
        }
    ),
    "policy_fulfilment": st.fixed_dictionaries(
        {
            "policy_name": st.sampled_from(["office_rent_subsidy", "talent_subsidy"]),
            "fiscal_year": st.just(2026),
            "amount_yuan": st.sampled_from([120_000, 6_000_000]),
            "description": st.just("租金补贴"),
            "contact_phone": st.just(PHONE),
        }
    ),
}


def valid_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    kind = spec.type
    if kind in (FieldType.STRING, FieldType.TEXT):
        alphabet = LINE_CHARS if kind is FieldType.STRING else SAFE_CHARS
        return st.text(alphabet, min_size=1, max_size=min(spec.max_length or 40, 40)).filter(str.strip)
    if kind is FieldType.BOOLEAN:
        return st.booleans()
    if kind in (FieldType.INTEGER, FieldType.NUMBER):
        low = spec.minimum if spec.minimum is not None else -1e9
        high = spec.maximum if spec.maximum is not None else 1e12
        if kind is FieldType.INTEGER:
            return st.integers(math.ceil(low), math.floor(high))
        return st.one_of(
            st.integers(math.ceil(low), math.floor(high)), st.floats(low, high, allow_nan=False, allow_infinity=False)
        )
    if kind is FieldType.DATE:
        return st.dates(date(2020, 1, 1), date(2030, 12, 31)).map(date.isoformat)
    if kind is FieldType.DATETIME:
        return st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)).map(
            lambda d: d.astimezone(UTC).isoformat()
        )
    if kind is FieldType.CHOICE:
        return st.sampled_from(spec.choices)
    if kind is FieldType.MULTICHOICE:
        return st.lists(st.sampled_from(spec.choices), max_size=3)
    return st.text(SAFE_CHARS, max_size=20)


def invalid_value(spec: FieldSpec) -> st.SearchStrategy[Any]:
    wrong_type = st.sampled_from(
        [[1, 2], {"a": 1}, "not a thing"]
        if spec.type in (FieldType.STRING, FieldType.TEXT)
        else [[1, 2], {"a": 1}, "not a thing", 3.5]
    )
    extra: list[Any] = []
    if spec.type in (FieldType.STRING, FieldType.TEXT):
        extra = ["x" * ((spec.max_length or 5000) + 1), 42]
        if spec.type is FieldType.STRING:
            extra.append("两行\n文字")
    elif spec.type in (FieldType.INTEGER, FieldType.NUMBER):
        extra = [True, "twelve"]
        if spec.minimum is not None:
            extra.append(spec.minimum - 1)
        if spec.maximum is not None:
            extra.append(spec.maximum + 1)
    elif spec.type is FieldType.DATETIME:
        extra = ["2026-11-27T10:00", "tomorrow"]
    elif spec.type is FieldType.DATE:
        extra = ["2026-13-01", 20261201]
    return st.one_of(wrong_type, st.sampled_from(extra or ["", "   "]))


@st.composite
def form(draw: st.DrawFn, fields: tuple[FieldSpec, ...], good: int = 3) -> dict[str, Any]:
    """Mostly good values; sometimes a field is left out, filled badly, or a field nobody asked for is added."""
    data: dict[str, Any] = {}
    for spec in fields:
        how = draw(st.sampled_from(["valid"] * good + ["omit", "invalid"]))
        if how == "valid":
            data[spec.name] = draw(valid_value(spec))
        elif how == "invalid":
            data[spec.name] = draw(invalid_value(spec))
    if draw(st.integers(0, 3 * good)) == 0:
        data["colour"] = "red"
    return data


class AppealChaos(RuleBasedStateMachine):
    """Submits appeals of every type and fires anything at them; checks the invariants after every attempt."""

    appeals = Bundle("appeals")

    def __init__(self, wf: Workflow) -> None:
        super().__init__()
        self.wf = wf
        self.attempts = 0
        self.refused = 0
        self.trail_length: dict[str, int] = {}  # events per appeal, as last checked

    # --- making appeals ----------------------------------------------------------------
    @initialize(target=appeals, type=st.sampled_from(TYPES), data=st.data())
    def first_appeal(self, type: str, data: st.DataObject) -> str:
        return self._submit(type, data)

    @rule(target=appeals, type=st.sampled_from(TYPES), data=st.data())
    def another_appeal(self, type: str, data: st.DataObject) -> str:
        return self._submit(type, data)

    def _submit(self, type: str, data: st.DataObject) -> str:
        form_data = data.draw(SUBMISSIONS[type], label="form")
        submitter = data.draw(st.sampled_from(SUBMITTERS), label="submitter")
        channel = data.draw(st.sampled_from(CHANNELS), label="channel")
        shown = self.wf.submit(type, enterprise_id=ENTERPRISE, as_user=submitter, data=form_data, channel=channel)
        number = str(shown["number"])
        assert (shown["state"], shown["version"]) == (self.wf.registry.current_spec(type).initial, 1)
        self._check(number)
        return number

    # --- pressing buttons --------------------------------------------------------------
    @rule(number=appeals, data=st.data())
    def fire(self, number: str, data: st.DataObject) -> None:
        """Any trigger of the type (or a made-up one), as anyone, with any fields."""
        self._fire(number, data, guided=False)

    @rule(number=appeals, data=st.data())
    def walk(self, number: str, data: st.DataObject) -> None:
        """A few steps of mostly possible triggers, by people who may fire them, with good fields: this goes deep."""
        for _ in range(data.draw(st.integers(1, 5), label="steps")):
            self._fire(number, data, guided=True)

    def _fire(self, number: str, data: st.DataObject, *, guided: bool) -> None:
        record = self.wf.record(number)
        spec = self.wf.registry.spec_of(record.definition_id)
        possible_now = spec.transitions_from(record.state)
        # Leaving the appeal where it is (withdraw) ends the walk, so the guide takes it less often.
        onward = [t for t in possible_now if t.trigger != "withdraw"] or possible_now
        likely = st.sampled_from([True] * (7 if guided else 1) + [False])
        pool = onward if onward and data.draw(likely, label="possible now") else list(spec.transitions)
        transition = data.draw(st.sampled_from(pool), label="transition")
        trigger = data.draw(st.sampled_from([transition.trigger] * 19 + ["launch_rocket"]), label="trigger")
        fitting = [u for u in IN_REACH if may_fire(USERS[u], transition, record.level)]
        actors = sorted(fitting) if fitting and data.draw(likely, label="fitting actor") else sorted(USERS)
        actor = data.draw(st.sampled_from(actors), label="actor")
        fields = data.draw(form(transition.fields, good=9 if guided else 3), label="data")
        comment = data.draw(
            st.one_of(st.sampled_from(["请补充材料", "同意"]), COMMENTS) if guided else COMMENTS, label="comment"
        )
        expected = None if guided else self._expected_version(data, record.version)
        self._attempt(
            number,
            f"fire {trigger!r} as {actor}",
            lambda: self.wf.fire(
                number, trigger, as_user=actor, comment=comment, data=fields, expected_version=expected
            ),
        )

    @rule(number=appeals, actor=st.sampled_from(sorted(USERS)), reason=COMMENTS, data=st.data())
    def escalate(self, number: str, actor: str, reason: str | None, data: st.DataObject) -> None:
        expected = self._expected_version(data, self.wf.record(number).version)
        self._attempt(
            number,
            f"escalate as {actor}",
            lambda: self.wf.escalate(number, as_user=actor, reason=reason or "", expected_version=expected),
        )

    @rule(number=appeals, actor=st.sampled_from(sorted(USERS)), instructions=COMMENTS, data=st.data())
    def send_down(self, number: str, actor: str, instructions: str | None, data: st.DataObject) -> None:
        expected = self._expected_version(data, self.wf.record(number).version)
        self._attempt(
            number,
            f"send down as {actor}",
            lambda: self.wf.send_down(
                number, as_user=actor, instructions=instructions or "", expected_version=expected
            ),
        )

    @rule(
        number=appeals,
        actor=st.sampled_from(sorted(USERS)),
        to=st.sampled_from(sorted(USERS)),
        comment=COMMENTS,
        data=st.data(),
    )
    def assign(self, number: str, actor: str, to: str, comment: str | None, data: st.DataObject) -> None:
        expected = self._expected_version(data, self.wf.record(number).version)
        self._attempt(
            number,
            f"assign to {to} as {actor}",
            lambda: self.wf.assign(number, to, as_user=actor, comment=comment, expected_version=expected),
        )

    @rule(number=appeals, actor=st.sampled_from(sorted(USERS)), text=COMMENTS)
    def comment(self, number: str, actor: str, text: str | None) -> None:
        self._attempt(number, f"comment as {actor}", lambda: self.wf.comment(number, text or "", as_user=actor))

    # --- checking ----------------------------------------------------------------------
    def _expected_version(self, data: st.DataObject, current: int) -> int | None:
        choice = data.draw(st.sampled_from(["none", "none", "current", "stale"]), label="expected_version")
        return {"none": None, "current": current, "stale": current - 1}[choice]

    def _attempt(self, number: str, what: str, action: Callable[[], object]) -> None:
        before = table_counts(self.wf.engine), self.wf.show(number)
        events_before = self.trail_length[number]
        self.attempts += 1
        refused = False
        try:
            action()
        except WorkflowError as error:
            refused = True
            self.refused += 1
            assert str(error).strip(), f"{what}: {type(error).__name__} has no message"
            after = table_counts(self.wf.engine), self.wf.show(number)
            assert after == before, f"refused {what} ({error}) still changed something"
        else:
            # Timers and notices may follow a change; the appeal rows and the trail move by exactly one event.
            counts_before, counts_after = before[0], table_counts(self.wf.engine)
            moved = {t: (counts_before[t], counts_after[t]) for t in ("appeals", "appeal_events")}
            assert moved == {
                "appeals": (counts_before["appeals"],) * 2,
                "appeal_events": (counts_before["appeal_events"], counts_before["appeal_events"] + 1),
            }, f"{what} did not write exactly one event: {moved}"
        self._check(number)
        if not refused:
            assert self.trail_length[number] == events_before + 1, f"{what} wrote its event to another appeal"

    def _check(self, number: str) -> None:
        record = self.wf.record(number)
        spec = self.wf.registry.spec_of(record.definition_id)
        assert record.state in spec.states, f"{number} is in {record.state!r}, not a state of {spec.name}"
        assert record.is_open == (not spec.is_terminal(record.state)), f"{number}: is_open disagrees with its state"
        snapshot = self.wf.replayed(number)
        replayed = (
            snapshot.state,
            snapshot.level,
            snapshot.unit_id,
            snapshot.assignee_id,
            snapshot.version,
            snapshot.is_open,
        )
        stored = (record.state, record.level, record.unit_id, record.assignee_id, record.version, record.is_open)
        assert replayed == stored, f"{number}: the audit trail says {replayed}, the row says {stored}"
        assert snapshot.data == dict(record.data), f"{number}: replayed data {snapshot.data} != {dict(record.data)}"
        events = self.wf.events(number)
        self.trail_length[number] = len(events)
        state_events = [e for e in events if e.kind != "commented"]
        assert record.version == len(state_events), f"{number}: version {record.version}, {len(state_events)} events"
        assert [e.version for e in state_events] == list(range(1, record.version + 1)), f"{number}: version gaps"


SETTINGS = settings(
    max_examples=12,
    stateful_step_count=40,
    deadline=None,
    database=None,  # keep no example files in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def test_no_sequence_of_attempts_breaks_an_appeal(demo: Workflow) -> None:
    machines: list[AppealChaos] = []

    def make() -> AppealChaos:
        machines.append(AppealChaos(demo))
        return machines[-1]

    run_state_machine_as_test(make, settings=SETTINGS)
    attempts = sum(m.attempts for m in machines)
    refused = sum(m.refused for m in machines)
    assert attempts > 0 and 0 < refused < attempts, f"{refused} of {attempts} attempts refused: the mix is lopsided"


# --- bugs the random inputs found (kept out of the machine above until fixed) ------------


def submit_event(wf: Workflow) -> str:
    return str(wf.submit("outdoor_event_permit", enterprise_id=1, as_user="contact-0001", data=OUTDOOR_EVENT)["number"])


def test_a_nul_character_in_a_comment_or_text_field_is_refused_as_invalid_input(demo: Workflow) -> None:
    number = submit_event(demo)
    demo.fire(number, "start_pre_check", as_user="staff-b01")
    demo.fire(number, "pass_pre_check", as_user="staff-b01")
    before = table_counts(demo.engine), demo.show(number)
    attempts: list[tuple[str, Callable[[], object]]] = [
        ("comment", lambda: demo.comment(number, "已联系\x00企业", as_user="specialist-b01")),
        (
            "fire comment",
            lambda: demo.fire(
                number,
                "file_application",
                as_user="specialist-b01",
                data={"materials_complete": True},
                comment="缺\x00件",
            ),
        ),
        (
            "text field",
            lambda: demo.fire(
                number,
                "file_application",
                as_user="specialist-b01",
                data={"materials_complete": True, "collection_notes": "备注\x00"},
            ),
        ),
    ]
    for what, attempt in attempts:
        with pytest.raises(InvalidInput, match="NUL") as refused:
            attempt()
        assert "NUL" in str(refused.value), what
    assert (table_counts(demo.engine), demo.show(number)) == before


@pytest.mark.parametrize(
    "amount", [float("nan"), float("inf"), "nan", "1e400"], ids=["nan", "inf", "text-nan", "text-1e400"]
)
def test_a_number_field_refuses_values_that_are_not_finite(demo: Workflow, amount: object) -> None:
    data = {
        "financing_kind": "credit_loan",
        "amount_yuan": amount,
        "term_months": 12,
        "collateral": "none",
        "purpose": "采购原材料",
        "contact_phone": PHONE,
    }
    before = table_counts(demo.engine)
    with pytest.raises(FormInvalid, match="amount_yuan: must be a finite number"):
        demo.submit("financing_support", enterprise_id=1, as_user="contact-0001", data=data)
    assert table_counts(demo.engine) == before
