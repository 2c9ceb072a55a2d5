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
    cold, warm = notebook()
    print(f"examples/explore.ipynb headless: {cold:.1f}s cold (computing), {warm:.1f}s from the cache")


if __name__ == "__main__":
    main()
