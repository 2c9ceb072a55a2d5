"""Declarations of what an author writes: directive arguments and options, and the front
matter's `featurevis:` defaults, each a name, a parser, a default and a doc line.

Parsers are plain functions `str -> value` that raise ValueError with a message that says
what a valid value looks like; compose new ones the way the built-ins are written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from distillgen.faithful import CHECK_FORMS, parse_checks
from distillgen.jobs import PARAMS, FeatureVisSettings
from distillgen.units import UnitRef, is_layer_name, parse_units
from distillgen.zoo import DEFAULT_DATASET

LAYOUTS = (
    "l-body",
    "l-body-outset",
    "l-middle",
    "l-page",
    "l-page-outset",
    "l-screen",
    "l-screen-inset",
    "l-gutter",
    "side",
)


@dataclass(frozen=True)
class Option:
    name: str
    parse: Callable[[str], Any]
    default: Any
    doc: str
    required: bool = False  # the kind cannot do without it: "{kind} needs :name:"


@dataclass(frozen=True)
class Argument:
    """What a directive's argument is: `doc` for help and errors, `parse` for its value."""

    doc: str
    parse: Callable[[str], Any] = lambda value: value.strip()
    required: bool = True  # False: the kind works without one (an admonition's first line)


def text(value: str) -> str:
    if not value:
        raise ValueError("expected a value")
    return value


def integer(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError(f"expected a whole number, not '{value}'") from None
        if (lo is not None and number < lo) or (hi is not None and number > hi):
            bounds = f"from {lo}" if hi is None else f"from {lo} to {hi}"
            raise ValueError(f"expected a number {bounds}, not {number}")
        return number

    return parse


def number(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            result = float(value)
        except ValueError:
            raise ValueError(f"expected a number, not '{value}'") from None
        if not math.isfinite(result) or (lo is not None and result <= lo) or (hi is not None and result > hi):
            bounds = f"greater than {lo}" + (f" and at most {hi}" if hi is not None else "")
            raise ValueError(f"expected a number {bounds}, not {value}")
        return result

    return parse


def flag(value: str) -> bool:
    """A flag option: `:linenos:` alone means true."""
    return boolean(value) if value.strip() else True


def boolean(value: str) -> bool:
    """true/false and their synonyms; an option written with no value (`:negative:`) is a flag
    that is on, as MyST's flags are."""
    lowered = value.strip().lower()
    if lowered in ("", "true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"expected true or false, not '{value}'")


def choice(*values: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in values:
            raise ValueError(f"expected one of {', '.join(values)}; got '{value}'")
        return value

    parse.choices = values  # type: ignore[attr-defined]  # read by suggestions and docs
    return parse


_LABEL = re.compile(r"^[A-Za-z][\w.:-]*$")


def label(value: str) -> str:
    if not _LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a valid label: use letters, digits, '-', '_', '.' or ':', "
            "starting with a letter"
        )
    return value


# -- unit addresses as arguments: the parsers raise SpecError (a ValueError) -----------------


def units(value: str) -> tuple[UnitRef, ...]:
    """`mixed3:0-7,conv2:3`: any units."""
    return tuple(parse_units(value))


def one_unit(verb: str) -> Callable[[str], UnitRef]:
    """Exactly one unit; `verb` words the error: "{examples} is about one unit, not 2".
    Argument errors may name the directive as "{kind}"."""

    def parse(value: str) -> UnitRef:
        refs = parse_units(value)
        if len(refs) != 1:
            raise ValueError(f"{{kind}} {verb} one unit, not {len(refs)}")
        return refs[0]

    return parse


def units_of_one_layer(value: str) -> tuple[UnitRef, ...]:
    refs = tuple(parse_units(value))
    if len({ref.layer for ref in refs}) > 1:
        raise ValueError("{kind} plots units of one layer; use one figure per layer")
    return refs


def layer(value: str) -> str:
    value = value.strip()
    if not is_layer_name(value):
        raise ValueError(f"expected a layer name such as mixed4, not '{value}'")
    return value


LABEL = Option("label", label, None, "name to reference the figure with {numref} or [](#name)")
LAYOUT = Option("layout", choice(*LAYOUTS), "l-body", "Distill layout class of the figure")
MODEL = Option("model", text, None, "model spec (default: the front matter's model, else shapes)")

# Options that set FeatureVisSettings: a {featurevis} option each, and keys of the front
# matter's `featurevis:` mapping, which sets them for the whole article.
_DEFAULTS = FeatureVisSettings()  # the one place the defaults are written (jobs.py)
FEATUREVIS_SETTINGS = (
    Option("steps", integer(1, 10000), _DEFAULTS.steps, "optimizer steps"),
    Option("size", integer(16, 512), None, "image side in pixels (default: the model's, at most 128)"),
    Option("lr", number(0, 10), _DEFAULTS.lr, "Adam learning rate"),
    Option("seed", integer(0, 2**31 - 1), _DEFAULTS.seed, "random seed of the initial image and transforms"),
    Option("fft", boolean, _DEFAULTS.fft, "parameterize the image in Fourier space (lucent's fft)"),
    Option("decorrelate", boolean, _DEFAULTS.decorrelate, "decorrelate colours (lucent's decorrelate)"),
    Option(
        "transforms",
        choice("standard", "none"),
        _DEFAULTS.transforms,
        "lucent's standard transforms, or none",
    ),
    Option(
        "param",
        choice(*PARAMS),
        _DEFAULTS.param,
        "lucent's image parameterization, or maco: Fourier phase only, the probe set's magnitudes",
    ),
)
assert {o.name for o in FEATUREVIS_SETTINGS} == {f.name for f in fields(FeatureVisSettings)}
# The probe set of a figure that reads one (figures/probes.py), and of an article's feature
# visualizations (their measures, MACO's spectrum): `featurevis: {dataset: photos, count: 500}`.
DATASET_OPTIONS = (
    Option(
        "dataset", text, DEFAULT_DATASET, "'shapes' or 'glyphs' (a generator's sample) or a folder of images"
    ),
    Option("count", integer(1, 10_000_000), 1000, "how many images of the dataset to probe"),
    Option("sample-seed", integer(0, 2**31 - 1), 0, "which sample of the generator"),
)

# What every feature visualization must meet (faithful.py): a {featurevis} option, and a key
# of `featurevis:` in the front matter or the site config, which asks it of every figure.
CHECK = Option("check", parse_checks, None, f"what each image must meet: {CHECK_FORMS}, or none")
FEATUREVIS_DEFAULTS = (*FEATUREVIS_SETTINGS, CHECK, *DATASET_OPTIONS)


def featurevis_settings(input_size: int, *choices: dict[str, Any]) -> FeatureVisSettings:
    """Each setting from the first of `choices` that names it (a figure's own options, then the
    front matter's or the atlas's `featurevis:`), else its default. The size defaults to the
    model's input, at most lucent's 128: quick builds."""
    chosen = {
        o.name: next((given[o.name] for given in choices if o.name in given), o.default)
        for o in FEATUREVIS_SETTINGS
    }
    chosen["size"] = chosen["size"] or min(input_size, 128)
    return FeatureVisSettings(**chosen)
