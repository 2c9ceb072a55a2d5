"""The faithfulness measures of feature visualizations (faithful.py says what each means).

One pass over the probe set per batch group (a layer, its probe set, mean or centre) gives,
for every probe image, the layer's activations (what each unit's objective reads) and, at each
earlier layer of the path, every unit's mean activation; then each job's images are run once.
Activations are normalized per unit by their mean and spread over the probe set, so a unit
that is always loud does not outrank one that is usually quiet.

`profiles` gives `distillgen verify` a layer's normalized response to images: two images of
the same unit share their profile's peak, an image of another unit does not.
"""

from __future__ import annotations

import base64
import io
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from distillgen import datasets
from distillgen.engine import Output
from distillgen.engine.featurevis import model_input
from distillgen.engine.hooks import capture, run
from distillgen.engine.models import LoadedModel
from distillgen.jobs import Dataset, FaithfulnessJob, FaithfulnessResult, FeatureVisJob, Job
from distillgen.measures import correlation

BATCH = 256  # probe images per forward pass at most; fewer where their maps would not fit (_batch)
PASS_BYTES = 2 * 1024**3  # the maps one pass may hold
PATH_LAYERS = 6  # at most: evenly spread over the earlier layers of a deep network
BASELINE_IMAGES = 256  # random probe images the path is compared with


@dataclass
class Probe:
    """A layer's activations over a probe set, and along its path."""

    activations: np.ndarray  # [images, units]: what each unit's objective reads
    mean: np.ndarray  # [units]
    spread: np.ndarray  # [units], never 0
    # path layer -> (its normalized activations [images, units], mean, spread)
    path: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]

    def normalized(self, activations: np.ndarray) -> np.ndarray:
        return (activations - self.mean) / self.spread


def compute(
    model: LoadedModel, jobs: list[FaithfulnessJob], device: torch.device, progress, load
) -> list[Output]:
    """One pass over each probe set for every layer (and path) its jobs read, then each
    job's images."""
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):
        groups.setdefault(job.batch_group(), []).append(index)
    outputs: dict[int, Output] = {}
    for indices in groups.values():
        start = time.perf_counter()
        group = [jobs[i] for i in indices]
        paths = {job.layer: path_layers(model, job.layer, job.dictionaries) for job in group}
        wanted = {(job.layer, job.objective == "neuron") for job in group}
        wanted |= {(name, False) for path in paths.values() for name in path}
        readings = _probed(model, group, group[0].dataset, wanted, device)
        for index, job in zip(indices, group, strict=True):
            probe = _probe(readings, job.layer, paths[job.layer], job.objective == "neuron")
            result = measure(model, job, probe, paths[job.layer], _decoded(job.pngs), device)
            outputs[index] = Output(
                {}, result, {"seconds": round((time.perf_counter() - start) / len(group), 3)}
            )
            progress(1)
    return [outputs[i] for i in range(len(jobs))]


# Probe-set readings kept between batches of this process, most recently used last: a build
# measures its articles' images and then its unit pages' on the same layers and probe set.
_PROBED: OrderedDict[tuple, np.ndarray] = OrderedDict()
PROBED_KEPT = 64  # readings ([images, units] each): a few MB


def _probed(
    model: LoadedModel,
    jobs: Sequence[Job],
    dataset: Dataset,
    wanted: set[tuple[str, bool]],
    device: torch.device,
) -> dict[tuple[str, bool], np.ndarray]:
    """Each wanted (layer, centre)'s readings over `dataset`, from this process's earlier
    passes where it made them (keyed by the jobs' model and weights, the probe set, the device
    and the dictionary a feature layer reads), else from one new pass."""
    first = jobs[0]
    features = {d.name: d.checksum for job in jobs for d in job.dictionaries}
    base = (first.model, first.fingerprint, dataset, str(device))
    keys = {want: (*base, *want, features.get(want[0], "")) for want in wanted}
    missing = {want for want, key in keys.items() if key not in _PROBED}
    if missing:
        found = _readings(model, missing, datasets.images(dataset, model.input_size), device)
        for want, rows in found.items():
            _PROBED[keys[want]] = rows
    for key in keys.values():
        _PROBED.move_to_end(key)
    while len(_PROBED) > PROBED_KEPT:
        _PROBED.popitem(last=False)
    return {want: _PROBED[key] for want, key in keys.items()}


