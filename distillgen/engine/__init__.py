"""The torch side of distillgen. Nothing outside engine/ and zoo/ imports torch, and nothing
imports engine/ at module level: a build whose figures are all cached never loads torch.

Each job kind has a module here with `compute(model, jobs, device, progress, load) -> [Output]`,
named in the table of kinds (kinds.py); `load(spec)` gives another model, for jobs that compare
two (universality).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Output:
    files: dict[str, bytes]  # payload files of the artifact
    result: Any  # the job's typed result (its `Result`), what figures read
    record: dict = field(default_factory=dict)  # more provenance: seconds, batch size


def run_jobs(model, jobs: list, device, progress, load) -> list[Output]:
    """Compute jobs of one kind on one loaded model; `progress(n)` advances by work done. The
    dictionaries whose features the jobs read are layers of the model meanwhile (features.py)."""
    from distillgen.kinds import KINDS

    engine = importlib.import_module(KINDS[jobs[0].kind].engine)
    from distillgen.engine.features import for_jobs
    from distillgen.engine.memory import reusing_memory

    groups: dict[tuple, list[int]] = {}  # two articles may name different dictionaries 'm4'
    for index, job in enumerate(jobs):
        carried = sorted((d.model, d.name, d.checksum) for d in job.dictionaries)
        groups.setdefault(tuple(carried), []).append(index)
    outputs: list = [None] * len(jobs)
    with reusing_memory():  # an engine's steps free and allocate the same blocks (memory.py)
        for indices in groups.values():
            part = [jobs[i] for i in indices]
            with for_jobs(model, part, load) as loading:
                for index, output in zip(
                    indices, engine.compute(model, part, device, progress, loading), strict=True
                ):
                    outputs[index] = output
    return outputs
