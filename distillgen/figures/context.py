"""What each stage of a kind may use: one small context per stage, built by the article.

A kind never sees the `Article`; it reports through its context and asks it for exactly what its
stage needs (the front matter while checking, model descriptions while planning, typed results
while following up and rendering).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from distillgen import kernels
from distillgen.diagnostics import Code, suggest
from distillgen.dictionaries import attach
from distillgen.figures.base import DirectiveKind, Quantity, Rendered, ValueField
from distillgen.jobs import Dataset, FaithfulnessResult, FeatureVisSettings, ResultError
from distillgen.labels import Asset, Target
from distillgen.options import featurevis_settings
from distillgen.safety import resolve_inside
from distillgen.units import ModelError, ModelInfo, ModelSpec, SpecError, UnitRef

if TYPE_CHECKING:
    from markdown_it.token import Token

    from distillgen.article import Article
    from distillgen.cache import Artifact
    from distillgen.source.frontmatter import FrontMatter


class _Reports:
    """`error` and `warning` at a line of the article: every context has them."""

    def __init__(self, article: Article) -> None:
        self._article = article

    def error(self, line: int | None, message: str) -> None:
        self._article.error(line, message)

    def warning(self, line: int | None, message: str, code: Code | None = None) -> None:
        self._article.warning(line, message, code)


class CheckContext(_Reports):
    """For `check`: the front matter, references and citations, local files, the model spec."""

    @property
    def front(self) -> FrontMatter:
        return self._article.front

    @property
    def folder(self) -> Path:
        """The article's folder: paths the author writes are relative to it."""
        return self._article.doc.path.parent

    def want(self, label: str, line: int, how: str, counter: str | None = None) -> None:
        """A reference to `label` (to a numbered `counter`, e.g. "Equation", when given),
        resolved once the whole article has been seen."""
        self._article.labels.want(label, line, how, counter)

    def define(self, label: str, text: str, line: int) -> None:
        """A label for something unnumbered (a code listing): references show `text`."""
        self._article.define(label, text, line, title=text)

    def equation(self, label: str, line: int) -> None:
        """A labelled equation: numbered in reading order with the article's others."""
        self._article.equation(label, line)

    def cite(self, key: str, line: int) -> bool:
        """Number a citation in order of first use; False (after an error) if unknown."""
        return self._article.cite(key, line)

    @property
    def roots(self) -> tuple[Path, ...]:
        """The folders an article may read files from: the articles folder, and --allow-root."""
        return self._article.doc.roots

    def asset(self, src: str, line: int) -> Asset | None:
        """An image the page shows (inside `roots`, an image by its content); None after an error."""
        return self._article.asset(src, line)

    def file(self, written: str, line: int) -> Path | None:
        """A file the author names, resolved inside `roots`; None after an error."""
        try:
            return resolve_inside(self.folder, written, self.roots)
        except ValueError as exc:
            self.error(line, str(exc))
            return None

    def model_spec(self, written: str | None, line: int) -> ModelSpec | None:
        """A directive's `:model:`, else the front matter's `model:`, else the shapes network."""
        return self._article.model_spec(written, line)

    def probe(self) -> Dataset | None:
        """The probe set the article's feature visualizations are measured on (its
        `featurevis:` defaults' `dataset`, `count`, `sample-seed`); None after an error."""
        return self._article.probe


