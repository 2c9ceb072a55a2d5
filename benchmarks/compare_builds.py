"""Compare a GPU build of a site with a CPU build, figure by figure.

    python benchmarks/compare_builds.py CPU_BUILD_DIR GPU_FIGURES [--cpu-cache DIR] [--tolerance 0.1]

CPU_BUILD_DIR is a built site (`<article>/figures.json` inside). GPU_FIGURES is the
gpu-figures.tar.gz that benchmarks/gpu.py writes (figures/<article>/figures.json and
cache-records/<key>.json), or a folder laid out like either a build or that archive.

For each article: the same job keys on both sides? Then, record by record: a feature
visualization's objective values (the final activation of each image), GPU against CPU,
relative to the CPU's; every other kind's numeric results, each field's largest difference
relative to the field's largest CPU magnitude, and its other fields (file names, example
indices) equal or not. With --cpu-cache (the CPU build's cache folder: articles/.distillgen/cache
unless the build was given --cache-dir) the GPU's cache records are compared too: every artifact
of the build, the unit pages' diversity sets and weights included. Build the CPU side cold
(an empty cache, or --no-cache) with the same distillgen commit, or the keys will differ.

Exit status: 0 when every article has the same keys on both sides, 1 when not, 2 with
--strict when some value is outside the tolerance.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import statistics
import sys
import tarfile
from pathlib import Path


def record_key(record: dict) -> str:
    """The cache key the record carries, else a hash of its job's fields (same job, same hash)."""
    if record.get("key"):
        return record["key"]
    canonical = json.dumps(record.get("job", record), sort_keys=True, separators=(",", ":"))
    return "job:" + hashlib.sha256(canonical.encode()).hexdigest()


def load_side(path: Path) -> tuple[dict[str, list[dict]], dict[str, dict]]:
    """({article: [records]}, {key: cache record}) from a build folder, a folder laid out like
    gpu.py's archive, or the archive itself."""
    articles: dict[str, list[dict]] = {}
    cache: dict[str, dict] = {}
    if path.is_file():
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                parts = Path(member.name).parts
                data = json.load(io.TextIOWrapper(tar.extractfile(member), encoding="utf-8"))
                if parts[-1] == "figures.json":
                    articles[parts[-2]] = data["figures"]
                elif parts[0] == "cache-records":
                    cache[Path(member.name).stem] = data
        return articles, cache
    for figures in sorted([*path.glob("*/figures.json"), *path.glob("figures/*/figures.json")]):
        articles[figures.parent.name] = json.loads(figures.read_text())["figures"]
    for record in sorted(path.glob("cache-records/*.json")):
        cache[record.stem] = json.loads(record.read_text())
    return articles, cache


def load_cache(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.glob("objects/*/*/record.json"))}


def numbers(value, path: str = "") -> dict[str, float]:
    """Every numeric leaf of a result, by its path (`responses[3][1]`)."""
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, int | float):
        return {path: float(value)}
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in numbers(item, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in numbers(item, f"{path}[{i}]").items()}
    return {}


def others(value, path: str = "") -> dict[str, object]:
    """Every non-numeric leaf (file names, labels), by path."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in others(item, f"{path}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in others(item, f"{path}[{i}]").items()}
    if isinstance(value, bool) or not isinstance(value, int | float):
        return {path: value}
    return {}


INDEX_FIELDS = ("index", "best_unit", "one_to_one_unit", "box")  # integers that name things


def compare_result(cpu: dict, gpu: dict) -> dict:
    """Largest difference per top-level field, relative to that field's largest CPU magnitude."""
    fields, worst, worst_field, unequal = {}, 0.0, None, []
    for field in sorted(set(cpu) | set(gpu)):
        a, b = numbers(cpu.get(field), field), numbers(gpu.get(field), field)
        named = {k for k in a if any(f"{name}" in k.rsplit(".", 1)[-1] for name in INDEX_FIELDS)}
        for k in named:
            if a.get(k) != b.get(k):
                unequal.append(k)
        a = {k: v for k, v in a.items() if k not in named}
        if a.keys() != {k for k in b if k not in named}:
            unequal.append(f"{field} (different shape)")
            continue
        if not a:
            continue
        scale = max(abs(v) for v in a.values()) or 1.0
        difference = max(abs(b[k] - a[k]) for k in a) / scale
        fields[field] = difference
        if difference > worst:
            worst, worst_field = difference, field
    text_cpu, text_gpu = others(cpu), others(gpu)
    unequal += [k for k in text_cpu if text_cpu[k] != text_gpu.get(k)]
    return {"worst": worst, "worst_field": worst_field, "fields": fields, "unequal": unequal}


