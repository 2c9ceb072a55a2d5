"""Expanded weights ("Visualizing Weights", Voss et al., Distill 2021).

The kernel from every channel of an earlier layer to one unit of a later layer is the gradient
of that unit, at the centre of its map, with respect to the earlier layer's output, in a
linearized copy of the network: ReLU becomes the identity and max-pooling average-pooling.
The gradient is cropped to where it can be non-zero (the receptive field). Between adjacent
convolutions this is exactly the weight slice `W[out, in]`; through a 1×1 bottleneck it is
`Σ_b W2[j, b] · W1[b, i]`; through two convolutions, their kernels convolved.

The linearization is applied to torch functions as they are called (a TorchFunctionMode), so
it works on any network that uses `F.relu`/`nn.ReLU` and `F.max_pool2d`/`nn.MaxPool2d`, with
no copy of the model and no change to it; ReLU *modules* (including custom autograd ones, like
lucent's InceptionV1's) are bypassed with forward hooks that are always removed.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.overrides import TorchFunctionMode

from distillgen.engine import Output, features
from distillgen.engine.device import memory_budget
from distillgen.engine.hooks import capture, edited, run
from distillgen.engine.models import LoadedModel
from distillgen.jobs import WeightsJob, WeightsResult

_RELU = {"relu", "relu_"}
_MAX_POOL = {"max_pool2d", "_max_pool2d", "max_pool2d_with_indices"}


class Linearized(TorchFunctionMode):
    """Within the block, ReLU is the identity and max-pooling is average-pooling."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in _RELU:
            return args[0]
        if name in _MAX_POOL:
            return _average_pool(*args, **kwargs)
        if name == "pad" and kwargs.get("value") == float("-inf"):  # padding for a max-pool
            return func(*args, **{**kwargs, "value": 0.0})
        return func(*args, **kwargs)


@contextmanager
def _relu_modules_bypassed(module: nn.Module) -> Iterator[None]:
    """ReLU modules output their input: also custom autograd ReLUs (lucent's InceptionV1 uses
    a RedirectedReLU whose own backward a function mode cannot replace). Edits (`hooks.edited`),
    so that they run before a dictionary reading the module, and before the source's substitute
    when that is entered later."""
    with ExitStack() as stack:
        for child in module.modules():
            if "relu" in type(child).__name__.lower() and not any(child.children()):  # not a ConvReLU
                stack.enter_context(edited(child, lambda _module, inputs, _output: inputs[0]))
        yield


def _average_pool(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    if dilation not in (1, (1, 1)) or return_indices:
        raise NotImplementedError("expanded weights through a dilated or index-returning max-pool")
    return F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad=False)


def expanded_weights(
    model: LoadedModel, source: str, target: str, units: list[int], canvas: int | None = None
) -> list[np.ndarray]:
    """For each unit of `target`, its kernels [source channels, kh, kw] from layer `source`.

    `canvas` is the input size of the linearized pass (default: twice the model's, so that
    the receptive field of a deep unit fits inside the source layer's map).
    """
    source, target = model.layer(source).name, model.layer(target).name  # aliases -> module paths
    module = model.module
    device = next(module.parameters()).device
    size = canvas or 2 * model.input_size
    modules = dict(module.named_modules())
    leaf: dict[str, torch.Tensor] = {}

    def substitute(_module, _inputs, output):
        # The source layer's output becomes a leaf: its gradient is the expanded kernel. Its
        # value does not matter, the network being linear from here on.
        leaf["x"] = torch.zeros_like(output).requires_grad_(True)
        return leaf["x"]

    # The ReLU modules bypassed first: the source's substitute must be the last edit to run, and
    # edits run before a dictionary reading the source (engine/features.py), whose features then
    # come from the leaf (`mixed4 -> m4:3`: the encoder row pulled back). Dictionary features are
    # linear here too (`features.linear`): a feature's change is added through its decoder.
    with (
        _relu_modules_bypassed(module),
        features.linear(module),
        edited(modules[source], substitute),
        Linearized(),
        torch.enable_grad(),
        capture(module, [target]) as outputs,
    ):
        run(module, torch.zeros(len(units), 3, size, size, device=device), outputs)
        out = outputs[target]
        cy, cx = out.shape[2] // 2, out.shape[3] // 2
        picked = out[torch.arange(len(units)), torch.tensor(units), cy, cx]
        picked.sum().backward()  # one unit per batch element: their gradients do not mix
    return [_cropped(gradient) for gradient in leaf["x"].grad.detach().cpu()]


