"""A slow, row-at-a-time reference evaluator of the rule language, for tests only.

It shares nothing with the compiled path (:mod:`kamsim.rules.expr` / ``functions``) except
``ast.parse``: it walks the tree recursively with Python scalars and computes portfolio
helpers with plain loops and ``sorted()``, straight from the definitions in docs/rules.md.
It assumes the expression was accepted by ``compile_expr`` and does no checking of its own.
"""

from __future__ import annotations

import ast
import io
import math
import tokenize
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["evaluate_row"]

Scalar = float | bool | str

_PORTFOLIO = {"rank_pct", "cum_share", "zscore", "mean", "sum", "quantile"}


def evaluate_row(
    source: str,
    fields: Mapping[str, str],
    row: Mapping[str, Any],
    table: Mapping[str, np.ndarray],
    i: int,
    mask: np.ndarray | None = None,
) -> Scalar:
    """The value of ``source`` for account ``i`` (whose fields are ``row``) of ``table``."""
    text = _rewrite_if(" ".join(source.splitlines()).strip())
    tree = ast.parse(text, mode="eval")
    return _Evaluator(fields, table, mask).value(tree.body, row, i)


def _rewrite_if(text: str) -> str:
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        if tok.type == tokenize.NAME and tok.string == "if" and nxt.string == "(":
            text = text[: tok.start[1]] + "IF" + text[tok.start[1] + 2 :]
    return text


def _scalar(kind: str, value: Any) -> Scalar:
    if kind == "number":
        return float(value)
    if kind == "bool":
        return bool(value)
    return str(value)


def _nan(x: float) -> bool:
    return x != x


class _Evaluator:
    def __init__(
        self, fields: Mapping[str, str], table: Mapping[str, np.ndarray], mask: np.ndarray | None
    ) -> None:
        self.fields = fields
        self.table = table
        self.n = len(next(iter(table.values()))) if table else 0
        self.mask = mask

    def row(self, j: int) -> dict[str, Scalar]:
        return {
            k: _scalar(self.fields[k], self.table[k][j]) for k in self.fields if k in self.table
        }

    def value(self, node: ast.expr, row: Mapping[str, Any], i: int) -> Any:
        v = self.value
        if isinstance(node, ast.Constant):
            value = node.value
            return value if isinstance(value, bool | str) else float(value)  # type: ignore[arg-type]
        if isinstance(node, ast.Name):
            if node.id in ("true", "false"):
                return node.id == "true"
            return _scalar(self.fields[node.id], row[node.id])
        if isinstance(node, ast.UnaryOp):
            x = v(node.operand, row, i)
            if isinstance(node.op, ast.Not):
                return not x
            return -x if isinstance(node.op, ast.USub) else x
        if isinstance(node, ast.BinOp):
            return _binop(node.op, v(node.left, row, i), v(node.right, row, i))
        if isinstance(node, ast.BoolOp):
            values = [v(x, row, i) for x in node.values]
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.Compare):
            return self.compare(node, row, i)
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        name = node.func.id
        if name in _PORTFOLIO:
            return self.portfolio(name, node.args, i)
        args = [v(a, row, i) for a in node.args]
        return _function(name, args)

    def compare(self, node: ast.Compare, row: Mapping[str, Any], i: int) -> bool:
        left = self.value(node.left, row, i)
        op = node.ops[0]
        if isinstance(op, ast.In | ast.NotIn):
            items = node.comparators[0]
            assert isinstance(items, ast.List)
            listed = [self.value(item, row, i) for item in items.elts]
            found = any(left == item for item in listed)
            return found if isinstance(op, ast.In) else not found
        result = True
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.value(right_node, row, i)
            if isinstance(op, ast.Lt):
                ok = left < right
            elif isinstance(op, ast.LtE):
                ok = left <= right
            elif isinstance(op, ast.Gt):
                ok = left > right
            elif isinstance(op, ast.GtE):
                ok = left >= right
            elif isinstance(op, ast.Eq):
                ok = left == right
            else:
                ok = left != right
            result = result and ok
            left = right
        return result

    def portfolio(self, name: str, args: list[ast.expr], i: int) -> float:
        in_mask = [self.mask is None or bool(self.mask[j]) for j in range(self.n)]
        xs = [float(self.value(args[0], self.row(j), j)) for j in range(self.n)]
        pop = [j for j in range(self.n) if in_mask[j] and not _nan(xs[j])]
        vals = [xs[j] for j in pop]
        m = len(vals)
        if name == "sum":
            return sum(vals, 0.0)
        if name == "mean":
            return sum(vals, 0.0) / m if m else math.nan
        if name == "quantile":
            q = float(self.value(args[1], {}, i))
            return _quantile(sorted(vals), q)
        # per-row helpers
        if not in_mask[i]:
            return 0.0
        x = xs[i]
        if _nan(x):
            return math.nan
        if name == "rank_pct":
            smaller = sum(1 for y in vals if y < x)
            ties = sum(1 for y in vals if y == x)
            return (smaller + (ties + 1) / 2) / m
        if name == "cum_share":
            order = sorted(pop, key=lambda j: (-xs[j], j))
            running, cum = 0.0, {}
            for j in order:
                running += xs[j]
                cum[j] = running
            return cum[i] / running if running > 0 else 1.0
        assert name == "zscore"
        if max(vals) == min(vals):
            return 0.0
        mean = sum(vals) / m
        std = math.sqrt(sum((y - mean) ** 2 for y in vals) / m)
        return (x - mean) / std


def _quantile(vals: list[float], q: float) -> float:
    """Hyndman & Fan type 7, with numpy's two-sided lerp for the interpolation."""
    if not vals:
        return math.nan
    h = (len(vals) - 1) * q
    lo = math.floor(h)
    hi = min(lo + 1, len(vals) - 1)
    t = h - lo
    a, b = vals[lo], vals[hi]
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def _binop(op: ast.operator, a: float, b: float) -> float:
    if isinstance(op, ast.Add):
        return a + b
    if isinstance(op, ast.Sub):
        return a - b
    if isinstance(op, ast.Mult):
        return a * b
    if isinstance(op, ast.Div):
        return 0.0 if b == 0 else a / b
    if isinstance(op, ast.Mod):
        return 0.0 if b == 0 else a % b
    assert isinstance(op, ast.Pow)
    odd = b == int(b) and int(b) % 2 == 1 if math.isfinite(b) else False
    try:
        r = a**b
    except ZeroDivisionError:  # 0 ** negative
        return math.copysign(math.inf, a) if odd else math.inf
    except OverflowError:
        return -math.inf if (a < 0 and odd) else math.inf
    return math.nan if isinstance(r, complex) else float(r)


def _function(name: str, args: list[Any]) -> Any:
    if name == "IF":  # only the chosen branch matters, NaN or not
        return args[1] if args[0] else args[2]
    if any(_nan(a) for a in args):
        return math.nan
    if name == "min":
        return min(args)
    if name == "max":
        return max(args)
    if name == "abs":
        return abs(args[0])
    if name == "log":
        return math.log(args[0]) if args[0] > 0 else 0.0
    if name == "exp":
        return math.exp(min(args[0], 700.0))
    if name == "clip":
        x, lo, hi = args
        return min(max(x, lo), hi)
    raise AssertionError(f"not a function: {name}")
