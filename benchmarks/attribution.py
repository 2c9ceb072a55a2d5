"""What an attribution figure costs (issue "attribution"), against the circuit figure beside
which it is read and the ablation that checks its prediction, on the same unit and inputs.

    .venv/bin/python benchmarks/attribution.py [--inception]

For each case, in this process, on the CPU, each engine timed on its own job:
  attribution    integrated gradients (64 steps) and activation × gradient, the unit's top
                 probe images, one stage (and on shapes a two-stage chain, with its edges)
  circuit        the expanded weights into the unit from the same layer (one WeightsJob; the
                 chain's second stage adds one per drawn unit)
  ablation       the drawn edges zeroed, on the same images (what `:predict:` runs)
The figures' shared part, the nodes' feature visualizations, is left out of all three. With
`--inception`: lucent's InceptionV1 (untrained: the architecture and its cost), on 8 of 64
probe images at 224 px.
"""

from __future__ import annotations

import argparse
import time

import torch

from distillgen import datasets
from distillgen.engine import ablation, attribution, weights
from distillgen.engine.models import load_model
from distillgen.jobs import AblationJob, AttributionJob, AttributionStage, Edit, WeightsJob


def timed(engine, model, jobs) -> tuple[float, list]:
    start = time.perf_counter()
    outputs = engine.compute(model, jobs, torch.device("cpu"), lambda n: None, None)
    return time.perf_counter() - start, outputs


def case(spec: str, target: tuple[str, int], chain: list[str], probe_count: int, top: int) -> None:
    model = load_model(spec)
    layer, unit = target
    probe = datasets.dataset("shapes", probe_count, 0, None, ())
    rows = []

    def attribution_job(stages: list[str], method: str) -> AttributionJob:
        return AttributionJob(
            spec,
            model.fingerprint,
            layer,
            unit,
            tuple(AttributionStage(s) for s in stages),
            6,
            method,
            64,
            "black",
            0.05,
            "examples",
            dataset=probe,
            top=top,
        )

    attribution.compute(
        model, [attribution_job(chain[-1:], "gradient")], torch.device("cpu"), lambda n: None, None
    )
    for stages in ([chain[-1]], chain) if len(chain) > 1 else ([chain[-1]],):
        for method in ("integrated", "gradient"):
            seconds, (output,) = timed(attribution, model, [attribution_job(stages, method)])
            name = f"attribution, {method}, {' -> '.join(stages)}"
            rows.append((name, seconds, output))
    drawn = rows[0][2].result.stages[-1].units
    seconds, _ = timed(weights, model, [WeightsJob(spec, model.fingerprint, chain[-1], layer, unit)])
    rows.append((f"circuit: weights {chain[-1]} -> {layer}:{unit}", seconds, None))
    if len(chain) > 1:
        into = [WeightsJob(spec, model.fingerprint, chain[-2], chain[-1], u) for u in drawn]
        seconds, _ = timed(weights, model, into)
        rows.append((f"circuit: + weights {chain[-2]} -> {len(into)} {chain[-1]} units", seconds, None))
    check = AblationJob(
        spec, model.fingerprint, layer, unit, (Edit(chain[-1], drawn),), "examples", dataset=probe, top=top
    )
    seconds, (output,) = timed(ablation, model, [check])
    rows.append((f"ablation: zero the {len(drawn)} drawn edges", seconds, output))
    print(f"\n{spec} {layer}:{unit}, top {top} of {probe_count} shapes images at {model.input_size} px")
    base = rows[0][1]
    for name, seconds, output in rows:
        extra = ""
        if output is not None and hasattr(output.result, "stages"):
            extra = "  completeness error " + ", ".join(f"{s.error:.1%}" for s in output.result.stages)
        elif output is not None:
            extra = f"  effect {output.result.effect:+.0%}"
        print(f"  {name:<52} {seconds:7.2f} s  ({seconds / base:5.2f}× the attribution){extra}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inception", action="store_true", help="add lucent's InceptionV1 (untrained)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    case("shapes", ("mixed4", 52), ["conv2", "mixed3"], 1000, 8)
    if args.inception:
        case("lucent:inceptionv1@untrained", ("mixed4a", 1), ["mixed3b"], 64, 8)


if __name__ == "__main__":
    main()
