"""Unit pages: `build/units/<model>/<layer>/<unit>.html`, one per unit an article shows or an
atlas covers (a unit in both has one page, with both's links).

A page has the unit's feature visualizations (larger): every distinct image of it the site
shows, each labelled with the settings it was made with and linked to the articles (or atlas)
that show it, so a page never shows another picture than an article that links to it. Then a
diversity set, its strongest inputs from the previous convolutional layer and strongest
outputs into the next one (expanded weights, as heatmaps), what carries it on its top probe
images (attributions to the previous layer, beside the weights' ranking), and links
back to the articles that show it. An atlas page adds the dataset examples that excite the
unit most and least, and links to its neighbours and its layer's page. Chips, grid cells and
circuit nodes link here. Planned after the articles' own jobs, computed like them.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from distillgen import kernels
from distillgen.cache import Artifact
from distillgen.compute import Catalog, Need
from distillgen.faithful import default_probe, measures_of, summary
from distillgen.jobs import (
    AttributionJob,
    AttributionStage,
    Dataset,
    ExamplesJob,
    FaithfulnessJob,
    FeatureVisJob,
    FeatureVisSettings,
    WeightsJob,
)
from distillgen.paths import links_to_page, unit_page_path
from distillgen.render.colors import same_size
from distillgen.render.kernelgrid import kernel_grid
from distillgen.render.reuse import stamp
from distillgen.source.atlasrequest import AtlasRequest
from distillgen.units import ModelError, ModelInfo, parse_spec

if TYPE_CHECKING:
    from distillgen.atlas import Atlas

DIVERSITY = AtlasRequest.diversity  # an article's unit's page shows a diversity set as an atlas's
SHOWN = 8  # strongest inputs and outputs on a page
NATURAL = 4  # an article's unit's page: its strongest probe images beside its images, which
# its attribution ("what carries it") is computed on


@dataclass
class Shown:
    """One image of the unit that the site shows, and where: the articles whose figures show
    it (in site order), and whether it is its atlas's."""

    job: FeatureVisJob
    articles: list = field(default_factory=list)  # Article objects, in site order
    atlas: bool = False


@dataclass
class UnitPage:
    # The page's own image, which its diversity set repeats and its atlas's grids show: the
    # atlas's, else the first article's first image of the unit. Every image of the unit that
    # the site shows is in `shown`, this one first.
    image: FeatureVisJob
    info: ModelInfo
    diversity: FeatureVisJob | None
    inputs: WeightsJob | None  # previous conv layer -> this unit
    outputs: tuple[WeightsJob, ...]  # this unit's layer -> each unit of the next conv layer (shared)
    examples: tuple[ExamplesJob, ...] = ()  # the most exciting probe images (then the least, on an atlas's)
    # what carries it on its top probe images, from the previous layer (an article's unit's page:
    # an atlas's thousands of units would each cost as much as their feature visualization)
    carriers: AttributionJob | None = None
    probe: Dataset | None = None  # what its images' faithfulness is measured on (default: faithful.py's)
    atlas: Atlas | None = None  # the atlas that covers the unit: its layer page and neighbours
    articles: list = field(default_factory=list)  # Article objects, in site order
    shown: list[Shown] = field(default_factory=list)  # each distinct image of the unit, `image`'s first

    def __post_init__(self) -> None:
        if not self.shown:
            self.shown.append(Shown(self.image, atlas=self.atlas is not None))

    def show(self, job: FeatureVisJob, article) -> None:
        """`article` shows the unit as `job` does: a new image on the page unless one shows it
        already (the same key: the same file), and the article among its sources."""
        shown = next((s for s in self.shown if s.job.key == job.key), None)
        if shown is None:
            shown = Shown(job)
            self.shown.append(shown)
        if article not in shown.articles:
            shown.articles.append(article)
        if article not in self.articles:
            self.articles.append(article)
        self.__dict__.pop("own_jobs", None)  # planned again with the new image

    def for_build(self) -> UnitPage:
        """This planned page for one build to show its articles on: an atlas's pages are
        planned once per process (atlas.py) and never changed; their jobs are kept."""
        self.own_jobs  # noqa: B018 (planned here, so that every copy shares them)
        page = copy.copy(self)
        page.articles = list(self.articles)
        page.shown = [Shown(s.job, list(s.articles), s.atlas) for s in self.shown]
        return page

    @property
    def path(self) -> str:
        return unit_page_path(self.image.model, self.image.layer, self.image.unit)

    @property
    def address(self) -> str:
        return f"{self.image.layer}:{self.image.unit}"

    @property
    def jobs(self) -> list:
        return [*self.own_jobs, *self.outputs]

    def measures(self, job: FeatureVisJob) -> FaithfulnessJob | None:
        """The faithfulness measures of one of its images, on its probe set."""
        return measures_of(job, self.probe)

    @functools.cached_property
    def own_jobs(self) -> list:
        """Its jobs but the outgoing kernels, which the units of its layer share (kept: planning
        and the page's key both ask, and an atlas has thousands of pages)."""
        optional = [self.diversity, self.inputs, self.carriers]
        images = [s.job for s in self.shown if s.job.key != self.image.key]  # the articles' own
        made = [self.image, *images, *(job for job in optional if isinstance(job, FeatureVisJob))]
        measures = [m for job in made if (m := self.measures(job)) is not None]
        return [self.image, *images, *(job for job in optional if job), *self.examples, *measures]


