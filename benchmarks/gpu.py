"""One run on a rented GPU (issues 14 and 31): CUDA correctness, feature-visualization speed
against lucent, one layer of the InceptionV1 atlas at the default settings, `verify` against the
CPU's shipped cache, what the faithfulness measures, MACO and attribution cost beside feature
visualization, a cold build of the example site, and cheap variants of the engine.

    python3 benchmarks/gpu.py                         # on the GPU machine: see benchmarks/GPU.md
    python3 benchmarks/gpu.py --quick --device cpu    # CPU dry run: tiny sizes, the same code paths

Sections run most important first (SECTIONS; `--only` picks some): the CUDA tests, the 64-unit
benchmark, the atlas, verify, the newer kinds, 256 and 16 units, the example site, and last the
weights' parity and the variants. Each is timed; one that fails is recorded with
its traceback and the next one runs. The results are rewritten after every section, to
$OUT/gpu-results.md (for people) and $OUT/gpu-results.json (OUT defaults to ./gpu-out), so a
run stopped at its time limit still leaves what it finished. No section starts after --budget
seconds, and sections that loop (lucent unit by unit, the variants, the build) stop at
--deadline; the results say what was skipped or cut short.

Also written to $OUT: pytest.log, build.log (the build's -v output, timestamped),
gpu-figures.tar.gz (every figures.json of the GPU build and every provenance record of its
cache), for `benchmarks/compare_builds.py` against a CPU build, and gpu-logs.tar.gz (the atlas's,
verify's and the kinds' logs): with the command's own gpu-log.txt (GPU.md), seven files, within
the eight the device machine sends back.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import time
import traceback
import types
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

START = time.monotonic()


def log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[{time.monotonic() - START:6.1f}s {stamp}] {message}", flush=True)


def elapsed() -> float:
    return time.monotonic() - START


# -- imports that need care on the GPU machine ----------------------------------------------


def _ipython_or_stub() -> str:
    """lucent's render module imports IPython.display (only to show images in a notebook);
    the GPU machine has no IPython, so a stand-in is used when it is missing."""
    try:
        import IPython.display  # noqa: F401

        return "installed"
    except ImportError:
        package, display = types.ModuleType("IPython"), types.ModuleType("IPython.display")
        display.display = display.HTML = display.Image = lambda *args, **kwargs: None
        package.display = display
        sys.modules["IPython"], sys.modules["IPython.display"] = package, display
        return "missing: a stand-in module was used (render_vis is called with show_image=False)"


IPYTHON = _ipython_or_stub()

import numpy as np  # noqa: E402
import torch  # noqa: E402

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=FutureWarning)
    from lucent.optvis import transform as lucent_transform

    from distillgen.engine import featurevis as engine_fv
    from distillgen.engine.device import describe_device, resolve_device
    from distillgen.engine.featurevis import chunk_size, render
    from distillgen.engine.models import load_model
    from distillgen.jobs import FeatureVisJob, FeatureVisSettings
    from distillgen.units import fingerprint, parse_spec


def _load_benchmark():
    """benchmarks/featurevis.py (lucent's side of the comparison and the scoring), by path."""
    spec = importlib.util.spec_from_file_location(
        "featurevis_benchmark", ROOT / "benchmarks" / "featurevis.py"
    )
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning)
        spec.loader.exec_module(module)
    return module


BENCH = _load_benchmark()

# name: (spec, layer, lucent's name for the layer)
MODELS = {
    "googlenet": ("torchvision:googlenet@untrained", "inception3b", "inception3b"),
    "inceptionv1": ("lucent:inceptionv1@untrained", "mixed3b", "mixed3b"),
}
MIB = 1024**2


# -- results --------------------------------------------------------------------------------


class Results:
    """Sections with their status and data, written out after every section."""

    def __init__(self, out: Path, meta: dict) -> None:
        self.out = out
        self.meta = meta
        self.sections: list[dict] = []
        self.notes: list[str] = []
        out.mkdir(parents=True, exist_ok=True)

    def add(self, section: dict) -> None:
        self.sections.append(section)
        self.write()

    def write(self, finished: bool = False) -> dict:
        """Both files; returns the data with the sections' Markdown (which the JSON leaves out)."""
        data = {
            "meta": self.meta,
            "sections": self.sections,
            "notes": self.notes,
            "finished": finished,
            "total_s": round(elapsed(), 1),
        }
        plain = [{k: v for k, v in s.items() if not k.startswith("md")} for s in self.sections]
        text = json.dumps({**data, "sections": plain}, indent=2, default=str)
        (self.out / "gpu-results.json").write_text(text + "\n")
        (self.out / "gpu-results.md").write_text(markdown(data))
        return data


def markdown(data: dict, detail: bool = True) -> str:
    meta = data["meta"]
    lines = [
        "# distillgen on the GPU (issues 14 and 31)",
        "",
        f"- started {meta['started']}, {'finished' if data['finished'] else 'NOT finished (stopped early)'} "
        f"after {data['total_s']} s; mode: {'QUICK dry run' if meta['quick'] else 'full'}",
        f"- device: {meta.get('device')}; torch {meta.get('torch')}, CUDA {meta.get('cuda')}, "
        f"cuDNN {meta.get('cudnn')}, Python {meta.get('python')}",
        f"- TF32: convolutions {meta.get('tf32_cudnn')}, matmul {meta.get('tf32_matmul')}; "
        f"IPython: {meta.get('ipython')}",
        f"- time guard: no section starts after {meta['budget_s']} s; loops stop at {meta['deadline_s']} s",
    ]
    lines += [f"- {note}" for note in data["notes"]]
    lines += ["", "## Headline", ""] + (headline(data["sections"]) or ["(nothing finished yet)"])
    for section in data["sections"]:
        heading = (
            f"## {section['name']} [{section['id']}]: {section['status']} ({section.get('seconds', 0)} s)"
        )
        lines += ["", heading, ""]
        if section.get("error"):
            lines += ["```", section["error"].rstrip(), "```", ""]
        lines += section.get("md", [])
        if detail:
            lines += section.get("md_detail", [])
    return "\n".join(lines) + "\n"


