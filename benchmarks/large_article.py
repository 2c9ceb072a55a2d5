"""Build time and peak memory of one large article, at 1 MB and 5 MB of Markdown.

The article repeats realistic sections (emphasis, links, inline and display math, footnotes,
citations, margin notes, and the same few headings over and over, as long articles do) and has
no computed figures, so it measures the parse → check → render → write path alone. A linear
build takes about five times as long and as much memory at 5 MB as at 1 MB (less, in fact: the
interpreter's start-up and imports are paid once).

    .venv/bin/python benchmarks/large_article.py            # both sizes
    .venv/bin/python benchmarks/large_article.py --mb 5     # one size
    .venv/bin/python benchmarks/large_article.py --profile  # cProfile's top functions too

Each size is built in a fresh subprocess, so the peak memory (the child's maximum resident set
size) is the build's own.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

FRONT = """\
---
title: A Very Long Article
description: Many sections of ordinary prose, for timing the build.
authors:
  - name: Chris Olah
    url: https://colah.github.io
    affiliations: [OpenAI]
bibliography: refs.bib
---

"""

SECTION = """\
## Curve detectors

Curve detectors respond to *curves* of a particular **orientation**, and much less to straight
lines {{cite}}`olah2020zoom`.[^n{n}a] Their weights look like [a curve](https://distill.pub/2020/circuits/)
drawn in the kernel; see [the overview](#curve-detectors) and the
[appendix](#appendix). With $f(x) = \\sum_i w_i x_i + b$ the response grows as $\\theta \\to 0$.

### Details

Each unit $u_{{{n}}}$ is *excited* by curves within about $\\pm 20^\\circ$ of its preferred
orientation and ~~inhibited~~ by the opposite one {{cite:t}}`cammarata2020curve`. The effect is
`robust` to scale, colour and texture; we measured it on 2,000 images.[^n{n}b]

$$
\\mathrm{{response}}(\\theta) = \\max_{{x \\in X_\\theta}} a_u(x)
$$

:::{{note}}
A margin note for section {n}, with a [link](https://example.com/{n}) and *emphasis*.
:::

### Results

- first point of section {n}, with `code`
- second point, with a [link](https://example.org/item/{n})

[^n{n}a]: The first footnote of section {n}, with *emphasis* and $x^2$.
[^n{n}b]: The second footnote of section {n}.

"""

BIB = """\
@article{olah2020zoom,
  author = {Olah, Chris and Cammarata, Nick and Schubert, Ludwig},
  title = {Zoom In: An Introduction to Circuits},
  journal = {Distill}, year = {2020}, doi = {10.23915/distill.00024.001}
}
@article{cammarata2020curve,
  author = {Cammarata, Nick and Olah, Chris},
  title = {Curve Detectors}, journal = {Distill}, year = {2020}
}
"""


def write_article(folder: Path, megabytes: float) -> Path:
    """articles/large.md of about `megabytes` MB, with its bibliography."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "refs.bib").write_text(BIB, encoding="utf-8")
    parts = [FRONT]
    size, n = len(FRONT), 0
    while size < megabytes * 1_000_000:
        n += 1
        section = textwrap.dedent(SECTION).format(n=n)
        parts.append(section)
        size += len(section.encode())
    path = folder / "large.md"
    path.write_text("".join(parts), encoding="utf-8")
    return path


def build_once(megabytes: float, profile: bool) -> tuple[float, float, int]:
    """(seconds, peak resident MB, article bytes) of building a fresh article in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        article = write_article(root / "articles", megabytes)
        code = _CHILD.format(src=root / "articles", out=root / "build", profile=profile)
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", code])
        _pid, status, usage = os.wait4(child.pid, 0)  # this child's own peak, not all children's
        seconds = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode:
            sys.exit(f"the build of the {megabytes} MB article failed (exit {child.returncode})")
        return seconds, usage.ru_maxrss / 1024, article.stat().st_size


# The child builds through the CLI entry point, as an author would, without the progress bar.
_CHILD = """
import cProfile, pstats, sys
from distillgen.cli import main
args = ["build", "{src}", "-o", "{out}", "-q", "--frozen"]
if {profile}:
    profiler = cProfile.Profile()
    try:
        profiler.runcall(main, args, standalone_mode=False)
    finally:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
else:
    main(args, standalone_mode=False)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, action="append", help="article size in MB (repeatable)")
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    args = parser.parse_args()
    print(f"{'size':>8} {'seconds':>8} {'peak MB':>8}")
    for megabytes in args.mb or [1.0, 5.0]:
        seconds, peak, size = build_once(megabytes, args.profile)
        print(f"{size / 1e6:>6.2f}MB {seconds:>8.1f} {peak:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
