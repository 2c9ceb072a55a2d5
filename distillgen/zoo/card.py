"""Model cards: what a shipped weights file is, how it was trained and how well it does."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from distillgen.zoo.shapes_data import CLASSES
from distillgen.zoo.train import THREADS, TrainResult, weights_checksum


def write_weights(result: TrainResult, out: Path, seed: int, command: str) -> dict:
    """Save the state dict (loadable with weights_only=True) and its card beside it."""
    state = result.model.state_dict()
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, out)
    parameters = sum(t.numel() for t in state.values())
    card = {
        "name": "shapes" if seed == 0 else f"shapes@{seed}",
        "seed": seed,
        "checksum": weights_checksum(state),
        "accuracy": result.accuracy,
        "classes": list(CLASSES),
        "parameters": parameters,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "command": command,
        "trained_on": f"{platform.machine()} CPU, {THREADS} threads, torch {torch.__version__}",
    }
    card["text"] = (
        f"The shapes network (seed {seed}): a small InceptionV1-like CNN, {parameters:,} parameters, "
        f"trained on procedurally generated 64×64 line drawings of {len(CLASSES)} classes "
        f"({', '.join(CLASSES)}) with random colour, position, scale, stroke width and orientation. "
        f"Held-out accuracy {result.accuracy:.1%} on 2,000 fresh drawings. "
        f"Trained with: {command} ({result.seconds:.0f}s on {card['trained_on']})."
    )
    out.with_suffix(".json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    return card
