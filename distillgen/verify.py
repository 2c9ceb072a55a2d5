"""`distillgen verify`: recompute the articles' figures (with `--pages`, their unit pages' and
the config's atlases' too) and compare them with the cache.

The articles are checked and planned as a `--frozen` build plans them, reading a cache that is
never written (`Cache(readonly=True)`: a damaged entry is reported, not moved). Then the chosen
figures (every one, or a sample spread over the kinds) are computed again by the executor, in
memory, and each is compared with its cached artifact by its kind's measure (measures.py),
within its kind's tolerance (both named in the table of kinds, kinds.py).

A figure whose record names other versions of torch, torchvision, lucent or distillgen than
the installed ones says so next to its verdict. Nothing here imports torch: the engine does
(featurevis measures through `engine.faithfulness.profiles`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distillgen import __version__
from distillgen.article import Article
from distillgen.cache import Artifact
from distillgen.compute import Catalog, Need, Options, compute, run
from distillgen.diagnostics import Reporter
from distillgen.faithful import default_probe
from distillgen.figures.base import jobs_of
from distillgen.jobs import FeatureVisJob, Job
from distillgen.kinds import KINDS
from distillgen.measures import Measure
from distillgen.project import Project
from distillgen.safety import Grants
from distillgen.units import package_version, parse_spec

if TYPE_CHECKING:
    import numpy as np

# The largest difference (in each measure's own units) still counted as reproduced, by kind.
TOLERANCES = {name: kind.tolerance for name, kind in KINDS.items()}


def tolerance(value: str) -> float:
    """A tolerance as written (`--tolerance featurevis=0.3`): a number, 0 or more."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not number >= 0 or math.isinf(number):
        raise ValueError(f"expected a number, 0 or more, not '{value}'")
    return number


VERSIONED = ("torch", "torchvision", "torch-lucent", "distillgen")


@dataclass(frozen=True)
class Figure:
    """One cached artifact an article shows, where it is first shown."""

    article: str  # the article's slug
    path: Path
    line: int
    directive: str  # the kind of the directive or role that shows it
    job: Job
    artifact: Artifact
    planned: Any  # the figure's planned value, of its kind (an ablation's prediction, a matching)

    @property
    def kind(self) -> str:
        return self.job.kind

    @property
    def where(self) -> str:
        return f"{_display(self.path)}:{self.line}"


@dataclass(frozen=True)
class Check:
    """A figure recomputed and compared (or, with `error`, not recomputed)."""

    figure: Figure
    tolerance: float
    versions: dict[str, tuple[str, str]]  # package -> (recorded, installed), where they differ
    measure: Measure | None = None
    error: str | None = None

    @property
    def verdict(self) -> str:
        if self.measure is None:
            return "failed"
        within = self.measure.difference <= self.tolerance
        return "ok" if within and self.measure.agrees else "drift"

    def json(self) -> dict:
        figure, measure = self.figure, self.measure
        return {
            "article": figure.article,
            "path": str(figure.path),
            "line": figure.line,
            "directive": figure.directive,
            "kind": figure.kind,
            "address": figure.job.address,
            "key": figure.job.key,
            "device": figure.artifact.record.get("device"),
            "measure": measure.name if measure else None,
            "cached": _finite(measure.cached) if measure else None,
            "recomputed": _finite(measure.recomputed) if measure else None,
            "difference": _finite(measure.difference) if measure else None,
            "note": measure.note if measure else self.error,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "versions": {name: {"recorded": r, "installed": i} for name, (r, i) in self.versions.items()},
        }


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)
    figures: int = 0  # the articles' figures (distinct artifacts), of which `checks` were chosen
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(check.verdict == "ok" for check in self.checks)

    def summary(self) -> str:
        verdicts = [check.verdict for check in self.checks]
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("ok", "drift", "failed") if v in verdicts)
        other = sum(1 for check in self.checks if check.versions)
        versions = f"; {other} made with other versions" if other else ""
        return (
            f"verified {len(self.checks)} of {self.figures} figure(s) in {self.seconds:.1f}s: "
            f"{counts or 'nothing to check'}{versions}"
        )


# -- what to verify --------------------------------------------------------------------------