def path_layers(model: LoadedModel, layer: str, dictionaries: Sequence = ()) -> list[str]:
    """The top-level layers before `layer`'s block (a dictionary's features: before and
    including the layer it reads), at most PATH_LAYERS of them, evenly spread, the last kept."""
    read = next((d.layer for d in dictionaries if d.name == layer), None)
    block = model.block_of(read or layer)
    mapped = [
        name
        for name in model.top_level()
        if (len(model.layers[name].shape) == 3 or model.layers[name].tokens) and not model.layers[name].pooled
    ]
    if block not in mapped:
        return []
    earlier = mapped[: mapped.index(block) + (1 if read else 0)]
    if len(earlier) <= PATH_LAYERS:
        return earlier
    picks = np.linspace(len(earlier) - 1, 0, PATH_LAYERS).round().astype(int)
    return [earlier[i] for i in sorted(set(picks.tolist()))]


def probe_pass(
    model: LoadedModel, layer: str, path: list[str], dataset: Dataset, centre: bool, device: torch.device
) -> Probe:
    """A layer's (and its path's) activations over a probe set, for one layer alone."""
    images = datasets.images(dataset, model.input_size)
    readings = _readings(model, {(layer, centre), *((name, False) for name in path)}, images, device)
    return _probe(readings, layer, path, centre)


def _probe(readings: dict[tuple[str, bool], np.ndarray], layer: str, path: list[str], centre: bool) -> Probe:
    rows = readings[layer, centre]
    mean, spread = _spread(rows)
    normalized = {}
    for name in path:
        m, s = _spread(readings[name, False])
        normalized[name] = ((readings[name, False] - m) / s, m, s)
    return Probe(rows, mean, spread, normalized)


