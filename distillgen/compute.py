"""Plan and compute: from the jobs the articles need to artifacts in the cache.

`Catalog` answers "what layers does this model have?" from the cache when it can, so planning
a fully cached site never imports torch. `compute()` looks every job up in the cache and runs
the engine only for the missing ones, one model at a time, with progress; `--frozen` turns a
missing artifact into an error instead.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from distillgen import __version__
from distillgen.cache import Artifact, Cache
from distillgen.diagnostics import Reporter
from distillgen.jobs import describe
from distillgen.units import ModelError, ModelInfo, ModelSpec, fingerprint, package_version, parse_spec

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


def no_progress(label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda steps: None)


@dataclass
class Need:
    """A job and where it was asked for."""

    job: object
    path: Path
    line: int


@dataclass
class Options:
    device: str = "auto"
    recompute: bool = False  # --no-cache
    frozen: bool = False  # --frozen
    progress: Progress = no_progress
    log: Callable[[str], None] = lambda message: None


class Catalog:
    """Model descriptions by spec: from the cache, else by loading the model once.

    `frozen` (--frozen) never loads an author's model file: loading runs its code."""

    def __init__(self, cache: Cache, frozen: bool = False) -> None:
        self.cache = cache
        self.frozen = frozen
        self._infos: dict[str, ModelInfo] = {}
        self._store = None  # engine.models.ModelStore, created when a model must be loaded

    def info(self, spec: ModelSpec) -> ModelInfo:
        """ModelError (or SpecError) with a message for the author when it cannot be had."""
        key = fingerprint(spec)
        if key not in self._infos:
            info = self.cache.model_info(key)
            if info is None:
                if self.frozen and spec.kind == "python":
                    raise ModelError(
                        f"the description of model '{spec}' is not in the cache, and --frozen does not "
                        "run model code; build once without --frozen to cache it"
                    )
                info = self.load(spec)
                self.cache.put_model_info(key, info)
            # Hashing the weights file once per build, not once per unit that names the model.
            self._infos[key] = dataclasses.replace(info, fingerprint=key)
        return self._infos[key]

    def load(self, spec: ModelSpec):
        """The engine's LoadedModel (imports torch)."""
        if self._store is None:
            from distillgen.engine.models import ModelStore

            self._store = ModelStore()
        return self._store.get(spec)


@dataclass
class Outcome:
    artifacts: dict[str, Artifact] = field(default_factory=dict)  # job key -> artifact
    computed: int = 0
    cached: int = 0

    def merge(self, other: Outcome) -> None:
        self.artifacts.update(other.artifacts)
        self.computed += other.computed
        self.cached += other.cached


def compute(
    needs: list[Need], cache: Cache, catalog: Catalog, reporter: Reporter, options: Options
) -> Outcome:
    """An artifact for every job; errors (with the path:line that asked) go to `reporter`."""
    outcome = Outcome()
    first: dict[str, Need] = {}
    for need in needs:
        first.setdefault(need.job.key, need)
    missing: list[Need] = []
    for key, need in first.items():
        artifact = None if options.recompute else cache.get(key)
        if artifact is None:
            missing.append(need)
        else:
            outcome.artifacts[key] = artifact
            outcome.cached += 1
    if missing and options.frozen:
        for need in missing:
            reporter.error(
                need.path,
                need.line,
                f"{_what(need.job)} is not in the cache, and --frozen forbids computing it",
            )
        return outcome
    if not missing:
        return outcome

    from distillgen.engine import run_jobs
    from distillgen.engine.device import DeviceError, resolve_device

    try:
        device = resolve_device(options.device)
    except DeviceError as exc:
        reporter.error(None, None, str(exc))
        return outcome
    for (model_spec, kind), group in _by_model(missing).items():
        try:
            model = catalog.load(parse_spec(model_spec))
        except ModelError as exc:
            reporter.error(group[0].path, group[0].line, str(exc))
            continue
        jobs = [need.job for need in group]
        images = sum(getattr(job, "images", 1) for job in jobs)
        label = f"{model_spec}: {kind} of {len(jobs)} {jobs[0].noun}{'s' * (len(jobs) != 1)}"
        label += f" ({images} images)" if images != len(jobs) else ""
        options.log(f"computing {label} on {device}")
        total = sum(job.cost for job in jobs)
        start = time.perf_counter()
        try:
            with options.progress(label, total) as advance:
                outputs = run_jobs(model, jobs, device, advance, catalog.load)
        except Exception as exc:  # an author's model can raise anything in its forward pass
            options.log(traceback.format_exc())
            reporter.error(
                group[0].path,
                group[0].line,
                f"computing {label} failed: {type(exc).__name__}: {exc} (--verbose shows the traceback)",
            )
            continue
        seconds = time.perf_counter() - start
        for job, output in zip(jobs, outputs, strict=True):
            record = {**_provenance(job, model, device), **output.record}
            outcome.artifacts[job.key] = cache.put(job.key, output.files, record)
        outcome.computed += len(jobs)
        options.log(f"computed {label} in {seconds:.1f}s")
    return outcome


def _by_model(needs: list[Need]) -> dict[tuple[str, str], list[Need]]:
    groups: dict[tuple[str, str], list[Need]] = {}
    for need in needs:
        groups.setdefault((need.job.model, need.job.kind), []).append(need)
    return groups


def _what(job) -> str:
    return f"{job.kind} of {job.address} ({job.model}, key {job.key[:12]})"


def _provenance(job, model, device) -> dict:
    from distillgen.engine.device import describe_device

    return {
        "job": describe(job),
        "model": {"spec": job.model, "fingerprint": job.fingerprint, "checksum": model.checksum},
        "device": describe_device(device),
        "versions": {
            "distillgen": __version__,
            "python": platform.python_version(),
            **{name: package_version(name) for name in ("torch", "torchvision", "torch-lucent")},
        },
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def records(keys: Iterator[str] | list[str], artifacts: dict[str, Artifact]) -> list[dict]:
    """Provenance records in the order given, each once: an article's figures.json."""
    seen: dict[str, dict] = {}
    for key in keys:
        if key in artifacts and key not in seen:
            seen[key] = artifacts[key].record
    return list(seen.values())