def article_figures(
    src: Path,
    reporter: Reporter,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = lambda message: None,
    grants: Grants | None = None,
    pages: bool = False,
) -> tuple[list[Figure], Catalog]:
    """The articles' figures as a `--frozen` build with `grants` finds them (BuildFailed after
    errors), each artifact once, in reading order; and the catalog that described their models.
    With `pages`, then those of the unit pages and of the config's atlases that no article shows
    (each unit's diversity set, kernels, examples, measures and carriers): a build trusts them
    on their files' stat as it does the articles', and they are published alike."""
    options = Options(frozen=True, uncomputed="verify compares with it: build the site first")
    project = Project.open(src, reporter, options, cache_dir=cache_dir, grants=grants, readonly=True)
    articles = project.load_articles(log)
    project.plan(articles)
    artifacts = project.compute(articles).artifacts
    seen: dict[str, Figure] = {}
    for article in articles:
        for figure in _figures(article, artifacts):
            for each in _with_inputs(figure, project.catalog.cache, reporter):
                seen.setdefault(each.job.key, each)
    if pages:
        for figure in _page_figures(project, articles, artifacts):
            for each in _with_inputs(figure, project.catalog.cache, reporter):
                seen.setdefault(each.job.key, each)
    reporter.raise_if_errors()
    return list(seen.values()), project.catalog


def _page_figures(project: Project, articles: list[Article], artifacts: dict[str, Artifact]) -> list[Figure]:
    """The figures of the unit pages and atlases, as the build plans them (site._compute_figures),
    each at the line that asked for its page (an article's, or the atlas's in distillgen.yml)
    and named by its page; BuildFailed if one is not cached."""
    from distillgen.atlas import plan_atlases
    from distillgen.unitpages import plan_unit_pages

    reporter = project.reporter
    roots = (project.home, *project.grants.roots)
    atlases = plan_atlases(project.config.atlas, project.catalog, reporter, roots)
    reporter.raise_if_errors()
    unit_pages, needs = plan_unit_pages(articles, atlases, project.catalog)
    missing = [need for need in needs if need.job.key not in artifacts]
    found = compute(missing, project.cache, project.catalog, reporter, project.options).artifacts
    artifacts = {**artifacts, **found}
    reporter.raise_if_errors()
    page_of: dict[str, str] = {}  # a figure's page: its unit's (a layer's outgoing kernels are shared)
    for page in unit_pages:
        page_of.update((job.key, page.path) for job in page.own_jobs if job.key not in page_of)
    for page in unit_pages:
        page_of.update((job.key, page.path) for job in page.outputs if job.key not in page_of)
    in_atlas = {key for atlas in atlases for key in atlas.needs}
    return [
        Figure(
            page_of.get(need.job.key, "unit pages"),  # every job is some page's, as planned today
            need.path or project.home,  # None only for an atlas of the command line, not here
            need.line or 0,
            "atlas" if need.job.key in in_atlas else "unit page",
            need.job,
            artifacts[need.job.key],
            None,
        )
        for need in needs
    ]


def _with_inputs(figure: Figure, cache, reporter: Reporter) -> list[Figure]:
    """A figure whose job reads others' results (a folder's examples, its layer's ranking):
    those first, checked in their own right, then the figure, its job prepared with their
    cached results, so that what it is compared on is its own part of the work. An error if
    one of them is gone from the cache (removed by hand: `--prune-cache` keeps them): a build
    finding the figure cached does not compute it again, so the message says what to remove."""
    inputs = figure.job.inputs()
    found = {job.key: cache.get(job.key) for job in inputs}
    if not inputs and getattr(figure.job, "files", None):  # an author's images: their bytes travel
        return [dataclasses.replace(figure, job=figure.job.prepared({}, cache.root / "partial"))]
    if not inputs:
        return [figure]
    for job in inputs:
        if found[job.key] is None:
            reporter.error(
                figure.path,
                figure.line,
                f"{figure.job.kind} {figure.job.address} was computed from the {job.kind} "
                f"{job.address}, which is missing from the cache or damaged; remove "
                f"{figure.artifact.folder} and build the site to compute both again",
            )
    if None in found.values():
        return []
    firsts = [dataclasses.replace(figure, job=job, artifact=found[job.key]) for job in inputs]
    return [*firsts, dataclasses.replace(figure, job=figure.job.prepared(found, cache.root / "partial"))]


def _figures(article: Article, artifacts: dict[str, Artifact]) -> Iterator[Figure]:
    for directive, line, planned in article.figures():
        for job in jobs_of(planned):
            yield Figure(article.slug, article.doc.path, line, directive, job, artifacts[job.key], planned)


