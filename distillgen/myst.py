"""distillgen's computed directives in a MyST project (mystmd, Jupyter Book 2): an executable
plugin, the console script `distillgen-myst`.

    # myst.yml
    project:
      plugins:
        - type: executable
          path: distillgen.plugin     # an executable file that runs `distillgen-myst "$@"`

mystmd runs the plugin with no argument for its spec (`spec`: every computed directive with
its declared options, and the `{unit}` role), then once per directive with `--directive NAME`
(or `--role unit`), the directive's parsed data as JSON on standard input, and reads a list of
MyST AST nodes from standard output. Each directive is checked, planned, computed and rendered
by the build's own stages, as a one-figure article in the MyST project's folder (the folder of
`myst.yml`, which is also where paths in options are read from): the same parser and options,
the same cache (`<project>/.distillgen/cache`, `distillgen.yml` there for defaults), the same
keys, so a figure a distillgen build or a notebook computed is not computed again. The figure
comes back as a MyST figure: each image and diagram as an image file (written under
`<project>/.distillgen/myst/`), the author's caption, numbered and referenceable by its
`:label:`. Interactivity (hover cards, highlighted edges) stays on distillgen's own site.

An author's mistake exits with status 1 and `line N: error: …` on standard error, which mystmd
reports with the page's name; the other pages build. With DISTILLGEN_FROZEN=1 (CI) nothing is
computed: a figure missing from the cache is such an error.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import sys
from html import unescape
from pathlib import Path
from typing import Any

from distillgen.figures import DIRECTIVES
from distillgen.kinds import COMPUTED_FIGURES
from distillgen.notebook import css_rules, inline_files
from distillgen.render.page import templates_dir

FRONT = "---\ntitle: MyST\n---\n"  # the one-figure article's front matter: the directive follows
FIRST_LINE = FRONT.count("\n") + 1
ARTICLE = "myst.md"  # the one-figure article's name, in the project's folder (never written)
FIGURES = Path(".distillgen") / "myst"  # under the project: the image files MyST copies
# Anything a Markdown parser may take for the end of a line: a value holding one could end the
# one-figure article's directive and add Markdown (raw HTML) of its own.
_BREAK = re.compile(r"[\n\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


def spec() -> dict[str, Any]:
    """What the plugin provides, as mystmd reads it: each computed directive with its argument,
    its declared options (as strings: distillgen parses them, with its own messages) and a
    MyST body (the caption); the `{unit}` role."""
    directives = []
    for name in COMPUTED_FIGURES:
        kind = DIRECTIVES[name]
        entry: dict[str, Any] = {
            "name": name,
            "doc": kind.doc,
            "options": {o.name: {"type": "string", "doc": o.doc} for o in kind.declared_options()},
            "body": {"type": "myst", "doc": "the caption"},
        }
        if kind.argument is not None:
            entry["arg"] = {"type": "string", "doc": kind.argument.doc, "required": kind.argument.required}
        directives.append(entry)
    unit = {"name": "unit", "doc": "A unit inline: its feature visualization", "body": {"type": "string"}}
    return {"name": "distillgen", "directives": directives, "roles": [unit], "transforms": []}


class AuthorError(Exception):
    """The directive's mistakes, as `line N: error: …` lines."""


