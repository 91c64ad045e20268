"""Unit tests of the rule expression language (kamsim.rules.expr / functions)."""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Sequence

import numpy as np
import pytest

from kamsim.errors import Location
from kamsim.rules import Expr, ExprErrors, ExprProblem, FieldType, compile_expr, problems_at
from kamsim.rules.expr import MAX_DEPTH, MAX_SOURCE_CHARS

NAN = np.nan
FIELDS: dict[str, FieldType] = {
    "revenue": "number",
    "loyalty": "number",
    "growth": "number",
    "vip": "bool",
    "churned": "bool",
    "region": "str",
}


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    # Expr promises never to emit numpy warnings; make any warning fail the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def env() -> dict[str, np.ndarray]:
    return {
        "revenue": np.array([100.0, 50.0, 30.0, 20.0, 0.0]),
        "loyalty": np.array([0.9, 0.5, NAN, 0.7, 0.2]),
        "growth": np.array([2.0, -1.0, 0.0, 4.0, -3.0]),
        "vip": np.array([True, False, True, False, False]),
        "churned": np.array([False, False, True, True, False]),
        "region": np.array(["north", "south", "north", "east", "west"], dtype=object),
    }


def run(source: str, mask: np.ndarray | None = None, **kw: object) -> np.ndarray:
    return compile_expr(source, FIELDS, **kw)(env(), mask=mask)  # type: ignore[arg-type]


def problems(source: str, **kw: object) -> list[ExprProblem]:
    with pytest.raises(ExprErrors) as info:
        compile_expr(source, FIELDS, **kw)  # type: ignore[arg-type]
    return info.value.problems


def same(actual: np.ndarray, expected: Sequence[object]) -> None:
    want = np.array(expected)
    assert actual.shape == want.shape
    if actual.dtype.kind == "f":
        np.testing.assert_allclose(actual, want.astype(float), rtol=1e-12, atol=1e-12)
    else:
        assert actual.tolist() == want.tolist()


# --- results: types, broadcasting ---------------------------------------------------------


def test_expr_metadata() -> None:
    e = compile_expr("cum_share(revenue) <= 0.8 and loyalty > 0.5", FIELDS)
    assert isinstance(e, Expr)
    assert e.kind == "bool"
    assert e.names == frozenset({"revenue", "loyalty"})
    assert e.uses_portfolio
    plain = compile_expr("revenue * 2", FIELDS)
    assert plain.kind == "number" and not plain.uses_portfolio
    assert compile_expr("region", FIELDS).kind == "str"


def test_scalar_results_broadcast_to_n() -> None:
    out = run("1 + 2")
    assert out.dtype == np.float64
    same(out, [3.0] * 5)
    out = compile_expr("true", FIELDS)({}, n=3)
    assert out.dtype == np.bool_ and out.tolist() == [True] * 3
    assert compile_expr("'x'", FIELDS)({}, n=2).tolist() == ["x", "x"]
    with pytest.raises(ValueError, match="pass n"):
        compile_expr("1", FIELDS)({})


def test_result_is_a_fresh_array() -> None:
    e = env()
    out = compile_expr("revenue", FIELDS)(e)
    out[0] = -1
    assert e["revenue"][0] == 100.0
    # a field, or what a portfolio helper keeps for a shared_sorts block, is copied; the
    # result of an operation is handed out as it is (nobody else holds it)
    from kamsim.rules.functions import rank_pct, shared_sorts

    mask = np.ones(5, dtype=bool)
    for source in ("+revenue", "vip", "region", "rank_pct(revenue)", "if(vip, revenue, 0)",
                   "revenue > 20", "min(revenue, growth)"):
        with shared_sorts():
            out = compile_expr(source, FIELDS)(e, mask=mask)
            held = rank_pct(e["revenue"], 5, mask)
            assert all(not np.shares_memory(out, a) for a in (*e.values(), held)), source
            assert compile_expr(source, FIELDS)(e, mask=mask) is not out


