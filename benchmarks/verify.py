"""`distillgen verify` on the example site, and the example notebook's run time.

    .venv/bin/python benchmarks/verify.py [--sample 12] [--seed 0]

1. `distillgen verify articles --sample N --json` twice: with torch's default threads (as the
   cache was computed here), and with one thread (OMP_NUM_THREADS=1), whose sums round
   differently, as another machine's would: per kind, how many figures, the largest and the
   mean difference against its tolerance, and the wall time.
2. examples/explore.ipynb run headless (nbclient) in a fresh project: cold (computing every
   figure) and again from the cache it filled.

Needs the example site's cache (`make site` fills it) and the test extra (nbclient).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def verify(sample: int, seed: int, threads: int | None) -> tuple[float, dict]:
    env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
    command = [sys.executable, "-m", "distillgen", "verify", "articles", "--sample", str(sample)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--seed", str(seed), "--json", "-q", "--device", "cpu"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if not done.stdout.strip():
        sys.exit(done.stderr)
    return seconds, json.loads(done.stdout)


def by_kind(report: dict) -> None:
    kinds: dict[str, list[dict]] = {}
    for row in report["figures"]:
        kinds.setdefault(row["kind"], []).append(row)
    print(f"  {'kind':<13} {'n':>2}  {'max Δ':>9}  {'mean Δ':>9}  {'tolerance':>9}  verdicts")
    for kind, rows in sorted(kinds.items()):
        differences = [row["difference"] for row in rows if isinstance(row["difference"], float | int)]
        verdicts = ", ".join(sorted({row["verdict"] for row in rows}))
        largest = max(differences) if differences else float("nan")
        mean = statistics.mean(differences) if differences else float("nan")
        print(
            f"  {kind:<13} {len(rows):>2}  {largest:>9.3g}  {mean:>9.3g}  "
            f"{rows[0]['tolerance']:>9g}  {verdicts}"
        )
        for row in rows:
            if kind == "featurevis":
                print(
                    f"      {row['address']:<12} cached {row['cached']:.4g}  "
                    f"recomputed {row['recomputed']:.4g}"
                )


def swapped_images() -> list[float]:
    """For each channel feature visualization of the example site, the smallest featurevis
    measure any other cached image of its layer gets on its unit: how far below the tolerance
    a swapped image could hide."""
    import torch

    from distillgen.diagnostics import Reporter
    from distillgen.engine.featurevis import objective_values
    from distillgen.measures import relative_difference
    from distillgen.units import parse_spec
    from distillgen.verify import article_figures

    figures, catalog = article_figures(ROOT / "articles", Reporter(), log=lambda message: None)
    shown = [
        f for f in figures if f.kind == "featurevis" and f.job.objective == "channel" and not f.job.diversity
    ]
    closest = []
    for figure in shown:
        layer = [f for f in shown if f.job.layer == figure.job.layer and f.job.model == figure.job.model]
        if len(layer) < 2:
            continue
        pngs = [f.artifact.file("image0.png").read_bytes() for f in layer]
        model = catalog.load(parse_spec(figure.job.model))
        values = objective_values(model, figure.job, pngs, torch.device("cpu"))
        own = values[layer.index(figure)]
        closest.append(
            min(relative_difference(own, v) for f, v in zip(layer, values, strict=True) if f is not figure)
        )
    return closest


def notebook() -> tuple[float, float]:
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "articles").mkdir()
        shutil.copytree(ROOT / "examples", project / "examples")
        times = []
        for _ in range(2):  # cold, then from the cache the first run filled
            book = nbformat.read(project / "examples" / "explore.ipynb", as_version=4)
            start = time.perf_counter()
            NotebookClient(
                book, kernel_name="python3", resources={"metadata": {"path": str(project / "examples")}}
            ).execute()
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sample", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for threads, what in ((None, "torch's default threads, as cached"), (1, "one thread")):
        seconds, report = verify(args.sample, args.seed, threads)
        summary = report["summary"]
        print(
            f"verify --sample {args.sample} ({what}): {summary['verified']} of {summary['figures']} figures "
            f"in {seconds:.1f}s wall ({summary['seconds']:.1f}s in verify), ok: {report['ok']}"
        )
        by_kind(report)
    closest = sorted(swapped_images())
    print(
        f"another unit's image of the same layer, on {len(closest)} units: featurevis measure from "
        f"{closest[0]:.3f} (the most confusable pair) to {closest[-1]:.3f}, median "
        f"{statistics.median(closest):.3f}; {sum(c <= 0.2 for c in closest)} within the default 0.2"
    )
    cold, warm = notebook()
    print(f"examples/explore.ipynb headless: {cold:.1f}s cold (computing), {warm:.1f}s from the cache")


if __name__ == "__main__":
    main()