def headline(sections: list[dict]) -> list[str]:
    """The few numbers the issue asks about, from whatever sections have finished."""
    lines = []
    for section in sections:
        data, status = section.get("data", {}), section["status"]
        if section["id"] == "tests":
            lines.append(f"- CUDA tests: {status}, {data.get('summary', '')}")
        elif section["id"] == "fv64":
            for row in data.get("rows", []):
                extrapolated = " (lucent extrapolated)" if row["lucent_extrapolated"] else ""
                ratio = f"{row['act_ratio']:.3g}" if row["act_ratio"] is not None else "–"
                lines.append(
                    f"- {row['model']}, {row['units']} units: engine {row['engine_s']} s, lucent "
                    f"{row['lucent_s']} s{extrapolated}: **{row['speedup']}×** (goal ≥ 20×); final "
                    f"activation engine/lucent {ratio} (goal ≥ 1); chunk {row['chunk']}, "
                    f"peak {row['engine_peak_mib']} MiB"
                )
        elif section["id"] == "atlas" and "rows" in data:
            cold, again = data["cold"], data["rebuild"]
            lines.append(
                f"- atlas, {data['units']} units cold: {cold['wall_s']} s, peak GPU "
                f"{cold['peak_gpu_mib']} MiB; no-change rebuild {again['inside_s']} s inside build"
            )
        elif section["id"] == "verify" and "rows" in data:
            within = sum(row["verdict"] == "ok" for row in data["rows"])
            total = len(data["rows"])
            lines.append(f"- verify against the CPU's cache: {within} of {total} within tolerance")
        elif section["id"] == "kinds" and "kinds" in data:
            shares = ", ".join(f"{row['kind']} {row['share']:.2f}" for row in data["kinds"])
            lines.append(f"- cost as a share of featurevis: {shares}")
        elif section["id"] == "build":
            lines.append(
                f"- example site, cold build on {data.get('device')}: {status}, "
                f"exit {data.get('exit_code')}, wall {data.get('wall_s')} s"
            )
        elif status in ("error", "failed", "timeout"):
            lines.append(f"- {section['name']}: {status}")
    return lines


def table(rows: list[dict], columns: list[tuple[str, str]]) -> list[str]:
    """A Markdown table of `rows`, one column per (key, heading)."""

    def cell(value) -> str:
        if value is None:
            return "–"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    out = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(cell(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return out + [""]


class Context:
    """What sections share: options, the device, loaded models, the time limits."""

    def __init__(self, args) -> None:
        self.args = args
        self.quick = args.quick
        self.device = resolve_device(args.device)
        self.cuda = self.device.type == "cuda"
        self.out = Path(args.out)
        # the newer sections' logs, packed into $OUT/gpu-logs.tar.gz after each section: the
        # device machine sends back at most 8 files
        self.logs = Path(tempfile.mkdtemp(prefix="distillgen-gpu-logs-"))
        self._models: dict = {}
        self.warm: set[str] = set()
        # sizes: steps and image size of the benchmark; unit counts of the three sizes
        self.steps, self.size = (2, 64) if self.quick else (args.steps, 224)
        self.units = {16: 2, 64: 3, 256: 4} if self.quick else {16: 16, 64: 64, 256: 256}

    def model(self, spec: str):
        if spec not in self._models:
            self._models[spec] = load_model(spec)
        model = self._models[spec]
        model.module.to(self.device)
        return model

    def left(self) -> float:
        """Seconds until the deadline of looping work."""
        return self.args.deadline - elapsed()

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_mib(self) -> float | None:
        return round(torch.cuda.max_memory_allocated(self.device) / MIB, 1) if self.cuda else None

    def allocated_mib(self) -> float | None:
        return round(torch.cuda.memory_allocated(self.device) / MIB, 1) if self.cuda else None

    def free_mib(self) -> float | None:
        return round(torch.cuda.mem_get_info(self.device)[0] / MIB) if self.cuda else None

    def tidy(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()

    def pack_logs(self) -> None:
        if any(self.logs.iterdir()):
            with tarfile.open(self.out / "gpu-logs.tar.gz", "w:gz") as tar:
                tar.add(self.logs, arcname="logs")


def run_section(results: Results, ctx: Context, key: str, name: str, function) -> None:
    section = {
        "id": key,
        "name": name,
        "status": "skipped",
        "seconds": 0,
        "data": {},
        "md": [],
        "md_detail": [],
    }
    if elapsed() > ctx.args.budget:
        section["md"] = [f"Skipped: {elapsed():.0f} s had passed, past the {ctx.args.budget} s time guard."]
        log(f"skip {name}: past the {ctx.args.budget} s time guard")
        results.add(section)
        return
    log(f"start {name}")
    start = time.monotonic()
    try:
        function(ctx, section)
        section["status"] = section.get("status_override", "ok")
    except Exception as exc:  # record, then go on with the next section
        section["status"] = "error"
        section["error"] = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
        log(f"ERROR in {name}: {type(exc).__name__}: {exc}")
    section.pop("status_override", None)
    section["seconds"] = round(time.monotonic() - start, 1)
    log(f"end {name}: {section['status']} in {section['seconds']} s")
    ctx.tidy()
    ctx.pack_logs()
    results.add(section)


# -- environment ----------------------------------------------------------------------------


def environment(ctx: Context, meta: dict) -> None:
    from distillgen.units import package_version

    meta.update(
        device=describe_device(ctx.device),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        python=platform.python_version(),
        tf32_cudnn=torch.backends.cudnn.allow_tf32,
        tf32_matmul=torch.backends.cuda.matmul.allow_tf32,
        ipython=IPYTHON,
        versions={
            name: package_version(name)
            for name in ("torchvision", "torch-lucent", "kornia", "numpy", "markdown-it-py", "click")
        },
        cpu_threads=torch.get_num_threads(),
    )
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        meta.update(
            gpu_memory_mib=round(props.total_memory / MIB),
            multiprocessors=props.multi_processor_count,
            capability=f"{props.major}.{props.minor}",
        )
        with contextlib.suppress(Exception):
            smi = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv"],
                capture_output=True,
                text=True,
                timeout=20,
            )
            meta["nvidia_smi"] = smi.stdout.strip()


def section_specs(ctx: Context, section: dict) -> None:
    """The two benchmark specs load offline (random weights: nothing to download)."""
    rows = []
    for name, (spec, layer, _) in MODELS.items():
        start = time.perf_counter()
        model = ctx.model(spec)
        rows.append(
            {
                "model": name,
                "spec": spec,
                "load_s": round(time.perf_counter() - start, 2),
                "layers": len(model.layers),
                "benchmark_layer": layer,
                "layer_shape": "×".join(map(str, model.layers[layer].shape)),
                "checksum": model.checksum[:12],
            }
        )
    section["data"]["models"] = rows
    section["md"] += table(
        rows,
        [
            ("spec", "spec"),
            ("load_s", "load s"),
            ("layers", "layers"),
            ("benchmark_layer", "layer"),
            ("layer_shape", "shape"),
            ("checksum", "checksum"),
        ],
    )


# -- CUDA tests -----------------------------------------------------------------------------


def section_tests(ctx: Context, section: dict) -> None:
    tests = ["tests/test_cuda.py", "tests/test_engine.py::test_cuda_renders_close_to_cpu"]
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", *tests]
    timeout = max(30.0, min(240.0, ctx.left()))
    log(f"running {' '.join(command[1:])} (timeout {timeout:.0f} s)")
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        output, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        output = "".join(
            part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
            for part in (exc.stdout, exc.stderr)
        )
        output += f"\n[killed after {timeout:.0f} s]"
        code = None
        section["status_override"] = "timeout"
    (ctx.out / "pytest.log").write_text(output)
    summary = next(
        (line for line in reversed(output.splitlines()) if re.search(r"passed|failed|error|skipped", line)),
        "",
    )
    outcomes = re.findall(r"^(PASSED|FAILED|ERROR|SKIPPED)\s+(\S+)", output, flags=re.M)
    section["data"].update(exit_code=code, summary=summary.strip("= "), outcomes=outcomes)
    log(f"pytest: {summary.strip('= ')}")
    if code not in (0, 5) and section.get("status_override") is None:
        section["status_override"] = "failed"
    section["md"] += [f"`{' '.join(command[1:])}` exit {code}: **{summary.strip('= ')}**", ""]
    failures = [f"- {kind} {name}" for kind, name in outcomes if kind in ("FAILED", "ERROR")]
    section["md"] += failures + ([""] if failures else [])
    tail = "\n".join(output.splitlines()[-40:]) if failures or code not in (0, 5) else ""
    if tail:
        section["md"] += ["```", tail, "```", ""]
    section["md"] += ["Full output: pytest.log.", ""]


def section_weights_parity(ctx: Context, section: dict) -> None:
    """The numbers behind the tests: expanded weights, GPU against CPU, TF32 on and off."""
    from distillgen.engine.weights import expanded_weights

    if not ctx.cuda and not ctx.quick:
        section["md"] += ["No CUDA device: nothing to compare.", ""]
        return
    cases = [
        ("shapes", "conv2", "mixed3", [43, 5], None),
        ("shapes", "mixed3", "mixed4", [52, 48], None),
        ("torchvision:googlenet@untrained", "inception3a", "mixed3b", [0, 300], 224),
        ("lucent:inceptionv1@untrained", "mixed3a", "mixed3b", [320, 327, 415], 224),
    ]
    if not ctx.cuda:  # the dry run: the code path, CPU against CPU
        cases = cases[:1]
    rows = []
    for spec, source, target, units, canvas in cases:
        cpu_model, gpu_model = load_model(spec), ctx.model(spec)  # a CPU copy; the shared one
        cpu = expanded_weights(cpu_model, source, target, units, canvas)
        row = {"case": f"{spec} {source} -> {target}:{units}"}
        for label, enabled in (("tf32", True), ("fp32", False)):
            saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
            try:
                gpu = expanded_weights(gpu_model, source, target, units, canvas)
            finally:
                torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
            same_shape = all(a.shape == b.shape for a, b in zip(gpu, cpu, strict=True))
            diffs = [
                float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))
                for a, b in zip(gpu, cpu, strict=True)
                if a.shape == b.shape
            ]
            row[f"{label}_same_shapes"] = same_shape
            row[f"{label}_max_rel_diff"] = max(diffs) if diffs else None
        rows.append(row)
    section["data"]["weights"] = rows
    section["md"] += [
        "Largest |GPU − CPU| of any kernel element, relative to the kernel's largest |value|:",
        "",
    ]
    section["md"] += table(
        rows,
        [
            ("case", "case"),
            ("tf32_max_rel_diff", "default (TF32) rel diff"),
            ("tf32_same_shapes", "same crop"),
            ("fp32_max_rel_diff", "TF32 off rel diff"),
            ("fp32_same_shapes", "same crop"),
        ],
    )