class PlanContext(_Reports):
    """For `plan`: model descriptions, unit addresses checked against them, settings."""

    def __init__(self, article: Article) -> None:
        super().__init__(article)
        if article.catalog is None or article.dictionaries is None:
            raise RuntimeError("a PlanContext is made by Article.plan, once the catalog is set")
        self._catalog, self._dictionaries = article.catalog, article.dictionaries

    @property
    def folder(self) -> Path:
        return self._article.doc.path.parent

    def model_info(self, spec: ModelSpec, line: int) -> ModelInfo | None:
        """The model's layers and units (from the cache, or by loading it), the article's
        dictionaries of it among them (dictionaries.py); None after an error."""
        try:
            info = self._catalog.info(spec)
        except (ModelError, SpecError) as exc:
            self.error(line, str(exc))
            return None
        return self._dictionaries.info(info, self._article.artifacts)

    def attach(self, job, info: ModelInfo, other: ModelInfo | None = None):
        """The job with the dictionaries whose features it reads (dictionaries.attach); raises
        Pending, which the article handles, while one is not trained yet."""
        return attach(job, info, other)

    def units(
        self, spec: ModelSpec, refs: tuple[UnitRef, ...] | list[UnitRef], line: int, model_line: int
    ) -> tuple[ModelInfo, list[UnitRef]] | None:
        """The model and the units with canonical layer names; None after an error (about the
        model at `model_line`, about the addresses at `line`)."""
        info = self.model_info(spec, model_line)
        if info is None:
            return None
        try:
            return info, info.check_units(list(refs))
        except ModelError as exc:
            self.error(line, str(exc))
            return None

    def dictionary(self, name: str, line: int):
        """The declared dictionary `name` (dictionaries.Resolved: its job, features, layer);
        None after an error."""
        declared = self._article.front.dictionaries
        if name not in declared:
            known = ", ".join(declared) or "none; declare one in the front matter's 'dictionaries:'"
            self.error(
                line, f"unknown dictionary '{name}'{suggest(name, declared, cutoff=0.5)}; declared: {known}"
            )
            return None
        return self._dictionaries.resolve(name)

    def figure_values(self, label: str) -> tuple[str, dict[str, ValueField], bool] | None:
        """The kind of the figure `label` names, the values prose may quote of it and whether
        they are per unit; None when the label names something else (a heading, a figure that
        computes nothing)."""
        entry = self._article.labelled(label)
        if entry is None or not isinstance(entry.kind, DirectiveKind):
            return None
        return entry.kind.name, entry.kind.values, entry.kind.per_unit

    def featurevis_settings(self, info: ModelInfo, given: dict[str, Any] | None = None) -> FeatureVisSettings:
        """A figure's own settings, else the front matter's `featurevis:`, else the defaults."""
        return featurevis_settings(info.input_size, given or {}, self._article.front.featurevis)


class FollowUpContext(_Reports):
    """For `follow_up`: the results computed so far."""

    def __init__(self, article: Article, artifacts: dict[str, Artifact]) -> None:
        super().__init__(article)
        self._artifacts = artifacts

    def done(self, job) -> bool:
        return job.key in self._artifacts

    def result(self, job):
        """The job's typed result (`job.Result`); only for jobs that are `done`."""
        return _result(self._artifacts[job.key], job)

    def kernels(self, job) -> np.ndarray:
        """A weights job's kernels: [source channels, height, width]."""
        return kernels.read(self._artifacts[job.key].file("kernels.npy"))

    def kernel_norms(self, job) -> list[float]:
        """Each source channel's kernel norm, for ranking."""
        return self.derived(job, "norms", lambda: kernels.norms(self.kernels(job)).tolist())

    def figure_value(self, label: str, field: str, unit: str = "") -> Quantity | None:
        """`field` of the figure `label` names (of one of its units, for a kind whose values
        are per unit), once its result is computed; None before."""
        entry = self._article.labelled(label)
        if entry is None or not isinstance(entry.kind, DirectiveKind) or not self._article.planned(entry):
            return None
        if unit:
            return entry.kind.unit_value(entry.value, field, unit, self)
        return entry.kind.value(entry.value, field, self)

    def same_layer(self, fingerprint: str, written: str, canonical: str) -> bool:
        """Whether the layer an author wrote (`canonical` itself, an alias, lucent's '_' form,
        or nothing) is `canonical` in the model of this fingerprint."""
        if written in ("", canonical):
            return True
        info = self._article.catalog.known(fingerprint) if self._article.catalog else None
        try:
            return info is not None and info.layer(written).name == canonical
        except ModelError:
            return False

    def file(self, job, name: str) -> Path:
        """A payload file of a computed job (read it inside `derived`, so a rebuild does not)."""
        return self._artifacts[job.key].file(name)

    def derived(self, job, name: str, compute: Callable[[], object]):
        """`compute()` (a JSON value read from the job's artifact), kept with the cache entry
        (`Artifact.derived`): a rebuild follows up without reading a payload again."""
        return self._artifacts[job.key].derived(name, compute)


