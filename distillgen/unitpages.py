"""Unit pages: `build/units/<model>/<layer>/<unit>.html` for every unit an article shows.

A page has the unit's feature visualization (larger), a diversity set, its strongest inputs
from the previous convolutional layer and strongest outputs into the next one (expanded
weights, as heatmaps), and links back to the articles that show it. Chips, grid cells and
circuit nodes link here. Planned after the articles' own jobs, computed like them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from distillgen import kernels
from distillgen.cache import Artifact
from distillgen.compute import Catalog, Need
from distillgen.figures.unitview import links_to_page, unit_page_path
from distillgen.figures.weights import kernel_grid
from distillgen.jobs import FeatureVisJob, WeightsJob
from distillgen.render.colors import same_size
from distillgen.render.reuse import stamp
from distillgen.units import ModelInfo, parse_spec

DIVERSITY = 4
SHOWN = 8  # strongest inputs and outputs on a page


@dataclass
class UnitPage:
    image: FeatureVisJob  # the first image of the unit an article showed
    info: ModelInfo
    diversity: FeatureVisJob
    inputs: WeightsJob | None  # previous conv layer -> this unit
    outputs: list[WeightsJob]  # this unit's layer -> each unit of the next conv layer
    articles: list = field(default_factory=list)  # Article objects, in site order

    @property
    def path(self) -> str:
        return unit_page_path(self.image.model, self.image.layer, self.image.unit)

    @property
    def address(self) -> str:
        return f"{self.image.layer}:{self.image.unit}"


def plan_unit_pages(articles: list, catalog: Catalog) -> tuple[list[UnitPage], list[Need]]:
    """A page per unit the articles show, and the jobs its page needs (with where it was asked)."""
    pages: dict[tuple[str, str, int], UnitPage] = {}
    needs: list[Need] = []
    for article in articles:
        for need in article.needs:
            job = need.job
            if not links_to_page(job):
                continue
            key = (job.model, job.layer, job.unit)
            if key not in pages:
                info = catalog.info(parse_spec(job.model))
                previous, following = _neighbours(info, job.layer)
                page = UnitPage(
                    image=job,
                    info=info,
                    diversity=dataclasses.replace(job, diversity=DIVERSITY),
                    inputs=_weights(job, previous, job.layer, job.unit) if previous else None,
                    outputs=[
                        _weights(job, job.layer, following, unit)
                        for unit in range(info.layers[following].channels)
                    ]
                    if following
                    else [],
                )
                pages[key] = page
                jobs = [page.diversity, *([page.inputs] if page.inputs else []), *page.outputs]
                needs += [Need(j, need.path, need.line) for j in jobs]
            if article not in pages[key].articles:
                pages[key].articles.append(article)
    return list(pages.values()), needs


def _weights(job: FeatureVisJob, source: str, layer: str, unit: int) -> WeightsJob:
    return WeightsJob(job.model, job.fingerprint, source, layer, unit)


def _neighbours(info: ModelInfo, layer: str) -> tuple[str | None, str | None]:
    """The convolutional top-level layers before and after `layer`'s block."""
    convs = [n for n in info.top_level() if len(info.layers[n].shape) == 3]
    block = layer.split(".")[0]
    if block not in convs:
        return None, None
    index = convs.index(block)  # a branch inside a block reads the block before it
    before = convs[index - 1] if index > 0 else None
    after = convs[index + 1] if index + 1 < len(convs) else None
    return before, after


def page_context(page: UnitPage, artifacts: dict, pages: dict[str, UnitPage]) -> tuple[dict, dict]:
    """What templates/unit.html shows, and the image files it copies (site path -> file)."""
    depth = "../" * (page.path.count("/"))
    files: dict = {}

    def image(job: FeatureVisJob, index: int) -> str:
        artifact = artifacts[job.key]
        name = artifact.result(job).images[index]
        site_path = f"units/figures/{job.key[:16]}-{name}"
        files[site_path] = artifact.file(name)
        return depth + site_path

    def link(address: str) -> str | None:
        target = f"{page.image.model}|{address}"
        return depth + pages[target].path if target in pages else None

    inputs, outputs = [], []
    if page.inputs is not None:
        stack = _kernels(artifacts[page.inputs.key])
        inputs = [(f"{page.inputs.source}:{c}", stack[c]) for c in kernels.strongest_first(stack)[:SHOWN]]
    if page.outputs:
        stack = np.stack(same_size([_kernels(artifacts[job.key])[page.image.unit] for job in page.outputs]))
        outputs = [(f"{page.outputs[0].layer}:{j}", stack[j]) for j in kernels.strongest_first(stack)[:SHOWN]]
    target = page.address
    value = artifacts[page.image.key].result(page.image).values[0]
    context = {
        "page": page,
        "static": depth + "static",
        "home": depth + "index.html",
        "image": image(page.image, 0),
        "value": value,
        "diversity": [image(page.diversity, i) for i in range(DIVERSITY)],
        "inputs_svg": kernel_grid(inputs, target, 8, 8, f"in-{page.image.key[:8]}") if inputs else "",
        "inputs": [(address, link(address)) for address, _ in inputs],
        "outputs_svg": kernel_grid(outputs, target, 8, 8, f"out-{page.image.key[:8]}", outgoing=True)
        if outputs
        else "",
        "outputs": [(address, link(address)) for address, _ in outputs],
        "articles": [(depth + f"{a.slug}/index.html", a.front.title) for a in page.articles],
    }
    return context, files


def page_inputs(page: UnitPage, artifacts: dict, pages: dict[str, UnitPage]) -> list:
    """Everything a unit page is made of, for its key in the page cache: its artifacts, the
    other unit pages of its model (it links to those among its inputs and outputs), the
    articles that show it."""
    jobs = [page.image, page.diversity, *([page.inputs] if page.inputs else []), *page.outputs]
    model = page.image.model
    return [
        page.path,
        [stamp(artifacts[job.key]) for job in jobs],
        sorted(address for address in pages if address.startswith(f"{model}|")),
        [(a.slug, a.front.title) for a in page.articles],
    ]


def _kernels(artifact: Artifact) -> np.ndarray:
    return kernels.read(artifact.file("kernels.npy"))