# -- feature visualization: the engine against lucent ---------------------------------------


def jobs_for(spec: str, layer: str, units: list[int], steps: int, size: int) -> list[FeatureVisJob]:
    settings = FeatureVisSettings(steps=steps, size=size)
    key = fingerprint(parse_spec(spec))
    return [FeatureVisJob(spec, key, layer, unit, settings=settings) for unit in units]


def warm_up(ctx: Context, name: str) -> float:
    """cuDNN, kornia's scripted functions and lucent's first call: once per model, untimed."""
    if name in ctx.warm:
        return 0.0
    spec, layer, lucent_layer = MODELS[name]
    model = ctx.model(spec)
    start = time.perf_counter()
    render(model, jobs_for(spec, layer, [0, 1], 2, ctx.size), ctx.device)
    BENCH.lucent_images(model, lucent_layer, [0], 2, ctx.size, ctx.device)
    ctx.sync()
    ctx.warm.add(name)
    return round(time.perf_counter() - start, 2)


def estimated_bytes_per_image(model, layer: str, size: int) -> float:
    """The engine's own estimate (featurevis.chunk_size), for one image."""
    deepest = list(model.layers).index(layer)
    scale = ((size + 24) / model.input_size) ** 2
    per_image = sum(np.prod(item.shape) for item in list(model.layers.values())[: deepest + 1])
    return float(4 * 4 * per_image * scale + 1)


def engine_run(ctx: Context, model, spec, layer, units, chunk=None, steps=None) -> dict:
    steps = steps or ctx.steps
    jobs = jobs_for(spec, layer, units, steps, ctx.size)
    chosen = chunk or chunk_size(model, jobs, ctx.device)
    free = ctx.free_mib()
    before = ctx.allocated_mib()
    ctx.reset_peak()
    start = time.perf_counter()
    rendered = render(model, jobs, ctx.device, chunk=chunk)
    ctx.sync()
    seconds = time.perf_counter() - start
    return {
        "images": [r.images[0] for r in rendered],
        "values": [r.values[0] for r in rendered],
        "seconds": seconds,
        "chunk": chosen,
        "batches": math.ceil(len(units) / chosen),
        "peak_mib": ctx.peak_mib(),
        "before_mib": before,
        "free_mib": free,
    }


def lucent_run(ctx: Context, model, lucent_layer, units, cap_s: float) -> dict:
    """lucent's render_vis unit by unit (as its README shows) until `cap_s` seconds are spent
    (or the deadline comes): then the time for all units is extrapolated linearly per unit."""
    images, done, seconds = [], [], 0.0
    ctx.reset_peak()
    for unit in units:
        (image,), spent = BENCH.lucent_images(model, lucent_layer, [unit], ctx.steps, ctx.size, ctx.device)
        images.append(image)
        done.append(unit)
        seconds += spent
        if len(done) < len(units) and (seconds >= cap_s or ctx.left() < 5):
            break
    return {
        "images": images,
        "units": done,
        "seconds": seconds,
        "seconds_all": seconds / len(done) * len(units),
        "extrapolated": len(done) < len(units),
        "peak_mib": ctx.peak_mib(),
    }


