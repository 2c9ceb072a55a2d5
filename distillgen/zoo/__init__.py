"""Embedded models: procedural datasets (tasks), small networks trained on them, their training.

`ZOO` names each shipped network (its spec name without a tag): the task it is trained on, its
architecture and the seeds whose weights ship in `weights/` (`{name}-seed{N}.pt` with a model
card `{name}-seed{N}.json`); `distillgen zoo train NAME` retrains one from scratch,
deterministically. Neither numpy nor torch here: `units.py` reads this at every start.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

WEIGHTS = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class Task:
    """A procedural dataset, drawn by `generator` (a module of this package, imported when
    first drawn from: it needs numpy, which a build that draws nothing never loads)."""

    name: str
    generator: str  # the module's name in distillgen.zoo: its source keys datasets and jobs
    draw: str  # its function drawing a batch
    text: str
    fine: bool = False  # whether it has finer labels, for an auxiliary classifier (`fine_batch`)

    @property
    def module_name(self) -> str:
        """The generator's module (its code keys datasets and jobs: units.source_fingerprint)."""
        return f"distillgen.zoo.{self.generator}"

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(self.module_name)

    @property
    def classes(self) -> tuple[str, ...]:
        return self.module.CLASSES

    def batch(self, *args, **kwargs):
        """(n, seed, size=64, classes=None) -> images, labels."""
        return getattr(self.module, self.draw)(*args, **kwargs)

    @property
    def fine_classes(self) -> tuple[str, ...]:
        return self.module.FINE_CLASSES if self.fine else ()

    def fine_batch(self, *args, **kwargs):
        """(n, seed, size=64, classes=None) -> images, labels, fine labels (indices into
        `fine_classes`)."""
        return self.module.fine_batch(*args, **kwargs)


@dataclass(frozen=True)
class Auxiliary:
    """A classifier used in training only, as GoogLeNet's auxiliary heads: on `layer`'s output
    (global average pool, then linear), told the task's fine labels, its loss added with
    `weight`. The shipped network does not include it."""

    layer: str
    weight: float


@dataclass(frozen=True)
class ZooModel:
    name: str  # the spec: "shapes", "shapes@1", "shapes@untrained"
    task: str
    architecture: str  # "inception" (shapes_net.ShapesNet) or "vgg" (vgg_net.VGGNet)
    seeds: tuple[int, ...]  # shipped weights
    text: str
    auxiliary: Auxiliary | None = None

    def weights(self, seed: int) -> Path:
        return WEIGHTS / f"{self.name}-seed{seed}.pt"

    def source(self) -> Path:
        """The file defining the architecture (it keys the model's fingerprint)."""
        module = "vgg_net.py" if self.architecture == "vgg" else "shapes_net.py"
        return Path(__file__).resolve().parent / module


TASKS = {
    "shapes": Task("shapes", "shapes_data", "shapes_batch", "procedurally generated 64×64 line drawings"),
    "glyphs": Task(
        "glyphs",
        "glyphs_data",
        "glyphs_batch",
        "procedurally generated 64×64 glyphs (a bird-like head facing left or right, its parts, "
        "high-low frequency boundaries and their look-alikes)",
        fine=True,
    ),
}

DEFAULT_DATASET = "shapes"  # the probe set of a figure or atlas that names none

ZOO = {
    "shapes": ZooModel("shapes", "shapes", "inception", (0, 1), "a small InceptionV1-like CNN"),
    "glyphs": ZooModel("glyphs", "glyphs", "inception", (0, 1), "a small InceptionV1-like CNN"),
    "shapes-vgg": ZooModel("shapes-vgg", "shapes", "vgg", (0,), "a plain VGG-style CNN, no Inception blocks"),
    # Told in training which way each bird faces, mixed3 keeps left- and right-facing detectors:
    # the plain glyphs networks make mirror-symmetric features early and show no union.
    "glyphs-aux": ZooModel(
        "glyphs-aux",
        "glyphs",
        "inception",
        (0, 1),
        "a small InceptionV1-like CNN trained with an auxiliary heading classifier",
        Auxiliary("mixed3", 2.0),
    ),
}
DEFAULT_MODEL = "shapes"  # the model of an article (or dictionary) that names none
