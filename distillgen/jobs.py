"""Jobs: what a figure asks the engine to compute, as plain data with a content key.

A job names the model by spec and fingerprint, the unit by its canonical layer name, and every
setting that changes the result. Its key is the hash of all of that plus `ENGINE_VERSION`, so
any change to the request, the weights or the algorithm gives a new key and a new artifact.
No torch here: the build plans and looks up the cache without it.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import hashlib
import json
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from distillgen.cache import Artifact

ENGINE_VERSION = "1"  # bump when every engine's output for the same job changes
# ... and a kind's `revision` when only that kind's engine changes: its old artifacts are then
# computed again, the other kinds' stay valid.

# The modes a job's string fields take, as the type checker sees them (and the options offer).
Objective = Literal["channel", "neuron", "direction", "negative"]
# what an ablation or an attribution measures its unit on; "images": files in the articles folder
Probe = Literal["examples", "tuning", "featurevis", "images"]
Method = Literal["gradient", "integrated"]  # an attribution's: activation × gradient, or IG
Reference = Literal["black", "grey"]  # the input that integrated gradients start from
Baseline = Literal["untrained", "shuffled"]  # what a universality figure compares against
Sampling = Literal["positions", "peaks"]  # what a universality figure correlates
Param = Literal["lucent", "maco"]  # how a feature visualization's image is parameterized
OBJECTIVES: tuple[Objective, ...] = typing.get_args(Objective)
METHODS: tuple[Method, ...] = typing.get_args(Method)
REFERENCES: tuple[Reference, ...] = typing.get_args(Reference)
PARAMS: tuple[Param, ...] = typing.get_args(Param)
# A field of a job that is not part of what it asks for, only of how it runs (`Job.prepared`).
UNKEYED = {"keyed": False}
# A field added after keys were made: left out of the key at its default, so the artifacts
# made before it existed keep their keys.
LATER = {"later": True}


@dataclass(frozen=True)
class Job:
    """What every job is: a request for one computed result of a model, keyed by its content.

    Everything the core reads of a job (compute.py, executors.py, engine/) is declared here; a
    kind's job adds the fields that determine its result. `dictionaries` is keyword-only so that
    each kind's own fields keep their order after `model` and `fingerprint`.
    """

    kind: ClassVar[str]  # its name in the table of kinds (kinds.py)
    noun: ClassVar[str]  # what one job is, for progress: "featurevis of 3 units"
    Result: ClassVar[type]  # what its engine computes and its figures read (below each job)
    revision: ClassVar[int] = 0  # a kind's engine changed: its old artifacts are computed again
    # Its engine computes a batch group's jobs in one pass over their data (a folder's
    # ranking): executors never split the group, however costly.
    one_pass: ClassVar[bool] = False

    model: str  # canonical spec
    fingerprint: str  # units.fingerprint(spec): the weights' identity
    dictionaries: tuple[Attached, ...] = field(default=(), kw_only=True)  # features it reads or edits

    @cached_property  # jobs are frozen: hashed once (a rebuild asks for ~12,000 keys)
    def key(self) -> str:
        return job_key(self)

    @property
    def address(self) -> str:
        """What it is about, as an author writes it: `mixed4:52`, `conv2 -> mixed3:1`."""
        raise NotImplementedError

    @property
    def cost(self) -> int:
        """Work for progress bars and time estimates (image-steps, or 1)."""
        return 1

    @property
    def images(self) -> int:
        """Images it makes, for progress ("featurevis of 3 units, 12 images")."""
        return 1

    @property
    def size(self) -> int | None:
        """The side of the images it optimizes (its cost scales with their pixels), if any."""
        return None

    def layers(self) -> tuple[str, ...]:
        """The layers of `model` it names: a dictionary among them is carried (dictionaries.py)."""
        return ()

    def batch_group(self) -> tuple:
        """Jobs of one kind and model with equal groups are computed together in one batch."""
        return ()

    def inputs(self) -> tuple[Job, ...]:
        """Jobs whose results its engine reads (a folder's ranking pass, for its examples):
        compute.py computes them first, like any job, and hands them over through `prepared`."""
        return ()

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> Job:
        """The job as its engine receives it: with what it reads of its `inputs` (artifacts by
        key) and where it may keep work in progress (`scratch`), in fields left out of its key
        (`UNKEYED`), so the result is stored under the key it was asked for."""
        return self


@dataclass(frozen=True)
class FeatureVisSettings:
    """Everything but the unit that determines a feature visualization."""

    steps: int = 512
    size: int = 64  # image side in pixels (before the transforms' padding)
    lr: float = 0.05
    seed: int = 0
    fft: bool = True
    decorrelate: bool = True
    transforms: str = "standard"  # lucent's standard transforms (engine/transforms.py), or "none"
    # "lucent": lucent's Fourier (or pixel) image; "maco": Fourier phase only, the magnitude the
    # probe set's (Fel et al. 2023; engine/maco.py), which `FeatureVisJob.spectrum` names
    param: Param = field(default="lucent", metadata=LATER)


@dataclass(frozen=True)
class Attached:
    """A trained dictionary as jobs that read its features carry it: the engine shows its
    features as the channels of a layer named `name` (engine/features.py), so any job reads a
    feature as it reads a unit. `weights` is the dictionary's `dictionary.npz`, base64: the job
    needs no cache to run (a Ray worker has none), and is keyed by `checksum` instead."""

    name: str  # the layer the features appear as ("m4")
    model: str  # the spec of the model it reads (a universality job has two models)
    layer: str  # the model's layer the dictionary reads (canonical module path)
    features: int
    k: int  # active features per position (TopK): an edit of a feature changes the TopK code
    checksum: str  # sha256 of the weights' bytes
    weights: str = field(default="", repr=False, compare=False)


def _expect(condition: bool, problem: str) -> None:
    if not condition:
        raise ResultError(problem)


def _expect_files(names, files: Mapping[str, Path]) -> None:
    missing = [name for name in names if name not in files]
    _expect(not missing, f"its record lists no file {', '.join(map(repr, missing))}")


@dataclass(frozen=True)
class FeatureVisResult:
    values: tuple[float, ...]  # the objective's final value, per image
    images: tuple[str, ...]  # PNG file names in the artifact

    def check(self, job: FeatureVisJob, files: Mapping[str, Path]) -> None:
        """ResultError unless the result fits the job and the payload (each Result has one)."""
        _expect(len(self.images) == len(self.values) == job.images, f"it has {len(self.images)} images")
        _expect_files(self.images, files)


@dataclass(frozen=True)
class FeatureVisJob(Job):
    """One feature visualization: an image per unit, or `diversity` images of one unit."""

    kind: ClassVar[str] = "featurevis"
    noun: ClassVar[str] = "unit"  # for progress: "featurevis of 3 units"
    Result: ClassVar[type] = FeatureVisResult
    revision: ClassVar[int] = 1  # 1: lucent's transforms with whole-pixel shifts (engine/transforms.py)

    layer: str  # canonical module path
    unit: int  # channel; ignored (-1) for a direction
    objective: Objective = "channel"
    direction: tuple[float, ...] = ()  # one weight per channel, for the "direction" objective
    diversity: int = 0  # 0: one image; N >= 2: N images pushed apart by lucent's diversity term
    settings: FeatureVisSettings = FeatureVisSettings()
    spectrum: Dataset | None = field(default=None, metadata=LATER)  # MACO's magnitudes: of this set
    magnitude: str = field(default="", repr=False, compare=False, metadata=UNKEYED)  # its .npy, base64

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

    @property
    def size(self) -> int:
        return self.settings.size

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def batch_group(self) -> tuple:
        """Jobs with equal groups are optimized together in one batch.

        One layer per batch, so that the forward pass stops as early as that layer allows (a
        conv1 unit need not pay for mixed4). Diversity sets share batches too: each job's
        diversity term compares only its own images.
        """
        return (self.model, self.fingerprint, self.settings, self.layer, self.dictionaries, self.spectrum)

    def inputs(self) -> tuple[Job, ...]:
        if self.spectrum is None:
            return ()
        return (SpectrumJob(self.model, self.fingerprint, self.spectrum, self.settings.size),)

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> FeatureVisJob:
        if self.spectrum is None:
            return self
        (spectrum,) = self.inputs()
        data = inputs[spectrum.key].file("spectrum.npy").read_bytes()
        return dataclasses.replace(self, magnitude=base64.b64encode(data).decode())


@dataclass(frozen=True)
class SpectrumResult:
    """The artifact's `spectrum.npy`: [3, size, size // 2 + 1], the mean Fourier magnitude."""

    size: int
    images: int  # how many images it averages

    def check(self, job: SpectrumJob, files: Mapping[str, Path]) -> None:
        _expect_files(["spectrum.npy"], files)
        _expect(self.size == job.side, f"its spectrum is {self.size} px")


@dataclass(frozen=True)
class SpectrumJob(Job):
    """The mean Fourier magnitude of a probe set's images at `size` px: what MACO's images
    keep while their phase is optimized (engine/maco.py). Cached like any job: a folder of
    photographs is read once, not for every batch of feature visualizations."""

    kind: ClassVar[str] = "spectrum"
    noun: ClassVar[str] = "probe set"
    Result: ClassVar[type] = SpectrumResult

    dataset: Dataset
    side: int  # of the images it is the spectrum of

    @property
    def address(self) -> str:
        return f"spectrum of {Path(self.dataset.source).name} at {self.side} px"

    @property
    def cost(self) -> int:
        return self.dataset.count


@dataclass(frozen=True)
class FaithfulnessResult:
    """How faithful each image of a feature visualization is to its unit, measured on a probe
    set (engine/faithfulness.py). A unit's activation is what its objective reads: the mean of
    its map (a neuron objective: the centre), negated for a negative objective."""

    units: int  # the layer's units: specificity is a rank among them
    activation: tuple[float, ...]  # per image: the unit's activation on it
    specificity: tuple[int, ...]  # per image: 1 + the units more active on it, each normalized
    # per image: activation / the strongest probe image's; None where no probe image excites it
    natural_ratio: tuple[float | None, ...]
    strongest: float  # the unit's activation on its strongest probe image
    strongest_image: int  # that image's index in the probe set
    path_layers: tuple[str, ...]  # the earlier layers the path is compared at
    # per image, per path layer: the correlation of its normalized activations there with the
    # mean of the unit's `top` probe images'; `path_baseline`: random probe images' (per layer)
    path: tuple[tuple[float, ...], ...]
    path_baseline: tuple[float, ...]
    top: int
    probe_size: int

    def path_similarity(self, image: int = 0) -> float | None:
        """The image's path similarity, over its path layers (None: the unit's layer is first)."""
        row = self.path[image]
        return sum(row) / len(row) if row else None

    @property
    def baseline(self) -> float | None:
        return sum(self.path_baseline) / len(self.path_baseline) if self.path_baseline else None

    def check(self, job: FaithfulnessJob, files: Mapping[str, Path]) -> None:
        columns = (self.activation, self.specificity, self.natural_ratio, self.path)
        _expect(all(len(c) == job.count for c in columns), "it measures another number of images")
        _expect(all(len(row) == len(self.path_layers) for row in self.path), "its path has gaps")
        _expect(len(self.path_baseline) == len(self.path_layers), "its path baseline has gaps")
        _expect(all(1 <= s <= self.units for s in self.specificity), "a specificity is out of range")


@dataclass(frozen=True)
class FaithfulnessJob(Job):
    """The faithfulness measures of one feature visualization's images (`image`: its job's
    key) on a probe set: specificity, natural ratio and path similarity (FaithfulnessResult).
    Its input is the feature visualization, whose PNGs `prepared` carries to the engine."""

    kind: ClassVar[str] = "faithfulness"
    noun: ClassVar[str] = "unit"
    Result: ClassVar[type] = FaithfulnessResult

    layer: str
    unit: int
    objective: Objective
    count: int  # images of the feature visualization
    image: str  # the feature visualization's job key
    dataset: Dataset
    top: int = 16  # the unit's strongest probe images, which the path is compared with
    featurevis: FeatureVisJob | None = field(default=None, repr=False, compare=False, metadata=UNKEYED)
    pngs: tuple[str, ...] = field(default=(), repr=False, compare=False, metadata=UNKEYED)  # base64

    @classmethod
    def of(cls, job: FeatureVisJob, dataset: Dataset) -> FaithfulnessJob:
        """The measures of `job`'s images on `dataset` (a direction has no unit to measure)."""
        assert job.objective != "direction", "a direction has no unit to rank"
        return cls(
            job.model,
            job.fingerprint,
            job.layer,
            job.unit,
            job.objective,
            job.images,
            job.key,
            dataset,
            featurevis=job,
            dictionaries=job.dictionaries,
        )

    @property
    def address(self) -> str:
        return f"{self.layer}:{self.unit}"

    @property
    def images(self) -> int:
        return self.count

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def batch_group(self) -> tuple:
        return (self.dataset,)  # one pass over the probe set for all its layers

    def inputs(self) -> tuple[Job, ...]:
        assert self.featurevis is not None, "made by FaithfulnessJob.of"
        return (self.featurevis,)

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> FaithfulnessJob:
        (job,) = self.inputs()
        artifact = inputs[job.key]
        names = artifact.result(job).images
        pngs = tuple(base64.b64encode(artifact.file(name).read_bytes()).decode() for name in names)
        return dataclasses.replace(self, pngs=pngs)


def job_key(job: Job) -> str:
    """sha256 of the job's canonical JSON: its kind, every field, and the engine version (and
    the kind's revision, once it has one: keys of kinds never revised stay as they were). A
    job that reads no dictionary feature has no `dictionaries` in its key (keys of jobs from
    before dictionaries stay as they were); one that does is keyed by each dictionary's
    checksum, not by its weights' bytes."""
    revision = {"revision": job.revision} if job.revision else {}
    canonical = json.dumps(
        {"kind": job.kind, "engine": ENGINE_VERSION, **revision, **_fields(job)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _fields(job) -> dict:
    fields = _plain(job)  # without its UNKEYED fields
    if not fields.get("dictionaries", True):
        del fields["dictionaries"]
    elif "dictionaries" in fields:  # copies: the nested dicts are shared (_plain's memo)
        fields["dictionaries"] = [
            {name: value for name, value in dictionary.items() if name != "weights"}
            for dictionary in fields["dictionaries"]
        ]
    return fields


# A nested value's plain dict by its id, with the value (so the id is not reused while it is
# here): an atlas's tens of thousands of jobs share a few settings and probe sets. Read only.
_NESTED: dict[int, tuple[object, dict]] = {}
NESTED_MOST = 100_000
_SCALAR_TYPES = frozenset((str, int, float, bool, type(None)))


def _plain(value):
    """`dataclasses.asdict` without its deep copies (a job is frozen, its fields plain data):
    the same JSON, several times faster; an atlas keys tens of thousands of jobs on every
    build. A field marked LATER is left out at its default, one marked UNKEYED always. The
    dicts of values nested in a job are made once per value and shared: callers must not
    change them."""
    kind = type(value)
    if kind in _SCALAR_TYPES:
        return value
    if kind is tuple and all(type(item) in _SCALAR_TYPES for item in value):
        return value  # as it is: a tuple is written as JSON as the list it would become
    names = _field_names(kind)
    if names is not None:
        # A job is not kept: a prepared one holds its payloads (a faithfulness job's PNGs), and
        # an Attached its weights.
        nested = not isinstance(value, Job | Attached)
        if nested and (held := _NESTED.get(id(value))) is not None and held[0] is value:
            return held[1]
        later, unkeyed = _later(kind), _unkeyed(kind)
        plain = {
            name: field if type(field) in _SCALAR_TYPES else _plain(field)  # most fields: no call
            for name in names
            if name not in unkeyed
            for field in (getattr(value, name),)
            if name not in later or field != later[name]
        }
        if nested:
            if len(_NESTED) >= NESTED_MOST:
                _NESTED.clear()
            _NESTED[id(value)] = (value, plain)
        return plain
    if isinstance(value, tuple | list):
        return kind(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


_FIELD_NAMES: dict[type, tuple[str, ...] | None] = {}


def _field_names(kind: type) -> tuple[str, ...] | None:
    """A dataclass's field names (None for any other type), looked up once per type."""
    if kind not in _FIELD_NAMES:
        _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind)) if is_dataclass(kind) else None
    return _FIELD_NAMES[kind]


_LATER: dict[type, dict[str, Any]] = {}


def _later(kind: type) -> dict[str, Any]:
    """A dataclass's fields marked LATER, with their defaults, looked up once per type."""
    if kind not in _LATER:
        _LATER[kind] = {f.name: f.default for f in fields(kind) if f.metadata.get("later")}
    return _LATER[kind]


_UNKEYED: dict[type, tuple[str, ...]] = {}


def _unkeyed(kind: type) -> tuple[str, ...]:
    """A dataclass's fields marked UNKEYED, looked up once per type."""
    if kind not in _UNKEYED:
        _UNKEYED[kind] = tuple(f.name for f in fields(kind) if not f.metadata.get("keyed", True))
    return _UNKEYED[kind]


def describe(job) -> dict:
    """The job as a record's `job` field: every field, readable (a dictionary by checksum)."""
    return {"kind": job.kind, **_fields(job)}


@dataclass(frozen=True)
class WeightsResult:
    """The kernels are in the artifact's `kernels.npy`: [source channels, height, width]."""

    shape: tuple[int, ...]
    max_abs: float

    def check(self, job: WeightsJob, files: Mapping[str, Path]) -> None:
        _expect_files(["kernels.npy"], files)
        import numpy as np  # here: keying and planning jobs never needs it

        stored = np.load(files["kernels.npy"], mmap_mode="r").shape  # reads the header only
        _expect(len(self.shape) == 3 and stored == self.shape, f"kernels.npy has the shape {stored}")


@dataclass(frozen=True)
class WeightsJob(Job):
    """The (expanded) kernels from every channel of `source` to one unit of `layer`."""

    kind: ClassVar[str] = "weights"
    noun: ClassVar[str] = "unit"
    Result: ClassVar[type] = WeightsResult

    source: str  # canonical module path of the earlier layer
    layer: str  # canonical module path of the later layer
    unit: int

    @property
    def address(self) -> str:
        return f"{self.source} -> {self.layer}:{self.unit}"

    def layers(self) -> tuple[str, ...]:
        return (self.layer, self.source)


@dataclass(frozen=True)
class Dataset:
    """A probe set (see datasets.py): a zoo generator's sample, or a folder of images."""

    source: str  # a generator ("shapes", "glyphs") or an absolute folder path
    fingerprint: str  # the generator's source, or the folder's files
    count: int = 1000
    seed: int = 0

    @property
    def folder(self) -> bool:
        """A folder of images, read from disk as a stream (a generator's sample is drawn whole)."""
        return self.source.startswith("/")


@dataclass(frozen=True)
class Sweep:
    """A family of stimuli (stimuli.py, or an author's `file.py:function`) over one parameter."""

    # a built-in family name, or an author's "file.py:function" as written: keyed by the file's
    # contents (family_fingerprint), not by where the project lies, so a committed cache serves
    # every checkout
    family: str
    family_fingerprint: str  # of stimuli.py and what it draws with for built-ins, else the author's file
    param: str  # the swept parameter's name, for the axis
    values: tuple[float, ...]
    fixed: tuple[tuple[str, float], ...] = ()  # other keyword arguments of the family
    size: int = 64
    draws: int = field(default=1, metadata=LATER)  # jittered draws averaged per value (stimuli.draws)
    path: str = field(
        default="", compare=False, metadata=UNKEYED
    )  # an author's file, absolute: for the engine


@dataclass(frozen=True)
class TuningResult:
    values: tuple[float, ...]  # the swept parameter
    responses: tuple[tuple[float, ...], ...]  # [value][unit]
    stimuli: tuple[str, ...]  # PNG file names, one per value

    def check(self, job: TuningJob, files: Mapping[str, Path]) -> None:
        rows = len(self.values) == len(self.responses) == len(self.stimuli) == len(job.sweep.values)
        columns = all(len(row) == len(job.units) for row in self.responses)
        _expect(rows and columns, "its table of responses has the wrong size")
        _expect_files(self.stimuli, files)


@dataclass(frozen=True)
class TuningJob(Job):
    """Responses (maximum over positions) of units of one layer to each stimulus of a sweep."""

    kind: ClassVar[str] = "tuning"
    noun: ClassVar[str] = "sweep"
    Result: ClassVar[type] = TuningResult

    layer: str
    units: tuple[int, ...]
    sweep: Sweep

    @property
    def address(self) -> str:
        return f"{self.layer}:{','.join(map(str, self.units))}"

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)


@dataclass(frozen=True)
class Example:
    index: int  # in the probe set
    value: float  # the unit's peak response
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the crop around the peak
    image: str  # PNG file names in the artifact: the whole image, and the crop
    crop: str


@dataclass(frozen=True)
class ExamplesResult:
    examples: tuple[Example, ...]
    probe_size: int
    image_size: int
    receptive_field: int  # the box's side in pixels

    def check(self, job: ExamplesJob, files: Mapping[str, Path]) -> None:
        _expect(len(self.examples) <= job.top, f"it has {len(self.examples)} examples")
        _expect_files([name for e in self.examples for name in (e.image, e.crop)], files)


RANKED = 64  # images a ranking keeps per unit and end: the most any figure shows (`:top:`)


@dataclass(frozen=True)
class RankingResult:
    """The ranking is the artifact's `ranking.npz`: per unit (rows) its `kept` strongest images
    (`top_*`) and weakest (`bottom_*`) by peak response: the value, the image's index in the
    probe set, and the peak's position in the layer's `grid` (row-major)."""

    units: int
    kept: int  # columns: `top`, or fewer when the probe set has fewer images
    probe_size: int  # images ranked: the probe set's, less those that could not be decoded
    grid: tuple[int, int]  # the layer's map (1, 1 for a linear layer)
    skipped: tuple[str, ...]  # files that could not be decoded, by their path in the folder

    def check(self, job: RankingJob, files: Mapping[str, Path]) -> None:
        _expect_files(["ranking.npz"], files)
        _expect(self.kept == min(job.top, self.probe_size), f"it keeps {self.kept} images per unit")


@dataclass(frozen=True)
class RankingJob(Job):
    """Every unit of a layer ranked over a folder of images, in one streamed pass
    (engine/ranking.py): what its examples (and an ablation's top images) read, so that a
    unit added to an article reads no image of the folder again."""

    kind: ClassVar[str] = "ranking"
    noun: ClassVar[str] = "layer"
    Result: ClassVar[type] = RankingResult
    one_pass: ClassVar[bool] = True

    layer: str
    dataset: Dataset
    top: int = RANKED
    resume: str = field(default="", compare=False, metadata=UNKEYED)  # a folder for checkpoints

    @property
    def address(self) -> str:
        return f"{self.layer} over {Path(self.dataset.source).name}"

    @property
    def cost(self) -> int:
        return self.dataset.count  # images read, for progress

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def batch_group(self) -> tuple:
        return (self.dataset, self.top)  # one pass per folder (engine/ranking.py)

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> RankingJob:
        return dataclasses.replace(self, resume=str(scratch))


@dataclass(frozen=True)
class Ranked:
    """One unit's images from a ranking, strongest (or weakest) first, as a job carries them."""

    images: tuple[int, ...]  # indices in the probe set
    values: tuple[float, ...]  # peak responses
    positions: tuple[int, ...]  # the peak's position in `grid`, row-major
    grid: tuple[int, int]
    probe_size: int


def ranked(job: Job, inputs: Mapping[str, Artifact], unit: int, top: int, negative: bool = False) -> Ranked:
    """Unit `unit`'s `top` images in the ranking `job.inputs()` holds, for `prepared`."""
    (ranking,) = job.inputs()
    artifact = inputs[ranking.key]
    result: RankingResult = artifact.result(ranking)
    end = "bottom" if negative else "top"
    arrays = _ranking_arrays(str(artifact.file("ranking.npz")))
    return Ranked(
        images=tuple(int(i) for i in arrays[f"{end}_images"][unit, :top]),
        values=tuple(float(v) for v in arrays[f"{end}_values"][unit, :top]),
        positions=tuple(int(p) for p in arrays[f"{end}_positions"][unit, :top]),
        grid=result.grid,
        probe_size=result.probe_size,
    )


@functools.lru_cache(maxsize=4)
def _ranking_arrays(path: str) -> dict:
    """A ranking's arrays, read once for the many units of its layer (an artifact never
    changes under its path)."""
    import numpy as np  # here: keying and planning jobs never needs it

    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


@dataclass(frozen=True)
class ExamplesJob(Job):
    """The dataset images that excite a unit most (or least), with the crop around its peak.
    Over a folder, the images are its layer's ranking's (`inputs`)."""

    kind: ClassVar[str] = "examples"
    noun: ClassVar[str] = "unit"
    Result: ClassVar[type] = ExamplesResult

    layer: str
    unit: int
    dataset: Dataset
    top: int = 8
    negative: bool = False
    ranked: Ranked | None = field(default=None, compare=False, metadata=UNKEYED)

    @property
    def address(self) -> str:
        return f"{self.layer}:{self.unit}"

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)

    def inputs(self) -> tuple[Job, ...]:
        return _ranking_of(self)

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> ExamplesJob:
        if not self.dataset.folder:
            return self
        return dataclasses.replace(self, ranked=ranked(self, inputs, self.unit, self.top, self.negative))


