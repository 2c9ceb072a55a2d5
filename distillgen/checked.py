"""Checked articles kept between builds: a rebuild parses and checks only what changed.

An article's check depends on its text, the site config and the owner's grants, distillgen's
code, and the local files its author named (a bibliography, images, stimulus code, links to
files: every path `safety.resolve_inside` hands out, recorded by `safety.recording_reads`).
After a clean check the article is kept in `<cache>/checked/<slug>.pickle` with its warnings
and the stat of each file it read; the next build takes it from there when its text and
everything else are the same and none of those files changed, and replays its warnings.

A cache folder may come from someone else, and unpickling runs code: every file is signed
with HMAC-SHA256 under a key that never leaves this machine's user (`~/.cache/distillgen/
secret`), and one that fails the signature is ignored. Without a key (no writable home) no
article is kept.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import os
import pickle
import secrets
from contextlib import suppress
from pathlib import Path

from distillgen.article import Article
from distillgen.cache import write_file
from distillgen.diagnostics import Diagnostic, Reporter

VERSION = b"distillgen-checked-1"


class CheckedArticles:
    """Articles checked by earlier builds, under `folder` (None: none kept, as with
    --no-cache). `context` is what every article's check depends on besides its own text and
    files: the code, the site config and the grants."""

    def __init__(self, folder: Path | None, context: str) -> None:
        self.folder = folder
        self.context = context
        self.secret = _secret() if folder is not None else None
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
        if self.folder is None or self.secret is None or any(d.severity == "error" for d in diagnostics):
            return
        kept = {
            "key": self._key(path, source),
            "reads": {read: _stat(read) for read in reads},
            "diagnostics": diagnostics,
            "article": article,
        }
        with suppress(Exception):  # keeping it only saves a check: it never fails a build
            payload = VERSION + pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL)
            write_file(
                self.folder / f"{path.stem}.pickle", hmac.digest(self.secret, payload, "sha256") + payload
            )

    def _key(self, path: Path, source: str) -> str:
        return hashlib.sha256("\0".join((self.context, str(path), source)).encode()).hexdigest()

    def _load(self, path: Path) -> dict | None:
        if self.folder is None or self.secret is None:
            return None
        try:
            data = (self.folder / f"{path.stem}.pickle").read_bytes()
        except OSError:
            return None
        signature, payload = data[:32], data[32:]
        if not payload.startswith(VERSION) or not hmac.compare_digest(
            signature, hmac.digest(self.secret, payload, "sha256")
        ):
            return None  # not written here, or by another version: checked again
        gc.disable()  # a collection mid-load scans the whole build's objects: 3-8x slower
        try:
            return pickle.loads(payload[len(VERSION) :])
        except Exception:  # written by older code whose classes moved: checked again
            return None
        finally:
            gc.enable()


def _stat(path: Path) -> tuple | None:
    """What says a file or folder is as it was (None: it did not exist)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns, status.st_ino, status.st_mode


def _secret() -> bytes | None:
    """This user's signing key, made on first use; None where it cannot be kept."""
    home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "distillgen"
    path = home / "secret"
    with suppress(OSError):
        key = path.read_bytes()
        if len(key) == 32:
            return key
    try:
        home.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32)
        write_file(path, key)
        return key
    except OSError:
        return None
