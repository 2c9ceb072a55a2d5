"""Dictionary features as units: the one adapter through which every engine reads a feature.

A job that names features of a dictionary (`m4:17`) carries the dictionary (`jobs.Attached`).
For the job's run, the dictionary becomes a layer of the model, named as the author named it:
a module `FeatureLayer` added to the network, called by a forward hook on the layer it reads.
Its output is every feature's *activation* at every position, the encoder applied to the
centred activations (`dictionary.feature_activations`),

    a_i(x) = e_i · (x - c) + b_i        (e_i: encoder row, c: the dictionary's centre)

so featurevis, examples, tuning, universality and expanded weights read `m4:17` exactly as they
read `mixed4:17`. This is the SAE's pre-activation, before ReLU and TopK: a feature's
visualization maximizes it, its examples and tuning curves are its peaks, whether or not the
feature is among the k that the SAE keeps at that position (its *code* is relu(a_i) there, 0
elsewhere).

Edits of the feature layer flow back into the network through the code: when a hook changes
the features (an ablation scales, zeroes or replaces one), the hook on the real layer adds what
the change does to the SAE's reconstruction,

    x' = x + Σ_{i in S} (relu(a'_i) - relu(a_i)) d_i        (d_i: decoder row)

where S is the set of k features the SAE selects from the unedited activations (TopK of a).
Zeroing feature i subtracts exactly its code·decoder contribution z_i d_i, as the SAE
reconstructs x, and nothing when it is not selected; scaling it by s adds (s - 1) z_i d_i. An
edit never changes which features are selected. In the linearized network of expanded weights
(`linear`) the code is the activation itself, ReLU and TopK being dropped like every other
nonlinearity: the weights out of a feature are its decoder direction pushed forward, the weights
into it its encoder direction pulled back.

The reader hook runs after the layer's edits (`hooks.edited`: the features of an ablated or
substituted layer are computed from the edited output) and before its captures (which see the
output with the features' edits added). Installed for one batch of jobs and always removed.
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

from distillgen.engine.dictionary import feature_activations
from distillgen.engine.hooks import as_map, from_map
from distillgen.engine.models import LoadedModel
from distillgen.jobs import Attached
from distillgen.units import Layer


def arrays(weights: bytes) -> dict[str, np.ndarray]:
    """A dictionary.npz's arrays (never pickled objects)."""
    with np.load(io.BytesIO(weights), allow_pickle=False) as data:
        return {name: data[name] for name in ("encoder", "bias", "center", "decoder")}


class FeatureLayer(nn.Module):
    def __init__(self, weights: dict[str, np.ndarray], k: int) -> None:
        super().__init__()
        for name, value in weights.items():
            self.register_buffer(name, torch.from_numpy(np.asarray(value, np.float32)).clone())
        self.k = min(k, len(weights["encoder"]))
        self.linear = False  # in the linearized network of expanded weights (`linear`)
        self.last: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Every feature's activation: [N, F, H, W] from [N, C, H, W] (or [N, F] from [N, C])."""
        self.last = feature_activations(
            self.encoder.to(x.dtype), self.center.to(x.dtype), self.bias.to(x.dtype), x
        )
        return self.last

    def contribution(self, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """What changing the activations from `before` to `after` does to the reconstruction:
        the change of the TopK code (the features `before` selects) through the decoder."""
        if self.linear:
            change = after - before
        else:
            selected = torch.zeros_like(before, dtype=torch.bool)
            selected.scatter_(1, before.topk(self.k, dim=1).indices, True)
            change = torch.where(selected, torch.relu(after) - torch.relu(before), 0.0)
        decoder = self.decoder.to(change.dtype)
        if change.dim() == 4:
            return torch.einsum("nfhw,fc->nchw", change, decoder)
        return change @ decoder


@contextmanager
def linear(module: nn.Module) -> Iterator[None]:
    """Within the block, the dictionaries installed in `module` add a change of their features'
    activations itself through the decoder (no ReLU, no TopK): for expanded weights."""
    layers = [child for child in module.modules() if isinstance(child, FeatureLayer)]
    for layer in layers:
        layer.linear = True
    try:
        yield
    finally:
        for layer in layers:
            layer.linear = False


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
        by_layer: dict[str, list[Attached]] = {}
        for d in dictionaries:
            by_layer.setdefault(d.layer, []).append(d)
        for name, layer in saved_layers.items():
            layers[name] = layer
            for d in by_layer.get(name, ()):
                layers[d.name] = Layer(d.name, (d.features, *layer.shape[1:]), layer.tokens)
        for d in dictionaries:
            if d.name in modules or d.name in saved_layers:
                raise ValueError(f"the dictionary '{d.name}' has the name of a layer of {d.model}")
            feature_layer = FeatureLayer(arrays(base64.b64decode(d.weights)), d.k)
            model.module.add_module(d.name, feature_layer)
            added.append(d.name)
            handles.append(modules[d.layer].register_forward_hook(_reader(feature_layer)))
        model.layers = layers
        yield
    finally:
        for handle in handles:
            handle.remove()
        for name in added:
            delattr(model.module, name)
        model.layers = saved_layers


def _reader(feature_layer: FeatureLayer):
    def hook(_module, _inputs, output):
        features = feature_layer(as_map(output))  # its hooks: captures, edits, substitution
        if features is feature_layer.last:
            return None
        change = feature_layer.contribution(feature_layer.last, features)
        return output + from_map(change, torch.zeros_like(output))  # a class token unchanged

    return hook


@contextmanager
def for_jobs(model: LoadedModel, jobs: list, load: Callable) -> Iterator[Callable]:
    """The batch's dictionaries installed in its model, and a `load` that installs those of
    another model (universality) in it; yields that `load`."""
    wanted: dict[str, dict[str, Attached]] = {}
    for job in jobs:
        for d in job.dictionaries:
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