def _ranking_of(job) -> tuple[Job, ...]:
    """The ranking of `job.layer` over its folder (none for a generator's sample)."""
    if job.dataset is None or not job.dataset.folder:
        return ()
    top = max(RANKED, job.top)  # an ablation may ask for more than any figure shows (:top: 256)
    ranking = RankingJob(
        job.model, job.fingerprint, job.layer, job.dataset, top, dictionaries=job.dictionaries
    )
    return (ranking,)


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
    rule: str = field(default="", metadata=LATER)  # what chose `units`, when a rule did (figures/edgerule.py)


def relative_change(before: float, after: float) -> float:
    """(after − before) / |before|; ±inf when a silent unit starts responding."""
    if before == 0:
        return 0.0 if after == 0 else float("inf") * (1 if after > 0 else -1)
    return (after - before) / abs(before)


@dataclass(frozen=True)
class AblationResult:
    before: tuple[float, ...]  # the unit's peak response to each probe input
    after: tuple[float, ...]
    labels: tuple[int | float | str, ...]  # the inputs: image indices, swept values, "featurevis"
    mean_before: float
    mean_after: float

    @property
    def effect(self) -> float:
        """The relative change of the mean response (what a figure reports as −91 %)."""
        return relative_change(self.mean_before, self.mean_after)

    def check(self, job: AblationJob, files: Mapping[str, Path]) -> None:
        _expect(len(self.before) == len(self.after) == len(self.labels) > 0, "its columns differ in length")