def test_comparisons_and_logic_run_without_errstate_and_never_warn() -> None:
    # no arithmetic and no function: evaluated without np.errstate (the fixture turns any
    # warning into an error), NaN and infinities included
    e = env()
    e["growth"] = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
    for source in ("loyalty > 0.5 and not vip", "loyalty == loyalty or growth <= -1e308",
                   "region in ['north', 'west'] and growth != growth",
                   "if(loyalty < 1, vip, churned)", "0 < growth < loyalty"):
        expr = compile_expr(source, FIELDS)
        assert expr._quiet, source
        expr(e)
    for source in ("loyalty * 2 > 1", "abs(growth) > 1", "if(vip, growth - growth, 0) > 0"):
        assert not compile_expr(source, FIELDS)._quiet, source
        compile_expr(source, FIELDS)(e)


def test_int_columns_are_numbers_and_bad_columns_are_rejected() -> None:
    e = compile_expr("revenue + 1", FIELDS)
    same(e({"revenue": np.array([1, 2])}), [2.0, 3.0])
    with pytest.raises(TypeError, match="revenue"):
        e({"revenue": np.array([True, False])})
    with pytest.raises(KeyError, match="revenue"):
        e({"loyalty": np.array([1.0])})
    with pytest.raises(ValueError, match="shape"):
        e({"revenue": np.array([1.0, 2.0])}, n=3)
    with pytest.raises(TypeError, match="vip"):
        compile_expr("vip", FIELDS)({"vip": np.array([1.0])})


# --- operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("revenue + growth", [102.0, 49.0, 30.0, 24.0, -3.0]),
        ("revenue - growth", [98.0, 51.0, 30.0, 16.0, 3.0]),
        ("revenue * growth", [200.0, -50.0, 0.0, 80.0, -0.0]),
        ("revenue / growth", [50.0, -50.0, 0.0, 5.0, -0.0]),  # x / 0 == 0
        ("growth / 0", [0.0] * 5),
        ("revenue % 7", [2.0, 1.0, 2.0, 6.0, 0.0]),
        ("growth % -3", [-1.0, -1.0, 0.0, -2.0, 0.0]),  # sign of the divisor, like Python
        ("revenue % growth", [0.0, 0.0, 0.0, 0.0, 0.0]),  # x % 0 == 0
        ("growth ** 2", [4.0, 1.0, 0.0, 16.0, 9.0]),
        ("2 ** growth", [4.0, 0.5, 1.0, 16.0, 0.125]),
        ("-growth", [-2.0, 1.0, 0.0, -4.0, 3.0]),
        ("+growth", [2.0, -1.0, 0.0, 4.0, -3.0]),
        ("1 + 2 * 3 ** 2", [19.0] * 5),  # precedence: ** over * over +
        ("-2 ** 2", [-4.0] * 5),  # as in Python: -(2 ** 2)
        ("(1 + 2) * 3", [9.0] * 5),
        ("7 - 4 - 2", [1.0] * 5),  # left-associative
        ("loyalty * 2", [1.8, 1.0, NAN, 1.4, 0.4]),  # NaN propagates
    ],
)
def test_arithmetic(source: str, expected: list[float]) -> None:
    same(run(source), expected)


def test_division_by_zero_of_nan_and_inf_is_zero() -> None:
    e = compile_expr("revenue / growth", FIELDS)
    out = e({"revenue": np.array([NAN, np.inf, 1.0]), "growth": np.array([0.0, 0.0, NAN])})
    same(out, [0.0, 0.0, NAN])


