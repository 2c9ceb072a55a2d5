"""Plan and compute: from the jobs the articles need to artifacts in the cache.

`Catalog` answers "what layers does this model have?" from the cache when it can, so planning
a fully cached site never imports torch. `compute()` looks every job up in the cache and has
the executor (executors.py: in-process, or Ray) run the engine only for the missing ones,
grouped by model and kind, with progress; `--frozen` turns a missing artifact into an error
instead. Whatever the executor, the cache is written here, with the provenance records.

Computing happens under the cache's lock (`<cache>/.lock`): a second build sharing the cache
waits (or, with --no-wait, fails), then looks its missing jobs up again, so nothing is computed
twice. Before computing, the work is estimated from the speeds measured on earlier builds (or
conservative defaults); work above `CONFIRM_SECONDS` needs --yes.
"""

from __future__ import annotations

import dataclasses
import datetime
import platform
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from distillgen import __version__
from distillgen.batches import Batch, Finished
from distillgen.cache import Artifact, Cache
from distillgen.diagnostics import Code, Reporter, describe_os_error
from distillgen.executors import Executor, ExecutorError, InProcess
from distillgen.jobs import Job, ResultError, describe, result_json
from distillgen.locks import Busy, held
from distillgen.units import ModelError, ModelInfo, ModelSpec, fingerprint, package_version

if TYPE_CHECKING:
    from distillgen.engine.models import ModelStore

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], None]]]


def no_progress(label: str, total: int) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda steps: None)


@dataclass
class Need:
    """A job and where it was asked for."""

    job: Job
    path: Path | None  # None: asked for on the command line (`distillgen atlas`)
    line: int | None


@dataclass
class Options:
    device: str = "auto"
    recompute: bool = False  # --no-cache
    frozen: bool = False  # --frozen
    # what an error says of a figure that `frozen` found missing: verify never computes either
    uncomputed: str = "--frozen forbids computing it"
    progress: Progress = no_progress
    log: Callable[[str], None] = lambda message: None  # --verbose
    echo: Callable[[str], None] = lambda message: None  # notes for the user (estimates, waiting)
    wait: bool = True  # for another build computing into the same cache; --no-wait fails instead
    confirmed: bool = True  # the CLI sets --yes here: work estimated above CONFIRM_SECONDS needs it
    executor: Executor = field(default_factory=InProcess)  # --executor: who runs the engine
    # `serve` after an edit: the last search index rather than waiting for Pagefind, which
    # indexes every page again (the build says so: `BuildResult.search_behind`), and what the
    # process's last build checked taken unchecked (warm.py); serve builds in full once the
    # author pauses
    quick: bool = False
    # `serve`: whether a newer edit waits; a full build stops for it at its next step, Pagefind
    # included (`Superseded`)
    superseded: Callable[[], bool] = lambda: False
    # `serve`: the files that changed are replaced in the output one by one (each whole), not
    # a new site swapped in; a stopped build may leave old and new files side by side, which a
    # preview can afford and `build` does not
    in_place: bool = False


