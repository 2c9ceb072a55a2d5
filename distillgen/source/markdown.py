"""The markdown-it parser: CommonMark + tables, front matter, footnotes, math, MyST syntax.

MyST directives are fenced blocks whose info string is `{kind} args` (backticks or colons).
The `directives` core rule turns them into `directive` tokens whose meta holds the parsed
`Directive`; its body is parsed as Markdown too (captions, notes), with line numbers kept, and
shares the article's link references and footnotes. MyST's block syntax (`(label)=` targets,
`% comments`, `+++` breaks) comes from mdit_py_plugins' myst_blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml
from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.anchors.index import slugify
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.footnote import footnote_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.front_matter.index import _front_matter_rule
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

from distillgen.safety import markdown_link_allowed
from distillgen.source.document import Directive

_DIRECTIVE_INFO = re.compile(r"^\{(?P<kind>[A-Za-z][\w:-]*)\}\s*(?P<args>.*)$")
# `:::note` (MyST wants braces): read as the directive, with a warning from the article.
_BARE_NAME = re.compile(r"^(?P<kind>[A-Za-z][\w:-]*)\s*(?P<args>.*)$")
_OPTION_LINE = re.compile(r"^:(?P<key>[\w-]+):(?:\s+(?P<value>.*))?$")

# Ids the article page itself uses (templates/article.html), and the patterns of those it
# makes for footnotes, citations and hover cards: a heading or label must not take one.
PAGE_ANCHORS = ("contents", "appendix", "footnotes", "references", "citation", "updates")
_PAGE_ID_PATTERNS = re.compile(
    r"^(fn-\d+|fnref-\d+(-\d+)?|ref-.*|unit-[0-9a-f]{12}-\d+|circuit-[0-9a-f]{8}.*|appendix-\d+|hover-[0-9a-f]{10})$"
)


def reserved_id(anchor: str) -> bool:
    """Whether the page itself may use `anchor` as an id."""
    return anchor in PAGE_ANCHORS or _PAGE_ID_PATTERNS.match(anchor) is not None


def make_parser() -> MarkdownIt:
    md = (
        MarkdownIt("commonmark", {"typographer": True})
        .enable(["table", "strikethrough", "replacements", "smartquotes"])
        .use(front_matter_plugin)
        # Every `[^x]` is a reference, so an undefined one is reported instead of staying text;
        # the `footnotes` rule below moves definitions to the end, directive bodies included.
        .use(footnote_plugin, move_to_end=False, always_match_refs=True)
        # Pandoc's rules for `$`: no space inside the dollars and no digit after the closing
        # one, so prose such as "$5 and $10" stays prose.
        .use(dollarmath_plugin, double_inline=True, allow_space=False, allow_digits=False)
        .use(myst_role_plugin)
        .use(myst_block_plugin)
        .use(colon_fence_plugin)
    )
    md.block.ruler.at("front_matter", _front_matter_of_the_article)
    md.inline.ruler.before("text", "source_position", _source_position_rule)
    md.inline.ruler2.push("source_position", _last_source_position)
    md.validateLink = markdown_link_allowed  # type: ignore[method-assign]  # the site's one URL rule
    md.core.ruler.push("targets", _targets_rule)
    md.core.ruler.push("anchor", _heading_anchors_rule)
    md.core.ruler.push("line_numbers", _line_numbers_rule)
    md.core.ruler.push("directives", _directives_rule)
    md.core.ruler.push("footnotes", _footnotes_rule)
    return md


def _front_matter_of_the_article(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """Front matter only at the top of the article: a directive body starting with a thematic
    break (`---`) is Markdown, not YAML."""
    if state.env.get("nested"):
        return False
    return _front_matter_rule(state, start, end, silent)


def _source_position_rule(state: StateInline, silent: bool) -> bool:
    """Never matches; remembers where in the inline source each token starts, so that line
    numbers count the newlines inside code spans, link titles, inline HTML and image alt text
    (markdown-it keeps no inline positions, and normalizes some of those newlines away).

    The inline parser calls the first rule at every position it tries; the tokens pushed
    since the previous call started at the previous position."""
    if silent:
        return False
    marks = state.__dict__.setdefault("_distillgen_marks", [0, 0])  # [token count, position]
    for token in state.tokens[marks[0] :]:
        token.meta.setdefault("pos", marks[1])
    marks[0], marks[1] = len(state.tokens), state.pos
    return False


def _last_source_position(state: StateInline) -> None:
    """The tokens pushed after the last position the inline parser tried started there."""
    count, position = state.__dict__.get("_distillgen_marks", (0, 0))
    for token in state.tokens[count:]:
        token.meta.setdefault("pos", position)


def _targets_rule(state: StateCore) -> None:
    """`(label)=` before a heading names the heading, as MyST does (`<h2 id="label">`)."""
    tokens = state.tokens
    for index, token in enumerate(tokens[:-1]):
        following = tokens[index + 1]
        if token.type == "myst_target" and following.type == "heading_open":
            following.attrSet("id", token.content)
            token.meta["heading"] = True


def _heading_anchors_rule(state: StateCore) -> None:
    """An `id` for every `##` and `###` heading, GitHub-style ('Curve detectors' ->
    'curve-detectors', then 'curve-detectors-1', …), as mdit_py_plugins' anchors plugin does,
    never one the page itself uses ('references' -> 'references-1').

    That plugin finds the next free suffix by trying 1, 2, 3, … for every repeated title, which
    is quadratic: a 5 MB article repeating '## Results' spent most of its build there. Here
    each title remembers the last suffix it used, so the whole pass is linear.
    """
    tokens = state.tokens
    taken = {str(t.attrs["id"]) for t in tokens if t.type == "heading_open" and t.attrs.get("id")}
    taken.update(PAGE_ANCHORS)
    next_suffix: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.tag not in ("h2", "h3") or token.attrs.get("id"):
            continue
        children = tokens[index + 1].children or []
        slug = slugify("".join(c.content for c in children if c.type in ("text", "code_inline")))
        if _PAGE_ID_PATTERNS.match(slug):  # '## Fn 1' must not take the first footnote's id
            slug = f"section-{slug}"
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
        info = token.info.strip()
        match = _DIRECTIVE_INFO.match(info)
        braces = match is not None
        if not match and token.type == "colon_fence":  # colon fences are for directives only
            match = _BARE_NAME.match(info)
            if match is None:
                token.type = "directive"
                token.meta["directive"] = _parse_directive(state, "", info, token, path, False)
                continue
        if not match:
            continue
        token.type = "directive"
        token.meta["directive"] = _parse_directive(
            state, match["kind"], match["args"].strip(), token, path, braces
        )


def _parse_directive(
    state: StateCore, kind: str, args: str, token: Token, path: Path, braces: bool
) -> Directive:
    env = state.env
    fence_line = (token.map[0] if token.map else 0) + env.get("line_offset", 0)  # 0-based
    lines = token.content.splitlines()
    options: dict[str, str] = {}
    option_lines: dict[str, int] = {}
    problems: list[tuple[int, str]] = []
    first_body = _yaml_options(lines, fence_line, options, option_lines, problems)
    if first_body is None:  # `:key: value` lines; blank lines before and between them too
        first_body, index = 0, 0
        while index < len(lines):
            if (m := _OPTION_LINE.match(lines[index])) is None and lines[index].strip():
                break
            if m is not None:
                options[m["key"]] = (m["value"] or "").strip()
                option_lines[m["key"]] = fence_line + 2 + index
                first_body = index + 1
            index += 1
    rest = lines[first_body:]
    blank = 0
    while blank < len(rest) and not rest[blank].strip():
        blank += 1
    body = "\n".join(rest[blank:]).rstrip()
    body_env = {
        "path": path,
        "line_offset": fence_line + 1 + first_body + blank,
        "references": env.setdefault("references", {}),
        "footnotes": env.setdefault("footnotes", {}),
        "nested": True,
    }
    body_tokens = state.md.parse(body, body_env) if body else []
    if "name" in options and "label" not in options:  # MyST's `:name:` is distillgen's `:label:`
        options["label"] = options.pop("name")
        option_lines["label"] = option_lines.pop("name")
    return Directive(
        kind=kind,
        args=args,
        options=options,
        option_lines=option_lines,
        body=body,
        body_tokens=body_tokens,
        path=path,
        line=fence_line + 1,
        fence=token.markup,
        braces=braces,
        problems=problems,
        args_tokens=_inline_tokens(state.md, args, body_env, fence_line + 1),
    )


def _inline_tokens(md: MarkdownIt, text: str, env: dict, line: int) -> list[Token]:
    """`text` parsed as inline Markdown (a title or caption written as a directive's argument),
    every token on `line`."""
    if not text:
        return []
    tokens = md.parseInline(text, env)
    for token in _walk(tokens):
        token.meta["line"] = line
    return tokens


def _yaml_options(
    lines: list[str],
    fence_line: int,
    options: dict[str, str],
    option_lines: dict[str, int],
    problems: list[tuple[int, str]],
) -> int | None:
    """MyST's YAML option block (`---`, `key: value` lines, `---` at the top of the body): the
    index of the first body line, or None when the body has no such block."""
    if not lines or lines[0].strip() != "---":
        return None
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        problems.append(
            (fence_line + 2, "the option block opened with '---' is never closed by a second '---'")
        )
        return len(lines)
    first = fence_line + 3  # 1-based line of the block's first YAML line
    try:
        root = yaml.compose("\n".join(lines[1:end]), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problems.append((first + (mark.line if mark else 0), f"malformed option block: {exc.problem or exc}"))
        return end + 1
    if root is None:
        return end + 1
    if not isinstance(root, yaml.MappingNode):
        problems.append((first, "the option block must be a YAML mapping of options to values"))
        return end + 1
    for key, value in root.value:
        line = first + key.start_mark.line
        if not isinstance(value, yaml.ScalarNode):
            problems.append((line, f"option '{key.value}' must be a single value, not a list or mapping"))
            continue
        options[str(key.value)] = "" if value.tag.endswith(":null") else str(value.value)
        option_lines[str(key.value)] = line
    return end + 1


def _footnotes_rule(state: StateCore) -> None:
    """Footnotes in reading order, directive bodies included: definitions (wherever written)
    leave the text for a footnote block at the end, numbered by first reference.

    mdit_py_plugins numbers footnotes as its parser meets them, which is before directive
    bodies are parsed, and drops unused definitions silently. Here an unused definition is
    kept in `env["footnotes"]["unused"]` (label, line), and the defined labels in `"defined"`,
    for the article to report."""
    if state.env.get("nested") or "footnotes" not in state.env:
        return
    data = state.env["footnotes"]
    definitions: dict[str, tuple[list[Token], int]] = {}
    state.tokens = _take_definitions(state.tokens, definitions)
    inline_notes = data.get("list", {})
    # A label, or an inline note's id -> (number in reading order, the plugin's id). A label
    # can have two plugin ids when a body defines it after the text referenced it.
    numbers: dict[str | int, tuple[int, int]] = {}
    uses: dict[str | int, int] = {}
    pending = [state.tokens]
    seen_labels: set[str] = set()
    while pending:  # the text, then the footnotes that its footnotes reference, …
        tokens = pending.pop(0)
        for token in _walk(tokens):
            if token.type != "footnote_ref":
                continue
            label = token.meta.get("label")
            if label is not None and label not in definitions:
                continue  # undefined: the article reports it
            key = token.meta["id"] if label is None else label
            if key not in numbers:
                numbers[key] = (len(numbers), token.meta["id"])
                if label is not None:
                    seen_labels.add(label)
                    pending.append(definitions[label][0])
                elif "tokens" in inline_notes.get(key, {}):
                    pending.append(inline_notes[key]["tokens"])
            token.meta["id"] = numbers[key][0]
            token.meta["subId"] = uses.get(key, 0)
            uses[key] = token.meta["subId"] + 1
    data["defined"] = set(definitions)
    data["unused"] = [(label, line) for label, (_, line) in definitions.items() if label not in seen_labels]
    if not numbers:
        return
    block = [Token("footnote_block_open", "", 1)]
    for key, (number, old) in sorted(numbers.items(), key=lambda item: item[1]):
        label = key if isinstance(key, str) else None
        note = inline_notes.get(old, {})
        block.append(Token("footnote_open", "", 1, meta={"id": number, "label": label}))
        if label is not None:
            block.extend(definitions[label][0])
        else:  # an inline footnote, ^[text]
            inline = Token("inline", "", 0, content=note.get("content", ""), children=note.get("tokens", []))
            block += [Token("paragraph_open", "p", 1), inline, Token("paragraph_close", "p", -1)]
        block.append(Token("footnote_close", "", -1))
    block.append(Token("footnote_block_close", "", -1))
    state.tokens.extend(block)


def _take_definitions(tokens: list[Token], definitions: dict[str, tuple[list[Token], int]]) -> list[Token]:
    """`tokens` without their footnote definitions, which go into `definitions`; the first
    definition of a label counts, as in the plugin."""
    kept: list[Token] = []
    current: list[Token] | None = None
    for token in tokens:
        if token.type == "footnote_reference_open":
            current = []
            label, line = token.meta["label"], token.meta.get("line", 0)
        elif token.type == "footnote_reference_close":
            definitions.setdefault(label, (current or [], line))
            current = None
        elif current is not None:
            current.append(token)
        else:
            if token.type == "directive":
                body = token.meta["directive"]
                body.body_tokens = _take_definitions(body.body_tokens, definitions)
            kept.append(token)
    return kept


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.children:
            yield from _walk(token.children)
        if token.type == "directive":
            yield from _walk(token.meta["directive"].body_tokens)


def _line_numbers_rule(state: StateCore) -> None:
    """Give every token a 1-based `line` in meta: a block's first line, an inline child's line
    from where it starts in the source (`_source_position_rule`)."""
    offset = state.env.get("line_offset", 0)
    for token in state.tokens:
        if token.map:
            token.meta.setdefault("line", token.map[0] + offset + 1)
        if token.type == "inline" and token.map:
            _inline_lines(token.children or [], token.content, token.map[0] + offset + 1)


def _inline_lines(children: list[Token], source: str, first: int) -> None:
    line, previous = first, 0
    for child in children:
        position = child.meta.pop("pos", None)
        if position is not None and position > previous:
            line += source.count("\n", previous, position)
            previous = position
        child.meta["line"] = line
        if child.type == "image" and child.children:  # the alt text, parsed on its own
            _inline_lines(child.children, child.content, line)