@dataclass(frozen=True)
class ImageFile:
    """An image file an author names as a probe input: by its name in the articles folder (as
    written) and its content's sha256, so an edited file is a new job and a moved project is not."""

    name: str
    digest: str


def read_files(job) -> tuple[str, ...]:
    """The bytes of a job's image files (its unkeyed `paths`), base64, for `prepared`: a Ray
    worker reads no file of the project. ValueError when one changed since it was checked."""
    encoded = []
    for image, path in zip(job.files, job.paths, strict=True):
        data = Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != image.digest:
            raise ValueError(f"{image.name} changed while the build ran; build again")
        encoded.append(base64.b64encode(data).decode())
    return tuple(encoded)


def _probe_inputs(job) -> tuple[Job, ...]:
    """What an ablation's or attribution's probe reads: over a folder, its layer's ranking."""
    return _ranking_of(job) if job.probe == "examples" else ()


def _probe_prepared(job, inputs: Mapping[str, Artifact]):
    """An ablation or attribution as its engine receives it: with its image files' bytes, or
    the target's top images from the folder's ranking."""
    if job.files:
        return dataclasses.replace(job, pixels=read_files(job))
    if not job.inputs():
        return job
    return dataclasses.replace(job, ranked=ranked(job, inputs, job.unit, job.top))