def test_overflow_gives_inf_without_warning() -> None:
    e = compile_expr("revenue * revenue - revenue * revenue", FIELDS)
    out = e({"revenue": np.array([1e300])})
    assert np.isnan(out[0])  # inf - inf, silently


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("revenue > 30", [True, True, False, False, False]),
        ("revenue >= 30", [True, True, True, False, False]),
        ("revenue < 30", [False, False, False, True, True]),
        ("revenue <= 30", [False, False, True, True, True]),
        ("revenue == 50", [False, True, False, False, False]),
        ("revenue != 50", [True, False, True, True, True]),
        ("0 < revenue <= 50", [False, True, True, True, False]),
        ("0 <= growth < 3 != revenue", [True, False, True, False, False]),
        ("loyalty > 0.6", [True, False, False, True, False]),  # NaN compares False
        ("loyalty != loyalty", [False, False, True, False, False]),
        ("region == 'north'", [True, False, True, False, False]),
        ("'north' != region", [False, True, False, True, True]),
        ("vip == churned", [False, True, True, False, True]),
        ("region in ['north', 'east']", [True, False, True, True, False]),
        ("region not in ['north', 'east']", [False, True, False, False, True]),
        ("growth in [-1, 4, 9]", [False, True, False, True, False]),
        ("growth in []", [False] * 5),
        ("vip in [true]", [True, False, True, False, False]),
    ],
)
def test_comparisons(source: str, expected: list[bool]) -> None:
    out = run(source)
    assert out.dtype == np.bool_
    same(out, expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("vip and churned", [False, False, True, False, False]),
        ("vip or churned", [True, False, True, True, False]),
        ("not vip", [False, True, False, True, True]),
        ("not vip and churned", [False, False, False, True, False]),  # not binds tighter
        ("vip or churned and false", [True, False, True, False, False]),  # and before or
        ("(vip or churned) and false", [False] * 5),
        ("vip and True or False", [True, False, True, False, False]),
        ("revenue > 20 and not (region == 'north')", [False, True, False, False, False]),
        ("vip and churned and revenue > 10 and growth == 0", [False, False, True, False, False]),
    ],
)
def test_boolean_operators(source: str, expected: list[bool]) -> None:
    same(run(source), expected)


# --- functions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("if(vip, revenue, growth)", [100.0, -1.0, 30.0, 4.0, -3.0]),
        ("if(vip, 'key', region)", ["key", "south", "key", "east", "west"]),
        ("if(vip, churned, true)", [False, True, True, True, True]),
        ("if (growth > 0, 1, 0)", [1.0, 0.0, 0.0, 1.0, 0.0]),
        ("if(loyalty > 0.6, 1, if(loyalty > 0.3, 2, 3))", [1.0, 2.0, 3.0, 1.0, 3.0]),
        ("min(revenue, 40)", [40.0, 40.0, 30.0, 20.0, 0.0]),
        ("min(revenue, growth * 10, 25)", [20.0, -10.0, 0.0, 20.0, -30.0]),
        ("max(revenue, 40)", [100.0, 50.0, 40.0, 40.0, 40.0]),
        ("max(loyalty, 0.6)", [0.9, 0.6, NAN, 0.7, 0.6]),  # NaN propagates
        ("abs(growth)", [2.0, 1.0, 0.0, 4.0, 3.0]),
        ("log(growth)", [np.log(2.0), 0.0, 0.0, np.log(4.0), 0.0]),  # log(x <= 0) == 0
        ("log(loyalty)", [np.log(0.9), np.log(0.5), NAN, np.log(0.7), np.log(0.2)]),
        ("exp(growth)", list(np.exp([2.0, -1.0, 0.0, 4.0, -3.0]))),
        ("exp(1000)", [np.exp(700.0)] * 5),  # argument clipped to 700
        ("clip(growth, -1, 2)", [2.0, -1.0, 0.0, 2.0, -1.0]),
        ("clip(growth, 3, 1)", [1.0] * 5),  # lo > hi: hi
    ],
)
def test_functions(source: str, expected: list[object]) -> None:
    same(run(source), expected)


def test_if_evaluates_both_branches_without_warnings() -> None:
    # Both branches are computed for every account; neither may warn.
    same(run("if(growth != 0, revenue / growth, log(growth))"), [50.0, -50.0, 0.0, 5.0, -0.0])


# --- portfolio helpers ---------------------------------------------------------------------


def test_cum_share_worked_example() -> None:
    # revenue 100, 50, 30, 20, 0; total 200. Descending cumulative: 100, 150, 180, 200, 200.
    same(run("cum_share(revenue)"), [0.5, 0.75, 0.9, 1.0, 1.0])
    same(run("cum_share(revenue) <= 0.8"), [True, True, False, False, False])


