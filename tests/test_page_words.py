"""Every problem the engine can name about a field, and every guard refusal, reads in Chinese on the pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from workflow.domain.forms import clean_form
from workflow.domain.guards import GUARDS
from workflow.domain.spec import FieldSpec, FieldType
from workflow.web.i18n import field_message, guard_message, system_reason
from workflow.web.problem_words import GUARD_WORDS

CHINESE = re.compile(r"[\u4e00-\u9fff]")
TITLE = {"zh-CN": "项", "en": "item"}

# (field spec, a bad value): together they reach each message shape the form checker writes.
BAD_VALUES: list[tuple[FieldSpec, Any]] = [
    (FieldSpec("n", FieldType.INTEGER, TITLE, minimum=1), 0),
    (FieldSpec("n", FieldType.INTEGER, TITLE, maximum=10), 11),
    (FieldSpec("n", FieldType.INTEGER, TITLE), "1.5"),
    (FieldSpec("n", FieldType.NUMBER, TITLE), "many"),
    (FieldSpec("n", FieldType.NUMBER, TITLE), "nan"),
    (FieldSpec("n", FieldType.INTEGER, TITLE), True),
    (FieldSpec("d", FieldType.DATE, TITLE), "2026-13-01"),
    (FieldSpec("d", FieldType.DATE, TITLE), 20261201),
    (FieldSpec("t", FieldType.DATETIME, TITLE), "tomorrow"),
    (FieldSpec("t", FieldType.DATETIME, TITLE), "2026-12-01T10:00"),
    (FieldSpec("t", FieldType.DATETIME, TITLE), 5),
    (FieldSpec("e", FieldType.EMAIL, TITLE), "not-an-address"),
    (FieldSpec("p", FieldType.PHONE, TITLE), "call me"),
    (FieldSpec("s", FieldType.STRING, TITLE), "two\nlines"),
    (FieldSpec("s", FieldType.STRING, TITLE, max_length=3), "four"),
    (FieldSpec("s", FieldType.STRING, TITLE, min_length=3), "ab"),
    (FieldSpec("s", FieldType.STRING, TITLE), 42),
    (FieldSpec("s", FieldType.STRING, TITLE), "nul\x00"),
    (FieldSpec("c", FieldType.CHOICE, TITLE, choices=("a", "b")), "z"),
    (FieldSpec("m", FieldType.MULTICHOICE, TITLE, choices=("a", "b")), ["z"]),
    (FieldSpec("m", FieldType.MULTICHOICE, TITLE, choices=("a", "b")), "a"),
    (FieldSpec("b", FieldType.BOOLEAN, TITLE), "yes"),
]


@pytest.mark.parametrize(("spec", "value"), BAD_VALUES, ids=lambda v: repr(v)[:40])
def test_each_field_problem_reads_in_chinese_and_stays_english_for_english_pages(spec: FieldSpec, value: Any) -> None:
    _, problems = clean_form([spec], {spec.name: value})
    assert len(problems) == 1, problems
    message = problems[0].message
    chinese = field_message(message, "zh-CN")
    assert CHINESE.search(chinese), f"{message!r} stays untranslated on a Chinese page"
    assert field_message(message, "en") == message


def test_numbers_named_in_a_problem_survive_the_translation() -> None:
    _, problems = clean_form([FieldSpec("n", FieldType.INTEGER, TITLE, minimum=1)], {"n": 0})
    assert field_message(problems[0].message, "zh-CN") == "不能小于 1（填写的是 0）"
    _, problems = clean_form([FieldSpec("s", FieldType.STRING, TITLE, max_length=3)], {"s": "四个汉字"})
    assert field_message(problems[0].message, "zh-CN") == "共 4 字，最多 3 字"
    _, problems = clean_form([FieldSpec("s", FieldType.STRING, TITLE)], {"unknown": 1})
    assert CHINESE.search(field_message(problems[0].message, "zh-CN"))


def test_a_message_of_an_unknown_shape_is_shown_as_written() -> None:
    assert field_message("is odd in a new way", "zh-CN") == "is odd in a new way"


def test_every_guard_has_chinese_words() -> None:
    assert set(GUARD_WORDS) == set(GUARDS)
    for name, guard in GUARDS.items():
        assert CHINESE.search(guard_message(name, guard.explanation, "zh-CN")), name
        assert guard_message(name, guard.explanation, "en") == guard.explanation


def test_the_sweepers_breach_reason_reads_in_chinese_with_shanghai_time() -> None:
    reason = "time limit breached (state limit, due 2026-11-26T08:00:00+00:00)"
    assert system_reason(reason, "zh-CN") == "超过办理时限（本环节时限，2026-11-26 16:00 到期）"
    assert system_reason(reason.replace("state", "overall"), "zh-CN") == "超过办理时限（总时限，2026-11-26 16:00 到期）"
    assert system_reason(reason, "en") == reason
    assert system_reason("time limit breached (state limit, due soon)", "zh-CN").startswith("time limit")
    assert system_reason(None, "zh-CN") is None
