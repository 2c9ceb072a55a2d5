"""Rendered pages kept in the cache, so that a rebuild renders only what changed.

A page's key hashes everything it is made of: what it shows (an article's source and
bibliography, the records of the artifacts it reads, its local images), the site around it that
it links to, and distillgen's own code and templates. Unit pages are most of a rebuild's work
(their kernel heatmaps); an edit to one article renders that article's page again, and nothing
else. A page taken from here is not even read unless something needs its HTML: the output's
manifest and the search bundle know it by its key.

    <cache>/pages/index.json    {"pages": {key: {"files": {site path: source file},
                                                 "searchable": bool}}}
    <cache>/pages/<key>.html    the HTML
    <cache>/pages/groups/<group key>.pickle   a group of pages kept together (signed.py)

One index for every page, read once: an atlas has thousands of pages, and a file per page
cost a rebuild a read of each. An atlas's own pages are also kept as one group, under a key of
everything they are made of (its plan, the records of the artifacts they read, the site around
them): a later process takes all of them on that one key, without a key per page.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Collection
from contextlib import suppress
from functools import cache, cached_property
from pathlib import Path

from distillgen import signed
from distillgen.cache import Artifact, write_file
from distillgen.render.page import templates_dir
from distillgen.render.search import MARK


class Page:
    """A rendered page: its HTML (read from `source` when first needed), the files it copies
    (site path -> file, a Path or a path's string), and its `identity` (its key, or its
    HTML's digest when it has none): two pages of the same identity are the same bytes."""

    def __init__(
        self,
        html: str | None,
        files: dict[str, Path | str] | None = None,
        key: str = "",
        source: Path | None = None,
        searchable: bool | None = None,
    ) -> None:
        self._html, self.files, self.key, self._source = html, files or {}, key, source
        self._searchable = searchable

    @property
    def html(self) -> str:
        if self._html is None:
            if self._source is None:
                raise ValueError("a page with neither its HTML nor the file that holds it")
            self._html = self._source.read_text(encoding="utf-8")
        return self._html

    def unread(self) -> Page:
        """A copy that reads its HTML again when needed (from its `source`), so that what one
        reader reads is not kept by the others."""
        html = None if self._source else self._html  # a page with no file keeps its HTML
        return Page(html, self.files, self.key, self._source, self._searchable)

    @property
    def identity(self) -> str:
        return self.key or hashlib.sha256(self.html.encode()).hexdigest()

    @property
    def searchable(self) -> bool:
        """Whether the search index covers it (render/search.py)."""
        if self._searchable is None:
            self._searchable = MARK in self.html
        return self._searchable


def page_text(page: str | Page) -> str:
    return page if isinstance(page, str) else page.html


class Pages:
    """The rendered pages of earlier builds (none when `folder` is None: --no-cache). A page
    is taken only if every file it copies is one of `known` (the payload files of this
    build's artifacts, checked or vouched for by the cache's index) or lies inside one of
    `roots`. `counted` pages (the site's pages, not its figures.json) count as rendered or
    reused. `save` writes the index: the pages this build took or made, and those another
    build added meanwhile; the rest (pages of earlier versions of the site or of distillgen)
    leave it, and their HTML leaves the folder an hour later (`_sweep`), so that neither grows
    with every change."""

    def __init__(
        self,
        folder: Path | None,
        roots: tuple[Path, ...] = (),
        known: Collection[str] = (),
        vouched: dict[str, dict] | None = None,
        unindexed: dict[str, dict] | None = None,
    ) -> None:
        """`vouched`: index entries of pages this process took or made in an earlier build,
        taken without checking their files again; `unindexed`: entries of pages quick builds
        made and left out of the index, as if this build had made them (serve, warm.py)."""
        self.folder = folder
        self.roots = tuple(root.resolve() for root in roots)
        self.known = known  # absolute paths
        self.vouched = vouched or {}
        self.rendered = 0
        self.reused = 0
        self.added: dict[str, dict] = dict(unindexed or {})  # made since the index was written
        self.used: dict[str, dict] = {}  # key -> index entry of each page this build took or made
        self.groups: set[Path] = set()  # the groups this build took or kept

    @cached_property
    def _entries(self) -> dict:
        return {**(_read_index(self.folder / PAGE_INDEX) if self.folder is not None else {}), **self.added}

    def get(self, key: str, counted: bool = True) -> Page | None:
        if self.folder is None:
            return None
        html = self.folder / f"{key}.html"
        entry = self.vouched.get(key) or self._checked(key, html)
        if entry is None:
            return None
        self.reused += counted
        self.used[key] = entry
        return Page(None, entry["files"], key, html, entry["searchable"])

    def _checked(self, key: str, html: Path) -> dict | None:
        """The page's index entry, if its HTML is there and it copies only what may be
        published; None otherwise (missing or damaged: rendered again)."""
        try:
            entry = self._entries[key]
            files = entry["files"]  # site path -> absolute path, kept a string: a site has thousands
            if not all(isinstance(source, str) and _in_site(rel) for rel, source in files.items()):
                return None  # damaged, or an index from elsewhere naming a place outside the site
            if not html.is_file():
                return None
            entry = {"files": files, "searchable": bool(entry["searchable"])}
        except (OSError, KeyError, TypeError, AttributeError):
            return None
        if not all(self._publishable(source) for source in files.values()):
            return None  # a file it copies is gone (a quarantined artifact), or is not ours to publish
        return entry

    def _publishable(self, source: str) -> bool:
        if source in self.known or os.path.abspath(source) in self.known:
            return True
        try:
            path = Path(source).resolve()
            return path.is_file() and any(path.is_relative_to(root) for root in self.roots)
        except (OSError, ValueError):  # a name no file can have (a NUL in it): an index from elsewhere
            return False

    def unread(self, page: Page) -> Page | None:
        """`page`, which this build took or made, as the cache holds it: its HTML unread until
        needed. None if the cache does not hold it (none, or a write that failed)."""
        entry = self.used.get(page.key)
        if self.folder is None or entry is None:
            return None
        return Page(None, entry["files"], page.key, self.folder / f"{page.key}.html", entry["searchable"])

    def take(self, entries: dict[str, dict], counted: int) -> None:
        """Pages an earlier build of this process took or made, taken again as they were, with
        their entries in the index (key -> entry): `counted` of them are the site's pages."""
        self.used.update(entries)
        self.reused += counted

    def take_group(self, group: str) -> dict[str, Page] | None:
        """The pages kept under `group` (site path -> page, each counted), if this user's build
        kept them (`keep_group`) and the cache still holds every one's HTML; else None."""
        if self.folder is None:
            return None
        where = self.folder / GROUPS / f"{group}.pickle"
        kept = signed.load(where, GROUP_VERSION)
        if not isinstance(kept, dict):
            return None
        folder = f"{self.folder}{os.sep}"
        if not all(_taken(f"{folder}{key}.html") for key, _ in kept.values()):
            return None  # the page cache was swept: they are taken (or rendered) one by one
        # as each page's own entry is checked: a group kept by a copy of this project, or for a
        # cache since moved, names another cache's files, and an entry quarantined since is gone
        known = self.known
        files = (source for _, entry in kept.values() for source in entry["files"].values())
        if not all(source in known or self._publishable(source) for source in files):
            return None
        with suppress(OSError):
            os.utime(where)  # the newest, for `keep_group`'s count
        self.groups.add(where)
        pages = {
            path: Page(None, entry["files"], key, self.folder / f"{key}.html", entry["searchable"])
            for path, (key, entry) in kept.items()
        }
        self.take(dict(kept.values()), len(pages))
        return pages

    def keep_group(self, group: str, pages: dict[str, Page]) -> None:
        """Keep `pages` (site path -> page this build took or made) under `group`, for later
        processes; this build's groups and the newest few others stay."""
        if self.folder is None:
            return
        with suppress(Exception):  # keeping them only saves keying them: it never fails a build
            kept = {path: (page.key, self.used[page.key]) for path, page in pages.items()}
            signed.dump(where := self.folder / GROUPS / f"{group}.pickle", GROUP_VERSION, kept)
            self.groups.add(where)
            signed.prune(self.folder / GROUPS, self.groups, GROUPS_KEPT)

    def put(self, key: str, page: Page, counted: bool = True) -> Page:
        self.rendered += counted
        page.key = key
        if self.folder is None:
            return page
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_file(self.folder / f"{key}.html", page.html)  # first: the index says it is there
        except OSError:  # a read-only or full cache: the page is rendered again next time
            return page
        entry = {
            "files": {k: os.path.abspath(v) for k, v in page.files.items()},
            "searchable": page.searchable,
        }
        self.added[key] = self.used[key] = entry
        return page

    def save(self) -> None:
        """Write the index, if this build added a page or left one unused."""
        loaded = "_entries" in self.__dict__  # not when every page taken was vouched for
        if self.folder is None or not self.added and (not loaded or self.used.keys() >= self._entries.keys()):
            return
        path = self.folder / PAGE_INDEX
        read = self._entries.keys() - self.added.keys() if loaded else set()  # as this build found the index
        others = {key: entry for key, entry in _read_index(path).items() if key not in read}
        entries = {**others, **self.used}
        with suppress(OSError):  # a read-only or full cache: those pages are rendered again
            write_file(
                path, json.dumps({"version": PAGE_INDEX_VERSION, "pages": entries}, separators=(",", ":"))
            )
            self.added = {}
            _sweep(self.folder, entries, read - entries.keys())


def _taken(html: str) -> bool:
    """Whether a page's HTML is there; marked as taken (its modification time) if it was not
    for half of SWEEP_AFTER_S, so that no build's `_sweep` removes it before this build has
    copied it. Mostly a stat, as a no-change build of an atlas takes thousands."""
    try:
        if os.stat(html).st_mtime < time.time() - SWEEP_AFTER_S / 2:
            os.utime(html)
    except FileNotFoundError:
        return False
    except OSError:  # a cache this user may not write: nobody sweeps it either
        pass
    return True


def _sweep(folder: Path, indexed: Collection[str], dropped: Collection[str]) -> None:
    """Remove the HTML of pages the index no longer holds, once no build can still be copying
    them: a build that took a page from the index before it was dropped may write it out minutes
    later. The pages dropped now are marked so (their modification time) and go at a save
    SWEEP_AFTER_S later; a page written by a build that stopped before its save goes the same way.
    Without this every version of distillgen, and every edit, left its pages behind for good:
    an atlas site's page cache held 2.8 GB of HTML, 75 MB of it indexed."""
    for key in dropped:
        with suppress(OSError):
            os.utime(folder / f"{key}.html")
    before = time.time() - SWEEP_AFTER_S
    with suppress(OSError), os.scandir(folder) as listing:
        for entry in listing:
            key = entry.name[:-5]
            if key in indexed or key in dropped or not _PAGE_FILE.fullmatch(entry.name):
                continue
            with suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < before:
                    os.unlink(entry.path)


def _in_site(rel: object) -> bool:
    """Whether `rel` is a path inside the site: relative, with no '..' and no empty part."""
    return (
        isinstance(rel, str)
        and not rel.startswith("/")
        and "\\" not in rel
        and "\0" not in rel
        and all(part not in ("", ".", "..") for part in rel.split("/"))
    )


PAGE_INDEX = "index.json"
PAGE_INDEX_VERSION = 1
GROUPS = "groups"
GROUP_VERSION = b"distillgen-page-group-1"
GROUPS_KEPT = 4  # besides this build's
SWEEP_AFTER_S = 3600  # a page left out of the index stays this long (`_sweep`)
_PAGE_FILE = re.compile(r"[0-9a-f]{64}\.html")  # page_key's hex digest: nothing else is removed


def _read_index(path: Path) -> dict:
    """The page index's entries ({} when it is missing, damaged or of another version)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        pages = data["pages"] if data["version"] == PAGE_INDEX_VERSION else {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return pages if isinstance(pages, dict) else {}


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
    """distillgen's code and templates: any change to how pages are made renders them again.
    Each build reads the templates again (`site.build` clears this cache): serve watches them
    and renders with them as they are now."""
    templates = _digest_of(templates_dir(), (".html", ".css", ".js"))
    return hashlib.sha256(f"{source_digest()}{templates}".encode()).hexdigest()


@cache
def source_digest() -> str:
    """distillgen's Python source, read once: a process runs the modules it loaded, so a file
    changed under a running serve is not the code that renders (its pages must not be kept
    under the new code's key). What the cache's index and kept articles are trusted by: the
    templates do not change how either is read."""
    return _digest_of(Path(__file__).resolve().parent.parent, (".py",))


def _digest_of(root: Path, suffixes: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in suffixes:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()