def compare_to_lucent(ctx: Context, name: str, count: int, lucent_cap: float) -> dict:
    spec, layer, lucent_layer = MODELS[name]
    model = ctx.model(spec)
    warm = warm_up(ctx, name)
    units = list(range(count))
    engine = engine_run(ctx, model, spec, layer, units)
    log(f"  {name} {count} units: engine {engine['seconds']:.2f} s (chunk {engine['chunk']})")
    lucent = lucent_run(ctx, model, lucent_layer, units, lucent_cap)
    log(
        f"  {name} {count} units: lucent {lucent['seconds']:.2f} s on {len(lucent['units'])} units"
        + (f", {lucent['seconds_all']:.1f} s extrapolated to {count}" if lucent["extrapolated"] else "")
    )
    engine_acts = BENCH.activations(model, layer, units, engine["images"], ctx.device)
    lucent_acts = BENCH.activations(model, layer, lucent["units"], lucent["images"], ctx.device)
    measured = len(lucent["units"])
    image_steps = count * ctx.steps
    engine_per_image = (engine["peak_mib"] - engine["before_mib"]) / count if ctx.cuda else None
    estimate = estimated_bytes_per_image(model, layer, ctx.size) / MIB
    row = {
        "model": name,
        "units": count,
        "steps": ctx.steps,
        "size": ctx.size,
        "warm_up_s": warm,
        "engine_s": round(engine["seconds"], 3),
        "engine_ms_per_image_step": round(engine["seconds"] / image_steps * 1e3, 4),
        "lucent_units_measured": measured,
        "lucent_s_measured": round(lucent["seconds"], 2),
        "lucent_s": round(lucent["seconds_all"], 2),
        "lucent_extrapolated": lucent["extrapolated"],
        "lucent_ms_per_image_step": round(lucent["seconds"] / (measured * ctx.steps) * 1e3, 4),
        "speedup": round(lucent["seconds_all"] / engine["seconds"], 2),
        "engine_act": statistics.mean(engine_acts),
        "engine_act_same_units": statistics.mean(engine_acts[:measured]),
        "lucent_act": statistics.mean(lucent_acts),
        "act_ratio": statistics.mean(engine_acts[:measured]) / statistics.mean(lucent_acts)
        if statistics.mean(lucent_acts)
        else None,
        "engine_value_mean": statistics.mean(engine["values"]),
        "chunk": engine["chunk"],
        "batches": engine["batches"],
        "engine_peak_mib": engine["peak_mib"],
        "lucent_peak_mib": lucent["peak_mib"],
        "free_mib_before": engine["free_mib"],
        "estimated_mib_per_image": round(estimate, 2),
        "measured_mib_per_image": round(engine_per_image, 2) if engine_per_image is not None else None,
    }
    ctx.tidy()
    return row


FV_COLUMNS = [
    ("model", "model"),
    ("units", "units"),
    ("engine_s", "engine s"),
    ("lucent_s", "lucent s"),
    ("lucent_extrapolated", "lucent extrapolated"),
    ("lucent_units_measured", "lucent units timed"),
    ("speedup", "speedup ×"),
    ("engine_ms_per_image_step", "engine ms/image-step"),
    ("lucent_ms_per_image_step", "lucent ms/image-step"),
    ("engine_act_same_units", "engine act (same units)"),
    ("lucent_act", "lucent act"),
    ("act_ratio", "act engine/lucent"),
    ("chunk", "chunk"),
    ("engine_peak_mib", "engine peak MiB"),
    ("lucent_peak_mib", "lucent peak MiB"),
    ("estimated_mib_per_image", "est. MiB/image"),
    ("measured_mib_per_image", "measured MiB/image"),
]


def featurevis_section(size_key: int, lucent_cap: float):
    def section_fn(ctx: Context, section: dict) -> None:
        count = ctx.units[size_key]
        cap = min(lucent_cap, 1.0) if ctx.quick else lucent_cap
        rows = []
        for name in MODELS:
            if ctx.left() < 15:
                section["md"] += [f"{name}: not run, the {ctx.args.deadline} s deadline is near.", ""]
                section["status_override"] = "partial"
                continue
            rows.append(compare_to_lucent(ctx, name, count, cap))
            section["data"]["rows"] = rows
        section["md"] += [
            f"{count} units, {ctx.steps} steps, {ctx.size} px, one image per unit; lucent's render_vis "
            f"once per unit (batch 1), timed on at most ~{cap:.0f} s of units and extrapolated "
            "linearly per unit beyond that (column 'lucent extrapolated'). Activation: the unit's "
            "mean activation on the saved 8-bit image, engine and lucent scored the same way, on "
            "the units lucent was timed on. Peak MiB: torch.cuda.max_memory_allocated during the run "
            "(model weights included). MiB/image: the engine's estimate (chunk_size) and the measured "
            "(peak − allocated before) / units.",
            "",
        ]
        section["md"] += table(rows, FV_COLUMNS)

    return section_fn


# -- the example site, built cold on the GPU ------------------------------------------------

QUICK_ARTICLE = """\
---
title: Quick
model: shapes
featurevis: {steps: 2, size: 32}
---

# Quick

```{featurevis} conv2:0-1
Two units.
```

```{tuning} mixed4:52
:stimulus: line
:range: 0 180 4
```

```{examples} mixed4:52
:count: 20
:top: 2
```

```{ablation} mixed4:48
:edit: zero mixed3:58
:on: tuning
:stimulus: curve
:range: 0 360 4
```

```{universality} mixed3
:other: shapes@1
:count: 20
:pairs: 2
```
"""

COMPUTED = re.compile(
    r"computed (?P<model>.+): (?P<kind>[a-z]+) of (?P<n>\d+) [\w ]+?"
    r"(?: \((?P<images>\d+) images\))? in (?P<s>[\d.]+)s"
)
EXPERIMENTS = ("tuning", "examples", "ablation", "universality")


def section_build(ctx: Context, section: dict) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="distillgen-gpu-build-"))
    if ctx.args.src:
        src = Path(ctx.args.src).resolve()
    elif ctx.quick:
        src = scratch / "articles"
        src.mkdir()
        (src / "quick.md").write_text(QUICK_ARTICLE)
    else:
        src = ROOT / "articles"
    out, cache = scratch / "build", scratch / "cache"  # a cache of its own: a cold build
    command = [sys.executable, "-m", "distillgen", "build", str(src), "-o", str(out)]
    command += ["--cache-dir", str(cache), "--device", str(ctx.device), "-v"]
    timeout = max(30.0, ctx.left())
    log(f"building {src} on {ctx.device} (timeout {timeout:.0f} s)")
    lines, code, timed_out = run_logged(command, timeout, ctx.out / "build.log")
    summary = summarize_build(lines)
    summary.update(exit_code=code, timed_out=timed_out, src=str(src), device=str(ctx.device))
    section["data"].update(summary)
    if timed_out:
        section["status_override"] = "timeout"
    elif code != 0:
        section["status_override"] = "failed"
    packed = pack_figures(out, cache, ctx.out / "gpu-figures.tar.gz")
    section["data"]["packed"] = packed
    md = [
        f"`distillgen build {src.name} --device {ctx.device} -v` with an empty cache: exit {code}"
        + (f", KILLED after {timeout:.0f} s (partial)" if timed_out else "")
        + f", wall {summary['wall_s']} s; {summary.get('built', '')}",
        "",
        "Where the time goes (seconds; from the build's 'computed <label> in Ns' lines and the "
        "timestamps of its log; 'diversity sets' are featurevis groups with at least 2 images per "
        "unit, i.e. the unit pages' round):",
        "",
    ]
    md += table(
        [{"part": k, "seconds": v} for k, v in summary["parts"].items()], [("part", "part"), ("seconds", "s")]
    )
    section["md_detail"] += table(
        summary["groups"],
        [("at", "at s"), ("label", "group"), ("category", "category"), ("seconds", "s")],
    )
    md += [
        f"Figures: {packed['figures_json']} figures.json file(s) and {packed['records']} cache records in "
        "gpu-figures.tar.gz; compare with `python benchmarks/compare_builds.py CPU_BUILD gpu-figures.tar.gz`."
        " The build's log: build.log.",
        "",
    ]
    if code != 0:
        md += ["```", "\n".join(line for _, line in lines[-30:]), "```", ""]
    section["md"] += md


