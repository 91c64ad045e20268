"""kamsim's rule language: safe, vectorised expressions and decision tables.

See docs/rules.md for the language definition.
"""

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
