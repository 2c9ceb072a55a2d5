"""The vocabulary authors write: one module per directive or role kind, listed here.

A new kind is a module with a `DirectiveKind` or `RoleKind` subclass (figures/base.py has the
contract), and one line in DIRECTIVES or ROLES below.
"""

from __future__ import annotations

from distillgen.figures.ablation import Ablation
from distillgen.figures.admonition import TITLED, Admonition
from distillgen.figures.appendix import Appendix
from distillgen.figures.attribution import Attribution
from distillgen.figures.base import DirectiveKind, RoleKind
from distillgen.figures.circuit import Circuit
from distillgen.figures.cite import Cite, CiteParenthetical, CiteTextual
from distillgen.figures.code import CodeBlock, CodeDirective, SourceCode
from distillgen.figures.dictionary import Dictionary
from distillgen.figures.examples import Examples
from distillgen.figures.featurevis import FeatureVis
from distillgen.figures.figure import Figure, Image
from distillgen.figures.hover import Hover
from distillgen.figures.inline import Abbreviation, Subscript, SubscriptLong, Superscript, SuperscriptLong
from distillgen.figures.listtable import ListTable
from distillgen.figures.mathblock import MathDirective, MathRole
from distillgen.figures.note import Aside, Note
from distillgen.figures.numref import Eq, NumRef, Ref
from distillgen.figures.tuning import Tuning
from distillgen.figures.unit import Unit
from distillgen.figures.universality import Universality
from distillgen.figures.value import Value
from distillgen.figures.weights import Weights

_DIRECTIVE_KINDS: tuple[type[DirectiveKind], ...] = (
    Figure,
    Image,
    Note,
    Aside,
    Admonition,
    *TITLED,
    MathDirective,
    CodeBlock,
    CodeDirective,
    SourceCode,
    Appendix,
    ListTable,
    # the computed figures (kinds.py)
    FeatureVis,
    Weights,
    Circuit,
    Tuning,
    Examples,
    Ablation,
    Attribution,
    Universality,
    Dictionary,
)
_ROLE_KINDS: tuple[type[RoleKind], ...] = (
    *(Cite, CiteParenthetical, CiteTextual, NumRef, Ref, Eq, Unit, MathRole),
    *(Subscript, SubscriptLong, Superscript, SuperscriptLong, Abbreviation, Hover, Value),
)
DIRECTIVES: dict[str, DirectiveKind] = {kind.name: kind() for kind in _DIRECTIVE_KINDS}
ROLES: dict[str, RoleKind] = {kind.name: kind() for kind in _ROLE_KINDS}