def featurevis_row(article: str, cpu: dict, gpu: dict, tolerance: float, atol: float) -> dict:
    job = cpu["job"]
    a, b = cpu["result"]["values"], gpu["result"]["values"]
    relative = [abs(y - x) / max(abs(x), 1e-6) for x, y in zip(a, b, strict=False)]
    address = (
        f"{job['layer']}:{job['unit']}" if job.get("objective") != "direction" else f"{job['layer']}:dir"
    )
    return {
        "article": article,
        "model": job["model"],
        "address": address,
        "objective": job.get("objective", "channel"),
        "images": len(a),
        "steps": job["settings"]["steps"],
        "cpu": a,
        "gpu": b,
        "max_rel_diff": max(relative) if relative else 0.0,
        "max_abs_diff": max((abs(y - x) for x, y in zip(a, b, strict=False)), default=0.0),
        "close": len(a) == len(b)
        and all(abs(y - x) <= atol + tolerance * abs(x) for x, y in zip(a, b, strict=False)),
        "gpu_lower": sum(y < x for x, y in zip(a, b, strict=False)),
    }


def compare_records(
    pairs: list[tuple[str, dict, dict]], tolerance: float, atol: float
) -> tuple[list[dict], list[dict]]:
    """(featurevis rows, rows of other kinds) for matched (article, cpu, gpu) records."""
    visual, other = [], []
    for article, cpu, gpu in pairs:
        kind = cpu.get("job", {}).get("kind", "?")
        if kind == "featurevis":
            visual.append(featurevis_row(article, cpu, gpu, tolerance, atol))
            continue
        compared = compare_result(cpu.get("result", {}), gpu.get("result", {}))
        job = cpu.get("job", {})
        address = job.get("layer", "")
        if "unit" in job:
            address += f":{job['unit']}"
        elif "units" in job:
            address += ":" + ",".join(map(str, job["units"]))
        other.append(
            {
                "article": article,
                "kind": kind,
                "address": address,
                "max_rel_diff": compared["worst"],
                "close": compared["worst"] <= tolerance,
                "worst_field": compared["worst_field"],
                "unequal": compared["unequal"],
            }
        )
    return visual, other


def summary(visual: list[dict], other: list[dict]) -> list[dict]:
    rows = []
    by_kind: dict[str, list[dict]] = {"featurevis": visual}
    for row in other:
        by_kind.setdefault(row["kind"], []).append(row)
    for kind, items in by_kind.items():
        if not items:
            continue
        diffs = [r["max_rel_diff"] for r in items]
        rows.append(
            {
                "kind": kind,
                "records": len(items),
                "within": sum(r["close"] for r in items),
                "median": statistics.median(diffs),
                "max": max(diffs),
                "unequal": sum(bool(r.get("unequal")) for r in items),
            }
        )
    return rows


