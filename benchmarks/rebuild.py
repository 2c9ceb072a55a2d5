"""How long a build takes when nothing changed: the example site alone, and beside a
5,484-unit atlas of InceptionV1 (issue 32's goals: under 0.3 s inside `build` and 0.8 s for the
whole command on the example site; under 1 s inside `build` with the atlas).

The atlas is synthetic: its ~38,000 cache entries (for each unit of
`lucent:inceptionv1@untrained`'s mixed layers a feature visualization, a diversity set of 4,
the most and least exciting dataset example, the kernels into it, and the faithfulness
measures of its image) are written with small
but valid payloads (8x8 PNGs, 1x1 kernels), so that the cache and the site have the size of a
real atlas without days of computing; the first build renders its pages once. A last row
times what `distillgen serve` does after a one-line edit of one article (its quick build,
which trusts what its build before checked; the full build that follows once the author
pauses is not timed). Everything
happens in a scratch folder: a copy of the example site (with the atlas in its
distillgen.yml) and of its shipped cache.

    python benchmarks/rebuild.py                 # the example site, then with the atlas
    python benchmarks/rebuild.py --no-atlas      # the example site only
    python benchmarks/rebuild.py --profile 15    # and each case's top entries under cProfile
    python benchmarks/rebuild.py --serve         # and `distillgen serve`: saved -> reload asked
    python benchmarks/rebuild.py --layers mixed3a,mixed3b,mixed4a,mixed4b,mixed4c,mixed4d,mixed4e
                                                 # a smaller atlas: 3,628 units, ~28,000 entries

Each no-change build runs as an author runs it, `distillgen build` in a fresh process: "inside
s" is the seconds its summary gives (`distillgen.site.build`), "command s" the whole command's,
best of --repeat. The row "with no fork" is the same command with forked.py's look-ahead and
split turned off, each run beside one of the row above: what the forked child checking the
cache and the output saves. The edit rows time serve's quick build in this process.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from math import nan
from pathlib import Path

import numpy as np
from PIL import Image

from distillgen.cache import Cache
from distillgen.compute import Catalog, Options
from distillgen.diagnostics import Reporter
from distillgen.jobs import (
    Example,
    ExamplesJob,
    ExamplesResult,
    FaithfulnessJob,
    FaithfulnessResult,
    FeatureVisJob,
    FeatureVisResult,
    WeightsJob,
    WeightsResult,
    describe,
    result_json,
)
from distillgen.site import build
from distillgen.source.siteconfig import AtlasRequest
from distillgen.warm import Warm

ROOT = Path(__file__).resolve().parent.parent
ATLAS_MODEL = "lucent:inceptionv1@untrained"
ATLAS_LAYERS = (
    "mixed3a",
    "mixed3b",
    "mixed4a",
    "mixed4b",
    "mixed4c",
    "mixed4d",
    "mixed4e",
    "mixed5a",
    "mixed5b",
)


def atlas_yaml(layers: tuple[str, ...]) -> str:
    return f"""
atlas:
  - model: "{ATLAS_MODEL}"
    layers: [{", ".join(layers)}]
    featurevis: {{steps: 1, size: 32}}
    diversity: 4
    examples: 1
