"""What experiments run on, shared by {tuning}, {examples}, {ablation} and {universality}:
stimulus sweeps (`:stimulus:`, `:range:`, `:params:`) and probe sets (`:dataset:`, `:count:`).

Everything is validated at check time without torch: a built-in family's parameters from its
signature, an author's `file.py:function(param)` from the file's syntax tree (it is only run
by the engine), a dataset folder by listing it.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
from pathlib import Path

from distillgen import datasets, stimuli
from distillgen.diagnostics import suggest
from distillgen.figures.base import DirectiveInput
from distillgen.figures.context import CheckContext
from distillgen.jobs import Dataset, Sweep
from distillgen.options import DATASET_OPTIONS, Option, integer, text
from distillgen.units import source_fingerprint
from distillgen.zoo import TASKS

_AUTHOR = re.compile(r"^(?P<path>[^:()]+\.py):(?P<function>[A-Za-z_]\w*)\((?P<param>[A-Za-z_]\w*)\)$")
PERIODIC = "orientation"  # sweeps of this parameter wrap around: polar plots, no repeated end

STIMULUS_OPTIONS = (
    Option(
        "stimulus",
        text,
        "curve",
        f"a family ({', '.join(stimuli.FAMILIES)}) or your own 'file.py:function(param)'",
    ),
    Option("range", text, None, "'first last count' of the swept parameter (default: the family's)"),
    Option("params", text, "", "fixed parameters of the family, e.g. 'radius=10, span=90'"),
)

# With :on: tuning: how many jittered draws of each stimulus a response averages (stimuli.draws).
# Not for attributions, which draw a map per input.
DRAWS = Option(
    "draws",
    integer(1, 64),
    stimuli.DRAWS,
    "jittered draws (sub-pixel offset, phase, ±10% radius or frequency) averaged per swept value; "
    "1 draws each stimulus once, as written",
)
STIMULUS_NAMES = {option.name for option in (*STIMULUS_OPTIONS, DRAWS)}
DATASET_NAMES = {option.name for option in DATASET_OPTIONS}


def warn_unused(directive: DirectiveInput, ctx: CheckContext, on: str, count_option: str) -> None:
    """A warning for each probe option that `:on: ON` does not read: the probe set's (and
    `count_option`, how many of its top images) but with `examples`, the sweep's but with
    `tuning`."""
    used = {"examples": {count_option, *DATASET_NAMES}, "tuning": STIMULUS_NAMES}.get(on, set())
    for name in sorted(directive.given & (DATASET_NAMES | STIMULUS_NAMES | {count_option})):
        if name not in used:
            ctx.warning(directive.option_line(name), f":{name}: has no effect with :on: {on}")


def sweep(directive: DirectiveInput, ctx: CheckContext) -> Sweep | None:
    """The directive's stimulus sweep (with its `:draws:`, for a kind that has the option), or
    None after reporting an error. Its `size` is 0 until
    the model's input size is known: `dataclasses.replace(sweep, size=…)` when planning."""
    opts = directive.options
    line = directive.option_line("stimulus")
    written = opts["stimulus"]
    match = _AUTHOR.match(written)
    if written in stimuli.FAMILIES:
        function, param, default_range, _unit = stimuli.FAMILIES[written]
        names = list(inspect.signature(function).parameters)[2:]
        # The drawing code is part of the result (stimuli.py and the helpers it draws with): a
        # change to it must not reuse old artifacts.
        family, fingerprint, where = written, source_fingerprint(stimuli.__name__), ""
    elif match:
        path = ctx.file(match["path"], line)  # inside the articles folder
        if path is None:
            return None
        author_names = _author_parameters(ctx, line, path, match["function"])
        if author_names is None:
            return None
        names = author_names
        family, where = f"{match['path']}:{match['function']}", f"{path}:{match['function']}"
        fingerprint = hashlib.sha256(path.read_bytes()).hexdigest()
        param, default_range = match["param"], None
    else:
        known = list(stimuli.FAMILIES)
        ctx.error(
            line,
            f"unknown stimulus '{written}'{suggest(written, known)}; use one of {', '.join(known)} "
            "or 'file.py:function(param)'",
        )
        return None
    values = _range(ctx, directive, opts["range"], default_range, param == PERIODIC)
    fixed = _params(ctx, directive.option_line("params"), opts["params"], names)
    if values is None or fixed is None:
        return None
    draws = opts["draws"] if "draws" in directive.options else 1
    return Sweep(family, fingerprint, param, values, fixed, size=0, draws=draws, path=where)


