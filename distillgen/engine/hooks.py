"""Reading intermediate layers: hook only the modules asked for, stop the forward pass once
all of them have produced their output, and always remove the hooks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

import torch
from torch import nn


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
            outputs.setdefault(name, output)
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
