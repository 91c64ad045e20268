"""kamsim's rule language: safe, vectorised expressions and decision tables.

See docs/rules.md for the language definition.
"""

from __future__ import annotations

from kamsim import _submodules_of
from kamsim.rules.expr import Expr, ExprErrors, ExprProblem, FieldType, compile_expr, problems_at
from kamsim.rules.tables import DecisionTable, HitPolicy, Row, TableHitError

__all__ = [
    "FieldType",
    "ExprProblem",
    "ExprErrors",
    "Expr",
    "compile_expr",
    "problems_at",
    "HitPolicy",
    "Row",
    "TableHitError",
    "DecisionTable",
]

# every other module of this package as an attribute after a bare `import kamsim`
# (kamsim.rules.functions), imported on first use
__getattr__ = _submodules_of(__name__)
