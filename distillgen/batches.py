"""What travels between a build and whoever computes its jobs (executors.py; a Ray worker runs
engine/remote.py): a `Batch` of missing jobs of one model and kind, the `Shipment` a worker
rebuilds the model from, and the `Finished` outcome that comes back. Plain data, no torch."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distillgen.compute import Need
    from distillgen.jobs import Job


@dataclass
class Batch:
    """Missing jobs of one model and one kind, and where each was asked for."""

    spec: str
    kind: str
    needs: list[Need]

    @property
    def jobs(self) -> list[Job]:
        return [need.job for need in self.needs]

    @property
    def label(self) -> str:
        """'shapes: featurevis of 3 units (12 images)': for progress, logs and errors."""
        jobs = self.jobs
        images = sum(job.images for job in jobs)
        label = f"{self.spec}: {self.kind} of {len(jobs)} {jobs[0].noun}{'s' * (len(jobs) != 1)}"
        return label + (f" ({images} images)" if images != len(jobs) else "")


@dataclass
class Finished:
    """A batch (or a piece of one) computed, or the error an author should read."""

    batch: Batch | None  # None while it travels back from a Ray worker, which has no Needs
    outputs: list = field(default_factory=list)  # engine.Output per job, in the batch's order
    checksum: str = ""  # the model's weights checksum, for the provenance record
    device: str = ""  # describe_device() where it ran
    node: dict = field(default_factory=dict)  # which machine computed it
    seconds: float = 0.0  # wall time of the engine call
    error: str | None = None  # set: nothing was computed; reported at the batch's first need
    raised: str | None = None  # from a worker: "Type: message" of what the engine raised
    details: str = ""  # the traceback, for --verbose


@dataclass(frozen=True)
class Shipment:
    """What a worker needs to rebuild a model with no shared filesystem: the spec, and the
    bytes of the author's files (model.py, weights) when the spec names files."""

    spec: str
    files: dict[str, bytes] = field(default_factory=dict)  # role ("code", "weights") -> bytes

    @property
    def digest(self) -> str:
        """Names the worker's folder for these files: equal contents, one copy per worker."""
        sha = hashlib.sha256(self.spec.encode())
        for role in sorted(self.files):
            sha.update(role.encode() + hashlib.sha256(self.files[role]).digest())
        return sha.hexdigest()[:16]


def describe_exception(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