def sample(figures: list[Figure], count: int, seed: int = 0) -> list[Figure]:
    """`count` figures spread over the kinds (one of each kind in turn, at random within a
    kind), in reading order: a small sample still covers every measure."""
    rng = random.Random(seed)
    by_kind: dict[str, list[Figure]] = {}
    for figure in figures:
        by_kind.setdefault(figure.kind, []).append(figure)
    queues = [rng.sample(group, len(group)) for _, group in sorted(by_kind.items())]
    chosen: set[str] = set()
    while len(chosen) < min(count, len(figures)):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.add(queue.pop().job.key)
    return [figure for figure in figures if figure.job.key in chosen]


# -- recompute and compare -------------------------------------------------------------------


def verify(
    figures: list[Figure],
    catalog: Catalog,
    reporter: Reporter,
    options: Options,
    tolerances: dict[str, float] | None = None,
    checked: Callable[[Check], None] = lambda check: None,
) -> list[Check]:
    """Recompute `figures` with `options.executor`, compare each with its cached artifact, and
    return a Check per figure (in the order given). `checked` hears of each as it is made."""
    tolerances = {**TOLERANCES, **(tolerances or {})}
    by_key = {figure.job.key: figure for figure in figures}
    profiles = _Profiles(catalog, options.device)
    checks: dict[str, Check] = {}
    needs = [Need(f.job, f.path, f.line) for f in figures]
    for finished, _device_type in run(needs, catalog.cache, catalog, reporter, options):
        assert finished.batch is not None  # run() gives each back its batch
        for job, output in zip(finished.batch.jobs, finished.outputs, strict=True):
            figure = by_key[job.key]
            measure = KINDS[job.kind].measure(figure, output, profiles)
            check = Check(figure, tolerances[job.kind], version_changes(figure.artifact.record), measure)
            checks[job.key] = check
            checked(check)
    for figure in figures:
        if figure.job.key not in checks:  # its batch failed: the error is reported above
            versions = version_changes(figure.artifact.record)
            check = Check(
                figure, tolerances[figure.kind], versions, error="not recomputed (see the error above)"
            )
            checks[figure.job.key] = check
            checked(check)
    return [checks[figure.job.key] for figure in figures]


class _Profiles:
    """A feature visualization's layer's normalized responses to images, on this machine,
    against the default probe set (loads torch)."""

    def __init__(self, catalog: Catalog, device: str) -> None:
        self._catalog = catalog
        self._device = device

    def __call__(self, job: FeatureVisJob, pngs: list[bytes]) -> np.ndarray:
        from distillgen.engine.device import resolve_device
        from distillgen.engine.faithfulness import profiles
        from distillgen.engine.features import installed

        model = self._catalog.load(parse_spec(job.model))
        with installed(model, [d for d in job.dictionaries if d.model == job.model]):  # a feature's
            return profiles(model, job, pngs, default_probe(), resolve_device(self._device))


@functools.cache
def installed_versions() -> dict[str, str]:
    return {name: __version__ if name == "distillgen" else package_version(name) for name in VERSIONED}


def version_changes(record: dict) -> dict[str, tuple[str, str]]:
    """The packages whose recorded version differs from the installed one."""
    recorded = record.get("versions") or {}
    installed = installed_versions()
    return {
        name: (str(recorded.get(name, "unknown")), installed[name])
        for name in VERSIONED
        if str(recorded.get(name, "unknown")) != installed[name]
    }


def _finite(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# -- the table -------------------------------------------------------------------------------

COLUMNS = ("article", "where", "kind", "measure", "cached", "recomputed", "verdict")


def row(check: Check) -> tuple[str, ...]:
    figure, measure = check.figure, check.measure
    verdict = check.verdict
    if measure is not None:
        verdict += f" (Δ {measure.difference:.3g} {'≤' if measure.difference <= check.tolerance else '>'} "
        verdict += f"{check.tolerance:g}{'; ' + measure.note if measure.note else ''})"
    else:
        verdict += f" ({check.error})"
    if check.versions:
        changed = ", ".join(f"{name} {r} → {i}" for name, (r, i) in check.versions.items())
        verdict += f"; versions differ: {changed}"
    numbers = (f"{measure.cached:.4g}", f"{measure.recomputed:.4g}") if measure else ("", "")
    kind = f"{figure.kind} {figure.job.address}"
    return (figure.article, figure.where, kind, measure.name if measure else "", *numbers, verdict)


def table(checks: list[Check]) -> str:
    rows = [COLUMNS, *(row(check) for check in checks)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(r, widths, strict=False)) + "  " + r[-1]
        for r in rows
    )
