"""Faithful feature visualizations: every image measured against natural images, and the
checks an author can ask for (`{featurevis}` `:check:`, or `featurevis: {check: …}` for a
whole article or site).

A feature visualization claims "this is what the unit responds to". Its measures (jobs.py's
`FaithfulnessResult`, computed by engine/faithfulness.py on a probe set) test the claim:

- *specificity*: the unit's rank among its layer's units on the image, each unit's activation
  normalized by its spread on the probe set (1: the image excites its unit more than any
  other, relative to what each usually does);
- *natural ratio*: the unit's activation on the image over that on its strongest probe image;
- *path similarity* (Geirhos et al., ICML 2024): how alike the image's activations in the
  earlier layers are to those of the unit's strongest probe images, beside the same for random
  probe images (the baseline): an image that reaches its unit along another path than natural
  images do scores near the baseline.

Torch-free: the build plans the measures and checks them from their cached results.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from pathlib import Path

from distillgen.jobs import Dataset, FaithfulnessJob, FaithfulnessResult, FeatureVisJob
from distillgen.render.words import number

PROBE_COUNT = 1000  # the probe set's images, as every figure that names none reads it


@functools.cache
def default_probe() -> Dataset:
    """The probe set that figures naming none read (`:dataset:`'s default): the measures'."""
    from distillgen import datasets
    from distillgen.zoo import DEFAULT_DATASET

    return datasets.dataset(DEFAULT_DATASET, PROBE_COUNT, 0, Path("."))


def measures_of(job: FeatureVisJob, dataset: Dataset | None = None) -> FaithfulnessJob | None:
    """The job measuring `job`'s images (on the default probe set unless given); None for a
    direction, which has no unit to rank."""
    if job.objective == "direction":
        return None
    return FaithfulnessJob.of(job, sample(dataset or default_probe()))


def sample(dataset: Dataset) -> Dataset:
    """At most PROBE_COUNT images of a folder (spread over its classes, datasets.py): the
    measures and MACO's spectrum hold their probe images in memory; an atlas ranks a whole
    folder for its examples."""
    return dataclasses.replace(dataset, count=min(dataset.count, PROBE_COUNT))


# -- checks ----------------------------------------------------------------------------------

_CHECK = re.compile(
    r"^(?P<measure>specificity|natural-ratio|path)\s*(?P<op><=|>=|<|>)\s*(?P<bound>baseline|[-+]?\d+(?:\.\d+)?)$"
)
CHECK_FORMS = "specific, specificity <= N, natural-ratio >= X, path > baseline, path >= X"
_OPS = {"<=": float.__le__, ">=": float.__ge__, "<": float.__lt__, ">": float.__gt__}


@dataclass(frozen=True)
class Check:
    """One condition every image of a figure must meet."""

    measure: str  # "specificity", "natural-ratio" or "path"
    op: str
    bound: float | None  # None: the path's random baseline
    text: str  # as written

    def value(self, result: FaithfulnessResult, image: int) -> float | None:
        if self.measure == "specificity":
            return float(result.specificity[image])
        if self.measure == "natural-ratio":
            return result.natural_ratio[image]
        return result.path_similarity(image)

    def failure(self, result: FaithfulnessResult, image: int) -> str | None:
        """Why image `image` fails the check, or None when it holds (or cannot apply: a first
        layer has no path, a unit silent on the probe set no natural ratio)."""
        value = self.value(result, image)
        bound = result.baseline if self.bound is None else self.bound
        if value is None or bound is None or _OPS[self.op](float(value), float(bound)):
            return None
        if self.measure == "specificity":
            return f"its specificity is {int(value)} of {result.units} units"
        if self.measure == "natural-ratio":
            return f"its natural ratio is {number(value)}"
        random = f" (random probe images: {number(result.baseline)})" if result.baseline is not None else ""
        return f"its path similarity is {number(value)}{random}"


def parse_checks(value: str) -> tuple[Check, ...]:
    """`specific, natural-ratio >= 1`: the checks, comma-separated; `none` for none (to turn
    off a check the site config asks for). ValueError says what a valid one looks like."""
    checks = []
    for written in (part.strip() for part in value.split(",")):
        if written == "none":
            continue
        if written == "specific":
            checks.append(Check("specificity", "<=", 1.0, written))
            continue
        match = _CHECK.match(written)
        if not match:
            raise ValueError(f"'{written}' is not a check; write one of: {CHECK_FORMS}, or none")
        bound = match["bound"]
        if bound == "baseline" and match["measure"] != "path":
            raise ValueError(f"'{written}': only the path is compared with its baseline")
        checks.append(
            Check(match["measure"], match["op"], None if bound == "baseline" else float(bound), written)
        )
    return tuple(checks)


# -- words -----------------------------------------------------------------------------------


def summary(result: FaithfulnessResult, image: int = 0) -> str:
    """One line for a hover card: 'specificity 1 of 16 · 2.3× its strongest probe image ·
    path 0.41 (random 0.12)'."""
    parts = [f"specificity {result.specificity[image]} of {result.units}"]
    ratio = result.natural_ratio[image]
    parts.append(
        f"{number(ratio)}× its strongest probe image" if ratio is not None else "silent on the probe set"
    )
    path = result.path_similarity(image)
    if path is not None and result.baseline is not None:
        parts.append(f"path {number(path)} (random {number(result.baseline)})")
    return " · ".join(parts)
