"""Words a figure writes about its numbers: one place for their grammar."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """'1 input', '3 inputs' (or `nouns` where the plural is not `noun` + 's')."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
