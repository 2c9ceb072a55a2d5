"""The examples of MyST's own specification (myst-spec 0.0.5, vendored) through distillgen.

Each example renders with the structure MyST parses it to, compared as an outline of nodes
(paragraphs, emphasis, admonitions, figures, tables, code, math, links and their text), not
as bytes: MyST's tree (`mdast`) and distillgen's HTML are both turned into that outline. The
examples distillgen answers with a diagnostic on purpose, and the few it renders differently
on purpose, are listed below with the reason.
"""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from tests.conftest import ARTICLES, render_snippet

DATA = Path(__file__).parent / "data" / "myst-spec"
CASES = [
    pytest.param(case, id=f"{path.stem}: {case['title']}")
    for path in sorted(DATA.glob("*.yml"))
    for case in yaml.safe_load(path.read_text("utf-8"))["cases"]
    if "myst" in case and not case.get("invalid")
]

# Examples that end in a diagnostic on purpose: title -> the start of the message.
DIAGNOSED = {
    "Unknown directive": "error: unknown directive '{abc}'",
    "Unknown directive with args": "error: unknown directive '{abc}'",
    "unknown role": "error: unknown role '{abc}'",
    # A label is letters, digits, '-', '_', '.', ':' (it becomes an id and a file-safe name).
    "Code directive, starting line": "error: bad value for ':label:' in {code}: 'My code' is not a valid label",
    "Code-block starting line": "error: bad value for ':label:' in {code-block}: 'My code' is not a valid label",
    # References to labels that no figure or equation has: MyST leaves them unresolved too.
    "Invalid figure reference without value": "error: unresolved reference {numref}`my-figure`",
    "Invalid figure reference": "error: unresolved reference {numref}`Figure %s <my-figure>`",
    "Invalid figure reference with messy label": "error: unresolved reference {numref}`Figure %s <  My",
    "Invalid equation reference": "error: {eq}`  matrix  ` needs a labelled equation, but 'matrix' is Figure 1",
}

# Examples rendered differently on purpose: title -> (reason, the tag distillgen renders).
DIFFERENT = {
    # distillgen's {note} is Distill's margin note (an aside in the gutter), not a boxed note.
    "note": ("{note} is a margin note", "aside.l-gutter"),
    "Note with no title": ("{note} is a margin note", "aside.l-gutter"),
}

# Warnings distillgen gives on purpose: title -> the start of the message.
WARNED = {
    "block break node - with metadata": "warning: the metadata after '+++' is ignored",
    "block break node - with broken metadata": "warning: the metadata after '+++' is ignored",
    "Image directive": None,  # `:class: bg-primary mb-1`: fine, no warning
}

TITLES = {"seealso": "See also"}  # MyST's title of an admonition kind, when not the kind's name

# -- MyST's tree as an outline -----------------------------------------------------------------


def node(tag: str, children: list | None = None, **props) -> dict:
    return {"tag": tag, "props": props, "children": children or []}


def text_node(value: str) -> dict:
    return node("#text", value=value)


def from_mdast(item: dict) -> list[dict]:
    kind = item["type"]
    children = [n for child in item.get("children", []) for n in from_mdast(child)]
    simple = {
        "paragraph": "p",
        "emphasis": "em",
        "strong": "strong",
        "table": "table",
        "tableRow": "tr",
        "subscript": "sub",
        "superscript": "sup",
        "caption": "figcaption",
        "legend": "figcaption",
    }
    if kind in ("root", "mystDirective", "mystRole", "block"):
        return children
    if kind in ("mystComment", "blockBreak", "mystTarget", "footnoteDefinition"):
        return []  # for the author only, or (footnotes) collected in the page's appendix
    if kind in simple:
        return [node(simple[kind], children)]
    if kind == "text":
        return [text_node(item["value"])]
    if kind == "heading":
        return [node(f"h{item['depth']}", children)]
    if kind == "inlineCode":
        return [node("code", [text_node(item["value"])])]
    if kind == "code":
        emphasized = tuple(item.get("emphasizeLines", ()))
        start = item.get("startingLineNumber", 1) if item.get("showLineNumbers") else None
        return [node("pre", [text_node(item["value"])], start=start, emphasized=emphasized)]
    if kind in ("math", "inlineMath"):
        return [node("math", display=kind == "math", label=item.get("label"))]
    if kind == "admonition":
        if item.get("kind") and not any(c["type"] == "admonitionTitle" for c in item.get("children", [])):
            title = TITLES.get(item["kind"], item["kind"].capitalize())
            children = [node("p.admonition-title", [text_node(title)]), *children]
        return [node("aside.admonition", children)]
    if kind == "admonitionTitle":
        return [node("p.admonition-title", children)]
    if kind == "tableCell":
        return [node("th" if item.get("header") else "td", children)]
    if kind == "container":
        return [node("figure", _captions_last(children), id=item.get("label"))]
    if kind == "image":
        return [node("img", alt=item.get("alt"))]
    if kind == "link":
        return [node("a", children)]
    if kind == "crossReference":  # its text with the number filled in (each example's is 1)
        filled = [text_node(re.sub(r"%s|\{number\}", "1", c["props"]["value"])) for c in children]
        return [node("a", filled)]
    if kind == "footnoteReference":
        return [node("fnref")]
    if kind == "abbreviation":
        return [node("abbr", children, title=item.get("title"))]
    raise AssertionError(f"no outline for mdast node '{kind}'")


