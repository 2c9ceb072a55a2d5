"""The Ray executor against the in-process one: the same feature visualizations, this machine.

Both executors get the same batches (units of two layers of the shapes network, as a build
would hand them over) in this one process, through the interface `compute()` uses; the time is
from handing them over to the last output back, model loading included. Ray's runtime is a
fresh local one each time, so its workers start cold (import torch, load the model), as in a
build; starting the runtime itself is shown apart.

Ray's overhead is measured on equal resources: in-process on one torch thread against a
runtime of one CPU (one task at a time, one thread). Then the default of each: in-process on
torch's default threads, Ray with a one-thread task per core. Images must come out
byte-identical wherever the thread count is the same (oneDNN's sums depend on it).

    python benchmarks/executor.py                    # 2 x 8 units, 256 steps, 64 px
    python benchmarks/executor.py --steps 64         # shorter: Ray's fixed costs weigh more

Ray's fixed costs are a cold worker's start (spawn, import torch and lucent, load the model:
about 2 s here) and the runtime's (about 4 s, shown apart). On 2 loaded cores: 16 units at
256 steps, +3 % (22.0 s against 22.7 s); at 64 steps, +9 % to +42 % (6-7 s of work).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import torch

from distillgen.batches import Batch
from distillgen.cache import Cache
from distillgen.compute import Catalog, Need, Options
from distillgen.executors import InProcess, Ray
from distillgen.jobs import FeatureVisJob, FeatureVisSettings
from distillgen.units import fingerprint, parse_spec

LAYERS = ("mixed3", "mixed4")


def batches(units: int, steps: int, size: int) -> list[Batch]:
    spec = parse_spec("shapes")
    settings = FeatureVisSettings(steps=steps, size=size)
    here = Path(__file__)
    needs = [
        Need(FeatureVisJob(str(spec), fingerprint(spec), layer, unit, settings=settings), here, 1)
        for layer in LAYERS
        for unit in range(units)
    ]
    return [Batch(str(spec), "featurevis", needs)]


def images(finished: list) -> dict[str, bytes]:
    """Every PNG by job key and name: to check both executors made the same."""
    return {
        f"{need.job.key}/{name}": data
        for done in finished
        for need, output in zip(done.batch.needs, done.outputs, strict=True)
        for name, data in output.files.items()
    }


def run(executor, work: list[Batch]) -> tuple[float, float, dict[str, bytes]]:
    """(seconds to start, seconds to compute, images), from an empty cache."""
    with tempfile.TemporaryDirectory() as folder:
        catalog = Catalog(Cache(Path(folder)))
        start = time.perf_counter()
        try:
            executor.start("cpu")
            started = time.perf_counter()
            finished = list(executor.run(work, catalog, Options()))
            done = time.perf_counter()
        finally:
            executor.close()
    errors = [f.error for f in finished if f.error]
    if errors:
        raise SystemExit(f"computing failed: {errors[0]}")
    return started - start, done - started, images(finished)


def in_process(work: list[Batch], threads: int) -> tuple[float, dict[str, bytes]]:
    default = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _, seconds, made = run(InProcess(), work)
    finally:
        torch.set_num_threads(default)
    return seconds, made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=8, help="units per layer (two layers)")
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    work = batches(args.units, args.steps, args.size)
    cores = os.cpu_count() or 1
    threads = torch.get_num_threads()
    print(f"{len(work[0].needs)} feature visualizations ({args.steps} steps, {args.size} px), {cores} CPUs")
    print(f"load average {os.getloadavg()[0]:.1f} (other work on this machine slows threads most)")

    one_thread, reference = in_process(work, 1)
    print(f"in-process, 1 thread          {one_thread:7.2f} s")
    start, one_worker, remote = run(Ray(local_cpus=1), work)
    print(f"ray, 1 CPU (1 task at a time) {one_worker:7.2f} s  (+ {start:.2f} s to start)")
    print(f"  Ray's overhead              {one_worker / one_thread - 1:+7.1%}")
    print(f"  identical images            {remote == reference} ({len(reference)} PNGs)")

    default, _ = in_process(work, threads)
    print(f"in-process, {threads} threads         {default:7.2f} s")
    start, parallel, remote = run(Ray(local_cpus=cores), work)
    print(f"ray, {cores} CPUs ({cores} tasks at once) {parallel:7.2f} s  (+ {start:.2f} s to start)")
    print(f"  against in-process          {parallel / default - 1:+7.1%}")
    print(f"  identical images            {remote == reference} (to in-process, 1 thread)")


if __name__ == "__main__":
    main()