def unit_page(
    job: FeatureVisJob,
    info: ModelInfo,
    diversity: int = DIVERSITY,
    examples: tuple[Dataset, int] | None = None,
    atlas: Atlas | None = None,
    probe: Dataset | None = None,
) -> UnitPage:
    """The page of `job`'s unit: `examples` is (probe set, how many each way), else the
    NATURAL strongest images of `probe` (the probe set its article measured its image on;
    default: the default one) beside its feature visualizations. A dictionary feature's page
    reads the layers around its dictionary's layer, through the dictionary."""
    carried = job.dictionaries
    real = next((d.layer for d in carried if d.name == job.layer), job.layer)
    previous, following = _neighbours(info, real)
    dataset, top = examples or (probe or default_probe(), NATURAL)
    examples_jobs = tuple(
        ExamplesJob(
            job.model, job.fingerprint, job.layer, job.unit, dataset, top, negative, dictionaries=carried
        )
        for negative in ((False, True) if examples else (False,))
        if top
    )
    return UnitPage(
        image=job,
        info=info,
        diversity=dataclasses.replace(job, diversity=diversity) if diversity else None,
        inputs=_weights(job, previous, job.layer, job.unit) if previous else None,
        outputs=_outputs(
            job.model, job.fingerprint, job.layer, following, info.layers[following].channels, carried
        )
        if following
        else (),
        examples=examples_jobs,
        carriers=_carriers(job, previous, dataset) if previous and not examples else None,
        probe=dataset,
        atlas=atlas,
    )


def plan_unit_pages(
    articles: list, atlases: list[Atlas], catalog: Catalog
) -> tuple[list[UnitPage], list[Need]]:
    """The atlases' pages, and a page per other unit the articles show; the jobs the pages need
    (with where they were asked for). A page shows every distinct image of its unit that an
    article shows (jobs the articles computed already: nothing more is asked for them), so it
    agrees with each article that links to it; its diversity set, kernels and examples are
    its own image's (the atlas's, else the first article's). An atlas's pages are planned once
    (atlas.py): the articles show themselves on this build's copies of theirs."""
    pages = {
        (p.image.model, p.image.layer, p.image.unit): p
        for a in atlases
        for ps in a.pages.values()
        for p in ps
    }
    needs: dict[str, Need] = {}  # each job once (a unit's inputs are its layer's outputs too)
    for atlas in atlases:
        needs.update(atlas.needs)
    own: set[tuple] = set()  # the pages of this build (not an atlas's as planned)
    for article in articles:
        for need in article.needs:
            job = need.job
            if not links_to_page(job):
                continue
            key = (job.model, job.layer, job.unit)
            if key not in pages:
                measured = article.measured.get(job.key)
                probe = measured.dataset if measured else None
                pages[key] = unit_page(job, catalog.info(parse_spec(job.model)), probe=probe)
                for j in pages[key].jobs:
                    needs.setdefault(j.key, Need(j, need.path, need.line))
            elif key not in own:
                pages[key] = pages[key].for_build()
            own.add(key)
            pages[key].show(job, article)
    return list(pages.values()), list(needs.values())


