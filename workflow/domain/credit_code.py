"""The unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters, the last a check character."""

from __future__ import annotations

# The standard's 31 characters: digits and capitals without I, O, S, V and Z (read as 1, 0, 5, U and 2).
CODE_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)  # 3^i mod 31 for positions 1-17
LENGTH = 18


def check_character(first_17: str) -> str:
    """The 18th character the standard computes from the first 17."""
    total = sum(CODE_CHARACTERS.index(ch) * weight for ch, weight in zip(first_17, WEIGHTS, strict=True))
    return CODE_CHARACTERS[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why `code` is not a unified social credit code, or None when it is one (upper case expected)."""
    if len(code) != LENGTH:
        return f"has {len(code)} characters; a unified social credit code has {LENGTH}"
    bad = sorted({ch for ch in code if ch not in CODE_CHARACTERS})
    if bad:
        return (
            f"contains {', '.join(map(repr, bad))}; a unified social credit code uses only 0-9 and the capitals "
            "A-H J-N P Q R T U W X Y"
        )
    expected = check_character(code[:17])
    if code[17] != expected:
        return f"has check character {code[17]!r} where {expected!r} belongs: a character is mistyped"
    return None


def is_credit_code(code: str) -> bool:
    return credit_code_problem(code) is None
