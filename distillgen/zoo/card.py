"""Model cards: what a shipped weights file is, how it was trained and how well it does."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from distillgen.zoo import TASKS, ZOO
from distillgen.zoo.train import THREADS, TrainResult, weights_checksum


def write_weights(result: TrainResult, out: Path, seed: int, command: str) -> dict:
    """Save the state dict (loadable with weights_only=True) and its card beside it."""
    entry = ZOO[result.name]
    task = TASKS[entry.task]
    state = result.model.state_dict()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    parameters = sum(t.numel() for t in state.values())
    card = {
        "name": entry.name if seed == 0 else f"{entry.name}@{seed}",
        "seed": seed,
        "task": task.name,
        "architecture": entry.architecture,
        "checksum": weights_checksum(state),
        "accuracy": result.accuracy,
        "classes": list(task.classes),
        "parameters": parameters,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "command": command,
        "trained_on": f"{platform.machine()} CPU, {THREADS} threads, torch {torch.__version__}",
    }
    card["text"] = (
        f"The {entry.name} network (seed {seed}): {entry.text}, {parameters:,} parameters, "
        f"trained on {task.text} of {len(task.classes)} classes "
        f"({', '.join(task.classes)}) with random colour, position, scale and orientation. "
        + (
            f"An auxiliary classifier on {entry.auxiliary.layer} was trained with it, told the finer "
            f"labels {', '.join(task.fine_classes)} (loss weight {entry.auxiliary.weight}), and dropped. "
            if entry.auxiliary
            else ""
        )
        + f"Held-out accuracy {result.accuracy:.1%} on 2,000 fresh images. "
        f"Trained with: {command} ({result.seconds:.0f}s on {card['trained_on']})."
    )
    out.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card