def _carriers(job: FeatureVisJob, previous: str, dataset: Dataset) -> AttributionJob:
    """The attribution of the unit to `previous`'s units on its NATURAL top probe images (the
    ones beside its images), its SHOWN strongest units, no maps. Activation × gradient: one
    pass per image, where integrated gradients take 64 (a page of an InceptionV1 unit would
    cost a minute of CPU); a figure in an article checks completeness."""
    return AttributionJob(
        job.model,
        job.fingerprint,
        job.layer,
        job.unit,
        (AttributionStage(previous),),
        SHOWN,
        "gradient",
        1,
        "black",
        0.05,
        "examples",
        dataset=dataset,
        top=NATURAL,
        maps=False,
        dictionaries=job.dictionaries,
    )


def _weights(job: FeatureVisJob, source: str, layer: str, unit: int) -> WeightsJob:
    return WeightsJob(job.model, job.fingerprint, source, layer, unit, dictionaries=job.dictionaries)


@functools.lru_cache(maxsize=64)
def _outputs(
    model: str, fingerprint: str, layer: str, following: str, units: int, dictionaries: tuple = ()
) -> tuple[WeightsJob, ...]:
    """The kernels from `layer` into each unit of `following`: the same jobs for every unit of
    `layer` (made once, so their keys are hashed once: an atlas layer has thousands)."""
    return tuple(
        WeightsJob(model, fingerprint, layer, following, unit, dictionaries=dictionaries)
        for unit in range(units)
    )


# (a model description's id, layer) -> (the description, so that its id stays its own, and the
# layer's neighbours): an atlas asks once per unit, and InceptionV1 has hundreds of layers.
_NEIGHBOURS: dict[tuple[int, str], tuple[ModelInfo, tuple[str | None, str | None]]] = {}


def _neighbours(info: ModelInfo, layer: str) -> tuple[str | None, str | None]:
    """The convolutional top-level layers before and after `layer`'s block; a pooling layer is
    none (its units are its input's, pooled): InceptionV1's mixed4a reads mixed3b."""
    held = _NEIGHBOURS.get((id(info), layer))
    if held is None or held[0] is not info:
        if len(_NEIGHBOURS) >= 1000:
            _NEIGHBOURS.clear()
        held = _NEIGHBOURS[id(info), layer] = (info, _find_neighbours(info, layer))
    return held[1]


def _find_neighbours(info: ModelInfo, layer: str) -> tuple[str | None, str | None]:
    convs = [name for name in info.convolutional_layers() if not info.layers[name].pooled or name == layer]
    block = info.block_of(layer)
    if block not in convs:
        return None, None
    index = convs.index(block)  # a branch inside a block reads the block before it
    before = convs[index - 1] if index > 0 else None
    after = convs[index + 1] if index + 1 < len(convs) else None
    # a transformer's layers have no kernels between them (ModelInfo.check_kernels)
    before = before if before and _joined(info, before, block) else None
    after = after if after and _joined(info, block, after) else None
    return before, after


def _joined(info: ModelInfo, source: str, target: str) -> bool:
    try:
        info.check_kernels(source, target)
        return True
    except ModelError:
        return False


