"""TeX to MathML at build time: browsers render MathML natively, so reading needs no script.

latex2mathml accepts some TeX it cannot typeset and writes it out as text: an unknown command
(`\\alpah`) becomes the identifier "\\alpah", `&` outside a table a literal ampersand,
`\\frac{1}` a fraction with one part. `to_mathml` checks its output for each of those, so the
author gets an error instead of a formula that reads wrong.
"""

from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET

from latex2mathml import commands, symbols_parser
from latex2mathml.converter import convert

from distillgen.diagnostics import shorten, suggest

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
_KNOWN_COMMANDS = sorted(
    {v for v in vars(commands).values() if isinstance(v, str) and re.fullmatch(r"\\[A-Za-z]+", v)}
    | {name for name in symbols_parser.SYMBOLS if re.fullmatch(r"\\[A-Za-z]+", name)}
)
_UNKNOWN = re.compile(r"<m[io]>(\\[A-Za-z]+)</m[io]>")
_LABEL = re.compile(r"\\label\{([^{}]*)\}")
# MathML elements with a fixed number of parts, and what TeX wrote them.
_PARTS = {"mfrac": (2, r"\frac"), "msub": (2, "_"), "msup": (2, "^"), "msubsup": (3, "_ and ^")}
_NS = "{http://www.w3.org/1998/Math/MathML}"


def split_label(latex: str) -> tuple[str, str | None]:
    """Display math without its `\\label{name}`, and the name (amsmath's way to label an
    equation, which MyST reads too); the formula as is and None without one."""
    match = _LABEL.search(latex)
    if match is None:
        return latex, None
    return latex[: match.start()] + latex[match.end() :], match[1].strip()


@functools.lru_cache(maxsize=4096)
def to_mathml(latex: str, display: bool) -> str:
    """MathML for `latex`; ValueError with a readable reason when it does not parse, or when
    the converter would show part of it as text."""
    source = latex.strip()
    if not source:
        raise ValueError("empty math")
    # amsmath's `aligned` is `split` to latex2mathml (which has no `aligned`): same columns.
    converted = re.sub(r"\\(begin|end)\{aligned\}", r"\\\1{split}", source)
    try:
        mathml = convert(converted, display="block" if display else "inline")
    except Exception as exc:  # latex2mathml raises many unrelated types for bad input
        name = type(exc).__name__
        reason = _REASONS.get(name) or str(exc) or re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
        raise ValueError(f"cannot typeset ${shorten(source)}$: {shorten(reason, 200)}") from None
    if misread := _misread(mathml):
        raise ValueError(f"cannot typeset ${shorten(source)}$: {misread}")
    return mathml


def _misread(mathml: str) -> str | None:
    """Why the converter's output does not say what the TeX says, or None."""
    if unknown := _UNKNOWN.search(mathml):
        command = unknown[1]
        if command == r"\label":
            return r"\label works in display math ($$ … $$) only; write $$ … $$ (name) to number it"
        return f"unknown command {command}{suggest(command, _KNOWN_COMMANDS)}"
    if "<mi>&</mi>" in mathml:
        return "'&' outside an environment with columns (aligned, split, array, matrix, cases)"
    for element in ET.fromstring(mathml).iter():
        tag = element.tag.removeprefix(_NS)
        if tag in _PARTS:
            parts = [part for part in element if len(part) or (part.text or "").strip()]
            if len(parts) != _PARTS[tag][0]:
                return f"{_PARTS[tag][1]} is missing an argument"
        elif tag == "msqrt" and not any(len(part) or (part.text or "").strip() for part in element):
            return r"\sqrt is missing its argument"
    return None