def test_cum_share_ties_are_ordered_by_index() -> None:
    e = compile_expr("cum_share(revenue)", FIELDS)
    # 10 (i=0), 30 (i=1), 10 (i=2), 30 (i=3): order 1, 3, 0, 2; total 80.
    same(e({"revenue": np.array([10.0, 30.0, 10.0, 30.0])}), [70 / 80, 30 / 80, 1.0, 60 / 80])


def test_cum_share_non_positive_total_and_mask() -> None:
    e = compile_expr("cum_share(revenue)", FIELDS)
    same(e({"revenue": np.array([0.0, 0.0, 0.0])}), [1.0, 1.0, 1.0])
    same(e({"revenue": np.array([-5.0, 2.0])}), [1.0, 1.0])
    mask = np.array([True, False, True, True, False])
    # population 100, 30, 20 (total 150); rows outside the mask get 0.
    same(run("cum_share(revenue)", mask=mask), [100 / 150, 0.0, 130 / 150, 1.0, 0.0])
    same(run("cum_share(loyalty)"), [0.9 / 2.3, 2.1 / 2.3, NAN, 1.6 / 2.3, 1.0])  # NaN row


def test_rank_pct_with_ties_nan_and_mask() -> None:
    e = compile_expr("rank_pct(revenue)", FIELDS)
    # 3, 1, 3, 2: sorted 1, 2, 3, 3 -> ranks 1, 2, 3.5, 3.5; divided by 4.
    same(e({"revenue": np.array([3.0, 1.0, 3.0, 2.0])}), [0.875, 0.25, 0.875, 0.5])
    same(e({"revenue": np.array([7.0, 7.0, 7.0])}), [2 / 3] * 3)
    same(run("rank_pct(loyalty)"), [1.0, 0.5, NAN, 0.75, 0.25])  # population of 4
    mask = np.array([False, True, True, True, True])
    same(run("rank_pct(revenue)", mask=mask), [0.0, 1.0, 0.75, 0.5, 0.25])
    same(run("rank_pct(revenue)", mask=np.zeros(5, bool)), [0.0] * 5)


def test_quantile() -> None:
    # sorted 0, 20, 30, 50, 100; q=0.5 -> 30; q=0.9 -> index 3.6 -> 50 + 0.6 * 50 = 80.
    same(run("quantile(revenue, 0.5)"), [30.0] * 5)
    same(run("quantile(revenue, 0.9)"), [80.0] * 5)
    same(run("quantile(revenue, 0)"), [0.0] * 5)
    same(run("quantile(revenue, 1)"), [100.0] * 5)
    same(run("revenue >= quantile(revenue, 0.75)"), [True, True, False, False, False])
    # NaN excluded: 0.2, 0.5, 0.7, 0.9 -> index 1.5 -> 0.6.
    same(run("quantile(loyalty, 0.5)"), [0.6] * 5)
    mask = np.array([False, True, True, False, False])
    same(run("quantile(revenue, 0.5)", mask=mask), [40.0] * 5)  # broadcast to every row
    same(run("quantile(revenue, 0.5)", mask=np.zeros(5, bool)), [NAN] * 5)


def test_zscore() -> None:
    e = compile_expr("zscore(revenue)", FIELDS)
    # 1, 2, 3, 6: mean 3, population var (4 + 1 + 0 + 9) / 4 = 3.5.
    s = np.sqrt(3.5)
    same(e({"revenue": np.array([1.0, 2.0, 3.0, 6.0])}), [-2 / s, -1 / s, 0.0, 3 / s])
    same(e({"revenue": np.array([0.1, 0.1, 0.1])}), [0.0, 0.0, 0.0])  # all equal
    mask = np.array([True, True, False, False, False])
    same(run("zscore(revenue)", mask=mask), [1.0, -1.0, 0.0, 0.0, 0.0])
    same(
        run("zscore(loyalty)", mask=np.array([True, False, True, False, True])),
        [1.0, 0.0, NAN, 0.0, -1.0],
    )


