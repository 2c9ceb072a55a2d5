"""Words a figure writes about its numbers: one place for their grammar."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 input', '3 inputs' (or `nouns` where the plural is not `noun` + 's')."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def minus(text: str) -> str:
    """`text` with the typographic minus (−) for hyphen-minus signs of numbers."""
    return text.replace("-", "−")


def number(value: float, digits: int = 3) -> str:
    """`value` to `digits` significant digits, with a typographic minus: '−0.125', '12.9'."""
    return minus(f"{value:.{digits}g}")


def same_precision(*values: float, digits: int = 3) -> list[str]:
    """The values with one number of decimals, enough for `digits` significant digits of the
    largest, less the zeros they all end in: '12.9 → 1.2' (not '12.9 → 1.22'), '0.6 → 0.3'."""
    largest = max((abs(v) for v in values), default=0.0)
    whole = len(str(int(largest))) if largest >= 1 else 0
    decimals = max(0, digits - whole) if largest >= 1 else digits + _leading_zeros(largest)
    while decimals > 0 and all(f"{v:.{decimals}f}".endswith("0") for v in values):
        decimals -= 1
    return [minus(f"{v:.{decimals}f}") for v in values]


def _leading_zeros(value: float) -> int:
    """How many zeros follow the decimal point before `value`'s first digit (0 < value < 1)."""
    count = 0
    while 0 < value < 0.1 and count < 12:
        value *= 10
        count += 1
    return count


def ordinal(place: int) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th', 23 -> '23rd': a rank as prose says it."""
    suffix = "th" if 10 <= place % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(place % 10, "th")
    return f"{place}{suffix}"