class Catalog:
    """Model descriptions by spec: from the cache, else by loading the model once.

    `frozen` (--frozen) never loads an author's model file: loading runs its code."""

    def __init__(self, cache: Cache, frozen: bool = False) -> None:
        self.cache = cache
        self.frozen = frozen
        self._infos: dict[str, ModelInfo] = {}
        self._fingerprints: dict[ModelSpec, str] = {}
        self._store: ModelStore | None = None  # created when a model must be loaded (torch)

    def known(self, fingerprint: str) -> ModelInfo | None:
        """The description of a model this build already asked for, by its fingerprint."""
        return self._infos.get(fingerprint)

    def info(self, spec: ModelSpec) -> ModelInfo:
        """ModelError (or SpecError) with a message for the author when it cannot be had."""
        if spec not in self._fingerprints:  # hashing the weights file once per build
            self._fingerprints[spec] = fingerprint(spec)
        key = self._fingerprints[spec]
        if key not in self._infos:
            info = self.cache.model_info(key)
            if info is None:
                if self.frozen and spec.kind == "python":
                    raise ModelError(
                        f"the description of model '{spec}' is not in the cache, and --frozen does not "
                        "run model code; build once without --frozen to cache it"
                    )
                # The description as a later build reads it from the cache, not the loaded
                # model: what is planned with it (an atlas's plan, kept for later processes)
                # must not hold the module, whose unpickling imported torch into a no-change
                # build (1.2 s) and carried the weights along.
                info = ModelInfo.from_json(self.load(spec).to_json())
                # Storing it only saves loading the model next time; if a figure must be
                # computed, its write reports the cache's problem.
                with suppress(OSError):
                    self.cache.put_model_info(key, info)
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
    vouched = {} if options.recompute else cache.vouched  # serve's, taken as Cache.get takes them
    if not options.recompute:
        cache.preload(list(first))
    for key, need in first.items():
        if (artifact := vouched.get(key)) is not None:
            artifact.trusted = True  # an atlas has 40,000: a quick build looks each up
        else:
            artifact = _lookup(cache, need.job, options)
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
                f"{_what(need.job)} is not in the cache, and {options.uncomputed}",
                code=Code.UNCACHED,
            )
        return outcome
    if not missing:
        cache.save_index()
        return outcome
    try:
        with held(cache.root / ".lock", str(cache.root), wait=options.wait, echo=options.echo):
            cache.check_writable()
            _compute_missing(missing, outcome, cache, catalog, reporter, options)
            cache.save_index()
    except Busy as exc:
        reporter.error(cache.root, None, f"{exc} (or build without --no-wait, which waits)")
    except OSError as exc:
        reporter.error(
            cache.root,
            None,
            f"cannot write figures to the cache: {describe_os_error(exc)}; "
            "free some space, make the folder writable, or choose another --cache-dir",
        )
    return outcome


def _compute_missing(
    missing: list[Need],
    outcome: Outcome,
    cache: Cache,
    catalog: Catalog,
    reporter: Reporter,
    options: Options,
) -> None:
    """Compute what is still missing once the cache's lock is held: a build that held it
    before may have computed some of it."""
    missing = _still_missing(missing, outcome, cache, options)
    missing = _prepared(missing, outcome, cache, catalog, reporter, options)
    for finished, device_type in run(missing, cache, catalog, reporter, options):
        assert finished.batch is not None  # run() yields outcomes with their batch
        _store(finished.batch.jobs, finished, outcome, cache)
        _remember_speed(cache, finished.batch.jobs, device_type, finished.seconds)
        options.log(f"computed {finished.batch.label} in {finished.seconds:.1f}s")


def _prepared(
    missing: list[Need],
    outcome: Outcome,
    cache: Cache,
    catalog: Catalog,
    reporter: Reporter,
    options: Options,
) -> list[Need]:
    """The missing jobs as their engines receive them (`Job.prepared`), once the jobs they read
    (`Job.inputs`: a folder's ranking) are in the cache, computed here first if they are not.
    A job whose input could not be computed is left out: its input's error was reported."""
    inputs: dict[str, Need] = {}
    for need in missing:
        for job in need.job.inputs():
            inputs.setdefault(job.key, Need(job, need.path, need.line))
    computed = Outcome()
    if inputs:
        _compute_missing(list(inputs.values()), computed, cache, catalog, reporter, options)
        outcome.merge(computed)
    warned = set()
    for key, need in inputs.items():
        dataset = getattr(need.job, "dataset", None)
        if key in computed.artifacts and dataset not in warned:
            warned.add(dataset)  # one warning per folder, however many layers read it
            _warn_of_skipped(need, computed.artifacts[key], reporter)
    scratch = cache.root / "partial"
    ready = []
    for need in missing:
        if need.job.key in computed.artifacts:  # asked for too, and computed as an input
            continue
        if all(job.key in outcome.artifacts for job in need.job.inputs()):
            try:  # an author's image file is read here, for the engine (it may have changed)
                ready.append(Need(need.job.prepared(outcome.artifacts, scratch), need.path, need.line))
            except (OSError, ValueError) as exc:
                reporter.error(need.path, need.line, f"cannot read what {need.job.address} reads: {exc}")
    return ready


