"""The engine's field problems and guard refusals in Chinese for the pages.

The engine and the API speak English to scripts; people on the pages read Chinese by default. Each engine
message has a fixed shape, so a pattern per shape turns it into words, keeping the numbers it names.
"""

from __future__ import annotations

import re
from datetime import datetime

from workflow.services.views import SHANGHAI

# (pattern of the engine's English message, the Chinese words with the pattern's named groups)
FIELD_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"must be at least (?P<limit>\S+), got (?P<got>.+)"), "不能小于 {limit}（填写的是 {got}）"),
    (re.compile(r"must be at most (?P<limit>\S+), got (?P<got>.+)"), "不能大于 {limit}（填写的是 {got}）"),
    (re.compile(r"must be a whole number, got .*"), "请填写整数"),
    (re.compile(r"must be a (finite )?number, got .*"), "请填写数字"),
    (re.compile(r"must be a date written YYYY-MM-DD, got .*"), "请按“年-月-日”（如 2026-12-01）填写日期"),
    (re.compile(r"(must be a date and time in ISO 8601.*|needs a UTC offset.*)"), "请填写完整的日期和时间"),
    (re.compile(r"is not an email address: .*"), "不是有效的电子邮箱地址"),
    (
        re.compile(r"is not a mainland phone number: .*"),
        "不是有效的电话号码：手机号为 11 位（如 13812345678），座机需带区号（如 0731-88886666，分机可写 -123）",
    ),
    (
        re.compile(r"is not a unified social credit code: .* has (?P<n>\d+) characters; .*"),
        "统一社会信用代码应为 18 位（填写的是 {n} 位）",
    ),
    (
        re.compile(r"is not a unified social credit code: .* contains .*"),
        "统一社会信用代码只能由数字和除 I、O、S、V、Z 以外的大写字母组成",
    ),
    (
        re.compile(r"is not a unified social credit code: .* check character .*"),
        "统一社会信用代码校验位不符，请核对是否输错",
    ),
    (re.compile(r"must be a single line"), "只能填写一行"),
    (re.compile(r"is (?P<n>\d+) characters long; at most (?P<limit>\d+) allowed"), "共 {n} 字，最多 {limit} 字"),
    (re.compile(r"is (?P<n>\d+) characters long; at least (?P<limit>\d+) needed"), "共 {n} 字，至少 {limit} 字"),
    (re.compile(r".* is not one of: .*|.* not among: .*|must be a list of choices"), "请从给出的选项中选择"),
    (re.compile(r"must be true or false, got .*"), "请选择是或否"),
    (re.compile(r"must be text, got .*"), "请填写文字"),
    (re.compile(r"must not contain NUL characters"), "含有不允许的字符"),
    (re.compile(r"String should have at most (?P<limit>\d+) characters?"), "最多 {limit} 字"),
    (re.compile(r"unknown field; allowed: .*"), "表单中没有这一项"),
]

GUARD_WORDS = {
    "three_or_more_party_members": "企业有 3 名及以上正式党员才能单独组建党支部",
    "fewer_than_three_party_members": "只有 1 至 2 名党员的企业才加入联合党支部",
    "materials_complete": "材料清单中的每一项都收齐后才能申报（请勾选“材料已收齐”）",
    "bank_matched": "请先对接银行（填写“银行”一项）",
    "amount_within_policy_cap": "500 万元以上的政策兑现由区级决定，不能直接申报",
}


def field_problem_in_chinese(message: str) -> str:
    """A field problem in Chinese; a message of a shape not listed here stays as the engine wrote it."""
    for pattern, words in FIELD_PATTERNS:
        found = pattern.fullmatch(message)
        if found:
            return words.format(**found.groupdict())
    return message


def guard_in_chinese(guard: str, explanation: str) -> str:
    return GUARD_WORDS.get(guard, explanation)


BREACH_REASON = re.compile(r"time limit breached \((?P<clock>state|overall) limit, due (?P<due>[^)]+)\)")
CLOCK_WORDS = {"state": "本环节时限", "overall": "总时限"}


def system_reason_in_chinese(reason: str) -> str:
    """The sweeper's reason for an escalation in Chinese, its due instant in Shanghai time."""
    found = BREACH_REASON.fullmatch(reason)
    if found is None:
        return reason
    try:
        due = datetime.fromisoformat(found["due"]).astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return reason
    return f"超过办理时限（{CLOCK_WORDS[found['clock']]}，{due} 到期）"