def measure(
    model: LoadedModel,
    job: FaithfulnessJob,
    probe: Probe,
    path: list[str],
    images: np.ndarray,
    device: torch.device,
) -> FaithfulnessResult:
    sign = -1.0 if job.objective == "negative" else 1.0
    layer_rows, path_rows = _activations(model, job.layer, path, images, job.objective == "neuron", device)
    scores = sign * probe.normalized(layer_rows)  # [images, units]
    own = scores[:, job.unit]
    specificity = 1 + (scores > own[:, None]).sum(axis=1)
    natural = sign * probe.activations[:, job.unit]
    strongest_image = int(np.argmax(natural))
    strongest = float(natural[strongest_image])
    activation = sign * layer_rows[:, job.unit]
    ratio = [float(a / strongest) if strongest > 0 else None for a in activation]

    # its strongest probe images, and random others (at least half the set: a small one)
    top = np.argsort(-natural, kind="stable")[: min(job.top, len(natural) // 2)]
    rest = np.setdiff1d(np.arange(len(natural)), top)
    random = np.random.default_rng(0).permutation(rest)[:BASELINE_IMAGES]
    if not len(top):  # a probe set of one image: nothing to compare a path with
        path = []
    similarity, baseline = [], []
    for name in path:
        normalized, mean, spread = probe.path[name]
        reference = normalized[top].mean(axis=0)
        image_rows = (path_rows[name] - mean) / spread
        similarity.append([correlation(row, reference) for row in image_rows])
        baseline.append(float(np.mean([correlation(row, reference) for row in normalized[random]])))
    per_image = tuple(tuple(round(layer[i], 6) for layer in similarity) for i in range(len(images)))
    return FaithfulnessResult(
        units=scores.shape[1],
        activation=tuple(round(float(a), 6) for a in activation),
        specificity=tuple(int(s) for s in specificity),
        natural_ratio=tuple(None if r is None else round(r, 6) for r in ratio),
        strongest=round(strongest, 6),
        strongest_image=strongest_image,
        path_layers=tuple(path),
        path=per_image,
        path_baseline=tuple(round(b, 6) for b in baseline),
        top=len(top),
        probe_size=len(natural),
    )


def profiles(
    model: LoadedModel, job: FeatureVisJob, pngs: list[bytes], dataset: Dataset, device
) -> np.ndarray:
    """[images, units]: the layer's response to each image, each unit normalized by its mean
    and spread on `dataset` (what `distillgen verify` compares a recomputed image by)."""
    centre = job.objective == "neuron"
    probe = _probe(_probed(model, [job], dataset, {(job.layer, centre)}, device), job.layer, [], centre)
    rows, _ = _activations(model, job.layer, [], np.stack([_pixels(png) for png in pngs]), centre, device)
    return (-1.0 if job.objective == "negative" else 1.0) * probe.normalized(rows)


def _activations(
    model: LoadedModel, layer: str, path: list[str], images: np.ndarray, centre: bool, device: torch.device
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """[images, units] of `layer` (each map's mean, or its centre) and of each path layer (the
    mean)."""
    readings = _readings(model, {(layer, centre), *((name, False) for name in path)}, images, device)
    return readings[layer, centre], {name: readings[name, False] for name in path}


def _readings(
    model: LoadedModel, wanted: set[tuple[str, bool]], images: np.ndarray, device: torch.device
) -> dict[tuple[str, bool], np.ndarray]:
    """Each wanted (layer, centre)'s readings [images, units], float64, in one pass a batch at
    a time."""
    model.module.to(device)
    prepare = model_input(model)
    parts: dict[tuple[str, bool], list[np.ndarray]] = {key: [] for key in wanted}
    names = sorted({name for name, _ in wanted})
    batch = _batch(model)
    with torch.no_grad(), capture(model.module, names) as outputs:
        for start in range(0, len(images), batch):
            x = torch.from_numpy(np.ascontiguousarray(images[start : start + batch])).to(device)
            run(model.module, prepare(x), outputs)
            for name, centre in wanted:
                parts[name, centre].append(_read(outputs[name], centre))
    return {key: np.concatenate(rows) for key, rows in parts.items()}


def _batch(model: LoadedModel) -> int:
    """Probe images per pass: as many as PASS_BYTES holds the maps of. At 256 images a pass,
    InceptionV1's `mixed3a` and its path held 5.5 GB more than at 32 (and took 50 s against 31 s
    over 1,000 images). The same for every pass over the model, whatever layers it reads and
    whatever device it runs on: the batch can decide the readings' last bits, and a reading
    kept for the process (`_PROBED`) must not depend on which pass made it."""
    return max(1, min(BATCH, PASS_BYTES // _image_bytes(model)))


def _image_bytes(model: LoadedModel) -> int:
    """What one image's pass may hold at most: every map of the model, twice over (the maps
    held for reading, and those a layer is computed from), in float32."""
    return 2 * 4 * sum(int(np.prod(layer.shape)) for layer in model.layers.values())


def _read(output: torch.Tensor, centre: bool) -> np.ndarray:
    """Each unit's reading of a map: its mean (lucent's channel objective), or its centre
    (lucent's neuron objective); a linear layer's value as it is."""
    if output.dim() == 4:
        if centre:
            output = output[:, :, output.shape[2] // 2, output.shape[3] // 2]
        else:
            output = output.flatten(2).mean(dim=2)
    return output.double().cpu().numpy()


def _spread(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's mean and standard deviation over the probe set; a unit that never varies
    gets a tiny spread, not 0 (it ranks by how far the image moves it at all)."""
    mean, spread = rows.mean(axis=0), rows.std(axis=0)
    floor = max(float(spread.max()) * 1e-6, 1e-12) if spread.size else 1e-12
    return mean, np.maximum(spread, floor)


def _pixels(png: bytes) -> np.ndarray:
    """A PNG as a float32 3×H×W array in [0, 1], as probe images are."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32) / 255
    return rgb.transpose(2, 0, 1)


def _decoded(pngs: Sequence[str]) -> np.ndarray:
    assert pngs, "a faithfulness job is prepared with its images (compute.py)"
    return np.stack([_pixels(base64.b64decode(png)) for png in pngs])
