"""Option declarations for directive kinds: a name, a parser, a default and a doc line.

Parsers are plain functions `str -> value` that raise ValueError with a message that says
what a valid value looks like; compose new ones the way the built-ins are written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LAYOUTS = ("l-body", "l-body-outset", "l-page", "l-page-outset", "l-screen", "l-gutter")


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str


def text(value: str) -> str:
    if not value:
        raise ValueError("expected a value")
    return value


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number, not '{value}'") from None
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            bounds = f"from {lo}" if hi is None else f"from {lo} to {hi}"
            raise ValueError(f"expected a number {bounds}, not {number}")
        return number

    return parse


def number(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            result = float(value)
        except ValueError:
            raise ValueError(f"expected a number, not '{value}'") from None
        if not math.isfinite(result) or (lo is not None and result <= lo) or (hi is not None and result > hi):
            bounds = f"greater than {lo}" + (f" and at most {hi}" if hi is not None else "")
            raise ValueError(f"expected a number {bounds}, not {value}")
        return result

    return parse


def boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, not '{value}'")


def choice(*values: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in values:
            raise ValueError(f"expected one of {', '.join(values)}; got '{value}'")
        return value

    parse.choices = values  # type: ignore[attr-defined]  # read by suggestions and docs
    return parse


_LABEL = re.compile(r"^[A-Za-z][\w.:-]*$")


def label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a valid label: use letters, digits, '-', '_', '.' or ':', "
            "starting with a letter"
        )
    return value


LABEL = Option("label", label, None, "name to reference the figure with {numref} or [](#name)")
LAYOUT = Option("layout", choice(*LAYOUTS), "l-body", "Distill layout class of the figure")
MODEL = Option("model", text, None, "model spec (default: the front matter's model, else shapes)")
