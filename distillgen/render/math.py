"""TeX to MathML at build time: browsers render MathML natively, so reading needs no script."""

from __future__ import annotations

import functools
import re

from latex2mathml.converter import convert

from distillgen.diagnostics import shorten

# latex2mathml signals problems by exception class; say what the author should fix.
_REASONS = {
    "NumeratorNotFoundError": r"\frac is missing its numerator",
    "DenominatorNotFoundError": r"\frac is missing its denominator",
    "ExtraLeftOrMissingRightError": r"a \left has no matching \right",
    "MissingSuperScriptOrSubscriptError": "^ or _ is missing its argument",
    "DoubleSubscriptsError": "double subscript; group with braces, e.g. x_{a_b}",
    "DoubleSuperscriptsError": "double superscript; group with braces, e.g. x^{a^b}",
    "NoAvailableTokensError": "the formula ends early (unclosed brace, or a command missing its argument?)",
    "MissingEndError": r"a \begin{...} has no matching \end{...}",
}


@functools.lru_cache(maxsize=4096)
def to_mathml(latex: str, display: bool) -> str:
    """MathML for `latex`; ValueError with a readable reason when it does not parse."""
    source = latex.strip()
    if not source:
        raise ValueError("empty math")
    try:
        return convert(source, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises many unrelated types for bad input
        name = type(exc).__name__
        reason = _REASONS.get(name) or str(exc) or re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
        raise ValueError(f"cannot typeset ${shorten(source)}$: {shorten(reason, 200)}") from None
