"""The atlas: a Microscope of a model, every unit of the layers asked for.

    units/<model>/index.html              the model: its layers, unit counts, a thumbnail each
    units/<model>/<layer>/index.html      a layer: every unit's feature visualization (lazy)
    units/<model>/<layer>/<unit>.html     a unit: the same unit page articles link to

Asked for by `distillgen atlas SPEC` or the site config's `atlas:` (siteconfig.py). Planning
turns a request into one unit page per unit (unitpages.py) whose jobs are computed and cached
like any figure's; the work grows linearly with the units (a layer's outgoing kernels are one
job per unit of the next layer, shared by every unit of the layer).
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from distillgen import datasets, signed
from distillgen.compute import Catalog, Need
from distillgen.diagnostics import Reporter
from distillgen.faithful import default_probe
from distillgen.figures.unitview import featurevis_job
from distillgen.jobs import Dataset, FeatureVisSettings
from distillgen.options import featurevis_settings
from distillgen.paths import atlas_path
from distillgen.source.siteconfig import AtlasRequest
from distillgen.unitpages import UnitPage, figure_file, settings_words, unit_page
from distillgen.units import ModelError, ModelInfo, SpecError, UnitRef, parse_spec
from distillgen.zoo import TASKS

# Probe images ranked for each unit's dataset examples: a generator's sample of this many, or
# every image of a folder (read in one streamed pass per layer, engine/ranking.py).
PROBE_COUNT = 1000
EVERY_IMAGE = 10_000_000


@dataclass
class Atlas:
    request: AtlasRequest
    model: str  # canonical spec, as jobs name it
    info: ModelInfo
    settings: FeatureVisSettings
    made_of: str  # the request and what it resolved to: what identifies the plan (plan_atlas)
    pages: dict[str, list] = field(default_factory=dict)  # layer -> its UnitPages, in unit order

    @cached_property
    def needs(self) -> dict[str, Need]:
        """Every job its pages need, by key, each once (a layer's outgoing kernels are shared
        by its units), asked for by its request: planned once, as the atlas is."""
        needs: dict[str, Need] = {}
        where = (self.request.path, self.request.line)
        shared: set[int] = set()  # the outgoing kernels' jobs of a layer
        for pages in self.pages.values():
            for page in pages:
                jobs = page.own_jobs if id(page.outputs) in shared else page.jobs
                shared.add(id(page.outputs))
                for job in jobs:
                    needs.setdefault(job.key, Need(job, *where))
        return needs

    @property
    def path(self) -> str:
        return atlas_path(self.model)

    def layer_path(self, layer: str) -> str:
        return atlas_path(self.model, layer)


@dataclass(frozen=True)
class KeptPlans:
    """Where planned atlases are kept for later processes (`<cache>/plans/`, signed: signed.py),
    with the code that planned them: a new process takes its atlas from there instead of
    planning its 40,000 jobs and their keys again (InceptionV1's: 0.47 s, against 0.12 s to
    load). Those of the build's atlases and the newest few others are kept."""

    folder: Path
    code: str
    used: set[Path] = field(default_factory=set, compare=False)  # taken or kept by this build

    MOST = 4  # besides those of this build's atlases

    def _path(self, made_of: str) -> Path:
        name = hashlib.sha256("\0".join((self.code, made_of)).encode()).hexdigest()
        return self.folder / f"{name}.pickle"

    def load(self, made_of: str) -> Atlas | None:
        path = self._path(made_of)
        atlas = signed.load(path, PLAN_VERSION)
        if not isinstance(atlas, Atlas):
            return None
        with suppress(OSError):
            os.utime(path)  # the newest, for `keep`'s count
        self.used.add(path)
        return atlas

    def keep(self, made_of: str, atlas: Atlas) -> None:
        with suppress(Exception):  # keeping it only saves planning: it never fails a build
            signed.dump(path := self._path(made_of), PLAN_VERSION, atlas)
            self.used.add(path)
            signed.prune(self.folder, self.used, self.MOST)


PLAN_VERSION = b"distillgen-atlas-plan-2"


def plan_atlases(
    requests: tuple[AtlasRequest, ...],
    catalog: Catalog,
    reporter: Reporter,
    roots: tuple[Path, ...] = (),
    kept: KeptPlans | None = None,
) -> list[Atlas]:
    """An atlas, with its unit pages, for each request; problems go to `reporter`."""
    atlases: dict[str, Atlas] = {}
    for request in requests:
        atlas = plan_atlas(request, catalog, reporter, roots, kept)
        if atlas is None:
            continue
        if atlas.model in atlases:
            first = atlases[atlas.model].request
            where = f" (first on line {first.line})" if first.line else ""
            reporter.error(
                request.path,
                request.line,
                f"the atlas of '{atlas.model}' is asked for twice{where}; list all its layers in one",
            )
            continue
        atlases[atlas.model] = atlas
    return list(atlases.values())


