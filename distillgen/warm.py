"""What `distillgen serve` keeps from one build to the next, so that the build after an edit
costs what the edit changed, not what the site holds.

A build from nothing spends most of a large site's time proving that nothing changed: a stat
of every cache file (the index's check, cache.py) and a walk of the output folder against its
manifest (atlas.py keeps the plans of atlases, with their unit pages' jobs and keys, in any
process). serve builds the same site again and again in one process, so the build right after
an edit (`Options.quick`) takes what the build before it checked:

- the cache entries it found intact (`artifacts`), without a stat (an entry moved aside or
  replaced since, by this process, is dropped from it);
- the cached pages it took or made (`pages`), their files not checked again;
- its search index (`search`: site path -> file), which stands in until the full build
  makes the new one (Pagefind indexes every page again: seconds on an atlas);
- the map of the cache's payload files (`payloads`) while its artifacts are the same;
- the output folder's files as it wrote them (`output`), unwalked (None while a write is
  under way, and after one failed);

and renders an atlas's own pages again only if something they show changed (`atlases`: each
atlas's pages as the last build rendered them, kept while the atlas's plan, the artifacts
its pages read, the site's frame, the code, the model's set of unit pages and the atlas's
units that articles show are the same; a quick build's artifacts are the last build's
objects, so a check by identity suffices);

and leaves what only a later process needs to the full build after it: the index of the
pages it made (`unindexed`) and the output's manifest, which `output` stands for meanwhile.

What a quick build trusts this way is checked again by the full build serve runs once the
files are still (serve.CATCH_UP_MS), which also brings the search index up to date: a cache
entry damaged, or an output file removed, behind serve's back is found there, a second after
the author pauses. A quick build that fails after planning, where it uses what it trusts,
may have failed because of it: the next build trusts nothing (`distrust`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from distillgen.atlas import Atlas
    from distillgen.cache import Artifact, Cache
    from distillgen.render.reuse import Page


@dataclass
class RenderedAtlas:
    """An atlas's own pages as a build rendered them: its unit pages that no article shows,
    its layer pages and its model page (site path -> page, its HTML left in the page cache),
    the files they copy, and their entries in the page index (key -> entry)."""

    atlas: Atlas
    # what else its pages are made of: the frame, the code, the model's set of unit pages, and
    # which of the atlas's units articles show (those pages are the build's, not the atlas's)
    context: tuple
    artifacts: dict[str, Artifact]  # what its pages read, as that build had them
    pages: dict[str, Page] = field(default_factory=dict)
    copies: dict[str, Path | str] = field(default_factory=dict)
    entries: dict[str, dict] = field(default_factory=dict)

    def unread(self) -> RenderedAtlas:
        """The same pages as new objects with their HTML unread: a build that reads one (to
        write it) does not keep its HTML here."""
        return dataclasses.replace(self, pages={path: page.unread() for path, page in self.pages.items()})

    def holds(self, atlas: Atlas, context: tuple, artifacts: dict[str, Artifact]) -> bool:
        """Whether these are the pages `atlas` would be rendered into now."""
        return atlas is self.atlas and context == self.context and same_artifacts(self.artifacts, artifacts)


@dataclass
class Warm:
    artifacts: dict[str, Artifact] = field(default_factory=dict)  # key -> entry the last build found intact
    pages: dict[str, dict] = field(default_factory=dict)  # key -> its entry in the page index
    unindexed: dict[str, dict] = field(default_factory=dict)  # pages quick builds made, not indexed yet
    search: dict[str, Path] | None = None  # the last search bundle's files by site path
    output: dict[str, list] | None = None  # rel path -> [size, mtime_ns, inode, identity]
    atlases: dict[str, RenderedAtlas] = field(default_factory=dict)  # by the atlas's site path
    # the cache's payload files (absolute path -> identity, Cache.payload_paths) of these artifacts
    payloads: tuple[dict[str, Artifact], dict[str, str]] = field(default_factory=lambda: ({}, {}))

    def payload_paths(self, artifacts: dict[str, Artifact], quick: bool, cache: Cache) -> dict[str, str]:
        """`cache.payload_paths` of `artifacts`: a quick build with the last build's very
        artifacts takes the last build's map (an atlas's entries have 50,000 files)."""
        mapped, paths = self.payloads
        if not (quick and len(mapped) == len(artifacts) and same_artifacts(mapped, artifacts)):
            paths = cache.payload_paths(artifacts.values())
        self.payloads = dict(artifacts), paths  # a copy: the cache drops what it moves aside from `artifacts`
        return paths

    def distrust(self) -> None:
        """Trust nothing: the next build checks the cache, the pages and the output."""
        self.artifacts, self.pages, self.search, self.output, self.atlases = {}, {}, None, None, {}
        self.payloads = ({}, {})


def same_artifacts(kept: dict[str, Artifact], artifacts: dict[str, Artifact]) -> bool:
    """Whether `artifacts` has each of `kept`'s artifacts, as the same object: within one
    process, entries vouched for are handed on as they are, and anything looked up again is a
    new object."""
    return all(artifacts.get(key) is artifact for key, artifact in kept.items())
