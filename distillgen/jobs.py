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

ENGINE_VERSION = "1"  # bump when every engine's output for the same job changes
# ... and a kind's `revision` when only that kind's engine changes: its old artifacts are then
# computed again, the other kinds' stay valid.

OBJECTIVES = ("channel", "neuron", "direction", "negative")


class Keyed:
    """What every job has: a content key, and a cost of 1 unless it says otherwise."""

    revision: ClassVar[int] = 0

    @property
    def key(self) -> str:
        return job_key(self)

    @property
    def cost(self) -> int:
        """Work for progress bars."""
        return 1


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
class FeatureVisJob(Keyed):
    """One feature visualization: an image per unit, or `diversity` images of one unit."""

    kind: ClassVar[str] = "featurevis"
    noun: ClassVar[str] = "unit"  # for progress: "featurevis of 3 units"

    model: str  # canonical spec
    fingerprint: str  # units.fingerprint(spec): the weights' identity
    layer: str  # canonical module path
    unit: int  # channel; ignored (-1) for a direction
    objective: str = "channel"
    direction: tuple[float, ...] = ()  # one weight per channel, for the "direction" objective
    diversity: int = 0  # 0: one image; N >= 2: N images pushed apart by lucent's diversity term
    settings: FeatureVisSettings = FeatureVisSettings()

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
    """sha256 of the job's canonical JSON: its kind, every field, and the engine version (and
    the kind's revision, once it has one: keys of kinds never revised stay as they were)."""
    revision = {"revision": job.revision} if getattr(job, "revision", 0) else {}
    canonical = json.dumps(
        {"kind": job.kind, "engine": ENGINE_VERSION, **revision, **asdict(job)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def describe(job) -> dict:
    """The job as a record's `job` field: every field, readable."""
    return {"kind": job.kind, **asdict(job)}


@dataclass(frozen=True)
class WeightsJob(Keyed):
    """The (expanded) kernels from every channel of `source` to one unit of `layer`."""

    kind: ClassVar[str] = "weights"
    noun: ClassVar[str] = "unit"

    model: str
    fingerprint: str
    source: str  # canonical module path of the earlier layer
    layer: str  # canonical module path of the later layer
    unit: int

    @property
    def address(self) -> str:
        return f"{self.source} -> {self.layer}:{self.unit}"


@dataclass(frozen=True)
class Dataset:
    """A probe set (see datasets.py): the shapes generator's sample, or a folder of images."""

    source: str  # "shapes" or an absolute folder path
    fingerprint: str  # the generator's source, or the folder's files
    count: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Sweep:
    """A family of stimuli (stimuli.py, or an author's `file.py:function`) over one parameter."""

    family: str  # a built-in family name, or "/abs/path.py:function"
    family_fingerprint: str  # sha256 of stimuli.py for built-ins, of the author's file otherwise
    param: str  # the swept parameter's name, for the axis
    values: tuple[float, ...]
    fixed: tuple[tuple[str, float], ...] = ()  # other keyword arguments of the family
    size: int = 64


@dataclass(frozen=True)
class TuningJob(Keyed):
    """Responses (maximum over positions) of units of one layer to each stimulus of a sweep."""

    kind: ClassVar[str] = "tuning"
    noun: ClassVar[str] = "sweep"

    model: str
    fingerprint: str
    layer: str
    units: tuple[int, ...]
    sweep: Sweep

    @property
    def address(self) -> str:
        return f"{self.layer}:{','.join(map(str, self.units))}"


@dataclass(frozen=True)
class ExamplesJob(Keyed):
    """The dataset images that excite a unit most (or least), with the crop around its peak."""

    kind: ClassVar[str] = "examples"
    noun: ClassVar[str] = "unit"

    model: str
    fingerprint: str
    layer: str
    unit: int
    dataset: Dataset
    top: int = 8
    negative: bool = False

    @property
    def address(self) -> str:
        return f"{self.layer}:{self.unit}"


@dataclass(frozen=True)
class Edit:
    """Scale the edge(s) from units of `source` into unit `unit` of `layer` (the figure's
    target when `layer` is ""), or, with `whole`, the source units' output everywhere."""

    source: str
    units: tuple[int, ...]
    layer: str = ""
    unit: int = -1
    scale: float = 0.0
    whole: bool = False


@dataclass(frozen=True)
class AblationJob(Keyed):
    """A unit's activation before and after an edit of the network, on a probe: its top
    dataset examples, a stimulus sweep, or its own feature visualization."""

    kind: ClassVar[str] = "ablation"
    noun: ClassVar[str] = "edit"

    model: str
    fingerprint: str
    layer: str
    unit: int
    edits: tuple[Edit, ...]
    probe: str  # "examples", "tuning" or "featurevis"
    dataset: Dataset | None = None  # for "examples": the top `top` images of the unedited unit
    top: int = 16
    sweep: Sweep | None = None  # for "tuning"
    settings: FeatureVisSettings | None = None  # for "featurevis"

    @property
    def address(self) -> str:
        return f"{self.layer}:{self.unit}"

    @property
    def cost(self) -> int:
        return self.settings.steps if self.probe == "featurevis" and self.settings else 1


@dataclass(frozen=True)
class UniversalityJob(Keyed):
    """Correlations between the units of a layer in one model and a layer in another over a
    probe set, and the same against a baseline ("untrained": the second architecture with
    random weights; "shuffled": the second model on images in another order)."""

    kind: ClassVar[str] = "universality"
    noun: ClassVar[str] = "comparison"
    revision: ClassVar[int] = 2  # 1: the one-to-one matching; 2: positions subsampled on large layers

    model: str
    fingerprint: str
    layer: str
    other: str  # the second model's spec
    other_fingerprint: str
    other_layer: str
    dataset: Dataset
    baseline: str = "untrained"
    baseline_model: str = ""  # spec of the untrained architecture, for "untrained"
    baseline_fingerprint: str = ""

    @property
    def address(self) -> str:
        return f"{self.layer} ~ {self.other}:{self.other_layer}"