@dataclass(frozen=True)
class AblationJob(Job):
    """A unit's activation before and after an edit of the network, on a probe: its top
    dataset examples, a stimulus sweep, its own feature visualization, or image files."""

    kind: ClassVar[str] = "ablation"
    noun: ClassVar[str] = "edit"
    Result: ClassVar[type] = AblationResult

    layer: str
    unit: int
    edits: tuple[Edit, ...]
    probe: Probe
    dataset: Dataset | None = None  # for "examples": the top `top` images of the unedited unit
    top: int = 16
    sweep: Sweep | None = None  # for "tuning"
    settings: FeatureVisSettings | None = None  # for "featurevis"
    ranked: Ranked | None = field(default=None, compare=False, metadata=UNKEYED)  # over a folder
    files: tuple[ImageFile, ...] = field(default=(), metadata=LATER)  # for "images"
    paths: tuple[str, ...] = field(default=(), compare=False, metadata=UNKEYED)  # the files, absolute
    pixels: tuple[str, ...] = field(default=(), repr=False, compare=False, metadata=UNKEYED)  # base64

    @property
    def address(self) -> str:
        return f"{self.layer}:{self.unit}"

    def inputs(self) -> tuple[Job, ...]:
        return _probe_inputs(self)

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> AblationJob:
        return _probe_prepared(self, inputs)

    @property
    def cost(self) -> int:
        return self.settings.steps if self.probe == "featurevis" and self.settings else 1

    @property
    def size(self) -> int | None:
        return self.settings.size if self.probe == "featurevis" and self.settings else None

    def layers(self) -> tuple[str, ...]:
        return (self.layer, *(name for edit in self.edits for name in (edit.source, edit.layer) if name))


