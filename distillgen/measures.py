"""How `distillgen verify` compares a recomputed figure with its cached artifact: one measure
per computed kind (named in the table of kinds, kinds.py), in the measure's own units, which
the kind's tolerance bounds.

    featurevis    the layer's whole response profile to the cached and to the recomputed
                  image (each unit normalized by its spread on the probe set): how far the
                  unit's standing in it (its value less the layer's top) and its own value
                  moved, relative to the profile's peak. Pixels differ between GPU and CPU,
                  what the image does to the layer should not; another unit's image (a swap)
                  puts the unit elsewhere in the profile
    faithfulness  the natural ratio and path similarity, largest absolute difference; and
                  the same specificity
    spectrum      max |Δ| of the magnitudes, relative to the largest
    weights       max |Δ| of the kernels, relative to the cached kernels' largest magnitude
    tuning        max |Δ| of the responses, relative to the largest cached response
    examples      the share of the top-k images not in both sets
    ranking       the same, over every unit of the layer (both ends)
    ablation      the effect (relative change of the mean response), absolute difference;
                  and the same verdict (the prediction held or failed, or the effect's sign)
    attribution   every unit's attribution in every stage, max |Δ| relative to the largest;
                  and the same units drawn
    universality  the share of units matched to another partner (the figure's matching)
    dictionary    the fraction of variance unexplained, relative difference
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from distillgen import kernels
from distillgen.jobs import FeatureVisJob

if TYPE_CHECKING:
    from distillgen.engine import Output
    from distillgen.verify import Figure

# A feature visualization's layer's normalized responses to PNG images, [images, units], on
# this machine (verify's: loads torch; engine/faithfulness.py's `profiles`).
Profiles = Callable[["FeatureVisJob", list[bytes]], np.ndarray]
# A kind's measure: the cached figure, its recomputed output, and `Profiles`.
MeasureFunction = Callable[["Figure", "Output", Profiles], "Measure"]


@dataclass(frozen=True)
class Measure:
    name: str  # what was compared
    cached: float
    recomputed: float
    difference: float  # compared with the kind's tolerance
    agrees: bool = True  # a categorical part (an ablation's verdict) is the same
    note: str = ""


def featurevis(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached = [figure.artifact.file(name).read_bytes() for name in figure.artifact.result(figure.job).images]
    fresh = [output.files[name] for name in output.result.images]
    assert isinstance(figure.job, FeatureVisJob)
    rows = profiles(figure.job, cached + fresh)
    unit = figure.job.unit if figure.job.objective != "direction" else None
    pairs = [profile_difference(rows[i], rows[len(cached) + i], unit) for i in range(len(cached))]
    worst = max(range(len(pairs)), key=pairs.__getitem__)  # the worst image of a set
    before, after = rows[worst], rows[len(cached) + worst]
    peaks = f"peaks at unit {int(np.argmax(before))} → {int(np.argmax(after))}"
    note = "" if np.argmax(before) == np.argmax(after) else peaks
    return Measure(
        "its unit in the layer's profile, Δ",
        _standing(before, unit),
        _standing(after, unit),
        pairs[worst],
        note=note,
    )


def profile_difference(cached: np.ndarray, fresh: np.ndarray, unit: int | None) -> float:
    """How differently two images drive a layer (each unit normalized by its spread on the
    probe set), in units of the larger profile's peak: the larger of the change in the unit's
    standing (its value less the layer's top) and the change in its own value; for a direction
    (no unit), 1 − the profiles' correlation. Calibrated on the example site (benchmarks/
    faithfulness.py): recomputations with other rounding stay under 0.13, 97 % of swapped pairs
    of one layer's images exceed it; the rest are images of near-duplicate units."""
    if unit is None:
        return 1 - correlation(cached, fresh)
    scale = max(float(np.abs(cached).max()), float(np.abs(fresh).max()), 1e-12)
    standing = abs(_standing(cached, unit) - _standing(fresh, unit))
    return max(standing, abs(float(cached[unit] - fresh[unit])) / scale)


def _standing(profile: np.ndarray, unit: int | None) -> float:
    """The unit's value less the layer's top, over the profile's largest magnitude (0: it
    leads)."""
    if unit is None:
        return 0.0
    return float((profile[unit] - profile.max()) / max(float(np.abs(profile).max()), 1e-12))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / norm) if norm > 0 else 0.0


def _listed(units) -> str:
    return ", ".join(map(str, units))