def test_mean_and_sum() -> None:
    same(run("mean(revenue)"), [40.0] * 5)
    same(run("sum(revenue)"), [200.0] * 5)
    same(run("sum(loyalty)"), [2.3] * 5)  # NaN skipped
    same(run("revenue / sum(revenue)"), [0.5, 0.25, 0.15, 0.1, 0.0])
    empty = np.zeros(5, bool)
    same(run("sum(revenue)", mask=empty), [0.0] * 5)
    same(run("mean(revenue)", mask=empty), [NAN] * 5)
    same(run("sum(revenue)", mask=np.array([True, True, False, False, True])), [150.0] * 5)


def test_mask_must_be_bool_of_length_n() -> None:
    with pytest.raises(ValueError, match="mask"):
        run("rank_pct(revenue)", mask=np.ones(4, bool))
    with pytest.raises(ValueError, match="mask"):
        run("rank_pct(revenue)", mask=np.ones(5))


def test_expr_pickles_by_recompiling() -> None:
    e = compile_expr("rank_pct(revenue) > 0.5", FIELDS, expect="bool")
    back = pickle.loads(pickle.dumps(e))
    assert back.source == e.source and back.kind == "bool"
    same(back(env()), e(env()).tolist())


# --- errors -------------------------------------------------------------------------------


def test_unknown_name_offset_and_suggestion() -> None:
    source = "revenue > 1 and loyalty_ > 0"
    (p,) = problems(source)
    assert p.offset == source.index("loyalty_") == 16
    assert "unknown name 'loyalty_'" in p.message
    assert "did you mean 'loyalty'?" in p.message


def test_two_unknown_names_are_two_problems() -> None:
    ps = problems("revenu > 1 or regoin == 'x'")
    assert [p.offset for p in ps] == [0, 14]
    assert "did you mean 'revenue'" in ps[0].message
    assert "did you mean 'region'" in ps[1].message


def test_unknown_function_suggests_a_function() -> None:
    (p,) = problems("rank_pc(revenue) > 0.5")
    assert p.offset == 0 and "unknown function 'rank_pc'; did you mean 'rank_pct'?" in p.message


def test_offsets_count_characters_not_bytes() -> None:
    (p,) = problems("region == 'München' and vipp")
    assert p.offset == 24


def test_leading_whitespace_and_newlines_keep_offsets() -> None:
    source = "  revenue > 1\n and loyalty_ > 0"
    (p,) = problems(source)
    assert p.offset == source.index("loyalty_")


@pytest.mark.parametrize(
    ("source", "offset", "text"),
    [
        ("loyalty + (revenue > 1)", 11, "`+` needs numbers, got a true/false value"),
        ("revenue > 1 and loyalty", 16, "`and` needs true/false operands, got a number"),
        ("not revenue", 4, "`not` needs a true/false operand, got a number"),
        ("-vip", 1, "`-` needs a number, got a true/false value"),
        ("region < 'b'", 0, "`<` needs numbers, got a string"),
        ("vip == 1", 7, "cannot compare a true/false value with a number"),
        ("region + 1", 0, "`+` needs numbers, got a string"),
        ("if(revenue, 1, 2)", 3, "if(...) needs a true/false condition, got a number"),
        ("if(vip, 'a', 2)", 13, "branches must have the same type: a string and a number"),
        ("abs(vip)", 4, "abs(...) needs numbers, got a true/false value"),
        ("rank_pct(region)", 9, "rank_pct(...) needs numbers, got a string"),
        ("min(revenue)", 0, "min(a, b, ...) cannot take 1 argument(s)"),
        ("clip(revenue, 1)", 0, "clip(x, lo, hi) cannot take 2 argument(s)"),
        ("quantile(revenue, 1.5)", 18, "quantile level must be a number literal between 0 and 1"),
        ("quantile(revenue, loyalty)", 18, "quantile level must be a number literal"),
        ("revenue in [1, 'a']", 15, "this list item is a string but the left side is a number"),
        ("revenue in [loyalty]", 12, "`in` lists may only hold literal"),
        ("revenue in loyalty", 11, "`in` needs a list of literals"),
        ("revenue in [1] == vip", 0, "`in` cannot be chained"),
        ("revenue", 0, "expected a true/false condition, got a number"),
        ("revenue(1)", 0, "'revenue' is a field, not a function"),
        ("rank_pct", 0, "'rank_pct' is a function"),
        ("1 +", 3, "syntax error"),
        ("", 0, "empty expression"),
        ("   ", 0, "empty expression"),
        ("revenue & vip", 0, "'&' is not supported; use 'and'"),
        ("~vip", 0, "'~' is not supported; use 'not'"),
        ("vip is true", 0, "'is' is not supported"),
        ("revenue // 2", 0, "'//' is not supported"),
        ("revenue if vip else 0", 0, "write if(c, a, b)"),
        ("1j", 0, "complex numbers"),
        ("None", 0, "None cannot be used"),
        ("9" * 400, 0, "number literal is too large"),
    ],
)
def test_errors_are_located(source: str, offset: int, text: str) -> None:
    ps = problems(source, expect="bool")
    assert any(p.offset == offset and text in p.message for p in ps), [str(p) for p in ps]


