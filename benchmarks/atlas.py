"""The atlas of the shapes network (conv2, mixed3, mixed4: 192 units): cold in-process against
cold on a local Ray runtime, then rebuilds with nothing changed.

Both cold builds run in this one process through `site.build`, as `distillgen atlas` does, each
from an empty cache, on the same machine; Ray's time includes starting its local runtime and
its workers (importing torch, loading the model), as a real `--executor ray` build pays. Every
artifact the two make must have the same keys (the same jobs); the images' bytes are equal
only where the torch thread counts are (a Ray task runs one thread, see executors.py).

The no-change rebuilds run as `distillgen atlas` would, in a fresh process, and report the
time inside `build` and the whole command's (Python's start and imports included).

    python benchmarks/atlas.py                      # 8 steps per image: about 6 minutes here
    python benchmarks/atlas.py --steps 32 --layers conv2,mixed3

Scaling: the same with one layer (`--layers conv2`) gives the cost per unit of a small atlas;
the cold time per unit of 192 units should be the same or lower (work is batched per layer).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from distillgen.compute import Options
from distillgen.diagnostics import Reporter
from distillgen.executors import executor
from distillgen.site import build
from distillgen.source.siteconfig import AtlasRequest

REBUILD = """
import json, sys, time
from pathlib import Path
from distillgen.diagnostics import Reporter
from distillgen.site import build
from distillgen.source.siteconfig import AtlasRequest
request = AtlasRequest(**json.loads(sys.argv[3]))
start = time.perf_counter()
result = build(None, Path(sys.argv[1]), Reporter(), cache_dir=Path(sys.argv[2]), atlases=(request,))
print(json.dumps({"inside": time.perf_counter() - start, "rendered": result.rendered,
                  "computed": result.computed, "torch": "torch" in sys.modules}))
"""


def cold(request: AtlasRequest, name: str, scratch: Path) -> tuple[float, dict]:
    """Seconds of a cold build with executor `name`, and its figures (key -> record)."""
    out, cache = scratch / name / "out", scratch / name / "cache"
    options = Options(executor=executor(name))
    start = time.perf_counter()
    try:
        result = build(None, out, Reporter(echo=print), options=options, cache_dir=cache, atlases=(request,))
    finally:
        options.executor.close()
    seconds = time.perf_counter() - start
    assert result.computed and not result.cached, "the cache was not empty"
    keys = sorted(p.name for p in (cache / "objects").glob("*/*") if p.is_dir())
    return seconds, {"keys": keys, "units": result.atlas_units, "figures": result.computed}


def rebuild(request: AtlasRequest, scratch: Path) -> dict:
    out, cache = scratch / "in-process" / "out", scratch / "in-process" / "cache"
    fields = {
        "model": request.model,
        "layers": list(request.layers),
        "featurevis": request.featurevis,
        "diversity": request.diversity,
        "examples": request.examples,
    }
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", REBUILD, str(out), str(cache), json.dumps(fields)],
        check=True,
        capture_output=True,
        text=True,
    )
    return {**json.loads(done.stdout.splitlines()[-1]), "command": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", default="conv2,mixed3,mixed4")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--skip-ray", action="store_true", help="only the in-process build and rebuilds")
    args = parser.parse_args()
    request = AtlasRequest("shapes", tuple(args.layers.split(",")), {"steps": args.steps})
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        local, figures = cold(request, "in-process", scratch)
        units = figures["units"]
        print(
            f"\ncold, in-process:   {local:7.1f} s  ({units} units, {figures['figures']} figures, "
            f"{local / units:.3f} s per unit)"
        )
        if not args.skip_ray:
            remote, ray_figures = cold(request, "ray", scratch)
            assert ray_figures["keys"] == figures["keys"], "the two executors computed different jobs"
            print(
                f"cold, local Ray:    {remote:7.1f} s  ({(remote / local - 1) * 100:+.1f} % against "
                "in-process; the same figure keys)"
            )
        for attempt in (1, 2, 3):
            r = rebuild(request, scratch)
            assert r["computed"] == 0 and r["rendered"] == 0, r
            print(
                f"no-change rebuild {attempt}: {r['inside']:5.2f} s in build, {r['command']:5.2f} s the "
                f"whole command; {r['rendered']} pages rendered; imports torch: {r['torch']}"
            )


if __name__ == "__main__":
    main()
