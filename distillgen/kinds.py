"""The computed kinds, each declared once: what distillgen can compute about a model.

A computed kind is a job type (jobs.py, with its `Result`), an engine that computes its jobs
(a module of distillgen/engine/ with `compute(model, jobs, device, progress, load)`), a measure
and tolerance by which `distillgen verify` compares a recomputation with the cache
(measures.py), and the directives whose figures show it, each with an example that builds (the
notebook has a function of the same name, notebook.py). The engine's, verify's and the
notebook's registries are read from KINDS; tests/test_registry.py proves every kind complete.

Torch-free: the engine module is named, and imported only when a job must be computed.
"""

from __future__ import annotations

from dataclasses import dataclass

from distillgen import measures
from distillgen.jobs import (
    AblationJob,
    AttributionJob,
    DictionaryJob,
    ExamplesJob,
    FaithfulnessJob,
    FeatureVisJob,
    Job,
    RankingJob,
    SpectrumJob,
    TuningJob,
    UniversalityJob,
    WeightsJob,
)


@dataclass(frozen=True)
class ComputedKind:
    job: type[Job]
    engine: str  # the module computing its jobs
    measure: measures.MeasureFunction
    tolerance: float  # the largest difference of `measure` still counted as reproduced
    # directive -> a valid use (its argument, then option lines): the figures that show it;
    # none for a kind other kinds' jobs read (`Job.inputs`: a folder's ranking)
    figures: dict[str, str]

    @property
    def name(self) -> str:
        return self.job.kind


KINDS: dict[str, ComputedKind] = {
    kind.name: kind
    for kind in (
        ComputedKind(
            FeatureVisJob,
            "distillgen.engine.featurevis",
            measures.featurevis,
            0.15,  # another device's image drives the layer alike; another unit's does not
            {"featurevis": "mixed3:1"},
        ),
        ComputedKind(
            FaithfulnessJob,
            "distillgen.engine.faithfulness",
            measures.faithfulness,
            0.05,  # natural ratio and path similarity, absolute; and the same specificity
            # every feature visualization's images are measured (faithful.py); checked on request
            {"featurevis": "mixed3:1\n:check: specific"},
        ),
        ComputedKind(
            SpectrumJob,
            "distillgen.engine.maco",
            measures.spectrum,
            1e-4,  # the same images, averaged in another order
            {},  # read by MACO's feature visualizations (`:param: maco`)
        ),
        ComputedKind(
            WeightsJob,
            "distillgen.engine.weights",
            measures.weights,
            1e-3,
            {"weights": "conv2:1 -> mixed3:2", "circuit": "mixed4:1\n:inputs: mixed3"},
        ),
        ComputedKind(TuningJob, "distillgen.engine.tuning", measures.tuning, 1e-3, {"tuning": "mixed4:1"}),
        ComputedKind(
            ExamplesJob,
            "distillgen.engine.examples",
            measures.examples,
            0.0,  # the same top-k set
            {"examples": "mixed4:1"},
        ),
        ComputedKind(
            RankingJob,
            "distillgen.engine.ranking",
            measures.ranking,
            0.0,  # the same images at both ends of every unit
            {},  # read by examples (and an ablation's top images) over a folder
        ),
        ComputedKind(
            AblationJob,
            "distillgen.engine.ablation",
            measures.ablation,
            0.02,  # two percentage points of effect
            {"ablation": "mixed4:1\n:edit: zero mixed3:1"},
        ),
        ComputedKind(
            AttributionJob,
            "distillgen.engine.attribution",
            measures.attribution,
            0.02,  # of the largest attribution; and the same units drawn
            {"attribution": "mixed4:1\n:inputs: mixed3"},
        ),
        ComputedKind(
            UniversalityJob,
            "distillgen.engine.universality",
            measures.universality,
            0.0,  # the same partners
            {"universality": "mixed4\n:other: shapes@1"},
        ),
        ComputedKind(
            DictionaryJob,
            "distillgen.engine.dictionary",
            measures.dictionary,
            0.05,  # the fraction of variance unexplained, relative (the same bytes on a CPU)
            {"dictionary": "m4"},
        ),
    )
}

# every directive that shows a computed figure -> a valid use of it
COMPUTED_FIGURES: dict[str, str] = {
    name: use for kind in KINDS.values() for name, use in kind.figures.items()
}
