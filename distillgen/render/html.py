"""markdown-it render rules for the tokens distillgen adds or renders differently.

Each rule reads the `Article` from `env["article"]`; the check pass already validated
everything, so these rules only format. Directives and roles render through their kinds
(`Article.render_entry`).
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import unquote

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from distillgen.render.math import split_label, to_mathml
from distillgen.source.document import role_of

_FORMATTER = HtmlFormatter(nowrap=True)
PYGMENTS_STYLE = "default"
PYGMENTS_DARK_STYLE = "github-dark"  # for dark mode (the reader's system setting, or the toggle)


def pygments_css() -> str:
    """Code colours: the light style, and the dark one where the page is dark (the toggle's
    choice or the reader's system), on screens only: print is always light."""
    dark = HtmlFormatter(style=PYGMENTS_DARK_STYLE)
    return "\n".join(
        [
            HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight"),
            "@media screen {",
            dark.get_style_defs(':root[data-theme="dark"] .highlight'),
            "}",
            "@media screen and (prefers-color-scheme: dark) {",
            dark.get_style_defs(':root:not([data-theme="light"]) .highlight'),
            "}",
        ]
    )


def install(md: MarkdownIt) -> MarkdownIt:
    """Register the rules on `md` (after the plugins, whose own rules these replace)."""
    for name, rule in _RULES.items():
        md.add_render_rule(name, rule)
    return md


def _directive(self, tokens: list[Token], idx: int, options, env) -> str:
    return env["article"].render_entry(tokens[idx].meta["directive"]) + "\n"


def _role(self, tokens: list[Token], idx: int, options, env) -> str:
    token = tokens[idx]
    if token.meta.get("unknown"):
        return f"<code>{escape(token.content)}</code>"
    return env["article"].render_entry(role_of(token, env["article"].doc.path))


def _math_inline(self, tokens, idx, options, env) -> str:
    return to_mathml(tokens[idx].content, False)


def _math_block(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    latex, name = split_label(token.content)
    name = token.info if token.type == "math_block_label" else name
    return equation_html(to_mathml(latex, True), env["article"].labels.target(name) if name else None)


def equation_html(mathml: str, target) -> str:
    """Display math; a labelled equation has its anchor and its number, "(2)"."""
    if target is None:
        return f'<div class="math-display">{mathml}</div>\n'
    number = f'<span class="equation-number">({target.number})</span>'
    return f'<div class="math-display numbered" id="{escape(target.anchor)}">{mathml}{number}</div>\n'


def fence_language(info: str) -> str:
    """The language of a fence's info string, its backslash escapes and entities decoded."""
    words = unescapeAll(info).split()
    return words[0] if words else ""


def highlighted(code: str, language: str, formatter: HtmlFormatter = _FORMATTER) -> str:
    """`code` as Pygments HTML, its blank first and last lines kept (a lexer strips them by
    default) and nothing added to empty code."""
    try:
        lexer = get_lexer_by_name(language, stripnl=False, ensurenl=False) if language else None
    except ClassNotFound:
        lexer = None
    return highlight(code, lexer or TextLexer(stripnl=False, ensurenl=False), formatter)


def _fence(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    language = fence_language(token.info)
    code = highlighted(token.content, language)
    data = f' data-language="{escape(language)}"' if language else ""
    return f'<pre class="highlight"{data}><code>{code}</code></pre>\n'


def _footnote_ref(self, tokens, idx, options, env) -> str:
    meta = tokens[idx].meta
    number = meta["id"] + 1
    ref_id = f"fnref-{number}" + (f"-{meta['subId']}" if meta.get("subId") else "")
    return (
        f'<sup class="footnote-ref"><a href="#fn-{number}" id="{ref_id}" '
        f'data-hover-ref="fn-{number}">{number}</a></sup>'
    )


def _link_open(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    target = env["article"].labels.link_target(str(token.attrs.get("href", "")))
    if target is not None:  # `[](label)` as MyST writes it links to `#label`
        token.attrSet("href", f"#{target.anchor}")
    html = self.renderToken(tokens, idx, options, env)
    if target is not None and tokens[idx + 1].type == "link_close":
        return html + env["article"].shown(target)  # `[](#label)` shows the target's number or title
    return html


def local_image(src: str) -> str | None:
    """The file an image's `src` names (percent escapes decoded: markdown-it encodes spaces and
    accents), or None for a remote or inline image."""
    if not src or src.startswith(("data:", "//")) or re.match(r"^[A-Za-z][\w+.-]*:", src):
        return None
    return unquote(src)


_RAW_IMG_SRC = re.compile(r"""(<img\b[^>]*?\ssrc\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE)


def raw_images(html: str) -> list[str]:
    """The local files that raw HTML's `<img src>` attributes name."""
    found = (local_image(m[2] or m[3] or m[4] or "") for m in _RAW_IMG_SRC.finditer(html))
    return [src for src in found if src]


def _image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    if local_image(str(token.attrs.get("src", ""))):
        token.attrs["src"] = env["article"].images.url(str(token.attrs["src"]))
    token.attrs["loading"] = "lazy"
    return self.image(tokens, idx, options, env)


def _raw_html(self, tokens, idx, options, env) -> str:
    """Raw HTML as written (the site owner allows it), its local `<img>`s pointing at the copies
    the page publishes."""

    def published(match: re.Match) -> str:
        src = match[2] or match[3] or match[4] or ""
        if not local_image(src):
            return match[0]
        return f'{match[1]}"{escape(env["article"].images.url(src))}"'

    return _RAW_IMG_SRC.sub(published, tokens[idx].content)


def inline_html(md: MarkdownIt, children: list[Token], env: dict) -> str:
    """Inline tokens as HTML without their links and footnote marks: a heading's title where
    the table of contents or a reference links to it."""
    kept = [c for c in children if c.type not in ("link_open", "link_close", "footnote_ref")]
    renderer: RendererHTML = md.renderer  # type: ignore[assignment]  # markdown-it's HTML renderer
    return renderer.renderInline(kept, md.options, env)


def _table_open(self, tokens, idx, options, env) -> str:
    return '<div class="table-wrap">' + self.renderToken(tokens, idx, options, env)


def _table_close(self, tokens, idx, options, env) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


_RULES = {
    "directive": _directive,
    "myst_target": lambda self, tokens, idx, options, env: (
        "" if tokens[idx].meta.get("heading") else f'<span id="{escape(tokens[idx].content)}"></span>'
    ),
    "myst_line_comment": lambda *args: "",  # `% comment`: for the author only
    "myst_block_break": lambda *args: "",  # `+++`: notebook cell boundaries, nothing to show
    "html_inline": _raw_html,
    "html_block": _raw_html,
    "myst_role": _role,
    "math_inline": _math_inline,
    "math_inline_double": _math_inline,
    "math_block": _math_block,
    "math_block_label": _math_block,
    "fence": _fence,
    "code_block": _fence,
    "footnote_ref": _footnote_ref,
    "link_open": _link_open,
    "image": _image,
    "table_open": _table_open,
    "table_close": _table_close,
}