@dataclass
class RenderContext:
    """For `render`, one per directive or role: results, and what the page gets with the HTML
    (`rendered()` hands over the files and hover cards collected while rendering)."""

    _article: Article
    _artifacts: dict[str, Artifact]
    number: int | None = None  # the figure's number, for numbered kinds
    label: str | None = None
    layout: str = "l-body"
    caption: list[Token] = field(default_factory=list)
    counter: str | None = "Figure"  # "Figure 2", "Table 2"
    _files: dict[str, Path] = field(default_factory=dict)
    _cards: dict[str, str] = field(default_factory=dict)
    _appendix: list[tuple[str, str]] = field(default_factory=list)

    def rendered(self, html: str) -> Rendered:
        return Rendered(html, dict(self._files), dict(self._cards), tuple(self._appendix))

    def appendix(self, title: str, html: str) -> None:
        """A section of the article's appendix (after the body, before the footnotes)."""
        self._appendix.append((title, html))

    def markdown(self, tokens: list[Token]) -> str:
        return self._article.render_tokens(tokens)

    def figure(self, content: str, extra_class: str = "", note: str = "") -> str:
        """The <figure> frame of a numbered kind: layout, anchor, number, caption, and after
        the author's caption a `note` of the kind's own (plain text: what the figure computed
        that a reader must know to read it)."""
        from html import escape

        anchor = f' id="{escape(self.label)}"' if self.label else ""
        classes = " ".join(c for c in (self.layout, extra_class) if c)
        caption = self.markdown(self.caption).strip()
        if note:
            caption += f' <span class="figure-note">{escape(note)}</span>'
        number = f'<span class="figure-number">{self.counter} {self.number}</span>' if self.number else ""
        figcaption = f"<figcaption>{number}{caption}</figcaption>" if number or caption else ""
        return f'<figure class="{classes}"{anchor}>{content}{figcaption}</figure>'

    def result(self, job):
        return _result(self._artifacts[job.key], job)

    def kernels(self, job) -> np.ndarray:
        return kernels.read(self._artifacts[job.key].file("kernels.npy"))

    def measures(self, job) -> FaithfulnessResult | None:
        """A feature visualization's faithfulness measures (faithful.py), None for a direction."""
        measured = self._article.measured.get(job.key)
        return None if measured is None else _result(self._artifacts[measured.key], measured)

    def file_url(self, job, name: str) -> str:
        """Copy a file of the job's artifact into the article's folder; its URL from the page."""
        artifact = self._artifacts[job.key]
        url = f"figures/{artifact.key[:16]}-{name}"
        self._files[url] = artifact.file(name)
        return url

    def file(self, asset: Asset) -> str:
        """Publish a local file checked by `CheckContext.asset`; its URL from the page."""
        self._files[asset.url] = asset.path
        return asset.url

    def card(self, anchor: str, html: str) -> None:
        """A hover card that `data-hover-ref="{anchor}"` elements show (see distill.js)."""
        self._cards.setdefault(anchor, html)

    def target(self, label: str) -> Target | None:
        return self._article.labels.target(label)

    def shown(self, target: Target) -> str:
        """What a reference to `target` shows without text of its own, as HTML."""
        return self._article.shown(target)

    def citation(self, key: str) -> int | None:
        return self._article.citations.numbers.get(key)

    def short_authors(self, key: str) -> str:
        bibliography = self._article.citations.bibliography
        return bibliography.short_authors(key) if bibliography is not None else key


def _result(artifact: Artifact, job):
    try:
        return artifact.result(job)
    except ResultError as exc:  # compute() recomputes unreadable records: a bug if it shows
        raise ResultError(f"{artifact.folder}: {exc}") from None
