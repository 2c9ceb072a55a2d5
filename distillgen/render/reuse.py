"""Rendered pages kept in the cache, so that a rebuild renders only what changed.

A page's key hashes everything it is made of: what it shows (an article's source and
bibliography, the records of the artifacts it reads, its local images), the site around it that
it links to, and distillgen's own code and templates. Unit pages are most of a rebuild's work
(their kernel heatmaps); an edit to one article renders that article's page again, and nothing
else.

    <cache>/pages/<key>.json    {"html": ..., "files": {site path: source file}}
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from distillgen.cache import Artifact
from distillgen.render.page import templates_dir


@dataclass(frozen=True)
class Page:
    html: str
    files: dict[str, Path] = field(default_factory=dict)  # site path -> file copied with the page


class Pages:
    """The rendered pages of earlier builds (none when `folder` is None: --no-cache). A page
    is taken only if every file it copies is one of `known` (the payload files of this
    build's artifacts, checked or vouched for by the cache's index) or lies inside one of
    `roots`."""

    def __init__(
        self, folder: Path | None, roots: tuple[Path, ...] = (), known: frozenset[str] = frozenset()
    ) -> None:
        self.folder = folder
        self.roots = tuple(root.resolve() for root in roots)
        self.known = known
        self.rendered = 0
        self.reused = 0

    def get(self, key: str) -> Page | None:
        if self.folder is None:
            return None
        try:
            data = json.loads((self.folder / f"{key}.json").read_text(encoding="utf-8"))
            page = Page(data["html"], {site: Path(source) for site, source in data["files"].items()})
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None  # missing or damaged: rendered again
        if not all(str(source) in self.known or self._inside_roots(source) for source in page.files.values()):
            return None  # a file it copies is gone (a quarantined artifact), or is not ours to publish
        self.reused += 1
        return page

    def _inside_roots(self, source: Path) -> bool:
        source = source.resolve()
        return source.is_file() and any(source.is_relative_to(root) for root in self.roots)

    def put(self, key: str, page: Page) -> Page:
        self.rendered += 1
        if self.folder is None:
            return page
        text = json.dumps({"html": page.html, "files": {k: str(v) for k, v in page.files.items()}})
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=f".{key[:12]}-", dir=self.folder)
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
            os.replace(temporary, self.folder / f"{key}.json")
        except OSError:  # a read-only or full cache: the page is rendered again next time
            pass
        return page


def page_key(kind: str, *parts: object) -> str:
    """The key of a page of `kind` made of `parts` (JSON-serializable) and distillgen's code."""
    text = json.dumps([kind, code_digest(), *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def stamp(artifact: Artifact) -> tuple:
    """What identifies an artifact's content: its key, and its record's digest (--no-cache
    computes the same key again, maybe into other values: the record's time and checksums
    differ)."""
    return artifact.key, artifact.digest


@cache
def code_digest() -> str:
    """distillgen's source and templates: any change to how pages are made renders them again."""
    package = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for root in (package, templates_dir()):
        for path in sorted(root.rglob("*")):
            if path.is_file() and path.suffix in (".py", ".html", ".css", ".js"):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
