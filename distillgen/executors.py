"""Executors: who turns the missing jobs into engine outputs.

`compute()` plans (cache lookups, locks, estimates) and writes the cache; in between it hands
the missing jobs, grouped into `Batch`es (one model, one kind), to an executor and takes back a
`Finished` per piece of work (batches.py: what travels between the build and its workers).
Everything but that dispatch is shared:

- `InProcess` (the default) runs each batch here, one after another, with a progress bar per
  batch, in pieces of at most `PIECE_JOBS` jobs whose outputs compute.py stores as each
  piece finishes.
- `Ray` ships pieces of batches to a Ray cluster (a local runtime by default) as tasks, one
  progress bar for the whole round, fed as tasks complete. Workers need no shared filesystem:
  an author's model files travel through the object store, and outputs (file bytes and typed
  results) come back to the driver, which writes the cache as in-process runs do.

Neither torch nor ray is imported here at module level: the in-process executor imports the
engine when it runs, and `ray` is imported only by `Ray.start`.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from distillgen.batches import Batch, Finished, Shipment, describe_exception
from distillgen.units import ModelError, parse_spec

if TYPE_CHECKING:
    from distillgen.compute import Catalog, Need, Options

EXECUTORS = ("in-process", "ray")


class ExecutorError(Exception):
    """The executor cannot start (no device, no cluster, ray not installed): one message."""


class Executor(Protocol):
    name: str

    def start(self, device: str) -> str:
        """Get ready to compute on `device` (auto, cpu, cuda[:N]); the device type ('cpu' or
        'cuda') the estimate uses. ExecutorError when that is impossible."""
        ...

    def run(self, batches: list[Batch], catalog: Catalog, options: Options) -> Iterator[Finished]:
        """Compute the batches, yielding each result as it comes in."""
        ...

    def close(self) -> None:
        """Release what start() acquired; safe to call when it never started."""
        ...


# Jobs computed before their outputs go to the cache: what a build holds of an atlas's
# thousands of images and kernels is a piece's, never the whole batch's.
PIECE_JOBS = 512


def pieces(batch: Batch, most: int) -> list[Batch]:
    """The batch in pieces of at most `most` jobs, each within one batch group (the jobs an
    engine computes together), in the batch's order of groups."""
    found = []
    for needs in _groups(batch):
        size = len(needs) if needs[0].job.one_pass else most
        found += [
            Batch(batch.spec, batch.kind, needs[start : start + size]) for start in range(0, len(needs), size)
        ]
    return found


def _groups(batch: Batch) -> list[list[Need]]:
    groups: dict[tuple, list[Need]] = {}
    for need in batch.needs:
        groups.setdefault(need.job.batch_group(), []).append(need)
    return list(groups.values())


def local_node() -> dict:
    """The machine an in-process build runs on, for the provenance record."""
    return {"host": socket.gethostname()}


def failed(batch: Batch, raised: str) -> str:
    """The author's message for a batch whose engine raised `raised` ("Type: message")."""
    return f"computing {batch.label} failed: {raised} (--verbose shows the traceback)"


# -- in-process ------------------------------------------------------------------------------


class InProcess:
    """Each batch here, one after another, on this machine's device."""

    name = "in-process"

    def __init__(self) -> None:
        self._device: Any = None  # torch.device, from start()

    def start(self, device: str) -> str:
        from distillgen.engine.device import DeviceError, resolve_device

        try:
            self._device = resolve_device(device)
        except DeviceError as exc:
            raise ExecutorError(str(exc)) from None
        return self._device.type

    def run(self, batches: list[Batch], catalog: Catalog, options: Options) -> Iterator[Finished]:
        from distillgen.engine import run_jobs
        from distillgen.engine.device import describe_device

        device = self._device
        for batch in batches:
            try:
                model = catalog.load(parse_spec(batch.spec))
            except ModelError as exc:
                yield Finished(batch, error=str(exc))
                continue
            options.log(f"computing {batch.label} on {device}")
            with options.progress(batch.label, sum(job.cost for job in batch.jobs)) as advance:
                for piece in pieces(batch, PIECE_JOBS):
                    start = time.perf_counter()
                    try:
                        outputs = run_jobs(model, piece.jobs, device, advance, catalog.load)
                    except Exception as exc:  # an author's model can raise anything in its forward pass
                        options.log(traceback.format_exc())
                        yield Finished(piece, error=failed(batch, describe_exception(exc)))
                        break
                    seconds = time.perf_counter() - start
                    yield Finished(
                        piece, outputs, model.checksum, describe_device(device), local_node(), seconds
                    )

    def close(self) -> None:
        pass


