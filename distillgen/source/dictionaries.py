"""`dictionaries:` in front matter and in distillgen.yml: sparse dictionaries an article names.

    dictionaries:
      m4: {model: shapes, layer: mixed4, features: 384, k: 8}
      m3: {layer: mixed3, steps: 1000, count: 500, seed: 1}

Each entry is validated here without torch (names, keys, values); its model and layer are
checked against the model when the article is planned (dictionaries.py), at the line they are
declared on. The name becomes a layer: `m4:17` is feature 17.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distillgen.diagnostics import suggest
from distillgen.jobs import DictionarySettings
from distillgen.options import integer, number
from distillgen.zoo import DEFAULT_DATASET

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

KEYS = {
    "model": "model spec (default: the article's model, else shapes)",
    "layer": "the layer whose activations it reads (required), e.g. mixed4",
    "features": "how many features (default 384)",
    "k": "features active at each position (TopK, default 8)",
    "steps": "training steps (default 2000)",
    "batch": "positions per training step (default 1024)",
    "lr": "Adam learning rate (default 0.002)",
    "seed": "seed of the initialization and of the order of positions (default 0)",
    "dataset": "the probe set it is trained on: 'shapes' (default) or a folder of images",
    "count": "how many images of the probe set (default 1000)",
    "sample-seed": "which sample of the shapes generator (default 0)",
}
PARSERS: dict[str, Callable[[str], object]] = {
    "features": integer(2, 65536),
    "k": integer(1, 1024),
    "steps": integer(1, 200000),
    "batch": integer(1, 1 << 20),
    "lr": number(1e-7, 1.0),
    "seed": integer(0, 2**31 - 1),
    "count": integer(1, 20000),
    "sample-seed": integer(0, 2**31 - 1),
}


@dataclass(frozen=True)
class Declaration:
    """A dictionary as declared: checked against its model at plan time."""

    name: str
    layer: str
    path: Path  # the file it is declared in, for errors at plan time
    line: int
    model: str | None = None  # as written; None: the article's model
    dataset: str = DEFAULT_DATASET
    count: int = 1000
    sample_seed: int = 0
    settings: DictionarySettings = DictionarySettings()
    lines: dict[str, int] = field(default_factory=dict, compare=False)  # key -> line

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


def declarations(
    node: yaml.Node, path: Path, line_of: Callable[[yaml.Node], int], report: Callable[[yaml.Node, str], None]
) -> dict[str, Declaration]:
    """`dictionaries:` as a mapping of names to declarations; each mistake is reported at its
    node, the valid entries are kept."""
    if not isinstance(node, yaml.MappingNode):
        report(node, "'dictionaries' must be a mapping of names to {layer, features, k, …}")
        return {}
    found: dict[str, Declaration] = {}
    for name_node, value_node in node.value:
        name = str(name_node.value)
        if not NAME.match(name):
            report(name_node, f"'{name}' is not a dictionary name: use letters, digits and '_' (e.g. m4)")
            continue
        if name in found:
            report(name_node, f"the dictionary '{name}' is declared twice")
            continue
        declaration = _declaration(name, name_node, value_node, path, line_of, report)
        if declaration is not None:
            found[name] = declaration
    return found


def _declaration(name, name_node, node, path, line_of, report) -> Declaration | None:
    where = f"dictionaries.{name}"
    if not isinstance(node, yaml.MappingNode):
        report(node, f"'{where}' must be a mapping, e.g. {{layer: mixed4, features: 384, k: 8}}")
        return None
    values: dict[str, Any] = {}  # each key's value, as its parser reads it
    lines: dict[str, int] = {}
    ok = True
    for key_node, value_node in node.value:
        key = str(key_node.value)
        lines[key] = line_of(key_node)
        if key not in KEYS:
            report(key_node, f"unknown key '{where}.{key}'{suggest(key, KEYS)}; known: {', '.join(KEYS)}")
            ok = False
            continue
        if not isinstance(value_node, yaml.ScalarNode) or value_node.value == "":
            report(value_node, f"'{where}.{key}' must be a single value")
            ok = False
            continue
        text = str(value_node.value)
        try:
            values[key] = PARSERS[key](text) if key in PARSERS else text.strip()
        except ValueError as exc:
            report(value_node, f"bad value for '{where}.{key}': {exc}")
            ok = False
    if "layer" not in values:
        if "layer" not in lines:
            report(name_node, f"'{where}' needs a 'layer', e.g. {{layer: mixed4}}")
        return None
    features = values.get("features", DictionarySettings.features)
    k = values.get("k", DictionarySettings.k)
    if k > features:
        report(node, f"'{where}.k' ({k}) must not exceed its features ({features})")
        return None
    if not ok:
        return None
    settings = DictionarySettings(
        **{key: values[key] for key in ("features", "k", "steps", "batch", "lr", "seed") if key in values}
    )
    return Declaration(
        name=name,
        layer=str(values["layer"]),
        path=path,
        line=line_of(name_node),
        model=values.get("model"),
        dataset=str(values.get("dataset", DEFAULT_DATASET)),
        count=int(values.get("count", 1000)),
        sample_seed=int(values.get("sample-seed", 0)),
        settings=settings,
        lines=lines,
    )
