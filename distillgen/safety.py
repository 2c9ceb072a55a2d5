"""What a site may emit and read when its articles come from someone else.

Articles, `.bib` files and models may be written by people the site's owner does not fully
trust (DESIGN.md, "Security rules"). Three rules live here so that every part of the build
applies the same one:

- URLs: a link the site emits is http, https, mailto or relative; nothing else (`javascript:`
  and `data:` run code or hide content when clicked).
- Files: a file an article references resolves, after following symlinks, inside the articles
  folder or a folder the owner allowed (`--allow-root`); an image file really is an image.
- Raw HTML: allowed unless the owner refuses it (`--no-raw-html`), because MyST and Distill
  authors expect it; refused, every raw HTML block or tag is an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distillgen.diagnostics import Reporter, shorten

if TYPE_CHECKING:  # the source/ modules read files through this one
    from distillgen.source.document import Document

ALLOWED_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
# Browsers drop tabs and newlines anywhere in a URL, and control characters and spaces around
# it, before reading the scheme: "java\tscript:" is "javascript:". Judge what they will see.
_IGNORED_INSIDE = re.compile(r"[\t\n\r]")
_IGNORED_AROUND = "".join(chr(c) for c in range(0x21))
# markdown-it's own exception to its scheme rule: inline raster images, which cannot run code.
_DATA_IMAGE = re.compile(r"^data:image/(gif|png|jpeg|webp);", re.IGNORECASE)


@dataclass(frozen=True)
class Grants:
    """What the site's owner allows its authors beyond the defaults (set on the command line)."""

    raw_html: bool = True  # False with --no-raw-html
    roots: tuple[Path, ...] = ()  # --allow-root: folders besides the articles folder for files


# -- URLs -------------------------------------------------------------------------------------


def url_problem(url: str) -> str | None:
    """Why `url` must not become a link, or None when it may: http, https, mailto, relative."""
    seen = _IGNORED_INSIDE.sub("", url).strip(_IGNORED_AROUND)
    scheme = _SCHEME.match(seen)
    if scheme is None or scheme[1].lower() in ALLOWED_SCHEMES:
        return None
    return f"'{shorten(url)}' is not an http(s), mailto or relative URL ('{scheme[1]}:' links are refused)"


def markdown_link_allowed(url: str) -> bool:
    """markdown-it's `validateLink`: the URL rule, plus inline raster images as markdown-it
    allows them. A refused link stays plain text, as markdown-it does for `javascript:`."""
    return url_problem(url) is None or bool(_DATA_IMAGE.match(url.strip()))


# -- files ------------------------------------------------------------------------------------
_reads: ContextVar[set[Path] | None] = ContextVar("reads", default=None)


@contextmanager
def recording_reads() -> Iterator[set[Path]]:
    """The set of every path an author named (`resolve_inside`, `noted`) while inside: what a
    checked article depends on besides its own text (checked.py)."""
    reads: set[Path] = set()
    token = _reads.set(reads)
    try:
        yield reads
    finally:
        _reads.reset(token)


def noted(path: Path) -> Path:
    """`path`, recorded as read by whatever `recording_reads` (its existence counts too)."""
    reads = _reads.get()
    if reads is not None:
        reads.add(path)
    return path


def resolve_inside(base_dir: Path, written: str, roots: Iterable[Path]) -> Path:
    """`written` (relative to `base_dir`, or absolute) with symlinks followed; ValueError with a
    message for the author unless the result lies inside one of `roots`.

    Whether the file exists is the caller's question: each says what it was looking for."""
    noted(base_dir / written)
    try:
        path = noted((base_dir / written).resolve())
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
        raise ValueError(f"cannot follow '{shorten(written)}': {exc}") from None
    allowed = [Path(root).resolve() for root in roots]
    if any(path.is_relative_to(root) for root in allowed):
        return path
    where = " or ".join(str(root) for root in allowed) or "the articles folder"
    raise ValueError(
        f"'{shorten(written)}' resolves to {path}, outside {where}; move it into that folder, or "
        f"let the build read it with --allow-root {path if path.is_dir() else path.parent}"
    )


# The first bytes of each image format a page may show ({figure}, Markdown images).
_IMAGE_SIGNATURES = {
    "PNG": (b"\x89PNG\r\n\x1a\n",),
    "JPEG": (b"\xff\xd8\xff",),
    "GIF": (b"GIF87a", b"GIF89a"),
}
# SVG is text: an optional byte order mark, XML declaration, comments and doctype, then <svg.
_SVG_START = re.compile(
    rb"^(\xef\xbb\xbf)?\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]", re.S
)


def image_kind(head: bytes) -> str | None:
    """'PNG', 'JPEG', 'GIF', 'WebP' or 'SVG' from a file's first bytes; None for anything else."""
    for kind, signatures in _IMAGE_SIGNATURES.items():
        if head.startswith(signatures):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if _SVG_START.match(head):
        return "SVG"
    return None


def image_inside(base_dir: Path, written: str, roots: Iterable[Path]) -> Path:
    """An image file the page shows: inside `roots` (see `resolve_inside`), existing, and an
    image by its content, not its name. ValueError with a message for the author otherwise."""
    path = resolve_inside(base_dir, written, roots)
    try:
        if not path.is_file():
            raise ValueError(f"file not found: '{shorten(written)}' (looked for {path})")
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError as exc:  # unreadable, or a name too long for the file system
        raise ValueError(f"cannot read '{shorten(written)}': {exc.strerror or exc}") from None
    if image_kind(head) is None:
        raise ValueError(
            f"'{shorten(written)}' is not an image (PNG, JPEG, GIF, WebP or SVG, judged by its content)"
        )
    return path


# -- raw HTML ---------------------------------------------------------------------------------


def refuse_raw_html(doc: Document, reporter: Reporter) -> None:
    """With --no-raw-html: an error for every raw HTML block or inline tag, directive bodies
    and footnotes included."""
    for token in doc.walk():
        if token.type in ("html_block", "html_inline"):
            reporter.error(
                doc.path,
                token.meta.get("line"),
                f"raw HTML is not allowed in this build (--no-raw-html): {shorten(token.content.strip())}; "
                "write it in Markdown, or build without --no-raw-html",
            )