def _cropped(gradient: torch.Tensor) -> np.ndarray:
    """The kernel cropped to its own support (so it never depends on its batch). No support
    at all, a unit that `source` does not reach (another branch of a concatenation), is the
    1×1 kernel of zeros at the centre: no connection, which the figures draw blank."""
    support = gradient.abs().sum(dim=0).nonzero()
    if len(support) == 0:
        cy, cx = gradient.shape[1] // 2, gradient.shape[2] // 2
        return gradient[:, cy : cy + 1, cx : cx + 1].numpy()
    (top, left), (bottom, right) = support.min(0).values.tolist(), support.max(0).values.tolist()
    return gradient[:, top : bottom + 1, left : right + 1].numpy()


def compute(model: LoadedModel, jobs: list[WeightsJob], device: torch.device, progress, load) -> list[Output]:
    """Kernels as .npy files ([source channels, kh, kw], float32), one pass per layer pair."""
    model.module.to(device)
    pairs: dict[tuple[str, str], list[int]] = {}
    for index, job in enumerate(jobs):
        pairs.setdefault((job.source, job.layer), []).append(index)
    outputs: dict[int, Output] = {}
    for (source, target), indices in pairs.items():
        size = pass_size(model, target, device)
        for part in (indices[start : start + size] for start in range(0, len(indices), size)):
            start = time.perf_counter()
            kernels = expanded_weights(model, source, target, [jobs[i].unit for i in part])
            seconds = (time.perf_counter() - start) / len(part)
            for index, kernel in zip(part, kernels, strict=True):
                buffer = io.BytesIO()
                np.save(buffer, kernel.astype(np.float32))
                result = WeightsResult(tuple(kernel.shape), float(np.abs(kernel).max()))
                outputs[index] = Output(
                    {"kernels.npy": buffer.getvalue()}, result, {"seconds": round(seconds, 4)}
                )
            progress(len(part))
    return [outputs[i] for i in range(len(jobs))]


def pass_size(model: LoadedModel, target: str, device: torch.device, canvas: int | None = None) -> int:
    """Units per linearized pass: the pass keeps every activation up to `target` at the
    canvas's size for the backward (about four copies of float32 each: output, gradient, saved
    inputs), within the device's budget. 647 units of InceptionV1 in one pass took 24 GB."""
    side = canvas or 2 * model.input_size
    names = list(model.layers)
    upto = names[: names.index(model.layer(target).name) + 1]
    per_unit = sum(np.prod(model.layers[n].shape) for n in upto) * (side / model.input_size) ** 2 * 16
    return max(1, int(memory_budget(device) // (per_unit + 1)))


def receptive_field(model: LoadedModel, layer: str, mass: float = 0.9) -> int:
    """The side in input pixels of the centred square that holds `mass` of the input gradient
    of one position of `layer` in the linearized network: the part of its (theoretical)
    receptive field that matters, which for deep layers is much smaller than all of it. A
    transformer's token reads every patch through attention: its patch is what it stands for."""
    if model.layers[layer].tokens:
        return model.input_size // model.layers[layer].shape[-1]
    module = model.module
    device = next(module.parameters()).device
    size = model.input_size
    x = torch.zeros(1, 3, size, size, device=device, requires_grad=True)
    with ExitStack() as stack:
        for context in (_relu_modules_bypassed(module), Linearized(), torch.enable_grad()):
            stack.enter_context(context)
        outputs = stack.enter_context(capture(module, [layer]))
        run(module, x, outputs)
        out = outputs[layer]
        if out.dim() != 4:
            return size
        out[0, :, out.shape[2] // 2, out.shape[3] // 2].sum().backward()
    weight = x.grad[0].abs().sum(dim=0)
    total = float(weight.sum())
    if total == 0:
        return size
    rows, cols = torch.nonzero(weight, as_tuple=True)
    cy, cx = int(rows.float().mean().round()), int(cols.float().mean().round())
    for half in range(size):
        square = weight[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1]
        if float(square.sum()) >= mass * total:
            return min(2 * half + 1, size)
    return size
