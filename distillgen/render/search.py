"""The site's search: a static Pagefind index of the articles and unit pages, built with the
site, searched in the reader's browser (no server, no CDN).

Pagefind (PyPI `pagefind[bin]`, which ships its binary) indexes the pages marked
`data-pagefind-body`. The bundle is kept in the cache under a digest of those pages, so a
rebuild that changed none of them reuses it instead of running Pagefind again.

    <cache>/search/<digest>/    pagefind.js, pagefind-ui.js/css, the index and fragments

Each change to a searchable page makes a new bundle; those no build took for an hour go, but
the newest few (`_prune`).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from distillgen.diagnostics import Superseded

MARK = "data-pagefind-body"
# Unit addresses are one word to search for: `mixed3:5`, not `mixed3` and `5`.
WORD_CHARACTERS = ":"
# A bundle is made in a staging folder and moved into place whole: one with its entry file is complete.
ENTRY = "pagefind-entry.json"
BUNDLES_KEPT = 2  # besides the one a build made: for other sites and versions sharing the cache
PRUNE_AFTER_S = 3600
_BUNDLE = re.compile(r"[0-9a-f]{32}")
_STAGING = re.compile(r"\.[0-9a-f]{12}-.+")  # _index's staging folders and _prune's removals


class SearchError(Exception):
    """Pagefind is missing or failed; the message says how to fix it."""


def search_bundle(
    pages: dict, folder: Path | None, later: bool = False, superseded: Callable[[], bool] = lambda: False
) -> tuple[dict[str, Path], bool]:
    """The search bundle's files by their path in the site (`pagefind/…`), made from the pages
    (site path -> HTML, or a reuse.Page known by its key) that carry MARK; kept under `folder`
    (None: a temporary folder). A bundle of the same pages is not made again, nor are their
    HTML files read. `later` (serve, after an edit): when this bundle is not made yet, the
    newest one under `folder` stands in, and the second value says so. Pagefind is stopped
    when `superseded()` says so (serve: a newer edit), with `Superseded`."""
    indexed = {
        path: page
        for path, page in sorted(pages.items())
        if path.endswith(".html") and (MARK in page if isinstance(page, str) else page.searchable)
    }
    digest = hashlib.sha256()
    for path, page in indexed.items():
        identity = hashlib.sha256(page.encode()).hexdigest() if isinstance(page, str) else page.identity
        digest.update(f"{path}\0{identity}\0".encode())
    digest.update(pagefind_version().encode())  # another Pagefind may write another bundle
    base = folder if folder is not None and _writable(folder) else _temporary()
    bundle = base / digest.hexdigest()[:32]
    behind = False
    try:
        os.utime(bundle / ENTRY)  # taken: the newest, for `_prune` and a later build's stand-in
    except FileNotFoundError:
        newest = _newest(base) if later else None
        if newest is not None:
            bundle, behind = newest, True
            with suppress(OSError):
                os.utime(bundle / ENTRY)  # taken as well
        else:
            _index(indexed, bundle, superseded)
            _prune(base, bundle)
    except OSError:  # there, in a cache this user may not write
        pass
    return _files(bundle), behind


def _newest(base: Path) -> Path | None:
    """The bundle a build took or made last, if any."""
    taken = []
    with suppress(OSError):
        for folder in base.iterdir():
            with suppress(OSError):  # one being removed by another build
                if _BUNDLE.fullmatch(folder.name):
                    taken.append(((folder / ENTRY).stat().st_mtime_ns, folder))
    return max(taken)[1] if taken else None


def _prune(base: Path, made: Path) -> None:
    """Remove the bundles no build took for an hour, but the newest BUNDLES_KEPT and the one
    just `made`, and what a killed build left half made. Every change to a searchable page
    makes a new bundle, and none was ever removed: beside an atlas that was 2.6 GB, a hundred
    bundles of 25 MB. A bundle is renamed out of sight first, so no build finds one half removed;
    the hour spares one another build took a moment ago and has yet to copy."""
    before = time.time() - PRUNE_AFTER_S
    bundles: list[tuple[float, Path]] = []
    try:
        folders = list(base.iterdir())
    except OSError:  # pruning is housekeeping: it never fails a build
        return
    for folder in folders:
        with suppress(OSError):
            if _BUNDLE.fullmatch(folder.name) and folder != made:
                bundles.append(((folder / ENTRY).stat().st_mtime, folder))
            elif _STAGING.fullmatch(folder.name) and folder.stat().st_mtime < before:
                shutil.rmtree(folder, ignore_errors=True)  # a killed build's staging or removal
    for taken, folder in sorted(bundles)[:-BUNDLES_KEPT]:
        with suppress(OSError):  # stat again: a build may have taken it since
            if taken < before and (folder / ENTRY).stat().st_mtime < before:
                gone = folder.rename(base / f".{folder.name[:12]}-removed-{os.getpid()}")
                shutil.rmtree(gone, ignore_errors=True)


def _files(bundle: Path) -> dict[str, Path]:
    """The bundle's files by site path, listed without a stat of each (an atlas's has thousands)."""
    files = {}
    for folder, _, names in os.walk(bundle):
        where = Path(folder)
        inside = where.relative_to(bundle).as_posix()
        for name in names:
            files[f"pagefind/{name}" if inside == "." else f"pagefind/{inside}/{name}"] = where / name
    return dict(sorted(files.items()))


def bundle_identities(bundle: dict[str, Path]) -> dict[str, str]:
    """What each file of a bundle is (its path as the bundle names it -> identity), from one
    stat of its folder rather than one of each of its files (an atlas's bundle has thousands):
    a bundle is moved into place whole, under the digest of what it indexes, and never changed
    after; made again (its folder removed), it is a new folder. Each file is named by its place
    in the site, not by its path: the cache named `cache` and `/home/me/site/cache` is the same
    bundle. {} for a bundle without its entry file."""
    entry = bundle.get(f"pagefind/{ENTRY}")
    try:
        folder = os.stat(entry.parent) if entry is not None else None
    except OSError:
        folder = None
    if folder is None:
        return {}
    made = f"search:{folder.st_ino}:{folder.st_mtime_ns}:"
    return {os.fspath(path): made + rel for rel, path in bundle.items()}


PAGEFIND_TIMEOUT_S = 600


def _index(pages: dict, bundle: Path, superseded: Callable[[], bool]) -> None:
    with tempfile.TemporaryDirectory(prefix="distillgen-search-") as scratch:
        site = Path(scratch) / "site"
        for path, page in pages.items():
            if superseded():
                raise Superseded
            target = site / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(page if isinstance(page, str) else page.html, encoding="utf-8")
        staging = Path(tempfile.mkdtemp(prefix=f".{bundle.name[:12]}-", dir=bundle.parent))
        command = [_executable(), "--site", str(site), "--output-path", str(staging)]
        command += ["--include-characters", WORD_CHARACTERS, "--silent"]
        try:
            with tempfile.TemporaryFile("w+") as log:
                with subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT) as pagefind:
                    _wait(pagefind, superseded)
                log.seek(0)
                output = log.read()
            if pagefind.returncode != 0:
                raise SearchError(f"Pagefind failed: {output.strip()[-500:]}")
            _publish(staging, bundle)
        except OSError as exc:
            raise SearchError(f"cannot run Pagefind: {exc}") from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _wait(pagefind: subprocess.Popen, superseded: Callable[[], bool]) -> None:
    """Until Pagefind ends. It is killed when `superseded()` (serve: a newer edit comes first),
    after PAGEFIND_TIMEOUT_S, or when the build is interrupted (Ctrl+C, SIGTERM)."""
    deadline = time.monotonic() + PAGEFIND_TIMEOUT_S
    try:
        while pagefind.poll() is None:
            if superseded():
                raise Superseded
            if time.monotonic() > deadline:
                raise SearchError(f"Pagefind did not finish within {PAGEFIND_TIMEOUT_S // 60} minutes")
            time.sleep(0.05)
    except BaseException:
        pagefind.kill()
        pagefind.wait()
        raise


def _publish(staging: Path, bundle: Path) -> None:
    """Move a finished bundle into place whole, like a cache entry. Two builds of the same pages
    may race to it: the loser finds the winner's bundle, the same one, and uses it."""
    try:
        os.replace(staging, bundle)
    except OSError:
        if not (bundle / ENTRY).is_file():
            raise


def pagefind_version() -> str:
    """The installed Pagefind's version; SearchError when it is not installed."""
    _executable()
    from importlib.metadata import version

    return version("pagefind_bin")


def _executable() -> str:
    try:
        from pagefind_bin import get_executable
    except ImportError:
        raise SearchError(
            "Pagefind is not installed: pip install 'pagefind[bin]' (or set search: false in distillgen.yml)"
        ) from None
    return str(get_executable())


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _temporary() -> Path:
    """A folder for bundles of builds without a writable cache, removed when the process ends."""
    folder = Path(tempfile.mkdtemp(prefix="distillgen-search-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder
