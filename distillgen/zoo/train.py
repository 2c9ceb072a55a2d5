"""Training the shapes network: deterministic on a CPU for a given seed.

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

from distillgen.zoo.shapes_data import shapes_batch
from distillgen.zoo.shapes_net import ShapesNet, fold_batchnorm

TEST_SEED = 10_000_019  # the held-out set: far from every training seed's batch seeds
THREADS = 2


@dataclass
class TrainResult:
    model: ShapesNet
    accuracy: float
    seconds: float
    steps: int


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
def accuracy(model: ShapesNet, n: int = 2000, seed: int = TEST_SEED) -> float:
    model.eval()
    correct = 0
    for start in range(0, n, 500):
        images, labels = shapes_batch(min(500, n - start), seed + start)
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
) -> TrainResult:
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = ShapesNet(batchnorm=batchnorm)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    start = time.perf_counter()
    model.train()
    for step in range(steps):
        images, labels = shapes_batch(
            batch, batch_seed(seed, step), classes=_shuffled_labels(seed, step, batch)
        )
        loss = F.cross_entropy(model(torch.from_numpy(images)), torch.from_numpy(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        progress(step + 1, steps, loss.item())
    seconds = time.perf_counter() - start
    model = fold_batchnorm(model.eval()) if batchnorm else model.eval()
    return TrainResult(model, accuracy(model), seconds, steps)


def _shuffled_labels(seed: int, step: int, batch: int) -> np.ndarray:
    return np.random.default_rng(batch_seed(seed, step) + 7).integers(0, 5, batch)