class SiteMap:
    """Every unit page by (model, address), and a digest of each model's set of pages: a unit
    page links to the pages of its inputs and outputs that exist, so it depends on that set."""

    def __init__(self, pages: list[UnitPage]) -> None:
        self.pages = {(p.image.model, p.address): p for p in pages}
        addresses: dict[str, list[str]] = {}
        for model, address in sorted(self.pages):
            addresses.setdefault(model, []).append(address)
        self._outputs: dict[int, str] = {}
        self._strongest: dict[int, dict[int, list[tuple[int, np.ndarray]]]] = {}
        self.digests = {
            model: hashlib.sha256("\n".join(listed).encode()).hexdigest()
            for model, listed in addresses.items()
        }

    def path(self, model: str, address: str) -> str | None:
        page = self.pages.get((model, address))
        return page.path if page else None

    def outputs_digest(self, outputs: tuple, artifacts: dict) -> str:
        """The stamps of a layer's outgoing kernels, digested once for all its units' pages
        (`outputs` is the one tuple they share)."""
        if id(outputs) not in self._outputs:
            stamps = [stamp(artifacts[job.key]) for job in outputs]
            self._outputs[id(outputs)] = hashlib.sha256(json.dumps(stamps).encode()).hexdigest()
        return self._outputs[id(outputs)]

    def strongest_outputs(self, outputs: tuple, unit: int, artifacts: dict) -> list[tuple[int, np.ndarray]]:
        """`unit`'s SHOWN strongest outgoing kernels (the next layer's unit, the kernel),
        strongest first: found for every unit of the layer at once (`outputs` is the one tuple
        its pages share), so a layer reads each of the next layer's kernel files at most twice,
        not once per unit (InceptionV1's mixed4e -> mixed5a: 832 files, not 692,000)."""
        if id(outputs) not in self._strongest:
            self._strongest[id(outputs)] = _strongest_outputs(outputs, artifacts)
        return self._strongest[id(outputs)].get(unit, [])


def page_context(page: UnitPage, artifacts: dict, site: SiteMap) -> tuple[dict, dict]:
    """What templates/unit.html shows, and the image files it copies (site path -> file)."""
    depth = "../" * (page.path.count("/"))
    files: dict = {}
    model = page.image.model

    def image(job: FeatureVisJob, index: int) -> str:
        artifact = artifacts[job.key]
        return depth + figure_file(artifact, artifact.result(job).images[index], files)

    def link(address: str) -> str | None:
        target = site.path(model, address)
        return depth + target if target else None

    inputs, outputs = [], []
    by_weight: list[int] = []
    if page.inputs is not None:
        stack = _kernels(artifacts[page.inputs.key])
        by_weight = kernels.strongest_first(stack)
        inputs = [(f"{page.inputs.source}:{c}", stack[c]) for c in by_weight[:SHOWN]]
    if page.outputs:
        strongest = site.strongest_outputs(page.outputs, page.image.unit, artifacts)
        padded = same_size([kernel for _, kernel in strongest])
        outputs = [
            (f"{page.outputs[0].layer}:{j}", kernel) for (j, _), kernel in zip(strongest, padded, strict=True)
        ]
    target = page.address
    diversity = page.diversity
    images = [
        {
            "src": image(shown.job, 0),
            "value": artifacts[shown.job.key].result(shown.job).values[0],
            "steps": shown.job.settings.steps,
            "settings": job_settings_text(shown.job),
            "sources": _sources(page, shown, depth),
            "measures": _measures(page, shown.job, artifacts),
        }
        for shown in page.shown
    ]
    examples = [_examples(job, artifacts[job.key], depth, files) for job in page.examples]
    context = {
        "page": page,
        "static": depth + "static",
        "home": depth + "index.html",
        "images": images,
        "diversity": [image(diversity, i) for i in range(diversity.images)] if diversity else [],
        "diversity_settings": job_settings_text(diversity) if diversity else "",
        "inputs_svg": kernel_grid(inputs, target, 8, 8, f"in-{page.image.key[:8]}", even=True)
        if inputs
        else "",
        "inputs": [(address, link(address)) for address, _ in inputs],
        "outputs_svg": kernel_grid(
            outputs, target, 8, 8, f"out-{page.image.key[:8]}", outgoing=True, even=True
        )
        if outputs
        else "",
        "outputs": [(address, link(address)) for address, _ in outputs],
        "carriers": _carried(page, artifacts, by_weight, link),
        "natural": examples[0] if examples else None,  # the most exciting, beside each image
        "examples": examples[1:],  # the least exciting (an atlas's)
        "atlas": _atlas_links(page, link, depth),
        "articles": [(depth + f"{a.slug}/index.html", a.front.title) for a in page.articles],
    }
    return context, files


