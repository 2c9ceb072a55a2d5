"""The drawing primitives the shapes generator and the tuning stimuli (stimuli.py) share: a
stroke's ink over a distance field, and the distance fields of segments and arcs. They are
defined in shapes_data.py, whose bytes key every figure on the shapes probe set (moving them
would compute all of those again), and named here for the modules that draw with them."""

from __future__ import annotations

from distillgen.zoo.shapes_data import _arc_distance as arc_distance
from distillgen.zoo.shapes_data import _ink as ink
from distillgen.zoo.shapes_data import _segment_distance as segment_distance

__all__ = ["arc_distance", "ink", "segment_distance"]