@dataclass(frozen=True)
class AttributionStage:
    """One layer of an attribution's inputs and the units it draws: chosen by the author, or
    (None) the `per_layer` units that carry the most of the target's activation."""

    layer: str
    units: tuple[int, ...] | None = None


@dataclass(frozen=True)
class StageAttribution:
    """What carries the target through one layer, averaged over the inputs. A unit's
    attribution is the sum over its positions; the layer's attributions sum (for integrated
    gradients, within `error`) to `change`: the target's activation less its activation with
    this layer's output at the reference input's."""

    layer: str
    size: int  # the layer's units
    units: tuple[int, ...]  # the units drawn, strongest |attribution| first (or as chosen)
    values: tuple[float, ...]  # their attributions to the target
    per_input: tuple[tuple[float, ...], ...]  # the same on each input: [input][unit drawn]
    total: float  # the sum over every unit of the layer
    totals: tuple[float, ...]  # the same on each input
    change: float  # the target's activation change from the reference, through this layer
    error: float  # sum over inputs of |total - change|, over the sum of |change|
    ranking: tuple[int, ...]  # the layer's strongest units by |attribution| (at most RANKING)
    ranked: tuple[float, ...]  # their attributions
    # from each unit of the stage before into each of these units (rows: the earlier units):
    # the attribution of that unit's share of the target (() for the first stage)
    edges: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class AttributionResult:
    """The attribution of a unit's activation to earlier layers' units on some inputs. Its
    `attribution.npz` holds every number per input: `all_K` [inputs, units] for stage K,
    `edges_K`, `change_K` and `activation`; with `job.maps`, also `maps_K` [inputs, drawn
    units, h, w] and `target_map` (the last stage's maps summed over all its units)."""

    labels: tuple[int | float | str, ...]  # the inputs: probe indices, swept values, names
    images: tuple[str, ...]  # each input as the model saw it (PNG; none without `job.maps`)
    activation: tuple[float, ...]  # the target's activation (peak over positions) on each
    reference: float  # its mean activation on the reference input
    stages: tuple[StageAttribution, ...]  # earliest first, as the job's
    # per input: the target's map PNG, then each drawn unit's, stage by stage; and the largest
    # |attribution| at a position of each, at which its map is fully coloured
    maps: tuple[tuple[str, ...], ...]
    scales: tuple[tuple[float, ...], ...]

    def check(self, job: AttributionJob, files: Mapping[str, Path]) -> None:
        count = len(self.labels)
        pictures = count if job.maps else 0
        _expect(count > 0 and len(self.activation) == count, "its inputs differ")
        _expect(len(self.images) == len(self.maps) == len(self.scales) == pictures, "its maps differ")
        _expect(len(self.stages) == len(job.stages), f"it has {len(self.stages)} stages")
        drawn = sum(len(stage.units) for stage in self.stages)
        _expect(all(len(row) == 1 + drawn for row in (*self.maps, *self.scales)), "its maps have gaps")
        before: tuple[int, ...] = ()
        for stage, asked in zip(self.stages, job.stages, strict=True):
            _expect(stage.layer == asked.layer and asked.units in (None, stage.units), "its stages differ")
            _expect(
                len(stage.values) == len(stage.units) and len(stage.ranking) == len(stage.ranked),
                "a stage has gaps",
            )
            _expect(len(stage.per_input) == len(stage.totals) == count, "its stages differ in inputs")
            _expect(all(len(row) == len(stage.units) for row in stage.per_input), "a stage has gaps")
            edges = len(stage.edges) == len(before) and all(
                len(row) == len(stage.units) for row in stage.edges
            )
            _expect(edges, "its edges do not join its stages")
            before = stage.units
        _expect_files(["attribution.npz", *self.images, *(name for row in self.maps for name in row)], files)