def test_a_comparison_of_two_strings_is_one_problem() -> None:
    """The mistake is the comparison (docs/rules.md shows one message at col 1), and the
    middle operand of a chain is not told twice."""
    (p,) = problems("region < 'b'", expect="bool")
    assert (p.offset, p.message) == (0, "`<` needs numbers, got a string")
    (p,) = problems("revenue < region < 3", expect="bool")
    assert p.offset == 10
    ps = problems("vipp < region", expect="bool")  # an unknown name hides nothing
    assert [p.offset for p in ps] == [0, 7]


def test_expect_number_and_str() -> None:
    (p,) = problems("vip", expect="number")
    assert p.message == "expected a number, got a true/false value"
    (p,) = problems("revenue", expect="str")
    assert p.message == "expected a string, got a number"
    assert compile_expr("revenue", FIELDS, expect="number").kind == "number"


ATTACKS = [
    "__import__('os').system('x')",
    "().__class__.__bases__",
    "x.real",
    "revenue.real",
    "lambda: 1",
    "[a for a in b]",
    "{1: 2}",
    "{1, 2}",
    "(1, 2)",
    "[1, 2]",
    "open('f')",
    "a[0]",
    "revenue[0]",
    "(x := 1)",
    'f"{x}"',
    "x" * (MAX_SOURCE_CHARS + 1),
    "(" * 200 + "1" + ")" * 200,
    "(" * (MAX_DEPTH + 1) + "1" + ")" * (MAX_DEPTH + 1),
    "-" * 1999 + "1",
    "not " * 400 + "vip",
    "revenue ** " * 60 + "1",  # `**` nests to the right: 60 levels
    "",
    "1 +",
    "if(x > 1, 'a', 2)",
    "if(revenue > 1, 'a', 2)",
    "__builtins__",
    "__class__",
    "getattr(revenue, 'real')",
    "max(*revenue)",
    "abs(x=1)",
    "revenue @ revenue",
    "x\x00",
    "'abc",
    "b'x' == region",
    "...",
    "await x",
    "(yield)",
    "revenue[::-1]",
    "(lambda: 1)()",
    "'%s' % region",
    "region * 3",
    "'a' + region",
]


@pytest.mark.parametrize("source", ATTACKS, ids=lambda s: repr(s[:30]))
def test_attacks_are_rejected_with_expr_errors(source: str) -> None:
    with pytest.raises(ExprErrors) as info:
        compile_expr(source, FIELDS)
    assert info.value.problems
    for p in info.value.problems:
        assert 0 <= p.offset <= len(source)
        assert p.message