def run_logged(
    command: list[str], timeout: float, path: Path
) -> tuple[list[tuple[float, str]], int | None, bool]:
    """Run `command`, stdout and stderr together, each line stamped with seconds since its start."""
    start = time.monotonic()
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    killed = threading.Event()

    def kill() -> None:
        killed.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    lines: list[tuple[float, str]] = []
    with path.open("w") as handle:
        try:
            for raw in proc.stdout:
                for line in raw.rstrip("\n").split("\r"):
                    if not line.strip():
                        continue
                    at = round(time.monotonic() - start, 2)
                    lines.append((at, line))
                    handle.write(f"[{at:7.2f}] {line}\n")
                    handle.flush()
                    if line.startswith(("computed ", "built ", "build failed")):
                        log(f"  build: {line}")
        finally:
            proc.wait()
            timer.cancel()
    lines.append((round(time.monotonic() - start, 2), "[process ended]"))
    return lines, proc.returncode, killed.is_set()


def summarize_build(lines: list[tuple[float, str]]) -> dict:
    groups, last_computed, first_computing, built = [], None, None, ""
    gaps, previous_end = 0.0, None
    for at, line in lines:
        if line.startswith("computing ") and first_computing is None:
            first_computing = at
        if line.startswith("computing ") and previous_end is not None:
            gaps += at - previous_end
            previous_end = None
        match = COMPUTED.search(line)
        if match and line.startswith("computed "):
            kind, count = match["kind"], int(match["n"])
            images = int(match["images"] or count)
            if kind == "featurevis":
                category = "diversity sets" if images >= 2 * count else "featurevis"
            elif kind in EXPERIMENTS:
                category = "experiments"
            else:
                category = kind
            groups.append(
                {
                    "at": at,
                    "label": line[len("computed ") : line.rfind(" in ")],
                    "kind": kind,
                    "category": category,
                    "units": count,
                    "images": int(match["images"]) if match["images"] else None,
                    "seconds": float(match["s"]),
                }
            )
            last_computed = previous_end = at
        if line.startswith(("built ", "build failed")):
            built = line
            built_at = at
    wall = lines[-1][0] if lines else 0.0
    parts: dict[str, float] = {}
    for group in groups:
        parts[group["category"]] = round(parts.get(group["category"], 0.0) + group["seconds"], 2)
    for kind in EXPERIMENTS:
        total = sum(g["seconds"] for g in groups if g["kind"] == kind)
        if total:
            parts[f"  of which {kind}"] = round(total, 2)
    if first_computing is not None:
        parts["start-up, parse, check, plan (to the first compute)"] = first_computing
    parts["between compute groups (model loads, follow-ups, unit-page planning)"] = round(gaps, 2)
    if built and last_computed is not None:
        parts["render and write (last compute to 'built')"] = round(built_at - last_computed, 2)
    parts["wall (process)"] = wall
    return {"wall_s": wall, "built": built, "groups": groups, "parts": parts}


def pack_figures(out: Path, cache: Path, target: Path) -> dict:
    """figures/<article>/figures.json of the build and cache-records/<key>.json of its cache."""
    count_figures = count_records = 0
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(out.glob("*/figures.json")):
            tar.add(path, arcname=f"figures/{path.parent.name}/figures.json")
            count_figures += 1
        for path in sorted(cache.glob("objects/*/*/record.json")):
            tar.add(path, arcname=f"cache-records/{path.parent.name}.json")
            count_records += 1
    return {"figures_json": count_figures, "records": count_records, "bytes": target.stat().st_size}


# -- issue 31: the atlas, verify against the CPU's cache, the newer kinds' cost --------------

ATLAS_MODEL, ATLAS_LAYER, ATLAS_UNITS = "lucent:inceptionv1@untrained", "mixed3a", 5484
# Runs `distillgen` in a process of its own (so that the time guard can stop it) and says the
# process's peak GPU memory as it exits.
PEAK_AT_EXIT = """
import atexit, sys
def peak():
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB", flush=True)
atexit.register(peak)
from distillgen.cli import main
main(sys.argv[1:], prog_name="distillgen")
"""
BUILT = re.compile(r"^built .* in (?P<s>[\d.]+)s")
PEAK = re.compile(r"^peak GPU memory: (?P<mib>\d+) MiB")


def distillgen_run(ctx: Context, arguments: list[str], log_name: str, timeout: float) -> dict:
    """`distillgen ARGUMENTS -v` on the context's device, logged to $OUT/LOG_NAME: the build's
    summary (summarize_build), the seconds its "built" line gives, and the peak GPU memory."""
    command = [sys.executable, "-c", PEAK_AT_EXIT, *arguments, "--device", str(ctx.device), "-v"]
    lines, code, timed_out = run_logged(command, timeout, ctx.logs / log_name)
    summary = summarize_build(lines)
    inside = next((float(m["s"]) for _, line in lines if (m := BUILT.match(line))), None)
    peak = next((int(m["mib"]) for _, line in lines if (m := PEAK.match(line))), None)
    summary.update(exit_code=code, timed_out=timed_out, inside_s=inside, peak_gpu_mib=peak)
    if code != 0:
        summary["tail"] = [line for _, line in lines[-20:]]
    return summary


def section_atlas(ctx: Context, section: dict) -> None:
    """One layer of the InceptionV1 atlas at the default settings (512 steps, a diversity set
    of 4, 8 dataset examples each way over a folder of generated photos), cold, then a no-change
    rebuild in a new process; per-unit costs by part, and those scaled to the whole atlas."""
    from folder_pass import make_folder  # benchmarks/, this script's folder

    scratch = Path(tempfile.mkdtemp(prefix="distillgen-gpu-atlas-"))
    photos = make_folder(scratch, 40 if ctx.quick else 1000)
    spec, layer = ("shapes", "mixed3") if ctx.quick else (ATLAS_MODEL, ATLAS_LAYER)
    arguments = ["atlas", spec, "--layers", layer, "--dataset", str(photos)]
    arguments += ["-o", str(scratch / "out"), "--cache-dir", str(scratch / "cache"), "--yes"]
    arguments += ["--allow-root", str(scratch)]  # the photos lie outside the working directory
    if ctx.quick:
        arguments += ["--featurevis", "steps=2", "--diversity", "2", "--examples", "2"]
    cold = distillgen_run(ctx, arguments, "atlas.log", max(30.0, ctx.left()))
    section["data"]["cold"] = cold
    if cold["exit_code"] != 0:
        section["status_override"] = "timeout" if cold["timed_out"] else "failed"
        section["md"] += [f"`distillgen {' '.join(arguments[:4])} …`: exit {cold['exit_code']}", "", "```"]
        section["md"] += [*cold.get("tail", []), "```", ""]
        return
    again = distillgen_run(ctx, arguments, "atlas-rebuild.log", max(30.0, min(120.0, ctx.left())))
    section["data"]["rebuild"] = again
    if again["exit_code"] != 0:
        section["status_override"] = "timeout" if again["timed_out"] else "failed"
        section["md"] += [f"The no-change rebuild: exit {again['exit_code']}", "", "```"]
        section["md"] += [*again.get("tail", []), "```", ""]
    units = int(re.search(r"atlas \((\d+) units\)", cold["built"])[1])
    rows = [
        {
            "part": part,
            "s": seconds,
            "ms_per_unit": 1000 * seconds / units,
            "atlas_h": seconds / units * ATLAS_UNITS / 3600,
        }
        for part, seconds in cold["parts"].items()
        if not part.startswith("  ")
    ]
    section["data"].update(units=units, rows=rows)
    section["md"] += [
        f"`distillgen atlas {spec} --layers {layer}` on {ctx.device}, default settings, an empty "
        f"cache: {units} units, wall {cold['wall_s']} s, peak GPU memory {cold['peak_gpu_mib']} MiB. "
        f"No-change rebuild in a new process: {again['inside_s']} s inside `build`, "
        f"{again['wall_s']} s the command. The last column scales each part to the whole atlas "
        f"({ATLAS_UNITS:,} units of mixed3a-mixed5b) by units: a floor for feature visualization, "
        "whose forward pass is longer for deeper layers. Logs: atlas.log, atlas-rebuild.log in "
        "gpu-logs.tar.gz.",
        "",
    ]
    section["md"] += table(
        rows,
        [
            ("part", "part"),
            ("s", "s"),
            ("ms_per_unit", "ms per unit"),
            ("atlas_h", f"× {ATLAS_UNITS:,} units, h"),
        ],
    )


