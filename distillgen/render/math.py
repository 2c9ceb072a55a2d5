"""TeX to MathML at build time: browsers render MathML natively, so reading needs no script."""

from __future__ import annotations

import functools

from latex2mathml.converter import convert


@functools.lru_cache(maxsize=4096)
def to_mathml(latex: str, display: bool) -> str:
    """MathML for `latex`; ValueError with a readable reason when it does not parse."""
    source = latex.strip()
    if not source:
        raise ValueError("empty math")
    try:
        return convert(source, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises many unrelated types for bad input
        reason = str(exc) or type(exc).__name__
        raise ValueError(f"cannot typeset ${source}$: {reason}") from None
