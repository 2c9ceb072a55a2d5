"""Jobs: what a figure asks the engine to compute, as plain data with a content key.

A job names the model by spec and fingerprint, the unit by its canonical layer name, and every
setting that changes the result. Its key is the hash of all of that plus `ENGINE_VERSION`, so
any change to the request, the weights or the algorithm gives a new key and a new artifact.
No torch here: the build plans and looks up the cache without it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import ClassVar

ENGINE_VERSION = "1"  # bump when the engine's output for the same job changes

OBJECTIVES = ("channel", "neuron", "direction", "negative")


@dataclass(frozen=True)
class FeatureVisSettings:
    """Everything but the unit that determines a feature visualization."""

    steps: int = 512
    size: int = 64  # image side in pixels (before the transforms' padding)
    lr: float = 0.05
    seed: int = 0
    fft: bool = True
    decorrelate: bool = True
    transforms: str = "standard"  # lucent's standard_transforms, or "none"


@dataclass(frozen=True)
class FeatureVisJob:
    """One feature visualization: an image per unit, or `diversity` images of one unit."""

    kind: ClassVar[str] = "featurevis"

    model: str  # canonical spec
    fingerprint: str  # units.fingerprint(spec): the weights' identity
    layer: str  # canonical module path
    unit: int  # channel; ignored (-1) for a direction
    objective: str = "channel"
    direction: tuple[float, ...] = ()  # one weight per channel, for the "direction" objective
    diversity: int = 0  # 0: one image; N >= 2: N images pushed apart by lucent's diversity term
    settings: FeatureVisSettings = FeatureVisSettings()

    @property
    def key(self) -> str:
        return job_key(self)

    @property
    def address(self) -> str:
        if self.objective == "direction":
            return f"{self.layer}:direction"
        return f"{self.layer}:{self.unit}"

    @property
    def images(self) -> int:
        return max(1, self.diversity)

    @property
    def cost(self) -> int:
        """Work in image-steps, for progress bars."""
        return self.images * self.settings.steps

    def batch_group(self) -> tuple:
        """Jobs with equal groups are optimized together in one batch.

        One layer per batch, so that the forward pass stops as early as that layer allows (a
        conv1 unit need not pay for mixed4). Diversity jobs run alone: lucent's diversity term
        compares every image in the batch.
        """
        alone = self.unit if self.diversity else None
        return (self.model, self.fingerprint, self.settings, self.layer, alone)


def job_key(job) -> str:
    """sha256 of the job's canonical JSON: its kind, every field, and the engine version."""
    canonical = json.dumps(
        {"kind": job.kind, "engine": ENGINE_VERSION, **asdict(job)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe(job) -> dict:
    """The job as a record's `job` field: every field, readable."""
    return {"kind": job.kind, **asdict(job)}


@dataclass(frozen=True)
class WeightsJob:
    """The (expanded) kernels from every channel of `source` to one unit of `layer`."""

    kind: ClassVar[str] = "weights"

    model: str
    fingerprint: str
    source: str  # canonical module path of the earlier layer
    layer: str  # canonical module path of the later layer
    unit: int

    @property
    def key(self) -> str:
        return job_key(self)

    @property
    def address(self) -> str:
        return f"{self.source} -> {self.layer}:{self.unit}"

    @property
    def cost(self) -> int:
        return 1
