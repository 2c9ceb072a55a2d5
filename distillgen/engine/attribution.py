"""Attribution: what carries a unit's activation on given inputs, unit by unit of earlier layers.

The target T is the unit's peak over positions on each input, as its dataset examples and
ablations read it. The attribution of a layer's activations a (every unit, every position):

    gradient     A = a ⊙ ∂T/∂a                                  (first order, from a = 0)
    integrated   A = (a − a₀) ⊙ ∫₀¹ ∂T/∂a(a₀ + α(a − a₀)) dα      (integrated gradients)

with a₀ the layer's activations on the reference input (a black or grey image), the integral
taken by Gauss–Legendre quadrature over `steps` points. As in Captum's
LayerIntegratedGradients, the path runs through the layer's activations, which a hook puts in
place of the layer's output (`hooks.edited`, as ablations edit it): paths that go around the
layer (an Inception block's other branches, a skip connection) keep the input's values.
Integrated gradients are complete: ΣA = T(a) − T(a₀), the target's change when this layer's
output goes from the reference's to the input's, up to the quadrature's error, which each
stage reports (`error`) and the figure checks against the job's tolerance.

A unit's attribution is its A summed over positions. The units drawn of a stage are those with
the largest |attribution| averaged over the inputs. An edge from unit c of one stage into unit u
of the next is the attribution to c, by the same method, of u's share of the target,
S_u = Σ_positions g_u ⊙ a_u, where g_u is the gradient that u's own attribution weighted its
activations with (the path average, for integrated gradients). So the edges into u from every
unit of the stage before sum to u's attribution (exactly, for integrated gradients, when that
stage's layer is all u reads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import Output
from distillgen.engine.ablation import probe_images
from distillgen.engine.dictionary import npz_bytes
from distillgen.engine.featurevis import model_input, png_bytes
from distillgen.engine.hooks import capture, edited, from_map, run
from distillgen.engine.models import LoadedModel
from distillgen.engine.probe import peak, responses
from distillgen.jobs import RANKING, AttributionJob, AttributionResult, StageAttribution
from distillgen.render.colors import diverging_rgb

# A readout: the scalar per row that is attributed, from the captured layers' outputs and the
# rows' input indices (an edge's readout weights each input's map by its own gradient).
Readout = Callable[[dict[str, torch.Tensor], torch.Tensor], torch.Tensor]
PIXELS_PER_PASS = 2**20  # rows of one forward and backward pass: 256 at 64 px, 20 at 224 px
REFERENCE = {"black": 0.0, "grey": 0.5}  # the reference input's pixel value, in [0, 1]


def compute(
    model: LoadedModel, jobs: list[AttributionJob], device: torch.device, progress, load
) -> list[Output]:
    model.module.to(device)
    found = top_examples(model, jobs, device)
    outputs = []
    for index, job in enumerate(jobs):
        start = time.perf_counter()
        images, labels = found[index] if index in found else probe_images(model, job, device)[:2]
        with true_gradients(model):
            files, result = attribute_job(model, job, images, labels, device)
        outputs.append(Output(files, result, {"seconds": round(time.perf_counter() - start, 3)}))
        progress(job.cost)
    return outputs


def top_examples(
    model: LoadedModel, jobs: list[AttributionJob], device: torch.device
) -> dict[int, tuple[np.ndarray, list[int]]]:
    """The top probe images of each job on a generator's sample, by position in `jobs`: one
    pass over the sample per layer for all of them (a site's unit pages each ask for their
    unit's strongest images, and one pass per page read the sample a hundred times)."""
    groups: dict[tuple, list[int]] = {}
    for index, job in enumerate(jobs):
        if job.probe == "examples" and job.dataset is not None and not job.dataset.folder:
            groups.setdefault((job.dataset, job.layer), []).append(index)
    found = {}
    for (dataset, layer), indices in groups.items():
        units = sorted({jobs[i].unit for i in indices})
        pool = datasets.images(dataset, model.input_size)
        scores = responses(model, layer, units, pool, device)
        for i in indices:
            top = np.argsort(-scores[:, units.index(jobs[i].unit)], kind="stable")[: jobs[i].top]
            found[i] = (pool[top], [int(t) for t in top])
    return found


@contextmanager
def true_gradients(model: LoadedModel) -> Iterator[None]:
    """Within the block, ReLUs whose backward is not ReLU's pass their true gradient: lucent's
    InceptionV1 uses a RedirectedReLU (a tenth of the gradient flows where the input is
    negative, so that feature visualization can start from a dead unit), which would make
    integrated gradients converge to the wrong sum."""
    with ExitStack() as stack:
        for module in model.module.modules():
            if "redirected" in type(module).__name__.lower() and not any(module.children()):
                stack.enter_context(edited(module, lambda _module, inputs, _output: torch.relu(inputs[0])))
        yield


@dataclass
class LayerAttribution:
    """A layer's attribution to a readout, per row (input) and unit (and position)."""

    attribution: torch.Tensor  # [n, C, h, w] (or [n, C] for a linear layer)
    gradient: torch.Tensor  # what the attribution weighted the activations with, same shape
    change: torch.Tensor  # [n]: readout(input) - readout(layer at the reference's)

    @property
    def per_unit(self) -> torch.Tensor:
        """[n, C]: each unit's attribution, summed over positions."""
        return self.attribution.flatten(2).sum(2) if self.attribution.dim() > 2 else self.attribution


def attribute_job(
    model: LoadedModel, job: AttributionJob, images: np.ndarray, labels: list, device: torch.device
) -> tuple[dict[str, bytes], AttributionResult]:
    """Every stage's attribution to the target, the drawn units, the edges between stages and
    the maps, as files and a result."""
    prepare = model_input(model)
    x = prepare(torch.from_numpy(np.ascontiguousarray(images)).float().to(device))
    reference = prepare(torch.full_like(torch.from_numpy(images[:1]), REFERENCE[job.reference]).to(device))

    def target(outputs: dict[str, torch.Tensor], rows: torch.Tensor) -> torch.Tensor:
        return peak(outputs[job.layer][:, job.unit : job.unit + 1])[:, 0]

    layers = [
        attribute(model, x, reference, stage.layer, [job.layer], target, job.method, job.steps)
        for stage in job.stages
    ]
    drawn = []
    for stage, layer in zip(job.stages, layers, strict=True):
        mean = layer.per_unit.mean(0)
        ranking = torch.argsort(-mean.abs(), stable=True).tolist()
        drawn.append(list(stage.units) if stage.units else ranking[: job.per_layer])
    edges = [np.zeros((len(images), 0, 0))]
    for k in range(1, len(job.stages)):
        pair = (job.stages[k - 1].layer, job.stages[k].layer)
        edges.append(_edges(model, x, reference, job, pair, layers[k], drawn[k - 1], drawn[k]))
    stages, arrays = [], {}
    for k, (stage, layer, units) in enumerate(zip(job.stages, layers, drawn, strict=True)):
        per_unit = layer.per_unit.double().cpu().numpy()
        mean = per_unit.mean(0)
        ranking = np.argsort(-np.abs(mean), kind="stable")[:RANKING]
        total, change = per_unit.sum(1), layer.change.double().cpu().numpy()
        scale = np.abs(change).sum()  # completeness, relative to the change it accounts for
        stages.append(
            StageAttribution(
                layer=stage.layer,
                size=per_unit.shape[1],
                units=tuple(units),
                values=tuple(_round(mean[u]) for u in units),
                per_input=tuple(tuple(_round(v) for v in row[units]) for row in per_unit),
                total=_round(total.mean()),
                totals=tuple(_round(v) for v in total),
                change=_round(change.mean()),
                error=_round(np.abs(total - change).sum() / scale if scale > 0 else np.abs(total).sum()),
                ranking=tuple(int(u) for u in ranking),
                ranked=tuple(_round(mean[u]) for u in ranking),
                edges=tuple(tuple(_round(v) for v in row) for row in edges[k].mean(0)) if k else (),
            )
        )
        arrays[f"all_{k}"] = per_unit.astype(np.float32)
        arrays[f"change_{k}"] = change.astype(np.float32)
        if job.maps:  # a unit page shows none (an early layer's are 64×64 a unit and input)
            arrays[f"maps_{k}"] = _maps(layer.attribution[:, units]).astype(np.float32)
        if k:
            arrays[f"edges_{k}"] = edges[k].astype(np.float32)
    with torch.no_grad():
        activation = _readout(model, x, None, None, [job.layer], target).double().cpu().numpy()
        at_reference = float(_readout(model, reference, None, None, [job.layer], target)[0])
    arrays["activation"] = activation.astype(np.float32)
    if job.maps:
        arrays["target_map"] = _maps(layers[-1].attribution.sum(1, keepdim=True))[:, 0].astype(np.float32)
    files, maps, scales = _pictures(images, arrays, len(job.stages)) if job.maps else ({}, (), ())
    files["attribution.npz"] = npz_bytes(arrays)
    result = AttributionResult(
        labels=tuple(labels),
        images=tuple(f"input-{i}.png" for i in range(len(images))) if job.maps else (),
        activation=tuple(_round(v) for v in activation),
        reference=_round(at_reference),
        stages=tuple(stages),
        maps=maps,
        scales=scales,
    )
    return files, result


def attribute(
    model: LoadedModel,
    x: torch.Tensor,
    reference: torch.Tensor,
    layer: str,
    readout_layers: list[str],
    readout: Readout,
    method: str,
    steps: int,
) -> LayerAttribution:
    """`layer`'s attribution to `readout` on each row of `x` (see the module's docstring);
    `reference` is one input, the start of integrated gradients' path."""
    with torch.no_grad():
        activation = _activations(model, x, layer)
        start = _activations(model, reference, layer).expand_as(activation)
    if method == "gradient":
        alphas, weights = np.ones(1), np.ones(1)
    else:
        nodes, quadrature = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, quadrature / 2  # on [0, 1], summing to 1
    pairs = [(row, step) for row in range(len(x)) for step in range(len(alphas))]
    size = max(1, min(256, PIXELS_PER_PASS // (x.shape[-1] * x.shape[-2])))
    gradient = torch.zeros_like(activation)
    for first in range(0, len(pairs), size):
        chunk = pairs[first : first + size]
        rows = torch.tensor([row for row, _ in chunk], device=x.device)
        shape = (len(chunk),) + (1,) * (activation.dim() - 1)
        alpha = torch.tensor([alphas[s] for _, s in chunk], dtype=activation.dtype, device=x.device)
        weight = torch.tensor([weights[s] for _, s in chunk], dtype=activation.dtype, device=x.device)
        begin = start[rows]
        point = (begin + alpha.view(shape) * (activation[rows] - begin)).requires_grad_()
        with torch.enable_grad():
            value = _readout(model, x[rows], layer, point, readout_layers, readout, rows)
            if value.requires_grad:  # else the readout does not depend on the layer at all
                (grad,) = torch.autograd.grad(value.sum(), point, allow_unused=True)
                if grad is not None:
                    gradient.index_add_(0, rows, grad * weight.view(shape))
    base = activation if method == "gradient" else activation - start
    with torch.no_grad():
        rows = torch.arange(len(x), device=x.device)
        change = _readout(model, x, None, None, readout_layers, readout, rows) - _readout(
            model, x, layer, start, readout_layers, readout, rows
        )
    return LayerAttribution(base * gradient, gradient, change)


def _activations(model: LoadedModel, x: torch.Tensor, layer: str) -> torch.Tensor:
    with capture(model.module, [layer]) as outputs:
        run(model.module, x, outputs)
        return outputs[layer].detach().clone()


def _readout(
    model: LoadedModel,
    x: torch.Tensor,
    layer: str | None,
    value: torch.Tensor | None,
    readout_layers: list[str],
    readout: Readout,
    rows: torch.Tensor | None = None,
) -> torch.Tensor:
    """`readout` of a forward pass on `x`, with `layer`'s output replaced by `value` (a map,
    one per row) when given."""
    rows = torch.arange(len(x), device=x.device) if rows is None else rows
    if layer is None or value is None:
        with capture(model.module, readout_layers) as outputs:
            run(model.module, x, outputs)
            return readout(outputs, rows)

    def replace(_module, _inputs, output):
        # a copy: the layer's next module may change its input in place (an in-place ReLU)
        return from_map(value.clone().to(output.dtype), output)

    module = dict(model.module.named_modules())[layer]
    with edited(module, replace), capture(model.module, readout_layers) as outputs:
        run(model.module, x, outputs)
        return readout(outputs, rows)


def _edges(
    model: LoadedModel,
    x: torch.Tensor,
    reference: torch.Tensor,
    job: AttributionJob,
    pair: tuple[str, str],
    later: LayerAttribution,
    earlier_units: list[int],
    later_units: list[int],
) -> np.ndarray:
    """[n, earlier units, later units]: the attribution of each later unit's share of the
    target (its activations weighted by the gradient its attribution used, `later`) to each
    drawn unit of the earlier layer, summed over positions."""
    earlier_layer, later_layer = pair
    columns = []
    for unit in later_units:
        weight = later.gradient[:, unit].detach()

        def share(
            outputs: dict[str, torch.Tensor], rows: torch.Tensor, weight=weight, unit=unit
        ) -> torch.Tensor:
            reading = outputs[later_layer][:, unit] * weight[rows]
            return reading.flatten(1).sum(1) if reading.dim() > 1 else reading

        into = attribute(model, x, reference, earlier_layer, [later_layer], share, job.method, job.steps)
        columns.append(into.per_unit[:, earlier_units].double().cpu().numpy())
    return np.stack(columns, axis=2)


def _maps(attribution: torch.Tensor) -> np.ndarray:
    """[n, units, h, w] maps (a linear layer's units as 1×1 maps)."""
    maps = attribution.detach().double().cpu().numpy()
    return maps if maps.ndim == 4 else maps[:, :, None, None]


def _pictures(
    images: np.ndarray, arrays: dict[str, np.ndarray], stages: int
) -> tuple[dict[str, bytes], tuple[tuple[str, ...], ...], tuple[tuple[float, ...], ...]]:
    """Each input as a PNG, and each of its maps (the target's, then every drawn unit's, stage
    by stage) as a translucent diverging heatmap at the layer's resolution, each on its own
    scale (its largest |attribution|): a unit's share is often a tenth of the target's, and
    on the target's scale its map would not show where it lies."""
    files: dict[str, bytes] = {}
    names, scales = [], []
    for i, image in enumerate(images):
        pixels = np.rint(image.transpose(1, 2, 0) * 255).clip(0, 255).astype(np.uint8)
        files[f"input-{i}.png"] = png_bytes(pixels)
        maps = [arrays["target_map"][i], *(m for k in range(stages) for m in arrays[f"maps_{k}"][i])]
        row, largest = [], []
        for j, values in enumerate(maps):
            name = f"map-{i}-{j}.png"
            scale = float(np.abs(values).max())
            files[name] = png_bytes(heatmap(values, scale or 1.0))
            row.append(name)
            largest.append(_round(scale))
        names.append(tuple(row))
        scales.append(tuple(largest))
    return files, tuple(names), tuple(scales)


def heatmap(values: np.ndarray, scale: float) -> np.ndarray:
    """RGBA: the diverging colour of values/scale, opaque in proportion to its magnitude."""
    relative = values / scale
    rgba = np.empty((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = diverging_rgb(relative)
    rgba[..., 3] = np.rint(np.clip(np.abs(relative), 0, 1) * 220).astype(np.uint8)
    return rgba


def _round(value) -> float:
    return round(float(value), 6)
