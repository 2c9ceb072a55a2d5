"""The torch side of distillgen. Nothing outside engine/ and zoo/ imports torch, and nothing
imports engine/ at module level: a build whose figures are all cached never loads torch.

Each job kind has a module here with `compute(model, jobs, device, progress, load) -> [Output]`;
`load(spec)` gives another model, for jobs that compare two (universality).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass
class Output:
    files: dict[str, bytes]  # payload files of the artifact
    record: dict  # result fields for its provenance record


def run_jobs(model, jobs: list, device, progress, load) -> list[Output]:
    """Compute jobs of one kind on one loaded model; `progress(n)` advances by work done."""
    engine = importlib.import_module(f"distillgen.engine.{jobs[0].kind}")
    return engine.compute(model, jobs, device, progress, load)