def settings_words(settings: FeatureVisSettings) -> list[str]:
    """How feature visualizations were made, as phrases: "128 steps", "64 px", …; a unit page
    labels each image with them, an atlas's layer page all of its images."""
    s = settings
    return [
        f"{s.steps} steps",
        f"{s.size} px",
        f"learning rate {s.lr:g}",
        f"seed {s.seed}",
        _parameterization(s),
        "decorrelated colours" if s.decorrelate else "plain colours",
        "lucent's standard transforms" if s.transforms == "standard" else "no transforms",
    ]


def _parameterization(settings: FeatureVisSettings) -> str:
    if settings.param == "maco":
        return "MACO (Fourier phase only, the probe set's magnitudes)"
    return "Fourier parameterization" if settings.fft else "pixel parameterization"


def job_settings_text(job: FeatureVisJob) -> str:
    """How one image of a unit page was made: its settings, and the dictionary whose feature it
    shows (two articles may declare one name over different dictionaries)."""
    words = settings_words(job.settings)
    words += [
        f"a feature of a dictionary of {d.features} features over {d.layer} "
        f"(k={d.k}, weights {d.checksum[:8]})"
        for d in job.dictionaries
        if d.name == job.layer
    ]
    return ", ".join(words)


def _sources(page: UnitPage, shown: Shown, depth: str) -> list[dict]:
    """Where an image of the page is shown, linked: its atlas (the unit's layer page), the
    articles."""
    sources = []
    if shown.atlas and page.atlas is not None:
        href = depth + page.atlas.layer_path(page.image.layer)
        sources.append({"href": href, "atlas": page.image.model, "title": None})
    sources += [
        {"href": depth + f"{a.slug}/index.html", "atlas": None, "title": a.front.title}
        for a in shown.articles
    ]
    return sources


def figure_file(artifact: Artifact, name: str, files: dict) -> str:
    """The site path of an artifact's file, added to the files the page copies."""
    site_path = f"units/figures/{artifact.key[:16]}-{name}"
    files[site_path] = artifact.file(name)
    return site_path


def _examples(job: ExamplesJob, artifact: Artifact, depth: str, files: dict) -> dict:
    result = artifact.result(job)
    return {
        "heading": f"The {len(result.examples)} of {result.probe_size} probe images that excite it "
        + ("least" if job.negative else "most"),
        "items": [
            (depth + figure_file(artifact, item.crop, files), item.index, item.value)
            for item in result.examples
        ],
    }


def _measures(page: UnitPage, job: FeatureVisJob, artifacts: dict) -> dict | None:
    """An image's faithfulness measures, as the page words them (the first image of a set)."""
    measures = page.measures(job)
    if measures is None or measures.key not in artifacts:
        return None
    result = artifacts[measures.key].result(measures)
    ratio = result.natural_ratio[0]
    return {
        "summary": summary(result),
        "specificity": result.specificity[0],
        "units": result.units,
        "ratio": ratio,
        "path": result.path_similarity(0),
        "baseline": result.baseline,
        "path_layers": list(zip(result.path_layers, result.path[0], result.path_baseline, strict=True)),
        "probe": f"{result.probe_size} images of {Path(measures.dataset.source).name}",
    }