# -- Ray -------------------------------------------------------------------------------------

# A local runtime on a small machine: no dashboard, a small object store (outputs are PNGs and
# small arrays; weights of the shipped models are under 1 MB), and workers' logs kept out of
# the build's output.
LOCAL_OBJECT_STORE = 200 * 1024**2
CONNECT_SECONDS = 5.0  # to tell an address nobody listens on from a slow cluster
MAX_RETRIES = 3  # a task whose worker process died is run again, on any node
# CPUs (and torch threads) per task on CPU. One: as many tasks as cores, each batch on one
# thread, which on small convolutions beats one batch on all threads; and a fixed thread count
# keeps a task's images the same on every node (oneDNN's sums depend on the thread count).
TASK_CPUS = 1


def shipment(spec: str) -> Shipment:
    """The shipped models (shapes, shapes@1, …) load by spec on any worker; lucent and
    torchvision models download their weights on each node; an author's model.py and weights
    file (a lucent or torchvision model's too) travel with the tasks. ModelError when a file
    cannot be read."""
    parsed = parse_spec(spec)
    paths = {"code": parsed.name} if parsed.kind == "python" else {}
    if parsed.weights:  # a state dict the author names, for model.py or lucent or torchvision
        paths["weights"] = parsed.weights
    if not paths:
        return Shipment(spec)
    try:
        return Shipment(spec, {role: Path(path).read_bytes() for role, path in paths.items()})
    except OSError as exc:
        problem = f"cannot read {exc.filename} to send it to the Ray workers: {exc.strerror}"
        raise ModelError(problem) from None


def split(batches: list[Batch], workers: int) -> list[Batch]:
    """Pieces of about equal cost, at least one per worker when there is enough work, each
    within one batch group (jobs the engine optimizes together), so batching still pays."""
    total = sum(job.cost for batch in batches for job in batch.jobs)
    target = max(1.0, total / max(1, workers))
    pieces: list[Batch] = []
    for batch in batches:
        for needs in _groups(batch):
            cost = sum(need.job.cost for need in needs)
            count = 1 if needs[0].job.one_pass else min(len(needs), math.ceil(cost / target))
            size = math.ceil(len(needs) / count)
            for start in range(0, len(needs), size):
                pieces.append(Batch(batch.spec, batch.kind, needs[start : start + size]))
    # Costly pieces first: the last task to start should be a short one.
    return sorted(pieces, key=lambda piece: -sum(job.cost for job in piece.jobs))


def _task(shipment: Shipment, jobs: list, device: str, threads: int) -> Finished:
    """Runs on a Ray worker (a reference to this function travels, not its code)."""
    from distillgen.engine.remote import run_task

    return run_task(shipment, jobs, device, threads)


