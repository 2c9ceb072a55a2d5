"""Reading intermediate layers: hook only the modules asked for, stop the forward pass once
all of them have produced their output, and always remove the hooks.

Hooks on one module run in three tiers, whenever each was registered: edits of its output
(`edited`: an ablation's scaling, a weights job's substituted leaf, a bypassed ReLU), then a
dictionary's reader (engine/features.py, which computes the features from the edited output),
then captures (`capture`, which see the output as everything downstream sees it)."""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import torch
from torch import nn


def token_grid(tokens: int) -> int:
    """The side of the square grid of patch tokens among `tokens` (all of them, or all but a
    first class token), or 0 when they make none: a transformer layer's tokens are read as a
    map over that grid."""
    for patches in (tokens, tokens - 1):
        side = math.isqrt(max(patches, 0))
        if side >= 2 and side * side == patches:
            return side
    return 0


def as_map(output: torch.Tensor) -> torch.Tensor:
    """A layer's output as [batch, units, height, width] (or [batch, units]): a transformer's
    tokens [batch, tokens, width] as the width's units over the grid of patch tokens, the class
    token left out; anything else as it is."""
    if output.dim() != 3 or not token_grid(output.shape[1]):
        return output
    batch, tokens, width = output.shape
    side = token_grid(tokens)
    return output[:, tokens - side * side :].transpose(1, 2).reshape(batch, width, side, side)


def from_map(grid: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    """`grid` (an edited `as_map(output)`) in `output`'s layout, `output`'s class token kept."""
    if grid.dim() != 4 or output.dim() != 3:
        return grid
    batch, tokens, width = output.shape
    patches = grid.reshape(batch, width, -1).transpose(1, 2)
    return torch.cat([output[:, : tokens - patches.shape[1]], patches], dim=1)


class _Enough(Exception):
    """Raised by the last hook that was needed: nothing after it has to run."""


@contextmanager
def capture(module: nn.Module, layers: list[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, `run(module, x, outputs)` fills `outputs[name]` for each layer."""
    modules = dict(module.named_modules())
    outputs: dict[str, torch.Tensor] = {}
    wanted = set(layers)

    def hook(name: str):
        def record(_module, _inputs, output):
            outputs.setdefault(name, as_map(output))
            if wanted.issubset(outputs):
                raise _Enough

        return record

    handles = []
    try:
        for name in wanted:
            handles.append(modules[name].register_forward_hook(hook(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def run(module: nn.Module, x: torch.Tensor, outputs: dict[str, torch.Tensor]) -> None:
    """One forward pass inside `capture`, truncated after the deepest layer it needs."""
    outputs.clear()
    with suppress(_Enough):
        module(x)


_EDITS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> (edits, handle)


@contextmanager
def edited(module: nn.Module, edit: Callable) -> Iterator[None]:
    """Within the block, `edit(module, inputs, output)` (a forward hook's signature: it returns
    the new output, or None to keep it) changes `module`'s output before any other hook of the
    module runs, whenever that one was registered: one hook, registered with `prepend=True`,
    applies the module's edits in the order they were entered, and is removed with the last."""
    if module not in _EDITS:
        edits: list[Callable] = []

        def apply(hooked, inputs, output):
            for each in list(edits):
                changed = each(hooked, inputs, output)
                if changed is not None:
                    output = changed
            return output

        _EDITS[module] = (edits, module.register_forward_hook(apply, prepend=True))
    chain, handle = _EDITS[module]
    chain.append(edit)
    try:
        yield
    finally:
        chain.remove(edit)
        if not chain:
            handle.remove()
            del _EDITS[module]
