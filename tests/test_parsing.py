"""The source layer: directives, roles and their line numbers."""

from pathlib import Path

from distillgen.source import parse_document
from distillgen.source.document import role_of
from distillgen.source.markdown import make_parser


def parse(tmp_path: Path, text: str):
    path = tmp_path / "a.md"
    path.write_text(text, encoding="utf-8")
    return parse_document(path, make_parser())


def directives(doc):
    return [t.meta["directive"] for t in doc.walk() if t.type == "directive"]


def roles(doc):
    return [role_of(t, doc.path) for t in doc.walk() if t.type == "myst_role"]


SOURCE = """---
title: T
---

Intro with {cite}`a,b` and
a second line {numref}`fig-x`.

```{figure} img/pic.png
:label: fig-x
:layout: l-page

Caption with {cite}`c`
over two lines {cite}`d`.
```

:::{note}
Colon fence, {cite}`e`.
:::

```python
print("not a directive")
```
"""


def test_directive_kind_args_options_and_body(tmp_path):
    figure, note = directives(parse(tmp_path, SOURCE))
    assert (figure.kind, figure.args) == ("figure", "img/pic.png")
    assert figure.options == {"label": "fig-x", "layout": "l-page"}
    assert figure.body == "Caption with {cite}`c`\nover two lines {cite}`d`."
    assert (note.kind, note.args, note.body) == ("note", "", "Colon fence, {cite}`e`.")


def test_line_numbers_of_directives_options_and_roles(tmp_path):
    doc = parse(tmp_path, SOURCE)
    figure, note = directives(doc)
    assert figure.line == 8
    assert figure.option_line("label") == 9
    assert figure.option_line("layout") == 10
    assert note.line == 16
    lines = {r.content: r.line for r in roles(doc)}
    # Second line of a paragraph, and both lines of a caption after a blank line.
    assert lines == {"a,b": 5, "fig-x": 6, "c": 12, "d": 13, "e": 17}


def test_plain_code_fence_is_not_a_directive(tmp_path):
    doc = parse(tmp_path, SOURCE)
    fences = [t for t in doc.tokens if t.type == "fence"]
    assert [f.info for f in fences] == ["python"]


def test_front_matter_is_separated(tmp_path):
    doc = parse(tmp_path, SOURCE)
    assert doc.front_matter_text.strip() == "title: T"
    assert doc.slug == "a"
