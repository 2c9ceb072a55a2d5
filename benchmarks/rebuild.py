"""A cold build against rebuilds with nothing changed (every figure cached): one that renders
every page again (the cache's rendered pages deleted first, as every rebuild did before pages
were kept), and one that takes unchanged pages from the cache.

Each build runs in a fresh Python process, as `distillgen build` would, with a new cache
folder, and reports whether it imported torch:

    python benchmarks/rebuild.py            # the example site in articles/
    python benchmarks/rebuild.py SRC
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUILD = """
import json, sys, time
from pathlib import Path
from distillgen.diagnostics import Reporter
from distillgen.site import build
start = time.perf_counter()
result = build(Path(sys.argv[1]), Path(sys.argv[2]), Reporter(), cache_dir=Path(sys.argv[3]))
print(json.dumps({"computed": result.computed, "cached": result.cached, "rendered": result.rendered,
                  "torch": "torch" in sys.modules, "inside": time.perf_counter() - start}))
"""


def timed_build(src: Path, out: Path, cache: Path) -> dict:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(src), str(out), str(cache)],
        check=True,
        capture_output=True,
        text=True,
    )
    return {**json.loads(done.stdout.splitlines()[-1]), "seconds": time.perf_counter() - start}


def main() -> None:
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "articles")
    with tempfile.TemporaryDirectory() as scratch:
        out, cache = Path(scratch) / "build", Path(scratch) / "cache"
        print(
            f"{'build':<28} {'seconds':>8} {'figures computed':>17} {'cached':>7} {'pages rendered':>15} "
            f"{'imports torch':>14}"
        )
        for name in ("cold", "no change, every page rendered", "no change"):
            if name.startswith("no change, every"):
                shutil.rmtree(cache / "pages", ignore_errors=True)
            r = timed_build(src, out, cache)
            print(
                f"{name:<28} {r['seconds']:>8.2f} {r['computed']:>17} {r['cached']:>7} {r['rendered']:>15} "
                f"{str(r['torch']):>14}"
            )


if __name__ == "__main__":
    main()