def faithfulness(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached, fresh = figure.artifact.result(figure.job), output.result
    differences = [
        abs(a - b)
        for before, after in ((cached.natural_ratio, fresh.natural_ratio), (cached.path, fresh.path))
        for a, b in zip(_flat(before), _flat(after), strict=False)
        if a is not None and b is not None
    ]
    same = cached.specificity == fresh.specificity
    note = (
        ""
        if same
        else f"specificity {_listed(list(cached.specificity))} → {_listed(list(fresh.specificity))}"
    )
    return Measure(
        "natural ratio and path: max |Δ|",
        float(cached.specificity[0]),
        float(fresh.specificity[0]),
        max(differences, default=0.0),
        same,
        note,
    )


def _flat(values) -> list:
    return [v for item in values for v in (item if isinstance(item, tuple) else (item,))]


def spectrum(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached = np.load(figure.artifact.file("spectrum.npy"))
    return _arrays("magnitudes: max |Δ| / max", cached, np.load(io.BytesIO(output.files["spectrum.npy"])))


def weights(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached = kernels.read(figure.artifact.file("kernels.npy"))
    fresh = np.load(io.BytesIO(output.files["kernels.npy"]))
    return _arrays("kernels: max |Δ| / max |k|", cached, fresh)


def tuning(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached = np.array(figure.artifact.result(figure.job).responses)
    return _arrays("responses: max |Δ| / max", cached, np.array(output.result.responses))


def _arrays(name: str, cached: np.ndarray, fresh: np.ndarray) -> Measure:
    largest = float(np.abs(cached).max()) if cached.size else 0.0
    if cached.shape != fresh.shape:
        return Measure(name, largest, float(np.abs(fresh).max()), math.inf, note="shapes differ")
    difference = float(np.abs(cached - fresh).max()) if cached.size else 0.0
    return Measure(name, largest, float(np.abs(fresh).max()), difference / (largest or 1.0))


def examples(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached = {example.index for example in figure.artifact.result(figure.job).examples}
    fresh = {example.index for example in output.result.examples}
    shared = len(cached & fresh)
    return Measure("top-k images: in both", len(cached), shared, 1 - shared / max(len(cached | fresh), 1))


def ranking(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    with (
        np.load(figure.artifact.file("ranking.npz")) as cached,
        np.load(io.BytesIO(output.files["ranking.npz"])) as fresh,
    ):
        pairs = [
            (set(before), set(after))
            for end in ("top_images", "bottom_images")
            for before, after in zip(cached[end].tolist(), fresh[end].tolist(), strict=True)
        ]
    kept = sum(len(before) for before, _ in pairs)
    shared = sum(len(before & after) for before, after in pairs)
    apart = sum(len(before | after) for before, after in pairs)
    return Measure("ranked images: in both", kept, shared, 1 - shared / max(apart, 1))


def ablation(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached, fresh = figure.artifact.result(figure.job), output.result
    before, after = cached.effect, fresh.effect
    predicted, band = figure.planned.predict, getattr(figure.planned, "band", None)  # band: its controls'
    if predicted:  # every prediction's verdict, each on its own inputs
        verdicts = [
            ", ".join("held" if p.holds(p.change(r.before, r.after), band) else "failed" for p in predicted)
            for r in (cached, fresh)
        ]
    else:
        verdicts = [("increase" if c > 0 else "decrease" if c < 0 else "no change") for c in (before, after)]
    note = verdicts[0] if verdicts[0] == verdicts[1] else f"{verdicts[0]} → {verdicts[1]}"
    difference = abs(after - before) if math.isfinite(before) and math.isfinite(after) else math.inf
    return Measure("effect", before, after, difference, verdicts[0] == verdicts[1], note)


def attribution(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    with (
        np.load(figure.artifact.file("attribution.npz")) as cached,
        np.load(io.BytesIO(output.files["attribution.npz"])) as fresh,
    ):
        names = sorted(name for name in cached.files if name.startswith("all_"))
        measured = _arrays(
            "attributions: max |Δ| / max",
            np.concatenate([cached[name].ravel() for name in names]),
            np.concatenate([fresh[name].ravel() for name in names if name in fresh.files]),
        )
    drawn = [
        [s.units for s in result.stages] for result in (figure.artifact.result(figure.job), output.result)
    ]
    same = drawn[0] == drawn[1]
    return replace(measured, agrees=same, note="the same units drawn" if same else "other units drawn")


def universality(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    best = figure.planned.matching == "best"
    cached, fresh = figure.artifact.result(figure.job), output.result

    def matching(result):
        return (result.best_unit, result.best_r) if best else (result.one_to_one_unit, result.one_to_one_r)

    (partners, r), (fresh_partners, fresh_r) = matching(cached), matching(fresh)
    moved = sum(a != b for a, b in zip(partners, fresh_partners, strict=False))
    moved += abs(len(partners) - len(fresh_partners))
    return Measure(
        f"{figure.planned.matching} matching: units moved",
        _median(r),
        _median(fresh_r),
        moved / max(len(partners), 1),
        note=f"median r; {moved} of {len(partners)} partners differ",
    )


def dictionary(figure: Figure, output: Output, profiles: Profiles) -> Measure:
    cached, fresh = figure.artifact.result(figure.job), output.result
    same = "the same weights" if cached.checksum == fresh.checksum else "other weights"
    return Measure(
        "FVU, rel. Δ", cached.fvu, fresh.fvu, relative_difference(cached.fvu, fresh.fvu), note=same
    )


def relative_difference(a: float, b: float) -> float:
    """|a − b| relative to the larger magnitude; 0 when both are 0."""
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale else 0.0


def _median(values) -> float:
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else math.nan