def _warn_of_skipped(need: Need, artifact: Artifact, reporter: Reporter) -> None:
    """One warning for the files a folder's pass could not decode (`RankingResult.skipped`)."""
    skipped = getattr(artifact.result(need.job), "skipped", ())
    if skipped:
        first = ", ".join(skipped[:3]) + (", …" if len(skipped) > 3 else "")
        reporter.warning(
            need.path,
            need.line,
            f"{len(skipped)} image file{'s' * (len(skipped) != 1)} in the probe folder could not be "
            f"decoded and {'were' if len(skipped) != 1 else 'was'} left out: {first}",
        )


def run(
    needs: list[Need], cache: Cache, catalog: Catalog, reporter: Reporter, options: Options
) -> Iterator[tuple[Finished, str]]:
    """Have the executor compute `needs` (batched per model and kind) after the estimate, and
    yield each finished batch with the device type it ran on; nothing is stored (the caller
    does that, or, like `distillgen verify`, only compares). An executor that cannot start, or
    a batch that failed, is an error at its first need."""
    if not needs:
        return
    executor = options.executor
    try:
        device_type = executor.start(options.device)
    except ExecutorError as exc:
        reporter.error(None, None, str(exc))
        return
    if not _work_is_confirmed(needs, cache, device_type, reporter, options):
        return
    batches = [Batch(spec, kind, group) for (spec, kind), group in _by_model(needs).items()]
    for finished in executor.run(batches, catalog, options):
        assert finished.batch is not None  # an executor gives each outcome its batch back
        if finished.error is not None:
            first = finished.batch.needs[0]
            reporter.error(first.path, first.line, finished.error)
            continue
        yield finished, device_type


def _store(jobs: list[Job], finished: Finished, outcome: Outcome, cache: Cache) -> None:
    """Write what an executor computed to the cache, each job with its provenance record."""
    for job, output in zip(jobs, finished.outputs, strict=True):
        record = {
            **_provenance(job, finished),
            "result": result_json(output.result),
            **output.record,
        }
        outcome.artifacts[job.key] = cache.put(job.key, output.files, record)
    outcome.computed += len(jobs)


def _still_missing(missing: list[Need], outcome: Outcome, cache: Cache, options: Options) -> list[Need]:
    still = []
    for need in missing:
        artifact = _lookup(cache, need.job, options)
        if artifact is None:
            still.append(need)
        else:
            outcome.artifacts[need.job.key] = artifact
            outcome.cached += 1
    return still


# -- estimates -------------------------------------------------------------------------------
# Work estimated above this needs --yes (checked once per compute round).
CONFIRM_SECONDS = 3600
# Seconds per unit of work (job.cost; an image-step at 64x64 px for feature visualization)
# until a build measured the model on this kind of device: about twice what the shapes
# network's cold example site took (83,712 image-steps in batches: 335 s on 2 CPU cores, 77 s
# on an H200, most of it feature visualization). Larger inputs scale by pixels.
DEFAULT_SECONDS = {"cpu": 0.008, "cuda": 0.002}
DEFAULT_JOB_SECONDS = {"cpu": 0.5, "cuda": 0.1}
_REFERENCE_PIXELS = 64 * 64
_MEASURE_AFTER_SECONDS = 5.0  # shorter runs are mostly start-up, and would overstate the cost


def _work(job) -> float:
    """The job's cost scaled by its image's pixels, in units of 64x64 px image-steps."""
    size = job.size
    return job.cost * (size * size / _REFERENCE_PIXELS if size else 1.0)


def _speed_key(kind: str, device_type: str) -> str:
    return f"{kind}@{device_type}"