class Ray:
    """Batches as Ray tasks on a local runtime or the cluster at `address`."""

    name = "ray"

    def __init__(self, address: str | None = None, local_cpus: int | None = None) -> None:
        self.address = address or None
        self.local_cpus = local_cpus or os.cpu_count() or 1
        self._ray: Any = None  # the ray module, once started
        self._device = "cpu"
        self._gpus = False

    def start(self, device: str) -> str:
        if self._ray is None:
            self._ray = self._connect()
        gpus = int(self._ray.cluster_resources().get("GPU", 0))
        if device.startswith("cuda") and not gpus:
            raise ExecutorError(f"device '{device}' was asked for but the Ray cluster has no GPU")
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise ExecutorError(f"unsupported device '{device}'; use auto, cpu, cuda or cuda:N")
        self._gpus = device.startswith("cuda") or (device == "auto" and gpus > 0)
        # Each task gets a GPU of its own from Ray, which it sees as cuda:0.
        self._device = "cuda" if self._gpus else "cpu"
        return self._device

    def _connect(self):
        try:
            import ray
        except ImportError:
            raise ExecutorError(
                "--executor ray needs Ray: install distillgen[ray] (pip install 'distillgen[ray]')"
            ) from None
        if self.address is None:
            ray.init(
                address="local",  # a new runtime, even where `ray start` runs one already
                num_cpus=self.local_cpus,
                include_dashboard=False,
                object_store_memory=LOCAL_OBJECT_STORE,
                log_to_driver=False,
                logging_level=logging.ERROR,  # the build says what matters itself
            )
            return ray
        if self.address != "auto":  # "auto": the cluster `ray start` runs on this machine
            _check_reachable(self.address)
        try:
            ray.init(address=self.address, log_to_driver=False, logging_level=logging.ERROR)
        except Exception as exc:  # ray raises ConnectionError, RuntimeError, … by version
            raise ExecutorError(f"cannot reach the Ray cluster at {self.address}: {exc}") from None
        return ray

    def workers(self) -> int:
        """How many tasks can run at once: the cluster's GPUs, or its CPUs over TASK_CPUS."""
        resources = self._ray.cluster_resources()
        if self._gpus:
            return max(1, int(resources.get("GPU", 1)))
        return max(1, int(resources.get("CPU", 1)) // TASK_CPUS)

    def run(self, batches: list[Batch], catalog: Catalog, options: Options) -> Iterator[Finished]:
        ray = self._ray
        remote = ray.remote(_task).options(
            num_cpus=0 if self._gpus else TASK_CPUS, num_gpus=1 if self._gpus else 0, max_retries=MAX_RETRIES
        )
        shipped: dict[str, object] = {}  # spec -> object ref of its Shipment, put once
        unshippable: set[str] = set()  # specs whose files could not be read (reported once)
        pending: dict[object, Batch] = {}  # task's object ref -> its piece
        for piece in split(batches, self.workers()):
            if piece.spec in unshippable:
                continue
            if piece.spec not in shipped:
                try:
                    shipped[piece.spec] = ray.put(shipment(piece.spec))
                except ModelError as exc:
                    unshippable.add(piece.spec)
                    yield Finished(piece, error=str(exc))
                    continue
            task = remote.remote(shipped[piece.spec], piece.jobs, self._device, TASK_CPUS)
            pending[task] = piece
        total = sum(len(piece.needs) for piece in pending.values())
        nodes = len([node for node in ray.nodes() if node.get("Alive")])
        options.log(f"computing {total} jobs as {len(pending)} Ray tasks on {nodes} node(s)")
        label = f"{total} figure job{'s' * (total != 1)} on Ray ({len(pending)} tasks)"
        try:
            with options.progress(label, total) as advance:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    piece = pending.pop(ready[0])
                    yield self._collect(ready[0], piece, options)
                    advance(len(piece.needs))
        finally:
            # Ctrl-C, or an error that ends the build: nothing is left computing for nobody.
            for ref in pending:
                ray.cancel(ref, force=True)

    def _collect(self, ref, piece: Batch, options: Options) -> Finished:
        try:
            finished = self._ray.get(ref)
        except Exception as exc:  # the worker died more than MAX_RETRIES times, or was cancelled
            options.log(f"Ray task for {piece.label} failed:\n{exc}")
            return Finished(piece, error=failed(piece, describe_exception(exc)))
        finished.batch = piece  # the driver's batch: its Needs carry path:line
        if finished.raised is not None:
            options.log(finished.details)
            finished.error = failed(piece, finished.raised)
        return finished

    def close(self) -> None:
        if self._ray is not None:
            self._ray.shutdown()
            self._ray = None


def _check_reachable(address: str) -> None:
    """Ray retries an address nobody listens on for minutes; a TCP connect says so at once."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_SECONDS):
            pass
    except ValueError:
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: not HOST:PORT") from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ExecutorError(f"cannot reach the Ray cluster at {address}: {reason}") from None


def executor(name: str, address: str | None = None) -> Executor:
    """The executor named on the command line (--executor, --ray-address)."""
    return Ray(address) if name == "ray" else InProcess()