RANKING = 32  # units of each stage whose attributions a result lists, strongest first


@dataclass(frozen=True)
class AttributionJob(Job):
    """What carries a unit's activation (its peak over positions) on some inputs: each stage
    layer's units ranked by their attribution to it (activation × gradient, or integrated
    gradients from a reference input along the path of the layer's activations), the edges
    between consecutive stages' drawn units, and where on each input the attribution lies."""

    kind: ClassVar[str] = "attribution"
    noun: ClassVar[str] = "unit"
    Result: ClassVar[type] = AttributionResult

    layer: str
    unit: int
    stages: tuple[AttributionStage, ...]  # earliest first
    per_layer: int  # units drawn of a stage the author did not choose
    method: Method
    steps: int  # integrated gradients' quadrature points (Gauss-Legendre)
    reference: Reference
    tolerance: float  # the completeness error a figure accepts (checked in its follow-up)
    probe: Probe
    dataset: Dataset | None = None  # for "examples": the target's `top` strongest images
    top: int = 8
    sweep: Sweep | None = None  # for "tuning"
    settings: FeatureVisSettings | None = None  # for "featurevis"
    files: tuple[ImageFile, ...] = ()  # for "images"
    maps: bool = True  # each input and its maps as PNGs (a unit page shows none)
    ranked: Ranked | None = field(default=None, compare=False, metadata=UNKEYED)
    paths: tuple[str, ...] = field(default=(), compare=False, metadata=UNKEYED)
    pixels: tuple[str, ...] = field(default=(), repr=False, compare=False, metadata=UNKEYED)

    @property
    def address(self) -> str:
        return f"{' -> '.join(stage.layer for stage in self.stages)} -> {self.layer}:{self.unit}"

    @property
    def cost(self) -> int:
        """Forward and backward passes per input: each stage's, and each drawn unit's edges."""
        steps = self.steps if self.method == "integrated" else 1
        edges = sum(len(s.units) if s.units else self.per_layer for s in self.stages[1:])
        image = self.settings.steps if self.probe == "featurevis" and self.settings else 0  # made first
        return image + steps * (len(self.stages) + edges)

    def layers(self) -> tuple[str, ...]:
        return (self.layer, *(stage.layer for stage in self.stages))

    def inputs(self) -> tuple[Job, ...]:
        return _probe_inputs(self)

    def prepared(self, inputs: Mapping[str, Artifact], scratch: Path) -> AttributionJob:
        return _probe_prepared(self, inputs)