def _seconds_per_unit(cache: Cache, job, device_type: str) -> float:
    measured = cache.speeds(job.fingerprint).get(_speed_key(job.kind, device_type))
    if measured:
        return measured
    defaults = DEFAULT_SECONDS if job.cost > 1 else DEFAULT_JOB_SECONDS
    return defaults.get(device_type, defaults["cpu"])


def estimate(jobs: list, cache: Cache, device_type: str) -> tuple[int, int, float]:
    """(image-steps, other jobs, seconds) for computing `jobs` on this kind of device."""
    image_steps = sum(job.cost for job in jobs if job.cost > 1)
    others = sum(1 for job in jobs if job.cost <= 1)
    seconds = sum(_work(job) * _seconds_per_unit(cache, job, device_type) for job in jobs)
    return image_steps, others, seconds


def _work_is_confirmed(
    missing: list[Need], cache: Cache, device_type: str, reporter: Reporter, options: Options
) -> bool:
    """Print the estimate; False (with an error) when it is above the limit without --yes."""
    image_steps, others, seconds = estimate([n.job for n in missing], cache, device_type)
    parts = [f"{image_steps:,} image-steps"] if image_steps else []
    parts += [f"{others:,} other figure{'s' * (others != 1)}"] if others else []
    summary = f"{' and '.join(parts)}, about {format_duration(seconds)} on {device_type}"
    options.echo(f"estimated compute: {summary}")
    if seconds <= CONFIRM_SECONDS or options.confirmed:
        return True
    first = missing[0]
    reporter.error(
        first.path,
        first.line,
        f"the figures to compute are estimated at {summary}, more than "
        f"{format_duration(CONFIRM_SECONDS)}; pass --yes to start anyway, or lower :steps:, "
        ":size: or the number of units",
    )
    return False


def _remember_speed(cache: Cache, jobs: list, device_type: str, seconds: float) -> None:
    """Store the measured speed for the next estimate (kept with the model's description): the
    fastest seen, since a batch's cost per image-step falls with its size, and a group of three
    units on a busy machine must not make the next build's hundreds look like hours."""
    work = sum(_work(job) for job in jobs)
    if seconds < _MEASURE_AFTER_SECONDS or work <= 0:
        return
    key = _speed_key(jobs[0].kind, device_type)
    known = cache.speeds(jobs[0].fingerprint).get(key)
    with suppress(OSError):  # the figures are stored; without a speed the next estimate is rougher
        cache.put_speed(jobs[0].fingerprint, key, min(seconds / work, known or float("inf")))


def format_duration(seconds: float) -> str:
    """'40 s', '3 min', '2.5 h', '4 days': a rough figure for estimates."""
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def _lookup(cache: Cache, job, options: Options) -> Artifact | None:
    """The job's cached artifact, or None: missing, --no-cache, or damaged. A damaged entry
    (its files intact, its result not fitting the job) is quarantined and computed again, so
    no figure ever reads it. An entry the cache's index vouches for was checked so before."""
    artifact = None if options.recompute else cache.get(job.key)
    if artifact is None or artifact.trusted:
        return artifact
    try:
        artifact.check(job)
    except (ResultError, OSError, ValueError) as exc:
        cache.quarantine(job.key, str(exc))
        return None
    cache.remember(artifact)
    return artifact


def _by_model(needs: list[Need]) -> dict[tuple[str, str], list[Need]]:
    groups: dict[tuple[str, str], list[Need]] = {}
    for need in needs:
        groups.setdefault((need.job.model, need.job.kind), []).append(need)
    return groups


def _what(job) -> str:
    return f"{job.kind} of {job.address} ({job.model}, key {job.key[:12]})"


def _provenance(job, finished: Finished) -> dict:
    return {
        "job": describe(job),
        "model": {"spec": job.model, "fingerprint": job.fingerprint, "checksum": finished.checksum},
        "device": finished.device,
        "node": finished.node,
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
