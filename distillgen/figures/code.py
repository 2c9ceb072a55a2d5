"""{code-block} (and MyST's {code}, {sourcecode}): highlighted code with line numbers,
emphasized lines, a caption and a label."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from distillgen.figures.admonition import CLASS
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.options import LABEL, Argument, Option, flag, integer, text
from distillgen.render.html import highlighted


def line_numbers(value: str) -> tuple[int, ...]:
    """`2, 4-6`: the lines to emphasize."""
    lines: list[int] = []
    for part in value.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if not first.isdigit() or (last and not last.isdigit()) or int(first) < 1:
            raise ValueError(f"expected line numbers such as '2, 4-6', not '{value}'")
        lines += range(int(first), int(last or first) + 1)
    return tuple(lines)


@dataclass(frozen=True)
class Code:
    code: str
    language: str
    first: int | None  # the first line's number; None: no line numbers
    emphasized: frozenset[int]
    caption: str
    label: str | None
    classes: str


class CodeBlock(DirectiveKind):
    name = "code-block"
    doc = "Code highlighted by Pygments, with :linenos:, :emphasize-lines:, :caption:."
    argument = Argument("the language, e.g. python", required=False)
    options = (
        Option("linenos", flag, False, "number the lines"),
        Option("lineno-start", integer(0), None, "the first line's number (numbers the lines)"),
        Option("number-lines", integer(0), None, "same as :lineno-start:"),
        Option("emphasize-lines", line_numbers, (), "lines to highlight, e.g. 2, 4-6"),
        Option("caption", text, "", "a caption above the code"),
        LABEL,
        CLASS,
    )

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> Code:
        options = directive.options
        language = directive.written.strip()
        if language:
            try:
                get_lexer_by_name(language)
            except ClassNotFound:
                ctx.warning(directive.line, f"no syntax highlighting for unknown language '{language}'")
        code = directive.body
        count = len(code.splitlines())
        beyond = [n for n in options["emphasize-lines"] if n > count]
        if beyond:
            ctx.warning(
                directive.option_line("emphasize-lines"),
                f":emphasize-lines: names line {beyond[0]}, but the code has {count} lines",
            )
        start = options["lineno-start"] if options["lineno-start"] is not None else options["number-lines"]
        first = start if start is not None else (1 if options["linenos"] else None)
        if options["label"]:
            ctx.define(
                options["label"], options["caption"] or options["label"], directive.option_line("label")
            )
        return Code(
            code + "\n" if code else "",
            language,
            first,
            frozenset(options["emphasize-lines"]),
            options["caption"],
            options["label"],
            options["class"],
        )

    def render(self, code: Code, ctx: RenderContext) -> Rendered:
        lines = highlighted(code.code, code.language).split("\n")[: len(code.code.splitlines())]
        shown = []
        for number, line in enumerate(lines, start=1):
            if code.first is not None:
                line = f'<span class="lineno">{code.first + number - 1}</span>{line}'
            if number in code.emphasized:
                line = f'<span class="hll">{line}</span>'
            shown.append(line)
        data = f' data-language="{escape(code.language)}"' if code.language else ""
        classes = " ".join(["highlight", *code.classes.split()])
        pre = f'<pre class="{escape(classes)}"{data}><code>' + "\n".join(shown) + "\n</code></pre>"
        if not code.caption and not code.label:
            return ctx.rendered(pre)
        anchor = f' id="{escape(code.label)}"' if code.label else ""
        caption = f"<figcaption>{escape(code.caption)}</figcaption>" if code.caption else ""
        return ctx.rendered(f'<figure class="code"{anchor}>{caption}{pre}</figure>')


class CodeDirective(CodeBlock):
    name = "code"
    doc = "Same as {code-block}."


class SourceCode(CodeBlock):
    name = "sourcecode"
    doc = "Same as {code-block}."
