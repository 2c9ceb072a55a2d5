"""Dictionary features as units, on the planning side (no torch).

A declared dictionary (source/dictionaries.py) becomes a `DictionaryJob`, trained like any
figure. Its name becomes a layer of its model's description: `Dictionaries.info(info)` adds a
layer `m4` of `features` units (the dictionary's layer's map size) beside the model's own, so
kinds check `m4:17` with the same `check_units`, `layer` and `check_order` as `mixed4:17`, and
their errors ("out of range … 0-383", "did you mean 'm4'?") are the same.

A job that reads or edits a feature carries the trained dictionary (`attach`, `jobs.Attached`),
which the engine installs as a layer of the network (engine/features.py). Until the dictionary
is trained, `attach` raises `Pending`: the article sets the figure aside, has the dictionary
computed in the first round, and plans the figure again before the next (article.py). So data
flows one way: declaration → dictionary job → its weights in every job that reads a feature.
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from distillgen import datasets
from distillgen.jobs import Attached, DictionaryJob
from distillgen.source.dictionaries import Declaration
from distillgen.units import Layer, ModelError, ModelInfo, SpecError, parse_spec
from distillgen.zoo import DEFAULT_MODEL

if TYPE_CHECKING:
    from distillgen.cache import Artifact
    from distillgen.compute import Catalog


# A dictionary trains on every position of its probe images, held in memory (training holds
# about three copies): 2 GiB of them at most, InceptionV1's mixed3b at 224 px of 1,426 images,
# its mixed4c of 5,349.
SAMPLE_BYTES = 2 * 1024**3


class Pending(Exception):
    """A job needs dictionaries that are not trained yet: plan the figure again once they are."""

    def __init__(self, jobs: tuple[DictionaryJob, ...]) -> None:
        super().__init__(f"waiting for the dictionaries of {', '.join(job.layer for job in jobs)}")
        self.jobs = jobs


@dataclasses.dataclass(frozen=True)
class Resolved:
    name: str
    job: DictionaryJob
    features: int
    layer: str  # canonical


class Dictionaries:
    """An article's dictionaries, checked against their models once (errors at the line of the
    declaration), and their weights once trained."""

    def __init__(
        self,
        declared: dict[str, Declaration],
        catalog: Catalog,
        default_model: str | None,
        error: Callable[[Declaration, int, str], None],
        roots: tuple,
        warn: Callable[[Declaration, int, str], None] = lambda declared, line, message: None,
    ) -> None:
        self.declared = declared
        self.catalog = catalog
        self.default_model = default_model
        self.error = error
        self.warn = warn
        self.roots = roots
        self._resolved: dict[str, Resolved | None] = {}
        self._attached: dict[str, Attached] = {}

    def resolve(self, name: str) -> Resolved | None:
        """The dictionary's job; None after an error (reported once, at its declaration)."""
        if name not in self._resolved:
            self._resolved[name] = self._resolve(self.declared[name])
        return self._resolved[name]

    def _resolve(self, d: Declaration) -> Resolved | None:
        written = d.model or self.default_model or DEFAULT_MODEL
        try:
            spec = parse_spec(written, d.path.parent)
            info = self.catalog.info(spec)
        except (ModelError, SpecError) as exc:
            self.error(d, d.line_of("model"), f"dictionary '{d.name}': {exc}")
            return None
        if d.name in info.layers or d.name in info.aliases:
            self.error(d, d.line, f"the dictionary '{d.name}' has the name of a layer of '{spec}'; rename it")
            return None
        try:
            layer = info.layer(d.layer)
        except ModelError as exc:
            self.error(d, d.line_of("layer"), f"dictionary '{d.name}': {exc}")
            return None
        try:
            dataset = datasets.dataset(
                d.dataset,
                d.count,
                d.sample_seed,
                d.path.parent,
                self.roots,
                warn=lambda message: self.warn(d, d.line_of("dataset"), f"dictionary '{d.name}': {message}"),
            )
        except datasets.DatasetError as exc:
            self.error(d, d.line_of("dataset"), f"dictionary '{d.name}': {exc}")
            return None
        per_image = math.prod(layer.shape) * 4  # bytes of float32 activations
        if dataset.count * per_image > SAMPLE_BYTES:
            most = max(1, SAMPLE_BYTES // per_image)
            self.error(
                d,
                d.line_of("count"),
                f"dictionary '{d.name}' trains on every position of its {dataset.count:,} images of "
                f"{layer.name} ({layer.shape_text}): {dataset.count * per_image / 1024**3:.1f} GiB of "
                f"activations, more than {SAMPLE_BYTES // 1024**3} GiB; give it at most {most:,} images "
                f"(count: {most})",
            )
            return None
        job = DictionaryJob(str(spec), info.fingerprint, layer.name, dataset, d.settings)
        return Resolved(d.name, job, d.settings.features, layer.name)

    def info(self, info: ModelInfo, artifacts: dict[str, Artifact]) -> ModelInfo:
        """`info` with each dictionary of its model as a layer (after the one it reads), and
        `info.dictionaries`: name -> (its job, the trained dictionary or None)."""
        mine = {}
        for name in self.declared:
            resolved = self.resolve(name)
            if resolved is not None and resolved.job.fingerprint == info.fingerprint:
                mine[name] = (resolved, self._trained(resolved, artifacts))
        if not mine:
            return info
        layers: OrderedDict[str, Layer] = OrderedDict()
        for name, layer in info.layers.items():
            layers[name] = layer
            for dictionary, (resolved, _) in mine.items():
                if resolved.layer == name:
                    layers[dictionary] = Layer(
                        dictionary, (resolved.features, *layer.shape[1:]), layer.tokens
                    )
        return dataclasses.replace(
            info, layers=layers, dictionaries={n: (r.job, a) for n, (r, a) in mine.items()}
        )

    def _trained(self, resolved: Resolved, artifacts: dict[str, Artifact]) -> Attached | None:
        if resolved.name in self._attached:
            return self._attached[resolved.name]
        artifact = artifacts.get(resolved.job.key)
        if artifact is None:
            return None
        data = artifact.file("dictionary.npz").read_bytes()
        attached = Attached(
            name=resolved.name,
            model=resolved.job.model,
            layer=resolved.layer,
            features=resolved.features,
            k=min(resolved.job.settings.k, resolved.features),
            checksum=artifact.result(resolved.job).checksum,
            weights=base64.b64encode(data).decode("ascii"),
        )
        self._attached[resolved.name] = attached
        return attached


def check_names(planned: list[Dictionaries]) -> None:
    """Unit pages are named by model, layer and unit (`units/shapes/m4/17.html`): two different
    dictionaries of one model under one name (in two articles' front matter) would share them.
    An error at the declaration of the second (the same declaration in `distillgen.yml`, or the
    same settings, is the same dictionary: one key)."""
    seen: dict[tuple[str, str], tuple[Resolved, Declaration]] = {}
    for dictionaries in planned:
        for name, resolved in dictionaries._resolved.items():
            if resolved is None:
                continue
            declared = dictionaries.declared[name]
            first, where = seen.setdefault((resolved.job.model, name), (resolved, declared))
            if first.job.key != resolved.job.key:
                dictionaries.error(
                    declared,
                    declared.line,
                    f"two different dictionaries named '{name}' of model '{resolved.job.model}': this "
                    f"one and the one declared at {where.path.name}:{where.line}; their features "
                    "would share unit pages; rename one, or declare it once in distillgen.yml",
                )


def is_dictionary(info: ModelInfo, layer: str) -> bool:
    return layer in getattr(info, "dictionaries", {})


def attach(job, info: ModelInfo, other: ModelInfo | None = None):
    """`job` carrying every dictionary whose features it reads or edits (by the layer names in
    its fields: `layer`, `source`, its edits'; `other_layer` in `other`'s dictionaries).
    Pending when one of them is not trained yet."""
    wanted = [(info, name) for name in job.layers()]
    if other is not None and getattr(job, "other_layer", None):
        wanted.append((other, job.other_layer))
    attached: list[Attached] = []
    untrained: list[DictionaryJob] = []
    for source, name in wanted:
        entry = getattr(source, "dictionaries", {}).get(name)
        if entry is None:
            continue
        dictionary_job, trained = entry
        if trained is None and dictionary_job not in untrained:
            untrained.append(dictionary_job)
        elif trained is not None and trained not in attached:
            attached.append(trained)
    if untrained:  # all of them at once: trained in the same round
        raise Pending(tuple(untrained))
    if not attached:
        return job
    return dataclasses.replace(job, dictionaries=tuple(attached))


def trained(info: ModelInfo, layers) -> tuple[Attached, ...]:
    """The trained dictionaries among `layers` (for kinds that make jobs later, in follow_up:
    a circuit); Pending when one is not trained yet."""
    found, untrained = [], []
    for name in layers:
        entry = getattr(info, "dictionaries", {}).get(name)
        if entry is not None:
            if entry[1] is None and entry[0] not in untrained:
                untrained.append(entry[0])
            elif entry[1] is not None and entry[1] not in found:
                found.append(entry[1])
    if untrained:
        raise Pending(tuple(untrained))
    return tuple(found)


def carrying(job, dictionaries: tuple[Attached, ...]):
    """`job` with those of `dictionaries` whose layer it names (see `trained`)."""
    names = set(job.layers())
    mine = tuple(d for d in dictionaries if d.name in names)
    return dataclasses.replace(job, dictionaries=mine) if mine else job
