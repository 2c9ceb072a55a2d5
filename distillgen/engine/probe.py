"""Running a model on a probe set: a unit's response per image, and edits of the network.

A unit's response to an image is the maximum of its map over positions (its value, for a
linear layer), as in the Circuits thread's dataset examples: a curve detector responds to a
curve wherever it is. Edits never touch the weights: they are forward hooks that scale a
layer's output channels, always removed, so an edit cannot leak into another figure.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from distillgen.engine.featurevis import model_input
from distillgen.engine.hooks import as_map, capture, edited, from_map, run
from distillgen.engine.models import LoadedModel

BATCH = 256


def map_batches(
    model: LoadedModel, layer: str, units: list[int], images: np.ndarray, device: torch.device
) -> Iterator[torch.Tensor]:
    """The maps of `units` of `layer`, a batch of images at a time: [batch, units, h, w] (or
    [batch, units] for a linear layer). Callers reduce each batch, so a large probe set on a
    large model never holds every map at once."""
    model.module.to(device)
    prepare = model_input(model)
    with torch.no_grad(), capture(model.module, [layer]) as outputs:
        for start in range(0, len(images), BATCH):
            # on the CPU a copy: a model may write into its input, and the images serve other
            # passes (moving them to a GPU copies them anyway)
            batch = images[start : start + BATCH]
            x = torch.from_numpy(np.array(batch) if device.type == "cpu" else np.ascontiguousarray(batch))
            x = x.to(device)
            run(model.module, prepare(x), outputs)
            yield outputs[layer][:, units].float().cpu()


def unit_maps(
    model: LoadedModel, layer: str, units: list[int], images: np.ndarray, device: torch.device
) -> torch.Tensor:
    """Every map of `units` of `layer` for every image (for a few units: dataset examples)."""
    return torch.cat(list(map_batches(model, layer, units, images, device)))


def peak(maps: torch.Tensor) -> torch.Tensor:
    """A response per image and unit: the maximum over positions."""
    return maps.flatten(2).amax(dim=2) if maps.dim() == 4 else maps


def responses(
    model: LoadedModel, layer: str, units: list[int], images: np.ndarray, device: torch.device
) -> np.ndarray:
    """[N, units] float64: each unit's peak response to each image."""
    batches = map_batches(model, layer, units, images, device)
    return torch.cat([peak(maps) for maps in batches]).double().numpy()


@contextmanager
def scaled_channels(model: LoadedModel, layer: str, channels: list[int], scale: float) -> Iterator[None]:
    """Within the block, `layer`'s output channels are multiplied by `scale`."""

    def edit(output: torch.Tensor) -> None:
        output[:, torch.tensor(channels, device=output.device)] *= scale

    with _edited_output(model, layer, edit):
        yield


@contextmanager
def replaced_channel(model: LoadedModel, layer: str, channel: int, value: torch.Tensor) -> Iterator[None]:
    """Within the block, channel `channel` of `layer`'s output is `value` (same batch)."""

    def edit(output: torch.Tensor) -> None:
        output[:, channel] = value.to(output.device, output.dtype)

    with _edited_output(model, layer, edit):
        yield


@contextmanager
def _edited_output(model: LoadedModel, layer: str, edit) -> Iterator[None]:
    """`edit` applied in place to a copy of `layer`'s output, before the layer's other hooks
    (`hooks.edited`: a dictionary reading the layer sees the edited output); removed when the
    block ends, however it ends."""

    def hook(_module, _inputs, output):
        changed = as_map(output).clone()  # a transformer's tokens as a map, edited, put back
        edit(changed)
        return from_map(changed, output)

    with edited(dict(model.module.named_modules())[layer], hook):
        yield