@dataclass(frozen=True)
class UniversalityResult:
    """Per unit of the first layer: its partner in the other layer and their correlation, for
    the best and the one-to-one matching, and the baseline's; and the correlation of its peak
    responses with the probe images' ink density (mean darkness: the mean over pixels and
    channels of 1 − value; engine/universality.py `ink_density`). None where a unit is silent."""

    best_unit: tuple[int, ...]
    best_r: tuple[float | None, ...]
    baseline_best_r: tuple[float | None, ...]
    one_to_one_unit: tuple[int, ...]  # -1: left over by a matching into a smaller layer
    one_to_one_r: tuple[float | None, ...]
    baseline_one_to_one_r: tuple[float | None, ...]
    probe_size: int
    samples: Sampling
    ink_r: tuple[float | None, ...]  # each image's peak response against its ink density

    def check(self, job: UniversalityJob, files: Mapping[str, Path]) -> None:
        columns = (self.best_r, self.baseline_best_r, self.one_to_one_unit, self.one_to_one_r, self.ink_r)
        _expect(all(len(c) == len(self.best_unit) > 0 for c in columns), "its columns differ in length")


@dataclass(frozen=True)
class UniversalityJob(Job):
    """Correlations between the units of a layer in one model and a layer in another over a
    probe set, and the same against a baseline ("untrained": the second architecture with
    random weights; "shuffled": the second model on images in another order)."""

    kind: ClassVar[str] = "universality"
    noun: ClassVar[str] = "comparison"
    Result: ClassVar[type] = UniversalityResult
    # 1: the one-to-one matching; 2: positions subsampled on large layers; 3: each model sees the
    # probe at its own input size; 4: each unit's correlation with the probe's ink density
    revision: ClassVar[int] = 4

    layer: str
    other: str  # the second model's spec
    other_fingerprint: str
    other_layer: str
    dataset: Dataset
    baseline: Baseline = "untrained"
    baseline_model: str = ""  # spec of the untrained architecture, for "untrained"
    baseline_fingerprint: str = ""

    @property
    def address(self) -> str:
        return f"{self.layer} ~ {self.other}:{self.other_layer}"

    def layers(self) -> tuple[str, ...]:
        return (self.layer,)  # and `other_layer` of the other model (dictionaries.attach)


@dataclass(frozen=True)
class DictionarySettings:
    """How a dictionary is trained (front matter `dictionaries:`; source/dictionaries.py)."""

    features: int = 384
    k: int = 8  # active features per position (TopK)
    steps: int = 2000  # optimizer steps
    batch: int = 1024  # positions per step
    lr: float = 0.002
    seed: int = 0


