"""The parsed form of one article: front matter, a token stream, and its directives and roles."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it.token import Token


@dataclass
class Directive:
    """A fenced `{kind} args` block, as written (its kind parses it: figures/base.py)."""

    kind: str
    args: str
    options: dict[str, str]
    option_lines: dict[str, int]
    body: str
    body_tokens: list[Token]
    path: Path
    line: int
    fence: str = "```"  # the fence as written: backticks or colons
    braces: bool = True  # False for `:::note`, which MyST writes `:::{note}`
    # (line, message) for what the parser could not read: a malformed YAML option block
    problems: list[tuple[int, str]] = field(default_factory=list)
    args_tokens: list[Token] = field(default_factory=list)  # the argument as inline Markdown

    def option_line(self, key: str) -> int:
        return self.option_lines.get(key, self.line)


@dataclass
class Role:
    """An inline `{name}`content`` role."""

    name: str
    content: str
    path: Path
    line: int


@dataclass
class Document:
    path: Path
    slug: str
    source: str
    front_matter_text: str | None
    front_matter_line: int  # 1-based line of the first YAML line
    tokens: list[Token]
    env: dict
    # Folders the files it references (figures, images, stimuli, datasets, bibliography) must
    # resolve inside: the articles folder and any the site's owner allowed (safety.py).
    roots: tuple[Path, ...] = ()

    def walk(self) -> Iterator[Token]:
        """Every block and inline token in reading order, directive bodies included."""
        yield from _walk(self.tokens)


def _walk(tokens: list[Token]) -> Iterator[Token]:
    for token in tokens:
        yield token
        if token.type == "inline":
            for child in token.children or []:
                yield child
                if child.type == "image":  # its alt text is Markdown too
                    yield from child.children or []
        elif token.type == "directive":
            yield from _walk(token.meta["directive"].args_tokens)
            yield from _walk(token.meta["directive"].body_tokens)


def plain_text(tokens: list[Token]) -> str:
    """The words of block or inline tokens without their markup (a caption as alt text, a
    heading's title in a reference, the front matter's title in <title>)."""
    words = []
    for token in tokens:
        if token.children:
            words.append(plain_text(token.children))
        elif token.type in ("text", "code_inline", "math_inline"):
            words.append(token.content)
        elif token.type in ("softbreak", "hardbreak", "paragraph_close"):
            words.append(" ")
    return " ".join("".join(words).split())


def role_of(token: Token, path: Path) -> Role:
    """The token's Role; the same object in every pass (the article keys its entry by it)."""
    if "role" not in token.meta:
        token.meta["role"] = Role(token.meta["name"], token.content, path, token.meta.get("line", 0))
    return token.meta["role"]


def parse_document(path: Path, md, roots: tuple[Path, ...] | None = None) -> Document:
    """Parse one Markdown file. Raises OSError/UnicodeDecodeError for unreadable files.

    `roots` defaults to the article's own folder."""
    # utf-8-sig drops a byte order mark, which would otherwise hide the front matter's '---'.
    return parse_text(path.read_text(encoding="utf-8-sig"), path, md, roots)


def parse_text(source: str, path: Path, md, roots: tuple[Path, ...] | None = None) -> Document:
    """Parse Markdown that is not (yet) a file, as if it were `path` (the notebook API's figures)."""
    env: dict = {"path": path, "line_offset": 0}
    tokens = md.parse(source, env)
    front_matter_text = None
    if tokens and tokens[0].type == "front_matter":
        front_matter_text = tokens[0].content
    return Document(
        path=path,
        slug=path.stem,
        source=source,
        front_matter_text=front_matter_text,
        front_matter_line=2,
        tokens=tokens,
        env=env,
        roots=(path.parent,) if roots is None else roots,
    )
