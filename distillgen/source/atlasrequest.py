"""An atlas as asked for, in `distillgen.yml` (siteconfig.py) or by `distillgen atlas`: a value
with its defaults, light enough for the command line to read them at start-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distillgen.zoo import DEFAULT_DATASET

LIMITS = {"diversity": (0, 16), "examples": (0, 64)}  # the values a request may ask for


@dataclass(frozen=True)
class AtlasRequest:
    """A Microscope of one model: a page per layer and per unit (atlas.py).

    `path`/`line` say where it was asked for (None for the command line)."""

    model: str  # the spec as written
    layers: tuple[str, ...] = ()  # as written; () = every convolutional layer
    featurevis: dict[str, Any] = field(default_factory=dict)  # option -> value (FEATUREVIS_SETTINGS)
    diversity: int = 4  # images in each unit's diversity set; 0 for none
    examples: int = 8  # dataset examples shown each way (most and least exciting); 0 for none
    dataset: str = DEFAULT_DATASET  # the probe set of the examples: a generator or a folder
    base: Path = Path(".")  # what relative model files and dataset folders are relative to
    path: Path | None = None
    line: int | None = None
