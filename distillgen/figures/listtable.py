"""{list-table}: a table written as a list of rows, each a list of cells; numbered "Table N"
with its argument as the caption."""

from __future__ import annotations

from dataclasses import dataclass

from markdown_it.token import Token

from distillgen.figures.admonition import CLASS
from distillgen.figures.base import DirectiveInput, DirectiveKind, Rendered
from distillgen.figures.context import CheckContext, RenderContext
from distillgen.figures.figure import ALIGN, class_attribute
from distillgen.options import Argument, Option, integer


@dataclass(frozen=True)
class Table:
    rows: tuple[tuple[tuple[Token, ...], ...], ...]  # each cell's tokens
    header_rows: int
    stub_columns: int
    align: str | None
    classes: str


class ListTable(DirectiveKind):
    name = "list-table"
    doc = "A table from a list of rows (`* - cell`), with its caption as the argument."
    argument = Argument("the caption (Markdown)", required=False)
    options = (
        Option("header-rows", integer(0), 0, "how many first rows are headers"),
        Option("stub-columns", integer(0), 0, "how many first columns are row headers"),
        ALIGN,
        Option("widths", str, None, "column widths (accepted; the browser sizes columns)"),
        Option("width", str, None, "table width (accepted; the browser sizes the table)"),
        CLASS,
    )
    numbered = True
    counter = "Table"
    caption_from = "argument"

    def check(self, directive: DirectiveInput, ctx: CheckContext) -> Table | None:
        rows = _rows(directive.body_tokens)
        if rows is None:
            ctx.error(
                directive.line,
                "{list-table} needs a list of rows, each a list of cells:\n* - a\n  - b\n* - c\n  - d",
            )
            return None
        widths = {len(row) for row in rows}
        if len(widths) > 1:
            counts = ", ".join(str(len(row)) for row in rows)
            ctx.error(directive.line, f"{{list-table}} rows have different numbers of cells: {counts}")
            return None
        options = directive.options
        if options["header-rows"] > len(rows):
            ctx.error(
                directive.option_line("header-rows"), f":header-rows: is more than the {len(rows)} rows"
            )
            return None
        return Table(
            rows, options["header-rows"], options["stub-columns"], options["align"], options["class"]
        )

    def render(self, table: Table, ctx: RenderContext) -> Rendered:
        head: list[str] = []
        body: list[str] = []
        for index, row in enumerate(table.rows):
            header = index < table.header_rows
            cells = "".join(
                f"<{tag}>{ctx.markdown(list(cell)).strip()}</{tag}>"
                for column, cell in enumerate(row)
                for tag in ["th" if header or column < table.stub_columns else "td"]
            )
            (head if header else body).append(f"<tr>{cells}</tr>")
        attribute = class_attribute(table.align, table.classes)
        thead = f"<thead>{''.join(head)}</thead>" if head else ""
        html = (
            f'<div class="table-wrap"><table{attribute}>{thead}<tbody>{"".join(body)}</tbody></table></div>'
        )
        return ctx.rendered(ctx.figure(html, "table"))


def _rows(tokens: list[Token]) -> tuple | None:
    """The cells of a two-level bullet list, or None when the body is anything else."""
    items = _items(tokens)
    if items is None:
        return None
    rows = []
    for item in items:
        cells = _items(item)
        if not cells:
            return None
        rows.append(tuple(tuple(cell) for cell in cells))
    return tuple(rows) or None


def _items(tokens: list[Token]) -> list[list[Token]] | None:
    """The items of `tokens` when they are exactly one bullet list."""
    if not tokens or tokens[0].type != "bullet_list_open" or tokens[-1].type != "bullet_list_close":
        return None
    level = tokens[0].level + 1  # of the list's own items
    items: list[list[Token]] = []
    for token in tokens[1:-1]:
        if token.type == "list_item_open" and token.level == level:
            items.append([])
        elif token.type == "bullet_list_close" and token.level == level - 1:
            return None  # a second list after the first
        elif not (token.type == "list_item_close" and token.level == level):
            items[-1].append(token)
    return items
