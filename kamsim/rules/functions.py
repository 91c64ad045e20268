"""Numeric kernels behind the rule language's operators and functions.

Every kernel works on numpy arrays (or 0-d arrays / numpy scalars, which broadcast) and is
total: it never raises on a value and, when called under ``np.errstate(all="ignore")`` as
:class:`kamsim.rules.expr.Expr` does, never warns. The exact definitions (division by zero,
logs of non-positive numbers, ties, NaN and empty portfolios) are documented in
``docs/rules.md`` and mirrored, independently, by :mod:`kamsim.rules.reference`.

Portfolio helpers take the ``mask`` of active accounts. Their *population* is the rows that
are in the mask and whose argument is not NaN. Per-row helpers give 0.0 on rows outside the
mask and NaN on masked-in rows whose argument is NaN; scalar helpers give the same value on
every row.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import reduce
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FieldType",
    "FIELD_TYPES",
    "infer_length",
    "column",
    "Function",
    "FUNCTIONS",
    "FUNCTION_NAMES",
    "ARITHMETIC",
    "COMPARISONS",
    "BAD_OPERATORS",
    "FORBIDDEN_NODES",
    "EXP_MAX",
    "safe_divide",
    "safe_mod",
    "power",
    "safe_log",
    "safe_exp",
    "clip",
    "rank_pct",
    "cum_share",
    "quantile",
    "zscore",
    "portfolio_mean",
    "portfolio_sum",
]

FieldType = Literal["number", "bool", "str"]
FIELD_TYPES: tuple[FieldType, ...] = ("number", "bool", "str")

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: ``exp`` clips its argument here so that the result stays finite (e^700 ~ 1e304).
EXP_MAX = 700.0


def _float(x: Any) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def safe_divide(a: Any, b: Any) -> FloatArray:
    """``a / b`` elementwise, with ``x / 0 == 0.0`` (also for NaN or infinite ``x``)."""
    a, b = np.broadcast_arrays(_float(a), _float(b))
    out = np.zeros(a.shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def safe_mod(a: Any, b: Any) -> FloatArray:
    """Python-style floor modulo (sign of ``b``) elementwise, with ``x % 0 == 0.0``."""
    a, b = np.broadcast_arrays(_float(a), _float(b))
    out = np.zeros(a.shape)
    np.remainder(a, b, out=out, where=b != 0)
    return out


def power(a: Any, b: Any) -> FloatArray:
    """IEEE ``pow``: ``0 ** -1 == inf``, ``(-8) ** 0.5`` is NaN, overflow gives +-inf."""
    return np.power(_float(a), _float(b))


def safe_log(x: Any) -> FloatArray:
    """Natural log for ``x > 0``; 0.0 for ``x <= 0`` (incl. -inf); NaN stays NaN."""
    x = _float(x)
    out = np.where(np.isnan(x), np.nan, 0.0)
    np.log(x, out=out, where=x > 0)
    return out


def safe_exp(x: Any) -> FloatArray:
    """``e ** min(x, 700)``, so the result is finite for every finite or +inf ``x``."""
    return np.exp(np.minimum(_float(x), EXP_MAX))


def clip(x: Any, lo: Any, hi: Any) -> FloatArray:
    """``min(max(x, lo), hi)``: if ``lo > hi`` the result is ``hi``; NaN in any argument -> NaN."""
    return np.minimum(np.maximum(_float(x), _float(lo)), _float(hi))


def _population(x: Any, n: int, mask: BoolArray | None) -> tuple[FloatArray, BoolArray]:
    """``x`` as a float array of length ``n`` and the rows that form the population."""
    values = np.broadcast_to(_float(x), (n,))
    selected = ~np.isnan(values)
    if mask is not None:
        selected &= mask
    return values, selected


def _per_row_result(values: FloatArray, n: int, mask: BoolArray | None) -> FloatArray:
    """0.0 outside the mask, NaN where the argument is NaN inside it (to be filled)."""
    out = np.zeros(n)
    missing = np.isnan(values)
    if mask is not None:
        missing &= mask
    out[missing] = np.nan
    return out


def rank_pct(x: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """Percentile rank in (0, 1]: (number of smaller values + (ties incl. itself + 1) / 2) / m.

    This is ``pandas.Series.rank(pct=True, method="average")`` over the population of size m.
    """
    values, selected = _population(x, n, mask)
    out = _per_row_result(values, n, mask)
    population = values[selected]
    if population.size:
        # -0.0 == 0.0, so np.unique puts them in one tie group, as == does.
        _, inverse, counts = np.unique(population, return_inverse=True, return_counts=True)
        smaller = np.cumsum(counts) - counts
        average_rank = smaller + (counts + 1) / 2.0
        out[selected] = average_rank[inverse.reshape(-1)] / population.size
    return out


def cum_share(x: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """Cumulative share of the total, largest first, including the account itself.

    Ties are ordered by row index (a stable sort). If the population's total is not
    positive every population row gets 1.0.
    """
    values, selected = _population(x, n, mask)
    out = _per_row_result(values, n, mask)
    population = values[selected]
    if population.size:
        order = np.argsort(-population, kind="stable")
        running = np.cumsum(population[order])
        total = running[-1]  # the same additions, in the same order: the largest share is 1.0
        shares = np.ones(population.size)
        if total > 0:
            shares[order] = running / total
        out[selected] = shares
    return out


def quantile(x: Any, q: float, n: int, mask: BoolArray | None) -> np.float64:
    """The q-quantile of the population (numpy's default "linear" method); NaN if empty."""
    values, selected = _population(x, n, mask)
    population = values[selected]
    if not population.size:
        return np.float64(np.nan)
    return np.float64(np.quantile(population, q))


def zscore(x: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """``(x - mean) / std`` with the population std (ddof=0); 0.0 if all values are equal."""
    values, selected = _population(x, n, mask)
    out = _per_row_result(values, n, mask)
    population = values[selected]
    # Test equality rather than std == 0: the mean of equal values may be off by an ulp,
    # which would turn an all-equal portfolio into z-scores of +-1.
    if population.size and population.max() != population.min():
        mean = population.mean()
        std = np.sqrt(np.mean((population - mean) ** 2))
        out[selected] = (population - mean) / std
    return out


def portfolio_mean(x: Any, n: int, mask: BoolArray | None) -> np.float64:
    """Mean over the population; NaN if the population is empty."""
    values, selected = _population(x, n, mask)
    population = values[selected]
    if not population.size:
        return np.float64(np.nan)
    return np.float64(population.mean())


def portfolio_sum(x: Any, n: int, mask: BoolArray | None) -> np.float64:
    """Sum over the population; 0.0 if the population is empty."""
    values, selected = _population(x, n, mask)
    return np.float64(values[selected].sum())


# --- the columns the kernels work on ----------------------------------------------------


def infer_length(env: Mapping[str, Any], n: int | None, names: Iterable[str] = ()) -> int:
    """``n`` if given, else the length of the first of ``names`` (or any column) in ``env``."""
    if n is not None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return int(n)
    for name in [*names, *env]:
        if name in env:
            return int(np.shape(env[name])[0]) if np.ndim(env[name]) else 1
    raise ValueError("cannot tell the number of accounts from an empty env: pass n")


def column(env: Mapping[str, Any], name: str, kind: FieldType, n: int) -> np.ndarray:
    """Field ``name`` from ``env`` as a checked 1-D array of length ``n`` in its kind's dtype."""
    if name not in env:
        raise KeyError(f"field {name!r} is missing from the env")
    arr = np.asarray(env[name])
    if arr.shape != (n,):
        raise ValueError(f"field {name!r} has shape {arr.shape}, expected ({n},)")
    if kind == "number":
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"number field {name!r} has dtype {arr.dtype}, expected float or int")
        return arr.astype(np.float64, copy=False)
    if kind == "bool":
        if arr.dtype != np.bool_:
            raise TypeError(f"bool field {name!r} has dtype {arr.dtype}, expected bool")
        return arr
    if arr.dtype.kind not in "UO":
        raise TypeError(f"str field {name!r} has dtype {arr.dtype}, expected str or object")
    return arr.astype(object, copy=False)


# --- the whitelist: the only operators and functions the language has ------------------


@dataclass(frozen=True)
class Function:
    signature: str
    min_args: int
    max_args: int | None
    impl: Callable[..., Any]
    portfolio: bool = False


FUNCTIONS: dict[str, Function] = {
    "min": Function("min(a, b, ...)", 2, None, lambda *xs: reduce(np.minimum, xs)),
    "max": Function("max(a, b, ...)", 2, None, lambda *xs: reduce(np.maximum, xs)),
    "abs": Function("abs(x)", 1, 1, np.abs),
    "log": Function("log(x)", 1, 1, safe_log),
    "exp": Function("exp(x)", 1, 1, safe_exp),
    "clip": Function("clip(x, lo, hi)", 3, 3, clip),
    "rank_pct": Function("rank_pct(x)", 1, 1, rank_pct, True),
    "cum_share": Function("cum_share(x)", 1, 1, cum_share, True),
    "zscore": Function("zscore(x)", 1, 1, zscore, True),
    "mean": Function("mean(x)", 1, 1, portfolio_mean, True),
    "sum": Function("sum(x)", 1, 1, portfolio_sum, True),
    "quantile": Function("quantile(x, q)", 2, 2, quantile, True),
}
FUNCTION_NAMES: frozenset[str] = frozenset(FUNCTIONS) | {"if"}

ARITHMETIC: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", safe_divide),
    ast.Mod: ("%", safe_mod),
    ast.Pow: ("**", power),
}
COMPARISONS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Lt: ("<", np.less),
    ast.LtE: ("<=", np.less_equal),
    ast.Gt: (">", np.greater),
    ast.GtE: (">=", np.greater_equal),
    ast.Eq: ("==", np.equal),
    ast.NotEq: ("!=", np.not_equal),
}
BAD_OPERATORS = {
    ast.FloorDiv: "'//' is not supported; use '/'",
    ast.BitAnd: "'&' is not supported; use 'and'",
    ast.BitOr: "'|' is not supported; use 'or'",
    ast.BitXor: "'^' is not supported; use '**' for powers",
    ast.LShift: "'<<' is not supported",
    ast.RShift: "'>>' is not supported",
    ast.MatMult: "'@' is not supported",
    ast.Invert: "'~' is not supported; use 'not'",
    ast.Is: "'is' is not supported; use '=='",
    ast.IsNot: "'is not' is not supported; use '!='",
}
FORBIDDEN_NODES = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "indexing ('[...]') is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.List: "a list is only allowed on the right of 'in' / 'not in'",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.IfExp: "'a if c else b' is not supported; write if(c, a, b)",
    ast.Slice: "slices are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
