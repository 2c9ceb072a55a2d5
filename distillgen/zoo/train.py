"""Training the zoo's networks (`zoo.ZOO`): deterministic on a CPU for a given seed.

Every batch is generated from (seed, step), parameters are initialized after seeding, the
thread count is fixed and torch's deterministic algorithms are on, so retraining with the same
seed on the same machine gives the same weights checksum.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from distillgen.zoo import TASKS, ZOO
from distillgen.zoo.shapes_net import ShapesNet, fold_batchnorm

TEST_SEED = 10_000_019  # the held-out set: far from every training seed's batch seeds
THREADS = 2


@dataclass
class TrainResult:
    model: torch.nn.Module
    accuracy: float
    seconds: float
    steps: int
    name: str = "shapes"


def build(name: str, batchnorm: bool = False) -> torch.nn.Module:
    """The zoo network `name` (a key of `ZOO`) with fresh parameters from torch's current seed."""
    entry = ZOO[name]
    classes = len(TASKS[entry.task].classes)
    if entry.architecture == "vgg":
        from distillgen.zoo.vgg_net import VGGNet

        return VGGNet(classes=classes, batchnorm=batchnorm)
    return ShapesNet(classes=classes, batchnorm=batchnorm)


def batch_seed(seed: int, step: int) -> int:
    return seed * 1_000_003 + step


def weights_checksum(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over tensor names and bytes in key order: independent of the file format."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def accuracy(model: torch.nn.Module, n: int = 2000, seed: int = TEST_SEED, task: str = "shapes") -> float:
    """Accuracy on `n` fresh images of `task` drawn from `seed` (the held-out set by default)."""
    model.eval()
    correct = 0
    batch_of = TASKS[task].batch
    for start in range(0, n, 500):
        images, labels = batch_of(min(500, n - start), seed + start)
        predictions = model(torch.from_numpy(images)).argmax(1).numpy()
        correct += int((predictions == labels).sum())
    return correct / n


def train(
    seed: int,
    steps: int = 3000,
    batch: int = 64,
    lr: float = 2e-3,
    batchnorm: bool = True,
    progress: Callable[[int, int, float], None] = lambda step, steps, loss: None,
    name: str = "shapes",
    held_out: int = 2000,
    threads: int = THREADS,
) -> TrainResult:
    """Train the zoo network `name` from scratch; every batch is drawn from (seed, step).
    The accuracy is measured on `held_out` fresh images (the cards' number: 2,000). The same
    seed gives the same weights for the same `threads` (the cards': 2)."""
    with _deterministic(threads):
        return _train(seed, steps, batch, lr, batchnorm, progress, name, held_out)


@contextmanager
def _deterministic(threads: int) -> Iterator[None]:
    """torch's thread count and deterministic algorithms for the block, as they were after
    it: a process that trains once (a test worker) must not keep 2 threads on a shared core."""
    threads_before = torch.get_num_threads()
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    warn_only_before = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.use_deterministic_algorithms(deterministic_before, warn_only=warn_only_before)


def _train(
    seed: int,
    steps: int,
    batch: int,
    lr: float,
    batchnorm: bool,
    progress: Callable[[int, int, float], None],
    name: str,
    held_out: int,
) -> TrainResult:
    torch.manual_seed(seed)
    np.random.seed(seed)
    entry = ZOO[name]
    task = TASKS[entry.task]
    model = build(name, batchnorm=batchnorm)
    auxiliary = None
    if entry.auxiliary:
        layer = model.get_submodule(entry.auxiliary.layer)
        auxiliary = AuxiliaryHead(layer.channels, len(task.fine_classes))
    trained = torch.nn.ModuleList([model, auxiliary] if auxiliary else [model])
    optimizer = torch.optim.AdamW(trained.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    start = time.perf_counter()
    trained.train()
    for step in range(steps):
        labels_of = _shuffled_labels(seed, step, batch, len(task.classes))
        if auxiliary and entry.auxiliary:
            images, labels, fine = task.fine_batch(batch, batch_seed(seed, step), classes=labels_of)
            with _kept_output(layer) as layer_output:
                logits = model(torch.from_numpy(images))
            fine_loss = F.cross_entropy(auxiliary(layer_output()), torch.from_numpy(fine))
            loss = F.cross_entropy(logits, torch.from_numpy(labels)) + entry.auxiliary.weight * fine_loss
        else:
            images, labels = task.batch(batch, batch_seed(seed, step), classes=labels_of)
            loss = F.cross_entropy(model(torch.from_numpy(images)), torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        progress(step + 1, steps, loss.item())
    seconds = time.perf_counter() - start
    model = fold_batchnorm(model.eval()) if batchnorm else model.eval()
    return TrainResult(model, accuracy(model, n=held_out, task=task.name), seconds, steps, name)


class AuxiliaryHead(torch.nn.Linear):
    """`zoo.Auxiliary`'s classifier: a global average pool of its layer's output, then linear."""

    def forward(self, layer_output: torch.Tensor) -> torch.Tensor:
        return super().forward(layer_output.mean(dim=(2, 3)))


@contextmanager
def _kept_output(module: torch.nn.Module) -> Iterator[Callable[[], torch.Tensor]]:
    """Within the block, the last output of `module` (returned by the function yielded)."""
    kept: list[torch.Tensor] = []
    hook = module.register_forward_hook(lambda _module, _inputs, output: kept.append(output))
    try:
        yield lambda: kept[-1]
    finally:
        hook.remove()


def _shuffled_labels(seed: int, step: int, batch: int, classes: int = 5) -> np.ndarray:
    return np.random.default_rng(batch_seed(seed, step) + 7).integers(0, classes, batch)
