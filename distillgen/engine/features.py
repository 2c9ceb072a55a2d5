"""Dictionary features as units: the one adapter through which every engine reads a feature.

A job that names features of a dictionary (`m4:17`) carries the dictionary (`jobs.Attached`).
For the job's run, the dictionary becomes a layer of the model, named as the author named it:
a module `FeatureLayer` added to the network, called by a forward hook on the layer it reads.
Its output is every feature's activation at every position, the encoder applied to the
centred activations,

    a_i(x) = e_i · (x - c) + b_i        (e_i: encoder row, c: the dictionary's centre)

so featurevis, examples, tuning, universality and expanded weights read `m4:17` exactly as they
read `mixed4:17`. Edits of the feature layer flow back into the network: when a hook changes
the features (an ablation scales or replaces one), the hook on the real layer adds what the
change does to the reconstruction,

    x' = x + Σ_i (relu(a'_i) - relu(a_i)) d_i        (d_i: decoder row)

so zeroing feature i subtracts its decoder contribution relu(a_i)·d_i from the layer's output,
and everything downstream sees it. The TopK selection is not applied here: a feature's
contribution is what the decoder would add were it among the active ones. In the linearized
network of expanded weights, relu is the identity: the weights out of a feature are its decoder
direction pushed forward, the weights into it its encoder direction pulled back.
Installed for one batch of jobs and always removed.
"""

from __future__ import annotations

import base64
import io
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from torch import nn

from distillgen.engine.models import LoadedModel
from distillgen.jobs import Attached
from distillgen.units import Layer


def arrays(weights: bytes) -> dict[str, np.ndarray]:
    """A dictionary.npz's arrays (never pickled objects)."""
    with np.load(io.BytesIO(weights), allow_pickle=False) as data:
        return {name: data[name] for name in ("encoder", "bias", "center", "decoder")}


class FeatureLayer(nn.Module):
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        super().__init__()
        for name, value in weights.items():
            self.register_buffer(name, torch.from_numpy(np.asarray(value, np.float32)).clone())
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every feature's activation: [N, F, H, W] from [N, C, H, W] (or [N, F] from [N, C])."""
        if x.dim() == 4:
            centred = x - self.center.to(x.dtype)[None, :, None, None]
            out = torch.einsum("fc,nchw->nfhw", self.encoder.to(x.dtype), centred)
            out = out + self.bias.to(x.dtype)[None, :, None, None]
        else:
            out = (x - self.center.to(x.dtype)) @ self.encoder.to(x.dtype).T + self.bias.to(x.dtype)
        self.last = out
        return out

    def contribution(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """What changing the features from `before` to `after` does to the reconstruction."""
        change = torch.relu(after) - torch.relu(before)
        decoder = self.decoder.to(change.dtype)
        if change.dim() == 4:
            return torch.einsum("nfhw,fc->nchw", change, decoder)
        return change @ decoder


@contextmanager
def installed(model: LoadedModel, dictionaries: list[Attached]) -> Iterator[None]:
    """Within the block, each dictionary is a layer of `model` (module and `model.layers`)."""
    if not dictionaries:
        yield
        return
    modules = dict(model.module.named_modules())
    saved_layers = model.layers
    handles, added = [], []
    try:
        layers = OrderedDict()
        names = {d.layer: d for d in dictionaries}
        for name, layer in saved_layers.items():
            layers[name] = layer
            if name in names:
                d = names[name]
                layers[d.name] = Layer(d.name, (d.features, *layer.shape[1:]))
        for d in dictionaries:
            if d.name in modules or d.name in saved_layers:
                raise ValueError(f"the dictionary '{d.name}' has the name of a layer of {d.model}")
            probe = FeatureLayer(arrays(base64.b64decode(d.weights)))
            model.module.add_module(d.name, probe)
            added.append(d.name)
            handles.append(modules[d.layer].register_forward_hook(_reader(probe)))
        model.layers = layers
        yield
    finally:
        for handle in handles:
            handle.remove()
        for name in added:
            delattr(model.module, name)
        model.layers = saved_layers


def _reader(probe: FeatureLayer):
    def hook(_module, _inputs, output):
        features = probe(output)  # hooks on the feature layer: capture, edits, substitution
        if features is probe.last:
            return None
        return output + probe.contribution(probe.last, features)

    return hook


@contextmanager
def for_jobs(model: LoadedModel, jobs: list, load: Callable) -> Iterator[Callable]:
    """The batch's dictionaries installed in its model, and a `load` that installs those of
    another model (universality) in it; yields that `load`."""
    wanted: dict[str, dict[str, Attached]] = {}
    for job in jobs:
        for d in getattr(job, "dictionaries", ()):
            known = wanted.setdefault(d.model, {}).setdefault(d.name, d)
            if known.checksum != d.checksum:
                raise ValueError(f"two dictionaries named '{d.name}' in one batch of {d.model}")
    with ExitStack() as stack:
        done: set[int] = set()
        main = jobs[0].model
        stack.enter_context(installed(model, list(wanted.get(main, {}).values())))
        done.add(id(model))

        def loading(spec: str):
            other = load(spec)
            if id(other) not in done:
                stack.enter_context(installed(other, list(wanted.get(str(spec), {}).values())))
                done.add(id(other))
            return other

        yield loading
