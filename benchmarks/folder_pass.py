"""The folder pass (engine/ranking.py) against its limit: a plain `DataLoader` + forward loop
over the same files, on InceptionV1 (`@untrained`: the real architecture and cost), in this
one process, on the same machine.

Both read every JPEG of a folder of generated 224-px photographs-to-be (random shapes drawn
with PIL, saved at quality 90, in class folders), decode and resize them in worker processes,
and run the network to the deepest layer asked for. The plain loop only runs the network; the
pass also ranks every unit of every layer asked for. Reported: images per second of each, the
pass's share of the limit, and the peak memory of this process during each (`VmHWM` after
resetting it): what must not grow with the folder.

    python benchmarks/folder_pass.py                       # 10,000 images, mixed3a-mixed5b
    python benchmarks/folder_pass.py --images 2000 --layers mixed4a
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from distillgen import datasets
from distillgen.engine import ranking, stream
from distillgen.engine.featurevis import model_input
from distillgen.engine.hooks import capture, run
from distillgen.engine.models import load_model
from distillgen.jobs import RankingJob
from distillgen.units import fingerprint, parse_spec

MODEL = "lucent:inceptionv1@untrained"
LAYERS = "mixed3a,mixed3b,mixed4a,mixed4b,mixed4c,mixed4d,mixed4e,mixed5a,mixed5b"


def make_folder(root: Path, count: int) -> Path:
    """`count` 256-px JPEGs of random ellipses and lines in 10 class folders."""
    from PIL import Image, ImageDraw

    folder = root / "photos"
    rng = np.random.default_rng(0)
    for index in range(count):
        picture = Image.new("RGB", (256, 256), tuple(int(v) for v in rng.integers(0, 256, 3)))
        draw = ImageDraw.Draw(picture)
        for _ in range(6):
            x0, y0 = rng.integers(0, 200, 2)
            x1, y1 = x0 + rng.integers(10, 56), y0 + rng.integers(10, 56)
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            if rng.random() < 0.5:
                draw.ellipse((int(x0), int(y0), int(x1), int(y1)), fill=colour)
            else:
                draw.line((int(x0), int(y0), int(x1), int(y1)), fill=colour, width=int(rng.integers(1, 8)))
        place = folder / f"n{index % 10:02d}"
        place.mkdir(parents=True, exist_ok=True)
        picture.save(place / f"{index:05d}.jpg", quality=90)
    return folder


def _peak_from_here() -> float:
    """MiB resident now; the high-water mark is reset, for `_peak_since`."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _status(field: str) -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def plain_loop(model, data, layers: list[str]) -> float:
    """The limit: a DataLoader over the same files with the same workers, and the forward pass
    to the deepest layer; nothing kept."""
    prepare = model_input(model)
    start = time.perf_counter()
    with torch.no_grad(), capture(model.module, layers) as outputs:
        for batch in stream.batches(data, model.input_size, batch=ranking.BATCH):
            run(model.module, prepare(batch.pixels), outputs)
    return time.perf_counter() - start


def the_pass(model, data, layers: list[str], spec) -> float:
    jobs = [RankingJob(str(spec), fingerprint(spec), layer, data) for layer in layers]
    start = time.perf_counter()
    ranking.compute(model, jobs, torch.device("cpu"), lambda steps: None, None)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--layers", default=LAYERS)
    args = parser.parse_args()
    spec = parse_spec(MODEL)
    model = load_model(spec)
    layers = [model.layer(name).name for name in args.layers.split(",")]
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        folder = make_folder(Path(scratch), args.images)
        print(f"made {args.images:,} JPEGs in {time.perf_counter() - started:.0f} s")
        data = datasets.dataset(str(folder), args.images, 0, Path(scratch))
        print(
            f"{MODEL}, layers {', '.join(layers)}; {torch.get_num_threads()} torch threads, "
            f"{stream.WORKERS} decoding workers"
        )
        for name, measure in (
            ("plain DataLoader + forward", lambda: plain_loop(model, data, layers)),
            ("distillgen ranking pass", lambda: the_pass(model, data, layers, spec)),
        ):
            before = _peak_from_here()
            seconds = measure()
            growth = _status("VmHWM") - before
            print(
                f"{name:28s} {seconds:7.1f} s  {args.images / seconds:6.1f} images/s  peak +{growth:5.0f} MiB"
            )
            if name.startswith("plain"):
                limit = seconds
        print(f"the pass takes {seconds / limit:.2f}x the plain loop's time")


if __name__ == "__main__":
    main()
