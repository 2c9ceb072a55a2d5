"""A Microscope-size atlas: InceptionV1 (`@untrained`: the real architecture and cost), every
layer from mixed3a to mixed5b (5,484 units), at low settings, on this machine, in one process
through `site.build` as `distillgen atlas` runs it, from an empty cache.

Reported: the cold build's time split into feature visualization (the optimization), unit
pages' weights, the folder's ranking pass, dataset examples, the faithfulness measures,
planning, rendering, search indexing and writing, each per unit; the peak memory of the
build's process (its decoding workers and Pagefind are processes of their own, not counted);
then a no-change rebuild in a fresh process. Then, on paper, the same atlas at full settings
from the measured per-unit costs and the GPU's per image-step time in benchmarks/GPU.md.

    python benchmarks/inception_atlas.py                          # about an hour on 2 cores
    python benchmarks/inception_atlas.py --layers mixed3a --images 200   # a few minutes
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from folder_pass import make_folder

from distillgen import site
from distillgen.compute import Options
from distillgen.diagnostics import Reporter
from distillgen.safety import Grants
from distillgen.source.siteconfig import AtlasRequest

MODEL = "lucent:inceptionv1@untrained"
LAYERS = "mixed3a,mixed3b,mixed4a,mixed4b,mixed4c,mixed4d,mixed4e,mixed5a,mixed5b"
# benchmarks/GPU.md: lucent:inceptionv1 at 224 px, 256 units in a batch, on an NVIDIA H200
GPU_MS_PER_IMAGE_STEP = 1.10
FULL_STEPS, FULL_DIVERSITY = 512, 4  # Microscope-like settings: one image and a diversity set

REBUILD = """
import json, sys, time
from pathlib import Path
from distillgen.diagnostics import Reporter
from distillgen.safety import Grants
from distillgen.site import build
from distillgen.source.siteconfig import AtlasRequest
fields = json.loads(sys.argv[3])
request = AtlasRequest(**{**fields, "layers": tuple(fields["layers"]), "base": Path(fields["base"])})
start = time.perf_counter()
result = build(None, Path(sys.argv[1]), Reporter(), cache_dir=Path(sys.argv[2]),
               grants=Grants(roots=(Path(fields["base"]),)), atlases=(request,))
print(json.dumps({"inside": time.perf_counter() - start, "rendered": result.rendered,
                  "computed": result.computed, "torch": "torch" in sys.modules}))
"""


class Phases:
    """Seconds per phase: compute from the build's log ("computed <model>: <kind> of …"), the
    rest by timing site's own functions."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.started = time.perf_counter()

    def log(self, message: str) -> None:
        match = re.match(r"computed .*?: (\w+) of .* in ([\d.]+)s", message)
        if match:
            self.seconds[match[1]] += float(match[2])
        if message.startswith(("computing", "computed")):
            print(f"  {time.perf_counter() - self.started:7.0f} s  {message}", flush=True)

    def timed(self, name: str, function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return wrapper


def _status(field: str) -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--layers", default=LAYERS)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--diversity", type=int, default=2)
    parser.add_argument("--examples", type=int, default=4)
    parser.add_argument("--images", type=int, default=1000, help="JPEGs in the probe folder")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a folder with the photos/ and cache/ of an earlier run: only what follows the compute",
    )
    args = parser.parse_args()
    phases = Phases()
    for name in ("plan_atlases", "_render_site", "search_bundle", "_write_site"):
        setattr(site, name, phases.timed(name, getattr(site, name)))
    with tempfile.TemporaryDirectory() as folder:
        scratch = args.reuse or Path(folder)
        if not args.reuse:
            make_folder(scratch, args.images)
        request = AtlasRequest(
            MODEL,
            tuple(args.layers.split(",")),
            {"steps": args.steps},
            diversity=args.diversity,
            examples=args.examples,
            dataset="photos",
            base=scratch,
        )
        out, cache = scratch / "out", scratch / "cache"
        start = time.perf_counter()
        result = site.build(
            None,
            out,
            Reporter(echo=print),
            options=Options(log=phases.log),
            cache_dir=cache,
            grants=Grants(roots=(scratch,)),  # the probe folder lies outside the working directory
            atlases=(request,),
        )
        cold = time.perf_counter() - start
        peak = _status("VmHWM")
        units = result.atlas_units
        s = phases.seconds
        rows = [
            ("feature visualization", s["featurevis"]),
            ("unit pages' weights", s["weights"]),
            ("ranking pass over the folder", s["ranking"]),
            ("dataset examples", s["examples"]),
            ("faithfulness measures", s["faithfulness"]),
            ("planning the atlas", s["plan_atlases"]),
            ("rendering pages", s["_render_site"]),
            ("search index (Pagefind)", s["search_bundle"]),
            ("writing the site", s["_write_site"]),
        ]
        rows.append(("the rest (loading, keys, cache)", cold - sum(seconds for _, seconds in rows)))
        print(
            f"\n{MODEL}, {args.layers}: {units:,} units, {result.computed:,} figures, {result.files:,} files"
        )
        print(
            f"settings: {args.steps} steps, diversity {args.diversity}, {args.examples} examples each way "
            f"over {args.images:,} JPEGs\n"
        )
        print(f"{'phase':34s} {'s':>8s} {'ms per unit':>12s}")
        for name, seconds in rows:
            print(f"{name:34s} {seconds:8.1f} {1000 * seconds / units:12.1f}")
        print(f"{'cold build':34s} {cold:8.1f} {1000 * cold / units:12.1f}")
        print(f"\npeak memory of this process: {peak / 1024:.2f} GiB")

        fields = {
            "model": MODEL,
            "layers": list(request.layers),
            "featurevis": request.featurevis,
            "diversity": request.diversity,
            "examples": request.examples,
            "dataset": "photos",
            "base": str(scratch),
        }
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", REBUILD, str(out), str(cache), json.dumps(fields)],
            check=True,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        again = json.loads(done.stdout.splitlines()[-1])
        print(
            f"no-change rebuild: {again['inside']:.1f} s in build, {time.perf_counter() - started:.1f} s the "
            f"whole command; {again['computed']} computed, {again['rendered']} rendered; torch imported: "
            f"{again['torch']}"
        )

        image_steps = units * FULL_STEPS * (1 + FULL_DIVERSITY)
        optimization = image_steps * GPU_MS_PER_IMAGE_STEP / 1000
        rest = cold - s["featurevis"]  # measured on this CPU; on paper it does not shrink with GPUs
        print(
            f"\non paper, {FULL_STEPS} steps and a diversity set of {FULL_DIVERSITY} per unit: "
            f"{image_steps:,} image-steps at {GPU_MS_PER_IMAGE_STEP} ms (GPU.md, H200)"
        )
        for gpus in (1, 8, 64):
            print(
                f"  {gpus:3d} GPUs: optimization {optimization / gpus / 3600:6.2f} h "
                f"+ the rest as here {rest / 3600:.2f} h"
            )


if __name__ == "__main__":
    main()