@dataclass(frozen=True)
class DictionaryResult:
    """The training's measures, and the evidence the {dictionary} figure shows; the weights
    are the artifact's `dictionary.npz` (encoder [F, C], bias [F], center [C], decoder [F, C])."""

    fvu: float  # fraction of variance unexplained, over every position of the probe set
    mean_l0: float  # active features per position
    dead: int  # features active at no position
    samples: int  # positions trained on
    channels: int
    density: tuple[float, ...]  # per feature: the fraction of positions where it is active
    # Per neuron and per feature: the share of its top `top` probe images (by peak response)
    # in their most common class, and that class's index; () for a probe set without classes.
    neuron_purity: tuple[float, ...]
    neuron_class: tuple[int, ...]
    feature_purity: tuple[float, ...]
    feature_class: tuple[int, ...]
    classes: tuple[str, ...]
    top: int
    checksum: str  # sha256 of dictionary.npz

    def check(self, job: DictionaryJob, files: Mapping[str, Path]) -> None:
        _expect_files(["dictionary.npz"], files)
        features = job.settings.features
        _expect(len(self.density) == features, f"it has {len(self.density)} features")
        _expect(
            len(self.neuron_purity) == len(self.neuron_class) == (self.channels if self.classes else 0),
            "its neuron purity does not fit its channels",
        )
        _expect(
            len(self.feature_purity) == len(self.feature_class) == (features if self.classes else 0),
            "its feature purity does not fit its features",
        )
        _expect(
            all(0 <= c < len(self.classes) for c in (*self.neuron_class, *self.feature_class)),
            "it names a class the probe set does not have",
        )
        _expect(self.top >= 1 or not self.classes, f"its purity is over {self.top} images")


@dataclass(frozen=True)
class DictionaryJob(Job):
    """A TopK sparse autoencoder trained on one layer's activations at every position of a
    probe set (engine/dictionary.py)."""

    kind: ClassVar[str] = "dictionary"
    noun: ClassVar[str] = "layer"  # for progress: "dictionary of 2 layers"
    Result: ClassVar[type] = DictionaryResult
    revision: ClassVar[int] = 1  # 1: AuxK revives features silent for 20 steps, not 200

    layer: str
    dataset: Dataset
    settings: DictionarySettings = DictionarySettings()

    @property
    def address(self) -> str:
        return f"{self.layer} ({self.settings.features} features, k={self.settings.k})"

    @property
    def cost(self) -> int:
        return self.settings.steps


# -- results as JSON ------------------------------------------------------------------------


class ResultError(ValueError):
    """A stored result does not have its kind's fields and types (a damaged or foreign record)."""


def result_json(result) -> dict:
    """The result as a record's `result` field."""
    return asdict(result)


def read_result(job: Job, data: Any):
    """The typed result of `job` from a record's `result` field; ResultError if it does not fit."""
    return _read(job.Result, data, "result")


def _read(hint, data: Any, where: str):
    return _reader(hint)(data, where)


_SCALARS = {float: (int, float), int: (int,), str: (str,), bool: (bool,)}


@functools.cache
def _reader(hint) -> Callable[[Any, str], Any]:
    """A function reading `data` as `hint` (ResultError naming `where` otherwise), made once
    per type: a rebuild reads thousands of results, some with thousands of numbers."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    make: Callable[..., Any] = hint
    if is_dataclass(hint):
        hints = typing.get_type_hints(hint)  # slow: it evaluates annotations
        readers = [(f.name, _reader(hints[f.name])) for f in fields(hint)]

        def read_dataclass(data, where):
            if not isinstance(data, dict):
                raise ResultError(f"{where} is not a mapping")
            missing = [name for name, _ in readers if name not in data]
            if missing:
                raise ResultError(f"{where} lacks {', '.join(missing)}")
            return make(**{name: read(data[name], f"{where}.{name}") for name, read in readers})

        return read_dataclass
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item_reader = _reader(args[0])
        scalar = _SCALARS.get(args[0])

        def read_items(data, where):
            if not isinstance(data, list | tuple):
                raise ResultError(f"{where} is not a list")
            if scalar and all(type(item) in scalar for item in data):  # the common case, fast
                return tuple(map(args[0], data)) if args[0] is float else tuple(data)
            return tuple(item_reader(item, f"{where}[{i}]") for i, item in enumerate(data))

        return read_items
    if origin is tuple:
        item_readers = [_reader(arg) for arg in args]

        def read_fixed(data, where):
            if not isinstance(data, list | tuple):
                raise ResultError(f"{where} is not a list")
            if len(item_readers) != len(data):
                raise ResultError(f"{where} has {len(data)} items, not {len(item_readers)}")
            pairs = enumerate(zip(item_readers, data, strict=True))
            return tuple(read(item, f"{where}[{i}]") for i, (read, item) in pairs)

        return read_fixed
    if origin is Literal:

        def read_literal(data, where):
            if data in args and type(data) in (str, int, bool):
                return data
            raise ResultError(f"{where} is not one of {', '.join(map(repr, args))}: {data!r}"[:200])

        return read_literal
    if origin in (types.UnionType, typing.Union):
        options = [_reader(option) for option in args]

        def read_union(data, where):
            for read in options:
                try:
                    return read(data, where)
                except ResultError:
                    continue
            raise ResultError(f"{where} is not {hint}")

        return read_union

    def read_scalar(data, where):
        if hint is type(None) and data is None:
            return None
        if hint is float and isinstance(data, int | float) and not isinstance(data, bool):
            return float(data)
        if hint in (int, str, bool) and type(data) is hint:
            return data
        raise ResultError(f"{where} is not {getattr(hint, '__name__', hint)}: {data!r}"[:200])

    return read_scalar
