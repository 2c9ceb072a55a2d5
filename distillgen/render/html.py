"""markdown-it render rules for the tokens distillgen adds or renders differently.

Each rule reads the `Article` from `env["article"]`; the check pass already validated
everything, so these rules only format. Directives and roles render through their kinds
(`Article.render_entry`).
"""

from __future__ import annotations

from html import escape

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll
from markdown_it.token import Token
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from distillgen.render.math import to_mathml
from distillgen.source.document import role_of

_FORMATTER = HtmlFormatter(nowrap=True)
PYGMENTS_STYLE = "default"


def pygments_css() -> str:
    return HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".highlight")


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
    anchor = f' id="{escape(token.info)}"' if token.type == "math_block_label" else ""
    return f'<div class="math-display"{anchor}>{to_mathml(token.content, True)}</div>\n'


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
    href = str(token.attrs.get("href", ""))
    html = self.renderToken(tokens, idx, options, env)
    target = env["article"].targets.get(href[1:]) if href.startswith("#") else None
    if target is not None and tokens[idx + 1].type == "link_close":
        return html + escape(target.text)  # `[](#label)` shows the target's number or title
    return html


def _image(self, tokens, idx, options, env) -> str:
    token = tokens[idx]
    src = str(token.attrs.get("src", ""))
    if src and "://" not in src and not src.startswith("data:"):
        token.attrs["src"] = env["article"].asset_url(src)
    token.attrs["loading"] = "lazy"
    return self.image(tokens, idx, options, env)


def _table_open(self, tokens, idx, options, env) -> str:
    return '<div class="table-wrap">' + self.renderToken(tokens, idx, options, env)


def _table_close(self, tokens, idx, options, env) -> str:
    return self.renderToken(tokens, idx, options, env) + "</div>\n"


_RULES = {
    "directive": _directive,
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
