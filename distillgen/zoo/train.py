"""Training the zoo's networks (`zoo.ZOO`): deterministic on a CPU for a given seed.

Every batch is generated from (seed, step), parameters are initialized after seeding, the
thread count is fixed and torch's deterministic algorithms are on, so retraining with the same
seed on the same machine gives the same weights checksum.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
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
) -> TrainResult:
    """Train the zoo network `name` from scratch; every batch is drawn from (seed, step).
    The accuracy is measured on `held_out` fresh images (the cards' number: 2,000)."""
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    task = TASKS[ZOO[name].task]
    model = build(name, batchnorm=batchnorm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        images, labels = task.batch(
            batch, batch_seed(seed, step), classes=_shuffled_labels(seed, step, batch, len(task.classes))
        )
        loss = F.cross_entropy(model(torch.from_numpy(images)), torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        progress(step + 1, steps, loss.item())
    seconds = time.perf_counter() - start
    model = fold_batchnorm(model.eval()) if batchnorm else model.eval()
    return TrainResult(model, accuracy(model, n=held_out, task=task.name), seconds, steps, name)


def _shuffled_labels(seed: int, step: int, batch: int, classes: int = 5) -> np.ndarray:
    return np.random.default_rng(batch_seed(seed, step) + 7).integers(0, classes, batch)