def section_verify(ctx: Context, section: dict) -> None:
    """`distillgen verify --sample 24` on this device against the shipped cache, which was
    computed on a CPU: which figures it reproduces within their kinds' tolerances."""
    count = 4 if ctx.quick else 24
    command = [sys.executable, "-m", "distillgen", "verify", "articles", "--sample", str(count)]
    command += ["--device", str(ctx.device), "--json"]
    timeout = max(30.0, ctx.left())
    log(f"verifying {count} figures of articles/ on {ctx.device} (timeout {timeout:.0f} s)")
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        section["status_override"] = "timeout"
        section["md"] += [f"Killed after {timeout:.0f} s.", ""]
        return
    (ctx.logs / "verify.json").write_text(done.stdout)
    (ctx.logs / "verify.log").write_text(done.stderr)
    try:
        report = json.loads(done.stdout)
    except ValueError:  # it failed before comparing anything: its reason is on stderr
        section["status_override"] = "failed"
        section["md"] += [
            f"exit {done.returncode}, no report:",
            "",
            "```",
            *done.stderr.splitlines()[-20:],
            "```",
            "",
        ]
        return
    rows = [
        {key: figure.get(key) for key in ("kind", "address", "measure", "difference", "tolerance", "verdict")}
        for figure in report["figures"]
    ]
    section["data"].update(exit_code=done.returncode, summary=report["summary"], rows=rows)
    within = sum(row["verdict"] == "ok" for row in rows)
    section["md"] += [
        f"`distillgen verify articles --sample {count} --device {ctx.device}` against the shipped "
        f"cache (computed on a CPU): exit {done.returncode}, {within} of {len(rows)} within "
        f"tolerance, {report['summary']['seconds']} s. Whole report: verify.json and verify.log in "
        "gpu-logs.tar.gz.",
        "",
    ]
    section["md"] += table(
        rows,
        [
            ("kind", "kind"),
            ("address", "unit"),
            ("measure", "measure"),
            ("difference", "difference"),
            ("tolerance", "tolerance"),
            ("verdict", "verdict"),
        ],
    )


KINDS_ARTICLE = """\
---
title: Kinds
model: {model}
featurevis: {{dataset: {photos}, count: {count}{quick}}}
---

# Kinds

```{{featurevis}} {layer}:0-{last}
lucent's parameterization.
```
"""
MACO_FIGURE = """
```{{featurevis}} {layer}:0-{last}
:param: maco
MACO's.
```
"""
ATTRIBUTION_FIGURE = """
```{{attribution}} {layer}:0
:inputs: {inputs}
What carries the unit.
```
"""


def section_kinds(ctx: Context, section: dict) -> None:
    """What the faithfulness measures, MACO and attribution cost on this device, as shares of
    feature visualization's, on the same units. Three builds in one cache: feature
    visualizations of 8 units (lucent's parameterization) and their measures; then those
    units' MACO images added (its spectrum, optimization and measures); then an attribution
    of the first unit. Each build's groups of the figures' own jobs are counted by what the
    build's log says of them (8 units, one image each; one attribution); everything else it
    computes (the unit pages' diversity sets, examples, weights and attributions, the
    attribution's input units) is reported as the rest of that build."""
    from folder_pass import make_folder

    scratch = Path(tempfile.mkdtemp(prefix="distillgen-gpu-kinds-"))
    photos = make_folder(scratch, 40 if ctx.quick else 200)
    src = scratch / "articles"
    src.mkdir()
    model, layer, inputs = (
        ("shapes", "mixed4", "mixed3") if ctx.quick else (ATLAS_MODEL, "mixed4a", "mixed3b")
    )
    units = 2 if ctx.quick else 8
    fields = {"layer": layer, "last": units - 1, "inputs": inputs}
    text = KINDS_ARTICLE.format(
        model=model,
        photos=photos,
        count=40 if ctx.quick else 200,
        quick=", steps: 2" if ctx.quick else "",
        **fields,
    )
    arguments = ["build", str(src), "-o", str(scratch / "out"), "--cache-dir", str(scratch / "cache")]
    arguments += ["--allow-root", str(scratch)]
    # build -> (kind, units of the figure's own group) -> its row's name
    own = {
        "lucent": {
            ("featurevis", units): "featurevis, lucent",
            ("faithfulness", units): "faithfulness measures",
        },
        "maco": {
            ("spectrum", 1): "MACO's spectrum",
            ("featurevis", units): "featurevis, MACO",
            ("faithfulness", units): "faithfulness measures of MACO's images",
        },
        "attribution": {("attribution", 1): "attribution of one unit"},
    }
    maco, attribution = MACO_FIGURE.format(**fields), ATTRIBUTION_FIGURE.format(**fields)
    articles = {"lucent": text, "maco": text + maco, "attribution": text + maco + attribution}
    rows: list[dict] = []
    for name, article in articles.items():
        (src / "kinds.md").write_text(article)
        summary = distillgen_run(ctx, arguments, f"kinds-{name}.log", max(30.0, ctx.left()))
        section["data"][name] = summary
        if summary["exit_code"] != 0:
            section["status_override"] = "timeout" if summary["timed_out"] else "failed"
            section["md"] += [f"The {name} build: exit {summary['exit_code']}", "", "```"]
            section["md"] += [*summary.get("tail", []), "```", ""]
            return
        rest = 0.0
        for group in summary["groups"]:
            row = own[name].get((group["kind"], group["units"])) if group["images"] is None else None
            if row is None:
                rest += group["seconds"]
            else:
                rows.append({"kind": row, "s": group["seconds"]})
        rows.append({"kind": f"the rest of the {name} build's compute", "s": round(rest, 2)})
    base = next((row["s"] for row in rows if row["kind"] == "featurevis, lucent"), math.nan)
    for row in rows:
        row["share"] = row["s"] / base
    section["data"]["kinds"] = rows
    walls = ", ".join(f"{section['data'][name]['wall_s']} s" for name in articles)
    peaks = ", ".join(f"{section['data'][name]['peak_gpu_mib']}" for name in articles)
    section["md"] += [
        f"`{model}` `{layer}:0-{units - 1}` on {ctx.device}: three builds in one cache (lucent's "
        f"feature visualizations; MACO's added; an attribution from `{inputs}` added), walls {walls}, "
        f"peak GPU memory {peaks} MiB. Seconds of each figure's own jobs from the builds' logs, as "
        "shares of lucent's feature visualizations; 'the rest' is what the unit pages and the "
        "attribution's inputs computed. Logs: kinds-*.log in gpu-logs.tar.gz.",
        "",
    ]
    section["md"] += table(rows, [("kind", "kind"), ("s", "s"), ("share", "share of featurevis")])