def test_too_long_and_too_deep_messages() -> None:
    (p,) = problems("1+" * 1001 + "1")
    assert p.offset == MAX_SOURCE_CHARS and "too long (2003 characters)" in p.message
    (p,) = problems("(" * 200 + "1" + ")" * 200)
    assert p.offset == MAX_DEPTH and "too many nested parentheses" in p.message
    (p,) = problems("-" * 1999 + "1")
    assert "nested too deeply" in p.message


def test_if_keyword_rewrite_keeps_user_text() -> None:
    e = compile_expr("if(vip, 1, 2)", FIELDS)
    assert e.source == "if(vip, 1, 2)"
    (p,) = problems("if(vip, 1, 2) + iff")
    assert p.offset == 16


def test_problems_at_shifts_locations() -> None:
    with pytest.raises(ExprErrors) as info:
        compile_expr("revenue > 1 and loyalty_ > 0", FIELDS)
    (located,) = problems_at(info.value, Location("rules.yaml", 7, 12))
    assert located.loc == Location("rules.yaml", 7, 28)
    assert located.format().startswith("rules.yaml:7:28: unknown name 'loyalty_'")


def test_expr_errors_str_and_pickle() -> None:
    with pytest.raises(ExprErrors) as info:
        compile_expr("foo + bar", FIELDS)
    text = str(info.value)
    assert "column 1: unknown name 'foo'" in text and "column 7: unknown name 'bar'" in text
    back = pickle.loads(pickle.dumps(info.value))
    assert [p.offset for p in back.problems] == [0, 6]


def test_compile_rejects_bad_field_types() -> None:
    with pytest.raises(ValueError, match="float"):
        compile_expr("x", {"x": "float"})  # type: ignore[dict-item]


def test_a_long_chain_of_operations_is_not_nesting() -> None:
    """The depth limit counts nesting: a sum of 200 terms, or as many as 2000 characters
    hold, compiles and gives the sum; 51 nested parentheses or signs do not."""
    env = {"revenue": np.array([1.0, 0.1, -3.0]), "loyalty": np.array([0.5, 2.0, np.nan])}
    for n, name in ((200, "revenue"), (1000, "a")):  # (1000 x "a+": 1999 characters)
        e = compile_expr("+".join([name] * n), {**FIELDS, "a": "number"})
        x = env["revenue"]
        want = x.copy()
        for _ in range(n - 1):
            want = want + x
        assert np.array_equal(e({**env, "a": x}), want)
    source = " - ".join(["revenue * 2 + loyalty / 4 % 3"] * 30)  # 30 x 4 operations
    got = compile_expr(source, FIELDS)(env)
    r, lo = env["revenue"], env["loyalty"]
    want = r * 2 + lo / 4 % 3
    for _ in range(29):
        want = want - r * 2 + lo / 4 % 3
    assert np.array_equal(got, want, equal_nan=True)
    (p,) = problems("(" * 51 + "revenue" + ")" * 51)
    assert p.offset == 50 and "too many nested parentheses (more than 50)" in p.message
    (p,) = problems("-" * 51 + "revenue")
    assert p.offset == 50 and "nested too deeply (more than 50 levels)" in p.message
    assert compile_expr("-" * 49 + "revenue", FIELDS).kind == "number"


def test_a_long_chain_reports_each_problem_once() -> None:
    # the same problems as a chain walked one level at a time
    assert [(p.offset, p.message) for p in problems("revenue + region - 1 + vip")] == [
        (10, "`+` needs numbers, got a string"), (23, "`+` needs numbers, got a true/false value")]
    assert [(p.offset, p.message) for p in problems("revenue // 2 + region * 3 // 1 - vip")] == [
        (0, "'//' is not supported; use '/'"), (15, "'//' is not supported; use '/'"),
        (33, "`-` needs numbers, got a true/false value")]


@pytest.mark.parametrize(("source", "offset", "message"), [
    ("0x10 + revenue", 0, "hexadecimal numbers are not part of the language, got '0x10'"),
    ("revenue > 0o17", 10, "octal numbers are not part of the language, got '0o17'"),
    ("revenue * 0B101", 10, "binary numbers are not part of the language, got '0B101'"),
    ("region == 'no' 'rth'", 15, "two strings side by side; strings are not joined"),
    ("region in ['a' \"b\", 'c']", 15, "two strings side by side; strings are not joined"),
])
def test_python_literals_outside_the_language_are_refused(source: str, offset: int,
                                                          message: str) -> None:
    (p,) = problems(source)
    assert (p.offset, p.message) == (offset, message)