def directive(name: str, data: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """The MyST nodes of one directive: a numbered figure of its images and the caption."""
    line = int(data.get("node", {}).get("position", {}).get("start", {}).get("line", 1))
    options = {key: str(value) for key, value in (data.get("options") or {}).items()}
    argument = str(data.get("arg") or "")
    for index, (key, value) in enumerate(options.items()):  # one line each, as distillgen reads them
        if _BREAK.search(value) or _BREAK.search(key):
            raise AuthorError(f"line {line + 1 + index}: error: the value of ':{key}:' must be one line")
    if _BREAK.search(argument):
        raise AuthorError(f"line {line}: error: the argument of {{{name}}} must be one line")
    written = "".join(f":{key}: {value}\n" for key, value in options.items())
    text = f"```{{{name}}} {argument}\n{written}```\n"
    article, outcome = _computed(text, root, line)
    body, _footnotes, _references = article.render(outcome.artifacts)
    images = _images(body, article.assets, root)
    label = options.get("label")
    figure: dict[str, Any] = {"type": "container", "kind": "figure", "children": images}
    if label:
        figure.update(label=label, identifier=label)
    caption = data.get("body")
    if caption:
        figure["children"].append({"type": "caption", "children": caption})
    return [figure]


def role(data: dict[str, Any], root: Path) -> list[dict[str, Any]]:
    """`{unit}`: the unit's feature visualization inline, linked to the image at full size."""
    line = int(data.get("node", {}).get("position", {}).get("start", {}).get("line", 1))
    written = str(data.get("body") or "").strip()
    if not written or "`" in written or _BREAK.search(written):
        raise AuthorError(f"line {line}: error: {{unit}} takes a unit's address on one line, e.g. mixed4:52")
    article, outcome = _computed(f"{{unit}}`{written}`\n", root, line)
    body, _footnotes, _references = article.render(outcome.artifacts)
    images = [
        {**image, "alt": f"feature visualization of {written}"}
        for image in _images(body, article.assets, root, decorative=True)
    ]
    code = {"type": "inlineCode", "value": written}
    if not images:
        return [code]
    return [{"type": "link", "url": images[0]["url"], "children": [{**images[0], "width": "1.5em"}, code]}]


def _computed(text: str, root: Path, line: int):
    """The one-figure article of `text` (at MyST line `line`), planned and computed through the
    project's cache; AuthorError with its mistakes."""
    from distillgen import project
    from distillgen.compute import Options
    from distillgen.diagnostics import BuildFailed, Reporter
    from distillgen.safety import Grants

    reporter = Reporter()
    frozen = os.environ.get("DISTILLGEN_FROZEN", "") not in ("", "0")
    opened = project.Project.open(
        root,
        reporter,
        Options(device=os.environ.get("DISTILLGEN_DEVICE", "auto"), frozen=frozen),
        grants=Grants(raw_html=False),  # a figure is drawn by distillgen, never by markup in it
    )
    article = opened.article(FRONT + text, root / ARTICLE)
    try:
        if article is None:
            raise BuildFailed(reporter.errors)
        opened.plan([article])
        outcome = opened.compute([article])
    except BuildFailed:
        raise AuthorError(_messages(reporter, line)) from None
    return article, outcome


def _messages(reporter, line: int) -> str:
    """The reporter's errors: the one-figure article's at the lines of the MyST page, another
    file's (distillgen.yml) at its own."""
    found = []
    for diagnostic in reporter.diagnostics:
        if diagnostic.severity != "error":
            continue
        if diagnostic.path is not None and diagnostic.path.name != ARTICLE:
            where = f"{diagnostic.path}:{diagnostic.line}" if diagnostic.line else str(diagnostic.path)
        elif diagnostic.line:
            where = f"line {diagnostic.line - FIRST_LINE + line}"
        else:
            where = "myst"
        found.append(f"{where}: error: {diagnostic.message}")
    return "\n".join(found) or "error: the figure could not be made"


_PICTURE = re.compile(r"<img\b[^>]*>|<svg\b[^>]*>.*?</svg>", re.S)
_ATTRIBUTE = re.compile(r'([\w-]+)="([^"]*)"')


def _images(html: str, assets: dict[str, Path], root: Path, decorative: bool = False) -> list[dict[str, Any]]:
    """Image nodes for the figure's pictures in order, their files written under the project
    (MyST reads a URL starting with '/' from the project's folder): each <img> with alt text
    (not the heatmaps over an attribution's inputs, nor, unless `decorative`, images without),
    and each chart or circuit once (its desktop or any-width drawing, not the phone's)."""
    folder = root / FIGURES
    folder.mkdir(parents=True, exist_ok=True)
    nodes = []
    for match in _PICTURE.finditer(html):
        tag = match[0]
        attributes = {k: unescape(v) for k, v in _ATTRIBUTE.findall(tag.split(">", 1)[0])}
        classes = attributes.get("class", "").split()
        if tag.startswith("<img"):
            path = assets.get(attributes.get("src", ""))
            if path is None or not (attributes.get("alt") or decorative) or "map-heat" in classes:
                continue
            name = Path(attributes["src"]).name
            shutil.copyfile(path, folder / name)
            alt = attributes.get("alt", "")
        else:
            if "narrow" in classes or re.search(r"<script|\son\w+=", tag, re.I):  # ours never script
                continue
            if "circuit-svg" not in classes:  # a chart: its rules read `.plot …`
                tag = (
                    tag.replace("<svg", '<svg class="plot"', 1)
                    if "class=" not in tag.split(">", 1)[0]
                    else tag
                )
            drawing = _standalone(inline_files(tag, assets))  # its nodes' images inside it
            name = hashlib.sha256(drawing.encode()).hexdigest()[:16] + ".svg"
            (folder / name).write_text(drawing, encoding="utf-8")
            title = re.search(r"<title>(.*?)</title>", tag, re.S)
            alt = unescape(title[1]) if title else attributes.get("aria-label", "")
        nodes.append({"type": "image", "url": f"/{FIGURES.as_posix()}/{name}", "alt": alt})
    return nodes


def _standalone(svg: str) -> str:
    """An inline SVG as a file: with its namespaces and the site's rules for diagrams and
    charts (an inline drawing takes its colours and dashes from the page's stylesheet)."""
    opening = svg.split(">", 1)[0]
    if "xmlns=" not in opening:
        svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
    if "xlink:" in svg and "xmlns:xlink" not in opening:
        svg = svg.replace("<svg", '<svg xmlns:xlink="http://www.w3.org/1999/xlink"', 1)
    head, rest = svg.split(">", 1)
    return f"{head}><style><![CDATA[{drawing_css()}]]></style>{rest}"


@functools.cache
def drawing_css() -> str:
    """distill.css's variables and its rules for circuits and charts."""
    css = (templates_dir() / "static" / "distill.css").read_text(encoding="utf-8")
    words = ("svg", ".plot", ".circuit", ".edge", ".node", ".glyph")
    return "\n".join(
        f"{prelude} {{{body}}}"
        for prelude, body in css_rules(css)
        if prelude == ":root" or (not prelude.startswith("@") and any(w in prelude for w in words))
    )


def project_root(start: Path) -> Path:
    """The folder of the nearest `myst.yml` at or above `start` (mystmd runs plugins there)."""
    return next((p for p in (start, *start.parents) if (p / "myst.yml").is_file()), start)


def main(argv: list[str] | None = None) -> int:
    """`distillgen-myst`: the spec with no argument; `--directive NAME` or `--role NAME` with
    the node's data on standard input."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(json.dumps(spec()))
        return 0
    if len(args) != 2 or args[0] not in ("--directive", "--role", "--transform"):
        print("usage: distillgen-myst [--directive NAME | --role NAME] < data.json", file=sys.stderr)
        return 2
    data = json.load(sys.stdin)
    root = project_root(Path.cwd())
    try:
        if args[0] == "--role":
            nodes = role(data, root)
        elif args[0] == "--directive" and args[1] in COMPUTED_FIGURES:
            nodes = directive(args[1], data, root)
        else:
            print(f"error: distillgen provides no {args[0][2:]} '{args[1]}'", file=sys.stderr)
            return 1
    except AuthorError as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:  # the project's folder not writable, a full disk
        print(f"error: cannot write the figure's files under {root / FIGURES}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(nodes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
