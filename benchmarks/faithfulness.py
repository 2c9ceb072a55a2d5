"""Faithfulness of feature visualizations (issue "faithful"): the measures on the example site,
their cost, verify's swap detection, and MACO against lucent's parameterization.

    .venv/bin/python benchmarks/faithfulness.py [--swaps] [--maco] [--inception]

1. The example site (its cache: `make site` fills it): per layer, each measure's distribution
   (specificity, natural ratio, path similarity against its baseline), and how many images
   would fail `:check: specific`.
2. `--swaps`: the site's shapes images computed again with one torch thread (other rounding,
   as another machine's), and their measures, timed in this process: the measures' cost as a
   share of the feature visualizations'. Then verify's featurevis measure
   (measures.profile_difference) on every pair of images of one layer and settings, swapped:
   how many swaps are reported at the kind's tolerance, and how many recomputations pass.
3. `--maco`: MACO (`:param: maco`) against lucent's parameterization on shapes, per layer:
   activation reached, specificity, natural ratio and path similarity (8 units a layer, 512
   steps); `--inception` adds InceptionV1 (untrained: its architecture and cost), 2 units of
   four layers from shallow to deep, 128 steps at 96 px, measured on 200 probe images.
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "articles" / ".distillgen" / "cache"


def records() -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(CACHE.glob("objects/*/*/record.json"))]


def site_measures() -> None:
    found = records()
    featurevis = {r["key"]: r for r in found if r["job"]["kind"] == "featurevis"}
    measured = [r for r in found if r["job"]["kind"] == "faithfulness"]
    by_layer: dict[str, list[dict]] = collections.defaultdict(list)
    for record in measured:
        by_layer[record["job"]["layer"]].append(record["result"])
    print(f"example site: {len(measured)} measured feature visualizations ({len(featurevis)} in the cache)")
    print(
        f"{'layer':<8} {'images':>6} {'specific':>9} {'spec. median':>12} {'ratio median':>12} "
        f"{'ratio > 1':>9} {'path median':>11} {'baseline':>8} {'path > base':>11}"
    )
    failing = total = 0
    for layer, results in sorted(by_layer.items()):
        specificity = [s for r in results for s in r["specificity"]]
        ratios = [x for r in results for x in r["natural_ratio"] if x is not None]
        paths = [sum(row) / len(row) for r in results for row in r["path"] if row]
        baselines = [sum(r["path_baseline"]) / len(r["path_baseline"]) for r in results if r["path_baseline"]]
        above = [
            sum(row) / len(row) > sum(r["path_baseline"]) / len(r["path_baseline"])
            for r in results
            for row in r["path"]
            if row
        ]
        failing += sum(s > 1 for s in specificity)
        total += len(specificity)
        print(
            f"{layer:<8} {len(specificity):>6} {sum(s == 1 for s in specificity):>9} "
            f"{statistics.median(specificity):>12.0f} {_median(ratios):>12.2f} "
            f"{sum(x > 1 for x in ratios):>9} {_median(paths):>11.2f} {_median(baselines):>8.2f} "
            f"{sum(above):>11}"
        )
    print(f"would fail ':check: specific': {failing} of {total} images")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "— (silent)"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def swaps() -> None:
    import base64
    import dataclasses

    import numpy as np
    import torch

    from distillgen.engine import faithfulness
    from distillgen.engine.featurevis import png_bytes, render
    from distillgen.engine.models import load_model
    from distillgen.faithful import default_probe
    from distillgen.jobs import FaithfulnessJob, FeatureVisJob, FeatureVisSettings
    from distillgen.kinds import KINDS
    from distillgen.measures import profile_difference

    torch.set_num_threads(1)  # other rounding than the cache's two threads
    tolerance = KINDS["featurevis"].tolerance
    model = load_model("shapes")
    groups: dict[tuple, list] = collections.defaultdict(list)
    for record in records():
        job = record["job"]
        if job["kind"] != "featurevis" or job["model"] != "shapes" or job["objective"] != "channel":
            continue
        if job.get("diversity") or job.get("dictionaries"):
            continue
        settings = FeatureVisSettings(**job["settings"])
        fv = FeatureVisJob("shapes", job["fingerprint"], job["layer"], job["unit"], settings=settings)
        image = (CACHE / "objects" / fv.key[:2] / fv.key / "image0.png").read_bytes()
        groups[(job["layer"], json.dumps(job["settings"], sort_keys=True))].append((fv, image))
    jobs = [fv for items in groups.values() for fv, _ in items]
    start = time.perf_counter()
    fresh = {
        fv.key: png_bytes(r.images[0])
        for fv, r in zip(jobs, render(model, jobs, torch.device("cpu")), strict=True)
    }
    featurevis_seconds = time.perf_counter() - start
    print(f"recomputed {len(jobs)} images with one thread in {featurevis_seconds:.0f} s")
    measures = [FaithfulnessJob.of(fv, default_probe()) for fv in jobs]
    measures = [dataclasses.replace(m, pngs=(base64.b64encode(fresh[m.image]).decode(),)) for m in measures]
    start = time.perf_counter()
    faithfulness.compute(model, measures, torch.device("cpu"), lambda n: None, None)
    measures_seconds = time.perf_counter() - start
    print(
        f"their measures (one probe pass per layer and settings, 1,000 images): {measures_seconds:.1f} s, "
        f"{100 * measures_seconds / featurevis_seconds:.1f} % of the feature visualizations' time"
    )
    same, caught, pairs, identical = [], 0, 0, 0
    for items in groups.values():
        job = items[0][0]
        cached = faithfulness.profiles(model, job, [png for _, png in items], default_probe(), "cpu")
        redone = faithfulness.profiles(model, job, [fresh[fv.key] for fv, _ in items], default_probe(), "cpu")
        for i, (fv, png) in enumerate(items):
            same.append(profile_difference(cached[i], redone[i], fv.unit))
            for j in range(i + 1, len(items)):
                if items[j][1] == png:
                    identical += 1  # two units with one picture (silent units): nothing to swap
                    continue
                pairs += 1
                a = profile_difference(cached[j], redone[i], fv.unit)  # i's entry holds j's image
                b = profile_difference(cached[i], redone[j], items[j][0].unit)
                caught += max(a, b) > tolerance
    same_arr = np.array(same)
    print(
        f"verify's featurevis measure at tolerance {tolerance}: swapped pairs reported {caught} of {pairs} "
        f"({100 * caught / pairs:.1f} %; {identical} pairs of identical images left out); "
        f"recomputations passing {int((same_arr <= tolerance).sum())} of {len(same)} "
        f"(largest difference {same_arr.max():.3f}, median {np.median(same_arr):.3f})"
    )


def maco_against_lucent(
    spec: str, layers: list[str], units: int, steps: int, size: int, probe_count: int
) -> None:
    import base64
    import dataclasses
    import io

    import numpy as np
    import torch

    from distillgen import datasets
    from distillgen.engine import faithfulness, maco
    from distillgen.engine.featurevis import render
    from distillgen.engine.models import load_model
    from distillgen.faithful import default_probe
    from distillgen.jobs import FaithfulnessJob, FeatureVisJob, FeatureVisSettings

    model = load_model(spec)
    probe = dataclasses.replace(default_probe(), count=probe_count)
    buffer = io.BytesIO()
    np.save(buffer, maco.spectrum(datasets.images(probe, size), size))
    carried = base64.b64encode(buffer.getvalue()).decode()
    print(
        f"\n{spec}: MACO against lucent, {units} units a layer, {steps} steps at {size} px, "
        f"{probe_count} probe images"
    )
    print(
        f"{'layer':<12} {'param':<7} {'activation':>10} {'maco/lucent':>11} {'specific':>8} {'ratio':>6} "
        f"{'path':>6} {'base':>6} {'s/step':>7}"
    )
    for layer in layers:
        path = faithfulness.path_layers(model, layer)
        passed = faithfulness.probe_pass(model, layer, path, probe, False, torch.device("cpu"))
        reached = {}
        for param in ("lucent", "maco"):
            settings = FeatureVisSettings(steps=steps, size=size, param=param)
            jobs = [
                FeatureVisJob(
                    spec,
                    "f",
                    layer,
                    u,
                    settings=settings,
                    spectrum=probe if param == "maco" else None,
                    magnitude=carried,
                )
                for u in range(units)
            ]
            start = time.perf_counter()
            rendered = render(model, jobs, torch.device("cpu"))
            seconds = (time.perf_counter() - start) / steps
            results = []
            for job, r in zip(jobs, rendered, strict=True):
                pixels = np.stack([img.transpose(2, 0, 1).astype(np.float32) / 255 for img in r.images])
                results.append(
                    faithfulness.measure(model, FaithfulnessJob.of(job, probe), passed, path, pixels, "cpu")
                )
            values = [r.values[0] for r in rendered]
            reached[param] = statistics.mean(values)
            ratio = "" if param == "lucent" else _ratio(reached["maco"], reached["lucent"])
            paths = [x.path_similarity(0) for x in results if x.path_similarity(0) is not None]
            bases = [x.baseline for x in results if x.baseline is not None]
            ratios = [x.natural_ratio[0] for x in results if x.natural_ratio[0] is not None]
            print(
                f"{layer:<12} {param:<7} {reached[param]:>10.3f} {ratio:>11} "
                f"{sum(x.specificity[0] == 1 for x in results):>4}/{units:<3} {_median(ratios):>6.2f} "
                f"{_median(paths):>6.2f} {_median(bases):>6.2f} {seconds:>7.3f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--swaps", action="store_true", help="verify's swap detection (recomputes ~84 images)"
    )
    parser.add_argument("--maco", action="store_true", help="MACO against lucent on shapes")
    parser.add_argument("--inception", action="store_true", help="and on InceptionV1 (untrained)")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    site_measures()
    if args.swaps:
        swaps()
    if args.maco:
        maco_against_lucent("shapes", ["conv2", "mixed3", "mixed4"], 8, 512, 64, 1000)
    if args.inception:
        maco_against_lucent(
            "lucent:inceptionv1@untrained", ["conv2d2", "mixed3b", "mixed4b", "mixed5b"], 2, 128, 96, 200
        )


if __name__ == "__main__":
    main()
