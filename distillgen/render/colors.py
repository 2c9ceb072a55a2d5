"""The Circuits thread's diverging scale for weights: blue negative, grey zero, red positive."""

from __future__ import annotations

STOPS = ("#0571b0", "#92c5de", "#f7f7f7", "#f4a582", "#ca0020")  # at -1, -0.5, 0, 0.5, 1


def diverging(value: float) -> str:
    """The colour of `value` in [-1, 1] (clipped), interpolated between the five stops."""
    position = (min(1.0, max(-1.0, value)) + 1) * 2  # 0 … 4
    index = min(int(position), 3)
    fraction = position - index
    low, high = _rgb(STOPS[index]), _rgb(STOPS[index + 1])
    return "#" + "".join(f"{round(a + (b - a) * fraction):02x}" for a, b in zip(low, high, strict=True))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)
