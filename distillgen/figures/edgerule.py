"""An ablation's edges chosen by a stated rule (`:edit: zero top 3 by weight from mixed3`), not
picked by the author: the rule is what the figure shows and what provenance records, and the
units it chose are read from the kernels when they are computed.

    top N [excitatory | inhibitory] [by weight] from LAYER

ranks the edges from LAYER into the observed unit by their kernel's L2 norm (the weight a
circuit figure draws) and takes the N heaviest; `excitatory` or `inhibitory` first keeps the
edges of that sign (their kernel's summed weight), as `:control:` reads signs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_RULE = re.compile(
    r"^top\s+(?P<count>\d+)(?:\s+(?P<sign>excitatory|inhibitory))?(?:\s+by\s+weight)?\s+from\s+(?P<layer>\S+)$"
)
MOST = 64  # edges one rule may choose


@dataclass(frozen=True)
class EdgeRule:
    """`top N [sign] by weight from LAYER`, as written."""

    text: str
    count: int
    layer: str
    sign: str = ""  # "", "excitatory" or "inhibitory"


def edge_rule(text: str) -> EdgeRule | None:
    """The rule in an edit's sources ('top 3 by weight from mixed3'), or None when they are units;
    ValueError for a rule written wrongly."""
    text = " ".join(text.split())
    if not text.startswith("top "):
        return None
    match = _RULE.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is not a rule; write 'top N [excitatory|inhibitory] by weight from LAYER', "
            "e.g. 'top 3 by weight from mixed3'"
        )
    count = int(match["count"])
    if not 1 <= count <= MOST:
        raise ValueError(f"'{text}': a rule chooses 1 to {MOST} edges, not {count}")
    return EdgeRule(text, count, match["layer"], match["sign"] or "")


def choose(norms: np.ndarray, sums: np.ndarray, rule: EdgeRule) -> tuple[int, ...]:
    """The source units the rule chooses, heaviest first (ties: the lower unit); ValueError (for
    the author) when the layer has fewer edges of the rule's sign than it asks for."""
    pool = [unit for unit in range(len(norms)) if norms[unit] > 0]  # an edge of no weight is none
    if rule.sign:
        wanted = 1.0 if rule.sign == "excitatory" else -1.0
        pool = [unit for unit in pool if np.sign(sums[unit]) == wanted]
    if len(pool) < rule.count:
        of = f"{rule.sign} edges" if rule.sign else "edges"
        raise ValueError(f"'{rule.text}': the unit has {len(pool)} {of} from {rule.layer}")
    ranked = sorted(pool, key=lambda unit: (-float(norms[unit]), unit))
    return tuple(ranked[: rule.count])
