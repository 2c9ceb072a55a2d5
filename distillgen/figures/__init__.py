"""The vocabulary authors write: one module per directive or role kind, found by registration.

A new kind is a module that subclasses `DirectiveKind` or `RoleKind` and decorates the class
with `@directive` or `@role`; import it in `_BUILTINS` below and nothing else changes.
"""

from __future__ import annotations

import importlib

from distillgen.figures.base import DirectiveKind, RoleKind

DIRECTIVES: dict[str, DirectiveKind] = {}
ROLES: dict[str, RoleKind] = {}

_BUILTINS = (
    "figure",
    "note",
    "cite",
    "numref",
    "featurevis",
    "unit",
    "weights",
    "circuit",
    "tuning",
    "examples",
    "ablation",
    "universality",
)


def directive(cls: type[DirectiveKind]) -> type[DirectiveKind]:
    DIRECTIVES[cls.name] = cls()
    return cls


def role(cls: type[RoleKind]) -> type[RoleKind]:
    ROLES[cls.name] = cls()
    return cls


def load_builtins() -> None:
    for module in _BUILTINS:
        importlib.import_module(f"distillgen.figures.{module}")
