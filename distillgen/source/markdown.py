"""The markdown-it parser: CommonMark + tables, front matter, footnotes, math, MyST syntax.

MyST directives are fenced blocks whose info string is `{kind} args` (backticks or colons).
The `directives` core rule turns them into `directive` tokens whose meta holds the parsed
`Directive`; its body is parsed as Markdown too (for captions), with line numbers kept.
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from mdit_py_plugins.anchors.index import slugify
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

from distillgen.safety import markdown_link_allowed
from distillgen.source.document import Directive

_DIRECTIVE_INFO = re.compile(r"^\{(?P<kind>[A-Za-z][\w:-]*)\}\s*(?P<args>.*)$")
_OPTION_LINE = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")


def make_parser() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"typographer": True})
        .enable(["table", "strikethrough", "replacements", "smartquotes"])
        .use(front_matter_plugin)
        .use(footnote_plugin)
        .use(dollarmath_plugin, double_inline=True)
        .use(myst_role_plugin)
        .use(colon_fence_plugin)
    )
    md.core.ruler.push("anchor", _heading_anchors_rule)
    md.validateLink = markdown_link_allowed  # the site's one URL rule (safety.py)
    md.core.ruler.push("directives", _directives_rule)
    md.core.ruler.push("line_numbers", _line_numbers_rule)
    return md


def _heading_anchors_rule(state: StateCore) -> None:
    """An `id` for every `##` and `###` heading, GitHub-style ('Curve detectors' ->
    'curve-detectors', then 'curve-detectors-1', …), as mdit_py_plugins' anchors plugin does.

    That plugin finds the next free suffix by trying 1, 2, 3, … for every repeated title, which
    is quadratic: a 5 MB article repeating '## Results' spent most of its build there. Here
    each title remembers the last suffix it used, so the whole pass is linear.
    """
    tokens = state.tokens
    taken = {str(t.attrs["id"]) for t in tokens if t.type == "heading_open" and t.attrs.get("id")}
    next_suffix: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.tag not in ("h2", "h3") or token.attrs.get("id"):
            continue
        children = tokens[index + 1].children or []
        slug = slugify("".join(c.content for c in children if c.type in ("text", "code_inline")))
        unique, suffix = slug, next_suffix.get(slug, 0)
        while unique in taken:
            suffix += 1
            unique = f"{slug}-{suffix}"
        next_suffix[slug] = suffix
        taken.add(unique)
        token.attrSet("id", unique)


def _directives_rule(state: StateCore) -> None:
    path: Path = state.env.get("path", Path("<string>"))
    for token in state.tokens:
        if token.type not in ("fence", "colon_fence"):
            continue
        match = _DIRECTIVE_INFO.match(token.info.strip())
        if not match:
            continue
        token.type = "directive"
        token.meta["directive"] = _parse_directive(
            state.md, match["kind"], match["args"].strip(), token, path, state.env
        )


def _parse_directive(md: MarkdownIt, kind: str, args: str, token: Token, path: Path, env: dict) -> Directive:
    fence_line = (token.map[0] if token.map else 0) + env.get("line_offset", 0)  # 0-based
    lines = token.content.splitlines()
    options: dict[str, str] = {}
    option_lines: dict[str, int] = {}
    n = 0
    while n < len(lines) and (m := _OPTION_LINE.match(lines[n])):
        options[m["key"]] = m["value"].strip()
        option_lines[m["key"]] = fence_line + 2 + n
        n += 1
    rest = lines[n:]
    blank = 0
    while blank < len(rest) and not rest[blank].strip():
        blank += 1
    body = "\n".join(rest[blank:]).rstrip()
    body_env = {
        "path": path,
        "line_offset": fence_line + 1 + n + blank,
        "references": env.get("references", {}),
    }
    body_tokens = md.parse(body, body_env) if body else []
    return Directive(
        kind=kind,
        args=args,
        options=options,
        option_lines=option_lines,
        body=body,
        body_tokens=body_tokens,
        path=path,
        line=fence_line + 1,
    )


def _line_numbers_rule(state: StateCore) -> None:
    """Give every inline child a 1-based `line` in meta (soft/hard breaks count lines)."""
    offset = state.env.get("line_offset", 0)
    for token in state.tokens:
        if token.map:
            token.meta.setdefault("line", token.map[0] + offset + 1)
        if token.type != "inline" or not token.map:
            continue
        line = token.map[0] + offset + 1
        for child in token.children or []:
            child.meta["line"] = line
            if child.type in ("softbreak", "hardbreak"):
                line += 1
            elif child.type in ("code_inline", "myst_role", "math_inline", "text"):
                line += child.content.count("\n")