def _carried(page: UnitPage, artifacts: dict, by_weight: list[int], link) -> dict | None:
    """What carries the unit on its top probe images, as the page words it: the previous
    layer's units by attribution, each with its rank by weight."""
    job = page.carriers
    if job is None or job.key not in artifacts:
        return None
    result = artifacts[job.key].result(job)
    (stage,) = result.stages
    rank = {unit: index + 1 for index, unit in enumerate(by_weight)}
    largest = max((abs(v) for v in stage.values), default=0.0) or 1.0
    rows = [
        {
            "address": f"{stage.layer}:{unit}",
            "href": link(f"{stage.layer}:{unit}"),
            "value": value,
            "width": round(100 * abs(value) / largest),
            "rank": rank.get(unit),
            "differs": rank.get(unit, SHOWN + 1) > SHOWN,
        }
        for unit, value in zip(stage.units, stage.values, strict=True)
    ]
    drawn = sum(stage.values)
    return {
        "rows": rows,
        "inputs": len(result.labels),
        "probe": Path(job.dataset.source).name if job.dataset else "",
        "drawn": drawn,
        "total": stage.total,
        "share": drawn / stage.total if stage.total else None,
    }


def _atlas_links(page: UnitPage, link, depth: str) -> dict | None:
    """The layer page, the model page and the units on either side, for an atlas page."""
    if page.atlas is None:
        return None
    layer, unit = page.image.layer, page.image.unit
    return {
        "model_href": depth + page.atlas.path,
        "layer": depth + page.atlas.layer_path(layer),
        "previous": link(f"{layer}:{unit - 1}"),
        "next": link(f"{layer}:{unit + 1}"),
    }


def page_inputs(page: UnitPage, artifacts: dict, site: SiteMap) -> list:
    """Everything a unit page is made of, for its key in the page cache: its artifacts, the
    other unit pages of its model (it links to those among its inputs and outputs), its atlas,
    the articles that show it. An artifact by its record's digest alone, which holds its key:
    one string for thousands of pages is quicker to hash than their lists of stamps."""
    return [
        page.path,
        "".join([artifacts[job.key].digest for job in page.own_jobs]),
        site.outputs_digest(page.outputs, artifacts),
        site.digests[page.image.model],
        page.atlas.path if page.atlas else None,
        [(a.slug, a.front.title) for a in page.articles],
        [(shown.job.key, shown.atlas, [a.slug for a in shown.articles]) for shown in page.shown],
    ]


def _kernels(artifact: Artifact) -> np.ndarray:
    return kernels.read(artifact.file("kernels.npy"))


def _strongest_outputs(outputs: tuple, artifacts: dict) -> dict[int, list[tuple[int, np.ndarray]]]:
    """For each unit of a layer, its SHOWN strongest outgoing kernels, from the kernels into
    each unit of the next layer (`outputs`): every file read once for the norms, then those
    that hold a unit's strongest once more for the kernels. The norms are not kept in the
    cache's index: an atlas's thousands of them would swell the index every build loads."""
    norms = np.stack([kernels.norms(_kernels(artifacts[job.key])) for job in outputs])  # [next units, units]
    chosen = {unit: kernels.ranked(norms[:, unit].tolist())[:SHOWN] for unit in range(norms.shape[1])}
    wanted: dict[int, list[int]] = {}
    for unit, targets in chosen.items():
        for target in targets:
            wanted.setdefault(target, []).append(unit)
    found: dict[tuple[int, int], np.ndarray] = {}
    for target, units in wanted.items():
        stack = _kernels(artifacts[outputs[target].key])
        for unit in units:
            found[unit, target] = stack[unit].copy()
    return {unit: [(target, found[unit, target]) for target in targets] for unit, targets in chosen.items()}