def _captions_last(children: list[dict]) -> list[dict]:
    """A figure's content, then one caption (MyST splits caption and legend, and puts a
    table's caption first; distillgen's figure has one caption, after the content)."""
    captions = [c for c in children if c["tag"] == "figcaption"]
    merged = [node("figcaption", [n for c in captions for n in c["children"]])] if captions else []
    return [c for c in children if c["tag"] != "figcaption"] + merged


# -- distillgen's HTML as the same outline -----------------------------------------------------

TRANSPARENT = {"div.table-wrap", "thead", "tbody", "p.image", "span", "code"}


class Outline(HTMLParser):
    """Builds the outline of an HTML fragment: elements keyed `tag.class` where the class says
    what the element is, text with whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = node("root")
        self.stack = [self.root]
        self.skip = 0  # inside an element whose content is not compared (math, numbers)
        self.numbers: list[str] | None = None  # a line number's text goes here, not into the code

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if self.skip:
            self.skip += tag not in ("img", "br", "hr", "mspace")
            return
        name = tag
        for cls in (
            "admonition",
            "admonition-title",
            "l-gutter",
            "footnote-ref",
            "lineno",
            "hll",
            "image",
            "table-wrap",
        ):
            if cls in classes:
                name = f"{tag}.{cls}"
                break
        numbering = {"figure-number", "equation-number"} & set(classes)  # MyST numbers when rendering
        if tag == "math" or name in ("span.lineno", "sup.footnote-ref") or numbering:
            if tag == "math":
                self._add(node("math", display=attrs.get("display") == "block"))
            elif name == "sup.footnote-ref":
                self._add(node("fnref"))
            elif name == "span.lineno":
                pre = next(item for item in reversed(self.stack) if item["tag"] == "pre")
                self.numbers = pre["props"].setdefault("numbers", [])
            self.skip = 1
            return
        if tag == "img":
            self._add(node("img", alt=attrs.get("alt")))
            return
        if tag in ("br", "hr"):
            return
        element = node(name, **({"title": attrs.get("title")} if tag == "abbr" else {}))
        if tag == "figure":
            element["props"]["id"] = attrs.get("id")
        if tag == "code" and self.stack[-1]["tag"] != "pre":
            name = element["tag"] = "code.inline"
        if tag == "div" and "math-display" in classes:
            element["tag"] = "div.math"
            element["props"]["label"] = attrs.get("id")
        self._add(element)
        self.stack.append(element)

    def handle_endtag(self, tag):
        if self.skip:
            self.skip -= tag not in ("img", "br", "hr", "mspace")
            self.numbers = self.numbers if self.skip else None
            return
        if tag in ("img", "br", "hr"):
            return
        while len(self.stack) > 1:
            closed = self.stack.pop()
            if closed["tag"].split(".")[0] == tag:
                break

    def handle_data(self, data):
        if self.numbers is not None:
            self.numbers.append(data)
        elif not self.skip:
            self._add(text_node(data))

    def _add(self, item: dict) -> None:
        self.stack[-1]["children"].append(item)


def from_html(html: str) -> list[dict]:
    parser = Outline()
    parser.feed(html)
    return _simplify(parser.root)["children"]


def _simplify(item: dict) -> dict:
    """Transparent wrappers removed, math blocks as one node, code as its text with line
    numbers and emphasis as properties."""
    children = []
    for child in item["children"]:
        child = _simplify(child)
        if child["tag"] in TRANSPARENT:
            children += child["children"]
        elif child["tag"] == "div.math":  # the equation's label is the block's id
            children += [
                {**c, "props": {**c["props"], "label": child["props"]["label"]}} for c in child["children"]
            ]
        elif child["tag"] == "code.inline":
            children.append(node("code", child["children"]))
        elif child["tag"] == "pre":
            children.append(_code(child))
        else:
            children.append(child)
    return {**item, "children": children}


def _code(pre: dict) -> dict:
    """A code block as its text, its first line number (None: no numbers) and the lines it
    emphasizes."""
    pieces: list[tuple[str, bool]] = []

    def walk(item: dict, emphasized: bool) -> None:
        if item["tag"] == "#text":
            pieces.append((item["props"]["value"], emphasized))
        for child in item["children"]:
            walk(child, emphasized or item["tag"] == "span.hll")

    walk(pre, False)
    text, emphasized = "", []
    for value, emphasis in pieces:
        if emphasis and value.strip() and (line := text.count("\n") + 1) not in emphasized:
            emphasized.append(line)
        text += value
    numbers = pre["props"].get("numbers")
    start = int(numbers[0]) if numbers else None
    return node("pre", [text_node(text.rstrip("\n"))], start=start, emphasized=tuple(emphasized))


def _text(item: dict) -> str:
    if item["tag"] == "#text":
        return item["props"]["value"]
    return "".join(_text(child) for child in item["children"])


# -- comparing outlines ------------------------------------------------------------------------

BLOCKS = {"p", "h1", "h2", "h3", "th", "td", "figcaption", "p.admonition-title", "aside.admonition", "li"}


def normalized(items: list[dict], parent: str = "root") -> list[dict]:
    """Adjacent text joined, whitespace collapsed (trimmed at the edges of blocks), empty text
    dropped; typographic quotes and ellipses written plainly (distillgen typesets prose)."""
    out: list[dict] = []
    for item in items:
        if item["tag"] == "#text":
            value = item["props"]["value"]
            if parent != "pre":
                value = re.sub(r"\s+", " ", value)
                value = value.translate(str.maketrans("‘’“”", "''\"\"")).replace("…", "...")
            if out and out[-1]["tag"] == "#text":
                out[-1] = text_node(out[-1]["props"]["value"] + value)
            else:
                out.append(text_node(value))
        else:
            out.append({**item, "children": normalized(item["children"], item["tag"])})
    if parent in BLOCKS or parent == "root":
        if out and out[0]["tag"] == "#text":
            out[0] = text_node(out[0]["props"]["value"].lstrip())
        if out and out[-1]["tag"] == "#text":
            out[-1] = text_node(out[-1]["props"]["value"].rstrip())
    if parent == "figcaption":  # MyST's caption is a paragraph; a caption written as an argument is not
        out = [c for item in out for c in (item["children"] if item["tag"] == "p" else [item])]
    return [i for i in out if i["tag"] != "#text" or i["props"]["value"].strip() or parent == "pre"]


def same(expected: list[dict], actual: list[dict], where: str = "") -> None:
    """Assert the outlines match; an expected link without text matches any link text (MyST
    fills it in when rendering, as distillgen does), and only the properties MyST gives count."""
    shown = [i["tag"] for i in actual]
    assert [i["tag"] for i in expected] == shown, f"{where}: {[i['tag'] for i in expected]} != {shown}"
    for want, got in zip(expected, actual, strict=True):
        here = f"{where}/{want['tag']}"
        if want["tag"] == "#text":
            assert want["props"]["value"] == got["props"]["value"], here
            continue
        for key, value in want["props"].items():
            if value not in (None, ()) or key in ("start",):
                assert got["props"].get(key) == value, f"{here}: {key} {got['props'].get(key)!r} != {value!r}"
        if want["tag"] == "a" and not want["children"]:
            continue
        if want["tag"] == "math":
            continue
        same(want["children"], got["children"], here)


# -- the test ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """The images the examples name, as real image files."""
    folder = tmp_path_factory.mktemp("myst-spec")
    for name in ("fig.jpg", "fun-fish.png"):
        shutil.copy(ARTICLES / "weight-colours.svg", folder / name)
    return folder


@pytest.mark.parametrize("case", CASES)
def test_myst_spec_example(case, folder):
    title = case["title"]
    html, diagnostics = render_snippet(folder, case["myst"] + "\n")
    if title in DIAGNOSED:
        assert html is None, f"expected {DIAGNOSED[title]!r}, built:\n{html}"
        assert any(DIAGNOSED[title] in d for d in diagnostics), diagnostics
        return
    assert html is not None, diagnostics
    warned = [d for d in diagnostics if "warning:" in d]
    if WARNED.get(title):
        assert any(WARNED[title] in d for d in warned), diagnostics
    else:
        assert not warned, diagnostics
    expected = normalized(from_mdast(case["mdast"]))
    actual = normalized(from_html(html))
    if title in DIFFERENT:
        reason, tag = DIFFERENT[title]
        assert [i["tag"] for i in actual] == [tag], reason
        expected_text = _text(node("root", expected)).replace(TITLES.get("note", "Note"), "", 1)
        assert re.sub(r"\s", "", _text(node("root", actual))) == re.sub(r"\s", "", expected_text), reason
        return
    same(expected, actual)


def test_every_listed_example_exists():
    titles = {case.values[0]["title"] for case in CASES}
    assert set(DIAGNOSED) | set(DIFFERENT) | set(WARNED) <= titles