"""


def scratch_site(scratch: Path, layers: tuple[str, ...]) -> tuple[Path, Path, int]:
    """A copy of the example site and of its shipped figures (the cache's objects and models)."""
    src, cache = scratch / "articles", scratch / "cache"
    shutil.copytree(ROOT / "articles", src, ignore=shutil.ignore_patterns(".distillgen"))
    for part in ("objects", "models"):
        shutil.copytree(ROOT / "articles" / ".distillgen" / "cache" / part, cache / part)
    if layers:
        with (src / "distillgen.yml").open("a", encoding="utf-8") as config:
            config.write(atlas_yaml(layers))
        entries, units = synthetic_atlas(cache, layers)
        print(f"synthetic atlas: {units:,} units, {entries:,} cache entries written")
        return src, cache, units
    return src, cache, 0


def synthetic_atlas(cache_dir: Path, layers: tuple[str, ...]) -> tuple[int, int]:
    """Cache entries for every job the atlas plans, with small valid payloads: (entries, units)."""
    from distillgen.atlas import plan_atlas

    cache = Cache(cache_dir)
    request = AtlasRequest(
        ATLAS_MODEL, layers, {"steps": 1, "size": 32}, diversity=4, examples=1, base=cache_dir
    )
    atlas = plan_atlas(request, Catalog(cache), Reporter())
    rng = np.random.default_rng(0)
    written = set()
    for pages in atlas.pages.values():
        for page in pages:
            for job in page.jobs:
                if job.key in written:
                    continue
                written.add(job.key)
                files, result = _payload(job, atlas.info, rng)
                cache.put(job.key, files, {"job": describe(job), "result": result_json(result)})
    return len(written), sum(len(pages) for pages in atlas.pages.values())


def _png(rng) -> bytes:
    png = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(png, format="PNG")
    return png.getvalue()


def _payload(job, info, rng) -> tuple[dict[str, bytes], object]:
    if isinstance(job, FeatureVisJob):
        names = tuple(f"image{i}.png" for i in range(job.images))
        values = tuple(float(v) for v in rng.random(job.images))
        return {name: _png(rng) for name in names}, FeatureVisResult(values, names)
    if isinstance(job, ExamplesJob):
        example = Example(0, float(rng.random()), (0, 0, 8, 8), "example0.png", "crop0.png")
        files = {"example0.png": _png(rng), "crop0.png": _png(rng)}
        return files, ExamplesResult((example,), 64, 224, 8)
    if isinstance(job, FaithfulnessJob):
        result = FaithfulnessResult(
            units=info.layers[job.layer].channels,
            activation=(1.0,) * job.count,
            specificity=(1,) * job.count,
            natural_ratio=(0.5,) * job.count,
            strongest=2.0,
            strongest_image=0,
            path_layers=(),
            path=((),) * job.count,
            path_baseline=(),
            top=job.top,
            probe_size=job.dataset.count,
        )
        return {}, result
    assert isinstance(job, WeightsJob), job
    kernels = rng.standard_normal((info.layers[job.source].channels, 1, 1)).astype(np.float32)
    npy = io.BytesIO()
    np.save(npy, kernels)
    return {"kernels.npy": npy.getvalue()}, WeightsResult(kernels.shape, float(np.abs(kernels).max()))


def no_change(src: Path, out: Path, cache: Path, repeat: int) -> dict[bool, tuple[float, float]]:
    """Best of `repeat` runs of `distillgen build` in a fresh process, as an author runs it:
    the seconds its summary gives (inside `build`) and the whole command's; as forked.py looks
    ahead (True), and with no fork at all (False), each run beside one of the other."""
    best = {True: (float("inf"), float("inf")), False: (float("inf"), float("inf"))}
    no_fork = "from distillgen import forked; forked._pays = lambda seconds: False; "
    command = ["build", str(src), "-o", str(out), "--cache-dir", str(cache)]

    def run(code: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", code + "from distillgen.cli import run; run()", *command],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
            env=USER_ENVIRONMENT,
        )

    run("")  # what a build in this process left to a command's (its checked articles' keys)
    for _ in range(repeat):
        for forks in (True, False):
            start = time.perf_counter()
            done = run("" if forks else no_fork)
            whole = time.perf_counter() - start
            summary = re.search(r" in ([0-9.]+)s, (\d+) figure\(s\) \(0 computed\), 0 of", done.stderr)
            if summary is None:
                raise RuntimeError(f"not a no-change build: {done.stderr}")
            inside = float(summary[1])
            best[forks] = (min(best[forks][0], inside), min(best[forks][1], whole))
    return best


# As an author's shell runs it: Python keeps its compiled modules (a sandbox that sets
# PYTHONDONTWRITEBYTECODE compiles every module of distillgen on every start, ~0.3 s).
USER_ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def edit_one_article(src: Path, out: Path, cache: Path) -> tuple[int, int, float, float]:
    """A line added to one article, built in this process as `distillgen serve` builds it: a
    quick build told what serve's build before it checked (warm.py); then the full build serve
    runs once the author pauses. (pages, rendered, seconds of the quick build, nan), best of 3."""
    article = src / "reading-circuits.md"
    text = article.read_text(encoding="utf-8")
    warm = Warm()
    build(src, out, Reporter(), options=Options(in_place=True), cache_dir=cache, warm=warm)  # serve's first
    best, result = float("inf"), None
    for n in range(3):
        article.write_text(text + f"\nOne more line ({n}).\n", encoding="utf-8")
        start = time.perf_counter()
        result = build(
            src, out, Reporter(), options=Options(quick=True, in_place=True), cache_dir=cache, warm=warm
        )
        best = min(best, time.perf_counter() - start)
        build(src, out, Reporter(), options=Options(in_place=True), cache_dir=cache, warm=warm)  # once idle
    article.write_text(text, encoding="utf-8")
    return result.rendered + result.reused, result.rendered, best, nan


def serve_edit(src: Path, out: Path, cache: Path, edits: int = 3) -> float:
    """`distillgen serve` as an author meets it: seconds from saving a one-line edit of one
    article to the open page being told to reload (its long poll of the generation answered),
    best of `edits`, each after serve's full build of the edit before (idle meanwhile)."""
    article = src / "reading-circuits.md"
    text = article.read_text(encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "distillgen",
        "serve",
        str(src),
        "-o",
        str(out),
        "--cache-dir",
        str(cache),
    ]
    process = subprocess.Popen(
        [*command, "--port", "0"], stderr=subprocess.PIPE, text=True, env=USER_ENVIRONMENT
    )
    best = float("inf")
    try:
        url = _address(process)
        for n in range(edits):
            seen = _fetch(f"{url}__distillgen__/generation")
            time.sleep(12)  # serve's full build after the last edit, and then some
            heard: dict[str, str] = {}
            asked = f"{url}__distillgen__/generation?seen={seen}"
            listener = threading.Thread(target=_ask, args=(asked, heard), daemon=True)
            listener.start()
            time.sleep(0.5)
            start = time.perf_counter()
            article.write_text(text + f"\nOne more line, served ({n}).\n", encoding="utf-8")
            listener.join(timeout=120)
            if heard.get("at") in (None, seen):
                raise RuntimeError("serve did not rebuild after the edit")
            best = min(best, time.perf_counter() - start)
    finally:
        article.write_text(text, encoding="utf-8")
        process.terminate()
        process.wait(timeout=30)
    return best


def _address(process: subprocess.Popen) -> str:
    for line in process.stderr:
        if match := re.search(r"at (http://127\.0\.0\.1:\d+/)", line):
            threading.Thread(target=lambda: [None for _ in process.stderr], daemon=True).start()  # drained
            return match[1]
    raise RuntimeError("serve stopped before it served")


def _ask(url: str, answers: dict[str, str]) -> None:
    answers["at"] = _fetch(url)


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read().decode("utf-8")


def profile(src: Path, out: Path, cache: Path, top: int, edit: bool = False) -> str:
    """The top entries of a no-change build, or (`edit`) of a build after a one-line edit."""
    article = src / "reading-circuits.md"
    text = article.read_text(encoding="utf-8")
    if edit:
        article.write_text(text + "\nOne more line (profiled).\n", encoding="utf-8")
    warm = Warm()
    build(src, out, Reporter(), options=Options(in_place=edit), cache_dir=cache, warm=warm)
    profiler = cProfile.Profile()
    profiler.enable()
    build(src, out, Reporter(), options=Options(quick=edit, in_place=edit), cache_dir=cache, warm=warm)
    profiler.disable()
    article.write_text(text, encoding="utf-8")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return "\n".join(line for line in text.getvalue().splitlines() if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-atlas", action="store_true", help="the example site only")
    parser.add_argument(
        "--layers",
        default=",".join(ATLAS_LAYERS),
        help="the atlas's layers, comma-separated (default: the nine mixed layers, 5,484 units; "
        "mixed3a to mixed4e: 3,628 units, the ~25,000 cache entries issue 32 set its goal for)",
    )
    parser.add_argument("--repeat", type=int, default=5, help="no-change builds timed (best of)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N under cProfile")
    parser.add_argument("--serve", action="store_true", help="also time an edit in `distillgen serve`")
    args = parser.parse_args()
    layers = tuple(layer.strip() for layer in args.layers.split(",") if layer.strip())
    cases = [()] if args.no_atlas else [(), layers]
    rows = []
    for case in cases:
        with tempfile.TemporaryDirectory() as scratch:
            src, cache, units = scratch_site(Path(scratch), case)
            name = f"example site + {units:,}-unit atlas" if case else "example site"
            out = Path(scratch) / "build"
            start = time.perf_counter()
            first = build(src, out, Reporter(), cache_dir=cache)
            build(src, out, Reporter(), cache_dir=cache)  # what the first left to check once more
            print(
                f"{name}: first build {time.perf_counter() - start:.1f} s ({first.rendered} pages rendered)"
            )
            result = build(src, out, Reporter(), cache_dir=cache)  # its figures and pages
            times = no_change(src, out, cache, args.repeat)
            if args.profile:
                print(profile(src, out, cache, args.profile))
                print(f"{name}, after a one-line edit:")
                print(profile(src, out, cache, args.profile, edit=True))
            figures = result.computed + result.cached
            pages = result.rendered + result.reused
            rows.append((name, figures, pages, 0, *times[True]))
            rows.append(("  with no fork", figures, pages, 0, *times[False]))
            edit = edit_one_article(src, out, cache)
            rows.append(("  after a one-line edit", figures, *edit))
            if args.serve:
                rows.append(
                    (
                        "  saved -> reload asked, in serve",
                        figures,
                        *edit[:2],
                        serve_edit(src, out, cache),
                        nan,
                    )
                )
    header = f"{'no-change build':<34} {'figures':>8} {'pages':>6} {'rendered':>9} {'inside s':>9}"
    print(f"\n{header} {'command s':>10}")
    for name, figures, pages, rendered, seconds, whole in rows:
        inside_s = f"{seconds:>9.3f}" if seconds == seconds else f"{'-':>9}"  # nan: not measured
        command_s = f"{whole:>10.2f}" if whole == whole else f"{'-':>10}"
        print(f"{name:<34} {figures:>8,} {pages:>6,} {rendered:>9} {inside_s} {command_s}")


if __name__ == "__main__":
    main()
