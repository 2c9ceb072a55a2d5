"""The worker side of the Ray executor (executors.Ray): one task = one piece of a batch.

A worker process keeps the models it loaded (tasks of one build mostly share a model), and
rebuilds an author's model from the bytes the driver shipped, in a folder of its own: workers
share no filesystem with the driver. What goes back is the engine's outputs (file bytes and
typed results), the model's checksum and where it ran; the driver writes the cache.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import tempfile
import time
import traceback
from contextlib import suppress
from pathlib import Path

import torch

from distillgen.batches import Finished, Shipment, describe_exception
from distillgen.engine import run_jobs
from distillgen.engine.device import describe_device
from distillgen.engine.models import LoadedModel, ModelError, ModelStore, load_model
from distillgen.units import ModelSpec, parse_spec

_models: dict[str, LoadedModel] = {}  # shipment digest -> model, for this worker's lifetime
_store = ModelStore()  # second models (universality's `other`) by spec


def run_task(shipment: Shipment, jobs: list, device: str, threads: int) -> Finished:
    """Compute `jobs` (one model, one kind) on `threads` CPU threads; errors come back as
    values, for the driver to report at the figure that asked (a raise would read as a
    crashed task)."""
    torch.set_num_threads(threads)
    node = _node()
    try:
        model = _model(shipment)
    except ModelError as exc:
        return Finished(None, node=node, error=str(exc))
    start = time.perf_counter()
    try:
        outputs = run_jobs(model, jobs, torch.device(device), lambda steps: None, _store.get)
    except Exception as exc:  # an author's model can raise anything in its forward pass
        return Finished(None, node=node, raised=describe_exception(exc), details=traceback.format_exc())
    seconds = time.perf_counter() - start
    return Finished(None, outputs, model.checksum, describe_device(torch.device(device)), node, seconds)


def _node() -> dict:
    """Which node computed it: Ray's node id, and the host and address it runs on."""
    import ray

    return {
        "id": ray.get_runtime_context().get_node_id(),
        "host": socket.gethostname(),
        "ip": ray.util.get_node_ip_address(),
    }


def _model(shipment: Shipment) -> LoadedModel:
    if shipment.digest not in _models:
        spec = _materialize(shipment) if shipment.files else parse_spec(shipment.spec)
        _models[shipment.digest] = load_model(spec)
    return _models[shipment.digest]


def _materialize(shipment: Shipment) -> ModelSpec:
    """Write the author's files into this node's temp folder, under their own names (the
    module's name comes from the file's); the spec that loads them from there. Folders of
    models no worker of this node wrote or took for a day are removed (`_prune`): each version
    of an author's weights would otherwise stay in the node's temp folder."""
    parsed = parse_spec(shipment.spec)
    root = Path(tempfile.gettempdir())
    folder = root / f"{MODEL_FOLDER}{shipment.digest}"
    names = {"code": Path(parsed.name).name, "weights": Path(parsed.weights or "").name}
    if "code" not in shipment.files:  # lucent's or torchvision's architecture, the author's weights
        names["weights"] = f"weights-{shipment.digest}{Path(names['weights']).suffix}"
    for attempt in (1, 2):
        folder.mkdir(exist_ok=True)
        os.utime(folder)  # in use: spared by every worker's `_prune`
        try:
            for role, data in shipment.files.items():
                target = folder / names[role]
                if not target.is_file():
                    staging = folder / f".{names[role]}.{os.getpid()}"
                    staging.write_bytes(data)
                    staging.replace(target)  # workers of one node may write the same file at once
            break
        except FileNotFoundError:  # pruned by another worker the moment before it was taken
            if attempt == 2:
                raise
    _prune(root, folder)
    weights = str(folder / names["weights"]) if "weights" in shipment.files else None
    if parsed.kind != "python":
        return dataclasses.replace(parsed, weights=weights)
    return ModelSpec("python", str(folder / names["code"]), parsed.factory, weights)


MODEL_FOLDER = "distillgen-model-"
MODEL_FOLDER_DAYS = 1  # a folder untouched this long is removed; it is written again if needed


def _prune(root: Path, keep: Path) -> None:
    """Remove the model folders of `root` untouched for MODEL_FOLDER_DAYS, but `keep`. A
    worker that loaded one keeps its model in memory."""
    stale = time.time() - MODEL_FOLDER_DAYS * 86400
    for folder in root.glob(f"{MODEL_FOLDER}*"):
        with suppress(OSError):
            if folder != keep and folder.stat().st_mtime < stale:
                shutil.rmtree(folder)