# -- variants: what the numbers could point at ----------------------------------------------


@contextlib.contextmanager
def keep_layout(module: torch.nn.Module):
    """The engine's render() switches the module to channels_last; within this block the
    switch is ignored and the module stays in PyTorch's default (contiguous) layout."""
    module.to(memory_format=torch.contiguous_format)
    original = type(module).to

    def to(*args, **kwargs):
        kwargs.pop("memory_format", None)
        return original(module, *args, **kwargs)

    module.to = to
    try:
        yield
    finally:
        del module.to


@contextlib.contextmanager
def autocast_network(module: torch.nn.Module, device: torch.device, dtype=torch.bfloat16):
    """The network's forward pass (and so its backward) under autocast, as the engine would
    wrap `run(model.module, ...)`; the image parameterization, the transforms and Adam stay
    in float32 (a bfloat16 image could not even be turned into a numpy array)."""
    forward = module.forward

    def autocast_forward(*args, **kwargs):
        with torch.autocast(device.type, dtype=dtype):
            return forward(*args, **kwargs)

    module.forward = autocast_forward
    try:
        yield
    finally:
        del module.forward


@contextlib.contextmanager
def backend_flags(**flags):
    """torch.backends flags within the block: cudnn_benchmark, tf32."""
    saved = (
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cuda.matmul.allow_tf32,
    )
    if "cudnn_benchmark" in flags:
        torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    if "tf32" in flags:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = flags["tf32"]
    try:
        yield
    finally:
        (
            torch.backends.cudnn.benchmark,
            torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32,
        ) = saved


