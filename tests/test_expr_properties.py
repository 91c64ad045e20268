"""Property test: the compiled, vectorised evaluator agrees with the row-at-a-time reference.

Random well-typed expressions over a random account table are evaluated by
``compile_expr(...)(env, mask=...)`` and by ``reference.evaluate_row`` for every row.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kamsim.rules import FieldType, compile_expr
from kamsim.rules.expr import MAX_SOURCE_CHARS
from kamsim.rules.reference import evaluate_row

FIELDS: dict[str, FieldType] = {
    "a": "number",
    "b": "number",
    "c": "number",
    "p": "bool",
    "q": "bool",
    "s": "str",
}
NUMBER_FIELDS = ["a", "b", "c"]
# Small dyadic values: portfolio sums of them are exact whatever the summation order, so
# comparisons against portfolio results cannot flip on an ulp.
VALUES = [0.0, -0.0, 1.0, -1.0, 2.0, 0.5, -2.5, 3.0, 7.0, 100.0, -100.0, 0.25, math.nan]
NUMBER_LITERALS = ["0", "1", "2", "0.5", "-1", "3", "1e6", "0.1", "100"]
STRINGS = ["'x'", "'y'", "'z'", "'münchen'"]


def number(draw: st.DrawFn, depth: int) -> str:
    if depth <= 0:
        return draw(st.sampled_from(NUMBER_FIELDS + NUMBER_LITERALS))
    sub = depth - 1
    # Weighted: arithmetic (incl. / and % by zero) and portfolio helpers come up often.
    choice = draw(st.sampled_from([1, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0]))
    if choice == 0:
        return draw(st.sampled_from(NUMBER_FIELDS + NUMBER_LITERALS))
    if choice == 11:
        # a chain without parentheses, a + b * c - d / e ...: operators of both precedences,
        # as long as the depth limit once refused (it counts nesting, not length)
        terms = [number(draw, 0) for _ in range(draw(st.integers(2, 60)))]
        ops = draw(st.lists(st.sampled_from(["+", "-", "*", "/", "%"]),
                            min_size=len(terms) - 1, max_size=len(terms) - 1))
        return "(" + terms[0] + "".join(f" {op} {t}" for op, t in zip(ops, terms[1:],
                                                                       strict=True)) + ")"
    if choice == 1:
        op = draw(st.sampled_from(["+", "-", "*", "/", "/", "%"]))
        return f"({number(draw, sub)} {op} {number(draw, sub)})"
    if choice == 2:
        return f"({number(draw, sub)} ** {draw(st.sampled_from(['0', '1', '2', '3']))})"
    if choice == 3:
        return f"-{number(draw, sub)}"
    if choice == 4:
        fn = draw(st.sampled_from(["min", "max"]))
        args = [number(draw, sub) for _ in range(draw(st.integers(2, 3)))]
        return f"{fn}({', '.join(args)})"
    if choice == 5:
        return f"{draw(st.sampled_from(['abs', 'log', 'exp']))}({number(draw, sub)})"
    if choice == 6:
        return f"clip({number(draw, sub)}, {number(draw, sub)}, {number(draw, sub)})"
    if choice == 7:
        return f"if({boolean(draw, sub)}, {number(draw, sub)}, {number(draw, sub)})"
    if choice in (8, 9):
        fn = draw(st.sampled_from(["rank_pct", "cum_share", "zscore", "mean", "sum"]))
        return f"{fn}({exact(draw, sub)})"
    if choice == 10:
        q = draw(st.sampled_from(["0", "0.25", "0.5", "0.75", "1", "0.9"]))
        return f"quantile({exact(draw, sub)}, {q})"
    raise AssertionError(choice)


def exact(draw: st.DrawFn, depth: int) -> str:
    """Numbers computed exactly from VALUES (so portfolio helpers see identical inputs)."""
    if depth <= 0 or draw(st.booleans()):
        return draw(st.sampled_from(NUMBER_FIELDS + ["1", "2", "-1"]))
    sub = depth - 1
    choice = draw(st.integers(0, 3))
    if choice == 0:
        op = draw(st.sampled_from(["+", "-", "*"]))
        return f"({exact(draw, sub)} {op} {exact(draw, sub)})"
    if choice == 1:
        return f"abs({exact(draw, sub)})"
    if choice == 2:
        return f"max({exact(draw, sub)}, {exact(draw, sub)})"
    return f"if({boolean(draw, sub)}, {exact(draw, sub)}, {exact(draw, sub)})"


def boolean(draw: st.DrawFn, depth: int) -> str:
    if depth <= 0:
        return draw(st.sampled_from(["p", "q", "true", "false", "True"]))
    sub = depth - 1
    choice = draw(st.integers(0, 8))
    if choice == 0:
        return draw(st.sampled_from(["p", "q", "true", "False"]))
    if choice in (1, 2):
        op = draw(st.sampled_from(["<", "<=", ">", ">=", "==", "!="]))
        return f"({number(draw, sub)} {op} {number(draw, sub)})"
    if choice == 3:
        ops = draw(st.lists(st.sampled_from(["<", "<=", ">", ">="]), min_size=2, max_size=3))
        parts = [number(draw, sub) for _ in range(len(ops) + 1)]
        chain = parts[0] + "".join(f" {op} {x}" for op, x in zip(ops, parts[1:], strict=True))
        return f"({chain})"
    if choice == 4:
        word = draw(st.sampled_from(["and", "or"]))
        parts = [boolean(draw, sub) for _ in range(draw(st.integers(2, 3)))]
        return "(" + f" {word} ".join(parts) + ")"
    if choice == 5:
        return f"(not {boolean(draw, sub)})"
    if choice == 6:
        op = draw(st.sampled_from(["==", "!=", "in", "not in"]))
        if op in ("in", "not in"):
            items = draw(st.lists(st.sampled_from(STRINGS), max_size=3))
            return f"({string(draw, sub)} {op} [{', '.join(items)}])"
        return f"({string(draw, sub)} {op} {string(draw, sub)})"
    if choice == 7:
        items = draw(st.lists(st.sampled_from(["0", "1", "-1", "2.5", "100"]), max_size=3))
        op = draw(st.sampled_from(["in", "not in"]))
        return f"({number(draw, sub)} {op} [{', '.join(items)}])"
    return f"if({boolean(draw, sub)}, {boolean(draw, sub)}, {boolean(draw, sub)})"


def string(draw: st.DrawFn, depth: int) -> str:
    if depth <= 0 or draw(st.booleans()):
        return draw(st.sampled_from(["s", "s", *STRINGS]))
    sub = depth - 1
    return f"if({boolean(draw, sub)}, {string(draw, sub)}, {string(draw, sub)})"


@st.composite
def expressions(draw: st.DrawFn) -> str:
    depth = draw(st.sampled_from([1, 2, 3, 3, 4, 4]))
    kind = draw(st.sampled_from(["number", "number", "bool", "bool", "str"]))
    return {"number": number, "bool": boolean, "str": string}[kind](draw, depth)


@st.composite
def tables(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    n = draw(st.integers(1, 9))
    floats = st.lists(st.sampled_from(VALUES), min_size=n, max_size=n)
    bools = st.lists(st.booleans(), min_size=n, max_size=n)
    env = {name: np.array(draw(floats), dtype=np.float64) for name in NUMBER_FIELDS}
    env["p"] = np.array(draw(bools), dtype=bool)
    env["q"] = np.array(draw(bools), dtype=bool)
    env["s"] = np.array(draw(st.lists(st.sampled_from(["x", "y", "z"]), min_size=n, max_size=n)))
    mask = draw(st.none() | bools.map(lambda b: np.array(b, dtype=bool)))
    return env, mask


def agree(kind: str, got: object, want: object) -> bool:
    if kind == "number":
        g, w = float(got), float(want)  # type: ignore[arg-type]
        if math.isnan(g) or math.isnan(w):
            return math.isnan(g) and math.isnan(w)
        return bool(np.isclose(g, w, rtol=1e-9, atol=1e-9))
    return got == want


@settings(
    max_examples=500,
    deadline=None,
    database=None,  # no .hypothesis folder in a shared tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
@given(source=expressions(), data=tables())
def test_compiled_matches_reference(
    source: str, data: tuple[dict[str, np.ndarray], np.ndarray | None]
) -> None:
    env, mask = data
    assume(len(source) <= MAX_SOURCE_CHARS)  # (a few chains in one text can be longer)
    expr = compile_expr(source, FIELDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the compiled path must not warn
        got = expr(env, mask=mask)
    n = len(env["a"])
    assert got.shape == (n,)
    for i in range(n):
        row = {name: column[i] for name, column in env.items()}
        want = evaluate_row(source, FIELDS, row, env, i, mask)
        assert agree(expr.kind, got[i], want), (source, i, got[i], want)


@st.composite
def long_chains(draw: st.DrawFn) -> str:
    """A chain of 40 to 150 operations without parentheses: one level of nesting (the
    depth limit of 50 once counted each operation as a level)."""
    n = draw(st.integers(40, 150))
    terms = draw(st.lists(st.sampled_from(NUMBER_FIELDS + NUMBER_LITERALS), min_size=n,
                          max_size=n))
    ops = draw(st.lists(st.sampled_from(["+", "-", "*", "/", "%"]), min_size=n - 1,
                        max_size=n - 1))
    return terms[0] + "".join(f" {op} {t}" for op, t in zip(ops, terms[1:], strict=True))


@settings(max_examples=100, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(source=long_chains(), data=tables())
def test_long_chains_match_reference(
    source: str, data: tuple[dict[str, np.ndarray], np.ndarray | None]
) -> None:
    test_compiled_matches_reference.hypothesis.inner_test(source=source, data=data)  # type: ignore[attr-defined]


def _same_values(got: np.ndarray, want: np.ndarray) -> bool:
    """Bit for bit for numbers and true/false, value for value for text."""
    if got.dtype == object or want.dtype == object:
        return got.dtype == want.dtype and got.tolist() == want.tolist()
    return got.dtype == want.dtype and got.tobytes() == want.tobytes()


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(source=expressions(), data=tables(), picks=st.data())
def test_an_evaluation_at_some_rows_is_the_whole_one_taken_there(
    source: str, data: tuple[dict[str, np.ndarray], np.ndarray | None], picks: st.DataObject
) -> None:
    """``rows``: each row-by-row operation on those rows' values, each portfolio helper
    (moved or not) over every row then taken at them, so exactly the whole evaluation at
    those rows (any rows, in any order, repeated or none)."""
    env, mask = data
    assume(len(source) <= MAX_SOURCE_CHARS)
    expr = compile_expr(source, FIELDS)
    n = len(env["a"])
    rows = np.array(picks.draw(st.lists(st.integers(0, n - 1), max_size=2 * n)), dtype=np.intp)
    moved = picks.draw(st.none() | st.lists(st.sampled_from(VALUES), min_size=n, max_size=n)
                       .map(lambda v: {"a": np.array(v, dtype=np.float64)}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the compiled path must not warn
        whole = expr(env, mask=mask, moved=moved)
        at = expr(env, mask=mask, moved=moved, rows=rows)
    assert at.shape == rows.shape
    assert _same_values(at, whole[rows]), (source, rows, at, whole[rows])


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.filter_too_much])
@given(count=st.integers(1, 3), data=tables(), picks=st.data())
def test_a_table_at_some_rows_is_the_whole_table_taken_there(
    count: int, data: tuple[dict[str, np.ndarray], np.ndarray | None], picks: st.DataObject
) -> None:
    """DecisionTable.outputs at some accounts (a re-tiering's nudged tables) gives each the
    output of the whole table, every hit policy; a `unique` table's overlap names the same
    accounts, among those asked for."""
    from kamsim.rules.tables import DecisionTable, Row, TableHitError

    env, mask = data
    n = len(env["a"])
    policy = picks.draw(st.sampled_from(["first", "unique", "priority", "collect_sum"]))
    sources = [picks.draw(st.sampled_from(["p", "q", "(a > 0)", "(rank_pct(a) >= 0.5)",
                                           "(cum_share(b) <= 0.5 and not p)",
                                           "(zscore(a) < 0 or q)", "(a > quantile(b, 0.5))"]))
               for _ in range(count)]
    rows = [Row(compile_expr(src, FIELDS), float(i), float(-i)) for i, src in enumerate(sources)]
    table = DecisionTable(rows, policy, picks.draw(st.sampled_from([None, 9.0])))
    at = np.array(picks.draw(st.lists(st.integers(0, n - 1), max_size=2 * n)), dtype=np.intp)
    moved = picks.draw(st.none() | st.just({"a": -env["a"]}))
    try:
        whole = table.outputs(env, n, mask, moved)
    except TableHitError as whole_error:
        named = sorted(set(whole_error.accounts.tolist()) & set(at.tolist()))
        if not named:  # the accounts asked for match one row each
            table.outputs(env, n, mask, moved, at)
            return
        with pytest.raises(TableHitError) as error:
            table.outputs(env, n, mask, moved, at)
        assert sorted(set(error.value.accounts.tolist())) == named
        return
    got = table.outputs(env, n, mask, moved, at)
    assert _same_values(got, whole[at])