def _author_parameters(ctx: CheckContext, line: int, path: Path, function: str) -> list[str] | None:
    """The keyword parameters after (value, size) of `function` in `path`, read without running it."""
    if not path.is_file():
        ctx.error(line, f"stimulus file not found: {path}")
        return None
    try:
        tree = ast.parse(path.read_text(), str(path))
    except SyntaxError as exc:
        ctx.error(line, f"cannot read {path}: {exc.msg} (line {exc.lineno})")
        return None
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    if function not in functions:
        ctx.error(line, f"{path} has no function '{function}'{suggest(function, functions)}")
        return None
    arguments = [a.arg for a in functions[function].args.args]
    if len(arguments) < 2:
        ctx.error(line, f"{function}() must take (value, size, ...): the swept value and the image side")
        return None
    return arguments[2:]


def _range(
    ctx: CheckContext, directive: DirectiveInput, written: str | None, default, periodic: bool
) -> tuple[float, ...] | None:
    if written is None:
        if default is None:
            ctx.error(directive.line, "a stimulus function of your own needs :range: first last count")
            return None
        first, last, count = default
    else:
        parts = written.split()
        try:
            first, last, count = float(parts[0]), float(parts[1]), int(parts[2])
            if len(parts) != 3 or not 2 <= count <= 361 or first == last:
                raise ValueError
        except (ValueError, IndexError):
            ctx.error(
                directive.option_line("range"),
                f"bad value for ':range:': expected 'first last count' with 2 to 361 distinct values, "
                f"e.g. '0 180 12', not '{written}'",
            )
            return None
    return tuple(stimuli.sweep(first, last, count, periodic))


def _params(
    ctx: CheckContext, line: int, written: str, names: list[str]
) -> tuple[tuple[str, float], ...] | None:
    fixed = []
    for item in filter(None, (part.strip() for part in written.split(","))):
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in names:
            known = ", ".join(names) or "none"
            ctx.error(
                line, f"unknown stimulus parameter '{name}'{suggest(name, names)}; its parameters: {known}"
            )
            return None
        try:
            fixed.append((name, float(value)))
        except ValueError:
            ctx.error(line, f"bad value for ':params:': '{item}' is not name=number")
            return None
    return tuple(sorted(fixed))


def draws_note(sweep: Sweep) -> str:
    """What a sweep's responses are, in a sentence under the figure (HTML)."""
    if sweep.draws == 1:
        return '<p class="sweep-draws">Each stimulus was drawn once, as shown.</p>'
    return (
        f'<p class="sweep-draws">Each response is the mean over {sweep.draws} jittered draws of its '
        "stimulus: moved by less than a pixel, its phase turned, its radius or frequency varied by "
        "up to 10%, so the curve measures the swept parameter and not the pixel grid.</p>"
    )


def axis_label(sweep: Sweep) -> str:
    """The swept parameter with its unit, for a built-in family: 'frequency (cycles/image)'."""
    family = stimuli.FAMILIES.get(sweep.family)
    return f"{sweep.param} ({family[3]})" if family else sweep.param


# A probe set a figure holds in memory whole (universality compares every image's activations
# in two models): 20,000 images of 224 px are 12 GB. Examples and ablations over a folder read
# it as a stream (engine/stream.py), at any size.
IN_MEMORY = 20_000


def dataset(directive: DirectiveInput, ctx: CheckContext, streamed: bool = False) -> Dataset | None:
    """The directive's probe set, or None after reporting an error. A figure not `streamed`
    holds it in memory (as does every figure on a generator's sample, drawn whole), and may
    not ask for more than IN_MEMORY images."""
    opts = directive.options
    if opts["count"] > IN_MEMORY and not (streamed and opts["dataset"] not in TASKS):
        ctx.error(
            directive.option_line("count"),
            f"{{{directive.kind}}} holds its probe images in memory: :count: may be at most {IN_MEMORY:,}, "
            f"not {opts['count']:,} (a folder of images has no such limit for examples and ablations)",
        )
        return None
    try:
        return datasets.dataset(
            opts["dataset"],
            opts["count"],
            opts["sample-seed"],
            ctx.folder,
            ctx.roots,
            warn=lambda message: ctx.warning(directive.option_line("dataset"), message),
        )
    except datasets.DatasetError as exc:
        ctx.error(directive.option_line("dataset"), str(exc))
        return None