def section_variants(ctx: Context, section: dict) -> None:
    name = "googlenet"
    spec, layer, _ = MODELS[name]
    model = ctx.model(spec)
    warm_up(ctx, name)
    count = ctx.units[64]
    units = list(range(count))
    variants = [
        ("default (channels_last, fp32/TF32, auto chunk)", contextlib.nullcontext, {}),
        ("channels_last off", lambda: keep_layout(model.module), {}),
        ("bf16 autocast (network only)", lambda: autocast_network(model.module, ctx.device), {}),
        ("cudnn.benchmark on", lambda: backend_flags(cudnn_benchmark=True), {}),
        ("TF32 off (strict fp32)", lambda: backend_flags(tf32=False), {}),
        (f"chunk {max(1, count // 4)}", contextlib.nullcontext, {"chunk": max(1, count // 4)}),
        (f"chunk {max(1, count // 2)}", contextlib.nullcontext, {"chunk": max(1, count // 2)}),
    ]
    repeats = 1 if ctx.quick else 2
    rows, reference = [], None
    for label, context, options in variants:
        if ctx.left() < 20:
            section["md"] += [f"'{label}' and later variants: not run, the deadline is near.", ""]
            section["status_override"] = "partial"
            break
        try:
            times = []
            for _ in range(repeats):
                with context():
                    run = engine_run(ctx, model, spec, layer, units, **options)
                times.append(run["seconds"])
            acts = BENCH.activations(model, layer, units, run["images"], ctx.device)  # fp32, as always
        except Exception as exc:  # one variant failing says something; the others still run
            rows.append({"variant": label, "error": f"{type(exc).__name__}: {exc}"})
            section["data"].setdefault("tracebacks", {})[label] = traceback.format_exc()
            log(f"  variant {label}: {type(exc).__name__}: {exc}")
            continue
        if reference is None:
            reference = {"acts": acts, "images": run["images"], "seconds": min(times)}
        differences = [abs(a - b) for a, b in zip(acts, reference["acts"], strict=True)]
        rows.append(
            {
                "variant": label,
                "seconds": [round(t, 3) for t in times],
                "best_s": round(min(times), 3),
                "vs_default": round(reference["seconds"] / min(times), 3),
                "ms_per_image_step": round(min(times) / (count * ctx.steps) * 1e3, 4),
                "peak_mib": run["peak_mib"],
                "chunk": run["chunk"],
                "act_mean": statistics.mean(acts),
                "act_mean_diff": statistics.mean(acts) - statistics.mean(reference["acts"]),
                "act_max_abs_diff": max(differences),
                "identical_images": sum(
                    np.array_equal(a, b) for a, b in zip(run["images"], reference["images"], strict=True)
                ),
            }
        )
        log(f"  variant {label}: {min(times):.3f} s, act {statistics.mean(acts):.4g}")
        section["data"]["rows"] = rows
        ctx.tidy()
    section["md"] += [
        f"{name} ({spec}), {count} units, {ctx.steps} steps, {ctx.size} px; each variant run "
        f"{repeats}× (best time used). Activations scored in fp32, default layout, on the saved "
        "8-bit images; differences against the first (default) row. speed× > 1 is faster than default.",
        "",
    ]
    section["md"] += table(
        rows,
        [
            ("variant", "variant"),
            ("best_s", "best s"),
            ("seconds", "runs s"),
            ("vs_default", "speed×"),
            ("ms_per_image_step", "ms/image-step"),
            ("peak_mib", "peak MiB"),
            ("chunk", "chunk"),
            ("act_mean", "act mean"),
            ("act_mean_diff", "Δ act mean"),
            ("act_max_abs_diff", "max |Δ act| of a unit"),
            ("identical_images", "identical images"),
            ("error", "error"),
        ],
    )
    if ctx.cuda:
        free, total = torch.cuda.mem_get_info(ctx.device)
        section["data"]["memory"] = {"free_mib": round(free / MIB), "total_mib": round(total / MIB)}
        section["md"] += [
            f"Free GPU memory now {free / MIB:.0f} of {total / MIB:.0f} MiB; the engine budgets a quarter "
            "of free memory (featurevis.chunk_size). Compare its estimated MiB/image with the measured "
            "one in the featurevis sections to see how far the chunk could grow.",
            "",
        ]


def section_compile(ctx: Context, section: dict) -> None:
    """The engine's loop rewritten with the network truncated by torch.fx (torchvision's
    create_feature_extractor) instead of hooks, eager and under torch.compile. The transforms
    draw random sizes and angles from numpy every step, so only the network (forward and
    backward) is compiled, with dynamic shapes (random_scale changes its input size)."""
    from torchvision.models.feature_extraction import create_feature_extractor

    name = "googlenet"
    spec, layer, _ = MODELS[name]
    model = ctx.model(spec)
    warm_up(ctx, name)
    units = list(range(ctx.units[64]))
    jobs = jobs_for(spec, layer, units, ctx.steps, ctx.size)
    backend = ctx.args.compile_backend or ("aot_eager" if ctx.quick else "inductor")
    rows = []
    for label, compiled in (
        ("fx-truncated, eager", False),
        (f"fx-truncated, torch.compile({backend})", True),
    ):
        if ctx.left() < (90 if compiled else 20):
            section["md"] += [f"'{label}': not run, the deadline is near.", ""]
            section["status_override"] = "partial"
            break
        torch._dynamo.reset()
        model.module.to(device=ctx.device, memory_format=torch.channels_last)
        net = create_feature_extractor(model.module, return_nodes={layer: "out"})
        # dynamic=True: one compile for every input size random_scale draws, not one per size
        forward = torch.compile(net, backend=backend, dynamic=True) if compiled else net
        images, times = replica_loop(ctx, model, jobs, forward)
        acts = BENCH.activations(model, layer, units, images, ctx.device)
        median = statistics.median(times[1:]) if len(times) > 1 else times[0]
        slow = [t for t in times if t > 3 * median]
        rows.append(
            {
                "variant": label,
                "total_s": round(sum(times), 3),
                "first_step_s": round(times[0], 3),
                "median_step_s": round(median, 5),
                "ms_per_image_step": round(median / len(units) * 1e3, 4),
                "compile_s": round(sum(t - median for t in slow), 2),
                "slow_steps": len(slow),
                "act_mean": statistics.mean(acts),
            }
        )
        log(f"  {label}: first step {times[0]:.2f} s, median {median * 1e3:.2f} ms")
        section["data"]["rows"] = rows
    torch._dynamo.reset()
    section["md"] += [
        "The engine's loop with the network cut at the layer by torch.fx (torchvision's "
        "create_feature_extractor) instead of hooks, so torch.compile can take it whole; the "
        "transforms stay eager (numpy draws sizes and angles every step). Compiled with "
        "dynamic=True, since random_scale changes the input size every step. Every step is "
        "synchronized and timed; compile s = the time above 3× the median step, summed "
        "(the first compile and any recompile).",
        "",
    ]
    section["md"] += table(
        rows,
        [
            ("variant", "variant"),
            ("total_s", "total s"),
            ("first_step_s", "first step s"),
            ("compile_s", "compile s"),
            ("slow_steps", "slow steps"),
            ("median_step_s", "median step s"),
            ("ms_per_image_step", "ms/image-step"),
            ("act_mean", "act mean"),
        ],
    )


def replica_loop(ctx: Context, model, jobs: list[FeatureVisJob], forward) -> tuple[list, list[float]]:
    """featurevis._optimize for one batch, with `forward(x)["out"]` as the network."""
    settings = jobs[0].settings
    times = []
    with engine_fv._isolated_rng(), engine_fv._lucent_on(ctx.device):
        images, params = engine_fv._parameterize(jobs, settings, ctx.device)
        objective, _ = engine_fv._objective(jobs, ctx.device)
        optimizer = torch.optim.Adam(params, lr=settings.lr)
        preprocess = engine_fv.preprocessor(model.preprocessing)
        augment = lucent_transform.compose([*lucent_transform.standard_transforms, preprocess])
        np.random.seed(settings.seed)
        for _ in range(settings.steps):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            out = forward(augment(images()))["out"]
            objective(lambda _layer, out=out: out).backward()
            optimizer.step()
            ctx.sync()
            times.append(time.perf_counter() - start)
        with torch.no_grad():
            final = images()
    pixels = (final.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype(np.uint8)
    return list(pixels), times


# Most important first: correctness, the 64-unit goal, the site build; then scaling and the
# variants, and last the most expensive variant (compiling takes a minute or so).
SECTIONS = [
    ("specs", "models offline", section_specs),
    ("tests", "CUDA tests", section_tests),
    ("fv64", "featurevis 64 units", featurevis_section(64, lucent_cap=25)),
    ("atlas", "InceptionV1 atlas, one layer, default settings", section_atlas),
    ("verify", "verify --sample 24 against the CPU's cache", section_verify),
    ("kinds", "faithfulness, MACO and attribution against featurevis", section_kinds),
    ("fv256", "featurevis 256 units", featurevis_section(256, lucent_cap=6)),
    ("fv16", "featurevis 16 units", featurevis_section(16, lucent_cap=6)),
    ("build", "example site, cold build", section_build),
    ("weights", "expanded weights, GPU vs CPU", section_weights_parity),
    ("variants", "variants (googlenet, 64 units)", section_variants),
    ("compile", "torch.compile (googlenet, 64 units)", section_compile),
]


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a CPU dry run")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda[:N]")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-out", help="results folder ($OUT)")
    parser.add_argument("--budget", type=float, default=360, help="no section starts after this (s)")
    parser.add_argument("--deadline", type=float, default=450, help="looping work stops here (s)")
    parser.add_argument("--steps", type=int, default=32, help="optimizer steps of the benchmark")
    parser.add_argument(
        "--src", help="articles folder to build (default: articles/, or a tiny one with --quick)"
    )
    parser.add_argument(
        "--compile-backend", help="torch.compile backend (default inductor; aot_eager with --quick)"
    )
    parser.add_argument("--only", help="comma-separated section ids to run (default: all)")
    args = parser.parse_args()

    ctx = Context(args)
    if not ctx.cuda and not args.quick and args.device == "auto":
        parser.error("no CUDA GPU here: a full run is for the GPU machine (use --quick, or --device cpu)")
    meta = {
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "quick": args.quick,
        "budget_s": args.budget,
        "deadline_s": args.deadline,
        "steps": ctx.steps,
        "size": ctx.size,
    }
    results = Results(ctx.out, meta)
    results.write()
    try:
        environment(ctx, meta)
    except Exception as exc:  # the run goes on without the details
        results.notes.append(f"environment details failed: {type(exc).__name__}: {exc}")
    log(f"device {meta['device']}, torch {meta['torch']}, out {ctx.out.resolve()}")
    if not ctx.cuda:
        results.notes.append("NO CUDA DEVICE: every number below is from the CPU.")
    if args.quick:
        results.notes.append("QUICK: tiny sizes for a dry run; the numbers mean nothing.")
    only = {s.strip() for s in args.only.split(",")} if args.only else None
    unknown = (only or set()) - {key for key, _, _ in SECTIONS}
    if unknown:
        known = ", ".join(key for key, _, _ in SECTIONS)
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {known}")
    for key, name, function in SECTIONS:
        if only is None or key in only:
            run_section(results, ctx, key, name, function)
    data = results.write(finished=True)
    log(f"done in {elapsed():.0f} s: {ctx.out / 'gpu-results.md'} (the build's groups are there, not below)")
    print(textwrap.indent(markdown(data, detail=False), "  "), flush=True)


if __name__ == "__main__":
    main()