def print_table(rows: list[dict], columns: list[tuple[str, str]]) -> None:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        if isinstance(value, list):
            return " ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        return str(value)

    print("| " + " | ".join(h for _, h in columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(cell(row.get(k, "")) for k, _ in columns) + " |")
    print()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cpu", type=Path, help="the CPU build folder (build/)")
    parser.add_argument("gpu", type=Path, help="gpu-figures.tar.gz, or a folder")
    parser.add_argument(
        "--cpu-cache", type=Path, help="the CPU build's cache folder, to compare every artifact"
    )
    parser.add_argument("--tolerance", type=float, default=0.1, help="relative difference counted as close")
    parser.add_argument(
        "--atol", type=float, default=1e-3, help="a featurevis value is close within atol + tolerance × |CPU|"
    )
    parser.add_argument("--json", type=Path, help="also write the comparison here")
    parser.add_argument("--strict", action="store_true", help="exit 2 when a value is outside the tolerance")
    parser.add_argument("--all", action="store_true", help="list every record, not only those outside")
    args = parser.parse_args()

    cpu_articles, _ = load_side(args.cpu)
    gpu_articles, gpu_cache = load_side(args.gpu)
    if not cpu_articles:
        parser.error(f"no */figures.json in {args.cpu}")
    if not gpu_articles and not gpu_cache:
        parser.error(f"no figures.json or cache records in {args.gpu}")

    print(f"# CPU build {args.cpu} against GPU build {args.gpu} (tolerance ±{args.tolerance:.0%})\n")
    same_keys = True
    pairs: list[tuple[str, dict, dict]] = []
    key_rows = []
    for article in sorted(set(cpu_articles) | set(gpu_articles)):
        cpu = {record_key(r): r for r in cpu_articles.get(article, [])}
        gpu = {record_key(r): r for r in gpu_articles.get(article, [])}
        only_cpu, only_gpu = sorted(set(cpu) - set(gpu)), sorted(set(gpu) - set(cpu))
        same_keys &= not only_cpu and not only_gpu
        devices = sorted({r.get("device", "?") for r in gpu.values()})
        key_rows.append(
            {
                "article": article,
                "cpu": len(cpu),
                "gpu": len(gpu),
                "same": "yes" if not only_cpu and not only_gpu else "NO",
                "only_cpu": len(only_cpu),
                "only_gpu": len(only_gpu),
                "gpu_device": ", ".join(devices),
            }
        )
        pairs += [(article, cpu[k], gpu[k]) for k in cpu if k in gpu]
    print("## Job keys in each figures.json\n")
    print_table(
        key_rows,
        [
            ("article", "article"),
            ("cpu", "CPU records"),
            ("gpu", "GPU records"),
            ("same", "same keys"),
            ("only_cpu", "only CPU"),
            ("only_gpu", "only GPU"),
            ("gpu_device", "GPU records' device"),
        ],
    )

    visual, other = compare_records(pairs, args.tolerance, args.atol)
    print("## Summary by kind (articles' figures)\n")
    columns = [
        ("kind", "kind"),
        ("records", "records"),
        ("within", f"close (±{args.tolerance:.0%})"),
        ("median", "median rel diff"),
        ("max", "max rel diff"),
        ("unequal", "records with unequal names/indices"),
    ]
    rows = summary(visual, other)
    print_table(rows, columns)
    if visual:
        lower = sum(r["gpu_lower"] for r in visual)
        images = sum(r["images"] for r in visual)
        print(
            f"Feature visualizations: the GPU's final value is below the CPU's for {lower} of "
            f"{images} images.\n"
        )

    shown = [r for r in visual if args.all or not r["close"]]
    print(f"## Feature visualizations{'' if args.all else ' outside the tolerance'}: {len(shown)}\n")
    if shown:
        print_table(
            shown,
            [
                ("article", "article"),
                ("model", "model"),
                ("address", "unit"),
                ("objective", "objective"),
                ("images", "images"),
                ("steps", "steps"),
                ("cpu", "CPU value(s)"),
                ("gpu", "GPU value(s)"),
                ("max_rel_diff", "max rel diff"),
                ("max_abs_diff", "max abs diff"),
            ],
        )
    shown = [r for r in other if args.all or not r["close"] or r["unequal"]]
    print(
        f"## Other figures{'' if args.all else ' outside the tolerance or with unequal fields'}: "
        f"{len(shown)}\n"
    )
    if shown:
        for row in shown:
            row["unequal"] = ", ".join(row["unequal"][:6]) + (" …" if len(row["unequal"]) > 6 else "")
        print_table(
            shown,
            [
                ("article", "article"),
                ("kind", "kind"),
                ("address", "address"),
                ("max_rel_diff", "max rel diff"),
                ("worst_field", "worst field"),
                ("unequal", "unequal fields"),
            ],
        )

    report = {"keys": key_rows, "summary": rows, "featurevis": visual, "other": other}
    cache_folder = args.cpu_cache
    if cache_folder is not None and gpu_cache:
        cpu_cache = load_cache(cache_folder)
        common = sorted(set(cpu_cache) & set(gpu_cache))
        print(
            f"## Every artifact (cache records): {len(cpu_cache)} CPU, {len(gpu_cache)} GPU, "
            f"{len(common)} in both\n"
        )
        cache_visual, cache_other = compare_records(
            [("cache", cpu_cache[k], gpu_cache[k]) for k in common], args.tolerance, args.atol
        )
        cache_rows = summary(cache_visual, cache_other)
        print_table(cache_rows, columns)
        report["cache"] = {
            "cpu": len(cpu_cache),
            "gpu": len(gpu_cache),
            "common": len(common),
            "summary": cache_rows,
        }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    outside = any(r["within"] < r["records"] for r in rows)
    if not same_keys:
        print("RESULT: the job keys differ between the builds")
        return 1
    print(
        "RESULT: same job keys in every figures.json; "
        + ("some values outside the tolerance" if outside else "every value within the tolerance")
    )
    return 2 if args.strict and outside else 0


if __name__ == "__main__":
    sys.exit(main())
