"""An ablation's matched controls (`:control: random 20`): removing a unit's strongest inputs
kills almost any unit, so an effect means something only beside what removing *other* edges
of the same weight does.

The rule, stated in each figure: a control takes the edges of the edited layer into the same
unit that the edit leaves alone and whose kernels have the edited edges' sign (their kernels'
summed weight: excitatory or inhibitory) in a random order drawn from the seed, and keeps each
one that brings their total kernel L2 norm closer to the edited edges' total: the total ends
within half the heaviest candidate's norm of the edit's, and the figure shows the range. The
controls' edges are edited as the edit's are (zeroed, or scaled).
A whole-unit edit (`zero unit m3:94`) is matched the same way, by its units' kernels into the
observed unit, and its controls zero other whole units.
A control of the *same number* of edges and the same weight does not exist when the edit takes
the strongest edges, which is what ablations usually test, so the weight is matched, not the
count; each control's count is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_CONTROL = re.compile(r"^random\s+(?P<count>\d+)(?:\s+seed\s+(?P<seed>\d+))?$")
MOST = 100  # controls per figure


@dataclass(frozen=True)
class Control:
    """`:control: random N [seed S]`, as written."""

    count: int
    seed: int = 0


def control(value: str) -> Control | None:
    """':control:' as written ('' for none)."""
    if not value.strip():
        return None
    match = _CONTROL.match(value.strip())
    if not match or not 1 <= int(match["count"]) <= MOST:
        raise ValueError(
            f"'{value}' is not a control; write 'random N' (N from 1 to {MOST}), e.g. 'random 20 seed 1'"
        )
    return Control(int(match["count"]), int(match["seed"] or 0))


def draw(
    norms: np.ndarray, sums: np.ndarray, edited: tuple[int, ...], control: Control
) -> list[tuple[int, ...]]:
    """The control sets of source units, by the module's rule; ValueError (for the author)
    when the other edges of the edited sign weigh less in all than the edited ones."""
    target = float(norms[list(edited)].sum())
    sign = np.sign(sums[list(edited)].sum()) or 1.0
    pool = [unit for unit in range(len(norms)) if unit not in edited and np.sign(sums[unit]) == sign]
    if float(norms[pool].sum()) < target:
        kind = "excitatory" if sign > 0 else "inhibitory"
        raise ValueError(
            f"the other {kind} edges weigh {norms[pool].sum():.3g} in all, less than the edited edges' "
            f"{target:.3g}: no control matches them"
        )
    if target <= 0 or float(norms[pool].min()) >= 2 * target:
        raise ValueError(
            f"every other edge of that sign weighs at least twice the edited edges' {target:.3g}: "
            "no control matches them"
        )
    rng = np.random.default_rng(control.seed)
    sets = []
    for _ in range(control.count):
        chosen: list[int] = []
        total = 0.0
        for unit in rng.permutation(pool):
            if abs(total + norms[unit] - target) < abs(total - target):
                chosen.append(int(unit))
                total += float(norms[unit])
        sets.append(tuple(sorted(chosen)))
    return sets


@dataclass(frozen=True)
class Band:
    """The controls' effects, beside the edit's."""

    effects: tuple[float, ...]

    @property
    def low(self) -> float:
        return min(self.effects)

    @property
    def high(self) -> float:
        return max(self.effects)

    @property
    def median(self) -> float:
        return float(np.median(self.effects))

    def beyond(self, effect: float) -> bool:
        """Whether the edit's effect lies outside every control's, on its side (an effect of
        nothing lies beyond none)."""
        if effect == 0:
            return False
        return effect < self.low if effect < 0 else effect > self.high