def test_literal_problems_come_with_the_others() -> None:
    # (and the joined string is still a string that `+` refuses, at 13)
    assert [p.offset for p in problems("0x1 + trst + 'a' 'b'")] == [0, 6, 13, 17]


def test_if_is_the_only_spelling_of_if() -> None:
    assert compile_expr("if(vip, 1, 2)", FIELDS).kind == "number"
    (p,) = problems("IF(vip, 1, 2)")
    assert p.message == "unknown function 'IF'; did you mean 'if'?"
    (p,) = problems("revenue + IF")
    assert (p.offset, p.message.split(";")[0]) == (10, "unknown name 'IF'")


def test_unknown_name_suggests_the_closest_fields_and_counts_the_rest() -> None:
    (p,) = problems("loyalty_ > 0")
    assert p.message == "unknown name 'loyalty_'; did you mean 'loyalty'?"
    assert p.expected is not None and p.expected.startswith("a field such as loyalty, ")
    assert p.expected.endswith(" (1 more)")
    assert len(p.expected.split(", ")) == 5
    many = {f"field_{i:02d}": "number" for i in range(40)}
    with pytest.raises(ExprErrors) as info:
        compile_expr("field_7 > 1", many)  # type: ignore[arg-type]
    (p,) = info.value.problems
    assert p.expected is not None and p.expected.endswith(" (35 more)")
    assert "field_07" in p.expected


REGIONS = {"region": ["north", "south", "east", "west"]}


@pytest.mark.parametrize("source, offset, name", [
    ("region == 'nort'", 10, "north"),        # a misspelt name is never equal: refused
    ("'sooth' != region", 0, "south"),        # either side
    ("region in ['east', 'wset']", 19, "west"),
    ("if(region == 'North', 1, 0) > 0", 13, "north"),  # only the case differs
])
def test_a_string_compared_with_a_field_of_known_names_must_be_one_of_them(
        source: str, offset: int, name: str) -> None:
    (p,) = problems(source, values=REGIONS)
    assert p.offset == offset
    assert p.message.endswith(f"; did you mean {name!r}?")
    assert p.message.startswith("unknown region ")
    assert p.expected == "one of: north, south, east, west"


def test_known_names_pass_and_only_check_never_change_the_rule() -> None:
    for source in ("region == 'north'", "region in ['east', 'west']", "region != ''"):
        same(run(source, values=REGIONS), run(source))
    # without the names (an imported portfolio's segments), any string is taken as written
    assert compile_expr("region == 'nort'", FIELDS).kind == "bool"  # type: ignore[arg-type]
    (p,) = problems("region == 'zzz'", values=REGIONS)
    assert p.message == "unknown region 'zzz'"


def test_an_expression_compiled_before_is_given_again_and_names_are_still_checked() -> None:
    """A scenario's rules were compiled when it was loaded (checked with the names `tier`
    and `stage` may take) and again when its model was compiled: the second is the first.
    Names given later are checked again however often the expression was compiled."""
    first = compile_expr("region == 'north' and revenue > 2", FIELDS, expect="bool",
                         values={"region": ["north", "south"]})
    assert compile_expr("region == 'north' and revenue > 2", FIELDS, expect="bool") is first
    assert compile_expr("region == 'north' and revenue > 2", FIELDS) is not first  # (expect)
    assert compile_expr("region == 'north' and revenue > 2", {**FIELDS, "extra": "number"},
                        expect="bool") is not first
    compile_expr("region == 'nrth'", FIELDS)  # (no names to check it against: kept)
    with pytest.raises(ExprErrors, match="nrth"):
        compile_expr("region == 'nrth'", FIELDS, values={"region": ["north", "south"]})