def plan_atlas(
    request: AtlasRequest,
    catalog: Catalog,
    reporter: Reporter,
    roots: tuple[Path, ...] = (),
    kept: KeptPlans | None = None,
) -> Atlas | None:
    def error(message: str) -> None:
        reporter.error(request.path, request.line, f"atlas of '{request.model}': {message}")

    try:
        spec = parse_spec(request.model, request.base)
        info = catalog.info(spec)
    except (SpecError, ModelError) as exc:
        error(str(exc))
        return None
    layers = _layers(request, info, error)
    dataset = None
    if request.examples:
        try:
            dataset = datasets.dataset(
                request.dataset,
                PROBE_COUNT if request.dataset in TASKS else EVERY_IMAGE,
                0,
                request.base,
                roots or (request.base,),
                warn=lambda message: reporter.warning(request.path, request.line, message),
            )
        except datasets.DatasetError as exc:
            error(str(exc))
    if layers is None or (request.examples and dataset is None):
        return None
    settings = featurevis_settings(info.input_size, request.featurevis)
    # Everything the pages are made of: the request, and what it resolved to (a folder's images
    # by their fingerprint). serve plans the same atlas after every edit, and planning an
    # InceptionV1 atlas's 5,000 unit pages (their 40,000 jobs and keys) takes most of a second.
    made_of = repr((request, str(spec), info.fingerprint, settings, layers, dataset))
    if (atlas := _PLANNED.get(made_of)) is not None:
        return atlas
    if (atlas := kept.load(made_of) if kept else None) is None:
        atlas = Atlas(request, str(spec), info, settings, made_of)
        for layer in layers:
            atlas.pages[layer] = _unit_pages(atlas, layer, dataset)
        if kept:
            atlas.needs  # noqa: B018 (its jobs and their keys, planned now: the kept plan holds them)
            kept.keep(made_of, atlas)
    if len(_PLANNED) >= 4:
        _PLANNED.clear()
    _PLANNED[made_of] = atlas
    return atlas


def _unit_pages(atlas: Atlas, layer: str, dataset: Dataset | None) -> list[UnitPage]:
    """A page for each unit of `layer`; with no examples asked for, its images are measured on
    the default probe set."""
    request, info = atlas.request, atlas.info
    examples = (dataset, request.examples) if dataset else (default_probe(), 0)
    return [
        unit_page(
            featurevis_job(atlas.model, info.fingerprint, UnitRef(layer, unit), atlas.settings, dataset),
            info,
            request.diversity,
            examples,
            atlas,
        )
        for unit in range(info.layers[layer].channels)
    ]


# The atlases this process planned, by what they are made of: an atlas and its unit pages are
# never changed after planning (a build's articles show themselves on copies of the pages).
_PLANNED: dict[str, Atlas] = {}


def _layers(request: AtlasRequest, info: ModelInfo, error) -> list[str] | None:
    """The canonical names of the layers asked for, in the network's order; None after an error."""
    if not request.layers:
        return info.convolutional_layers()
    chosen = []
    for name in request.layers:
        try:
            layer = info.layer(name)
        except ModelError as exc:
            error(str(exc))
            return None
        if len(layer.shape) != 3:
            error(
                f"'{name}' is not a convolutional layer (its output is {layer.shape_text}); "
                f"an atlas shows layers like {', '.join(info.convolutional_layers()[:4])}"
            )
            return None
        chosen.append(layer.name)
    order = list(info.layers)
    return sorted(set(chosen), key=order.index)


def thumbnail(pages: list, artifacts: dict):
    """The unit page whose feature visualization reached the highest activation."""
    return max(pages, key=lambda page: artifacts[page.image.key].result(page.image).values[0])


# -- pages -----------------------------------------------------------------------------------


def model_page(atlas: Atlas, artifacts: dict) -> tuple[dict, dict]:
    """What templates/atlas.html shows, and the files it copies (site path -> file)."""
    depth = "../" * atlas.path.count("/")
    files: dict = {}
    layers = []
    for layer, pages in atlas.pages.items():
        best = thumbnail(pages, artifacts)
        layers.append(
            {
                "name": layer,
                "shape": atlas.info.layers[layer].shape_text,
                "units": len(pages),
                "href": f"{layer}/index.html",
                "thumbnail": depth + _image(best, artifacts, files),
                "thumbnail_href": f"{layer}/{best.image.unit}.html",
                "thumbnail_address": best.address,
            }
        )
    total = sum(len(pages) for pages in atlas.pages.values())
    return _frame(depth) | {"atlas": atlas, "layers": layers, "total": total}, files


def layer_page(atlas: Atlas, layer: str, artifacts: dict) -> tuple[dict, dict]:
    """What templates/layer.html shows, and the files it copies."""
    depth = "../" * atlas.layer_path(layer).count("/")
    files: dict = {}
    units = [
        (page.image.unit, f"{page.image.unit}.html", depth + _image(page, artifacts, files))
        for page in atlas.pages[layer]
    ]
    shape = atlas.info.layers[layer].shape_text
    return _frame(depth) | {
        "atlas": atlas,
        "layer": layer,
        "shape": shape,
        "units": units,
        "model_href": "../index.html",
        "settings": settings_text(atlas),
    }, files


def settings_text(atlas: Atlas) -> str:
    """How the atlas's images were made, in a sentence: a reader compares them with an
    article's, which may use other settings."""
    how = settings_words(atlas.settings)
    request = atlas.request
    extra = [f"diversity sets of {request.diversity}"] if request.diversity else []
    if request.examples:
        extra.append(f"{request.examples} dataset examples each way from {request.dataset}")
    return "Feature visualizations: " + ", ".join(how) + (f"; {', '.join(extra)}" if extra else "") + "."


def _frame(depth: str) -> dict:
    return {"static": depth + "static", "home": depth + "index.html"}


def _image(page: UnitPage, artifacts: dict, files: dict) -> str:
    artifact = artifacts[page.image.key]
    return figure_file(artifact, artifact.result(page.image).images[0], files)
