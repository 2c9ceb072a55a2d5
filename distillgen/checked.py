"""Checked articles kept between builds: a rebuild parses and checks only what changed.

An article's check depends on its text, the site config and the owner's grants, distillgen's
code, and the local files its author named (a bibliography, images, stimulus code, links to
files: every path `safety.resolve_inside` hands out, recorded by `safety.recording_reads`).
After a clean check the article is kept in `<cache>/checked/<slug>.pickle` with its warnings
and the stat of each file it read; the next build takes it from there when its text and
everything else are the same and none of those files changed, and replays its warnings.

A cache folder may come from someone else, and unpickling runs code: the files are signed
by this machine's user (signed.py), and one that fails the signature is ignored.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from pathlib import Path

from distillgen import signed
from distillgen.article import Article
from distillgen.diagnostics import Diagnostic, Reporter

VERSION = b"distillgen-checked-1"


class CheckedArticles:
    """Articles checked by earlier builds, under `folder` (None: none kept, as with
    --no-cache). `context` is what every article's check depends on besides its own text and
    files: the code, the site config and the grants."""

    def __init__(self, folder: Path | None, context: str) -> None:
        self.folder = folder
        self.context = context
        self.taken = 0  # articles taken from here in this build
        self.checked = 0  # articles parsed and checked in this build

    def get(self, path: Path, source: str, md, reporter: Reporter) -> Article | None:
        """The article checked from `source` before, its warnings reported again; or None."""
        kept = self._load(path)
        if kept is None or kept["key"] != self._key(path, source):
            return None
        if any(_stat(read) != status for read, status in kept["reads"].items()):
            return None
        article: Article = kept["article"]
        article.md, article.reporter = md, reporter
        for diagnostic in kept["diagnostics"]:
            reporter.warning(
                diagnostic.path,
                diagnostic.line,
                diagnostic.message,
                author=diagnostic.author,
                code=diagnostic.code,
            )
        self.taken += 1
        return article

    def put(
        self, path: Path, source: str, article: Article, diagnostics: list[Diagnostic], reads: set[Path]
    ) -> None:
        """Keep a cleanly checked article (its warnings only: one with errors is not kept)."""
        self.checked += 1
        if self.folder is None or any(d.severity == "error" for d in diagnostics):
            return
        kept = {
            "key": self._key(path, source),
            "reads": {read: _stat(read) for read in reads},
            "diagnostics": diagnostics,
            "article": article,
        }
        with suppress(Exception):  # keeping it only saves a check: it never fails a build
            signed.dump(self.folder / f"{path.stem}.pickle", VERSION, kept)

    def _key(self, path: Path, source: str) -> str:
        return hashlib.sha256("\0".join((self.context, str(path), source)).encode()).hexdigest()

    def _load(self, path: Path) -> dict | None:
        if self.folder is None:
            return None
        kept = signed.load(self.folder / f"{path.stem}.pickle", VERSION)
        return kept if isinstance(kept, dict) else None


def _stat(path: Path) -> tuple | None:
    """What says a file or folder is as it was (None: it did not exist)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ino, status.st_mode
