"""Tests of decision tables (kamsim.rules.tables)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from kamsim.rules import DecisionTable, FieldType, Row, TableHitError, compile_expr

FIELDS: dict[str, FieldType] = {"revenue": "number", "loyalty": "number", "vip": "bool"}
NAN = np.nan


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def env() -> dict[str, np.ndarray]:
    return {
        "revenue": np.array([100.0, 50.0, 30.0, 20.0, 0.0, 5.0]),
        "loyalty": np.array([0.9, 0.5, 0.8, 0.7, 0.2, NAN]),
        "vip": np.array([True, False, True, False, False, False]),
    }


def row(when: str, output: float, priority: float = 0.0, label: str = "") -> Row:
    return Row(compile_expr(when, FIELDS, expect="bool"), output, priority, label)


def test_first_takes_the_first_matching_row_in_order() -> None:
    table = DecisionTable(
        [row("revenue >= 50", 3.0), row("loyalty > 0.6", 2.0), row("vip", 1.0)],
        "first",
        default=0.0,
    )
    out, matched = table.evaluate(env())
    assert out.tolist() == [3.0, 3.0, 2.0, 2.0, 0.0, 0.0]
    assert matched.tolist() == [0, 0, 1, 1, -1, -1]
    assert out.dtype == np.float64 and matched.dtype == np.int64


def test_no_match_without_default_is_nan() -> None:
    table = DecisionTable([row("revenue > 60", 1.0)], "first", default=None)
    out, matched = table.evaluate(env())
    assert out[0] == 1.0 and np.isnan(out[1:]).all()
    assert matched.tolist() == [0, -1, -1, -1, -1, -1]


def test_unique_passes_when_rows_do_not_overlap() -> None:
    table = DecisionTable(
        [row("revenue >= 50", 1.0), row("revenue < 50 and revenue >= 20", 2.0)],
        "unique",
        default=9.0,
    )
    out, matched = table.evaluate(env())
    assert out.tolist() == [1.0, 1.0, 2.0, 2.0, 9.0, 9.0]
    assert matched.tolist() == [0, 0, 1, 1, -1, -1]


def test_unique_violation_names_rows_and_accounts() -> None:
    table = DecisionTable(
        [row("revenue >= 50", 1.0, label="big"), row("vip", 2.0), row("revenue < 1", 3.0)],
        "unique",
        default=None,
    )
    with pytest.raises(TableHitError) as info:
        table.evaluate(env())
    err = info.value
    assert err.rows == [0, 1]
    assert err.accounts.tolist() == [0]
    assert "accounts 0" in str(err) and "0 ('big')" in str(err)


def test_unique_only_checks_accounts_in_the_mask() -> None:
    table = DecisionTable([row("revenue >= 50", 1.0), row("vip", 2.0)], "unique", None)
    mask = np.array([False, True, True, True, True, True])
    out, matched = table.evaluate(env(), mask=mask)
    assert matched.tolist() == [0, 0, 1, -1, -1, -1]  # account 0 resolved as "first"


def test_unique_message_names_at_most_ten_accounts() -> None:
    n = 25
    e = {"revenue": np.arange(n, dtype=float), "loyalty": np.ones(n), "vip": np.ones(n, bool)}
    table = DecisionTable([row("vip", 1.0), row("revenue >= 0", 2.0)], "unique", None)
    with pytest.raises(TableHitError) as info:
        table.evaluate(e)
    assert len(info.value.accounts) == n
    assert "accounts 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 and 15 more" in str(info.value)


def test_priority_picks_highest_priority_and_first_on_ties() -> None:
    table = DecisionTable(
        [
            row("revenue >= 20", 1.0, priority=1.0),
            row("vip", 2.0, priority=5.0),
            row("loyalty > 0.6", 3.0, priority=1.0),
            row("loyalty > 0.75", 4.0, priority=5.0),
        ],
        "priority",
        default=-1.0,
    )
    out, matched = table.evaluate(env())
    # acct0: rows 0,1,2,3 -> priority 5 tie between 1 and 3 -> row 1 (first)
    # acct1: row 0 only; acct2: rows 0,1,2,3 -> row 1; acct3: rows 0,2 (tie at 1) -> row 0
    # acct4: none; acct5: none (NaN loyalty, revenue 5)
    assert matched.tolist() == [1, 0, 1, 0, -1, -1]
    assert out.tolist() == [2.0, 1.0, 2.0, 1.0, -1.0, -1.0]


def test_collect_sum_is_a_scorecard() -> None:
    table = DecisionTable(
        [
            row("revenue >= 50", 40.0, label="size"),
            row("loyalty > 0.6", 25.0, label="loyal"),
            row("vip", 10.0, label="vip"),
            row("revenue < 10", -5.0, label="tiny"),
        ],
        "collect_sum",
        default=0.0,
    )
    out, matched = table.evaluate(env())
    assert out.tolist() == [75.0, 40.0, 35.0, 25.0, -5.0, -5.0]
    assert matched.tolist() == [0, 0, 1, 1, 3, 3]  # the first matching row


def test_collect_sum_default_only_when_nothing_matched() -> None:
    table = DecisionTable([row("revenue > 60", 1.0), row("revenue > 40", 2.0)], "collect_sum", 7.0)
    out, matched = table.evaluate(env())
    assert out.tolist() == [3.0, 2.0, 7.0, 7.0, 7.0, 7.0]
    assert matched.tolist() == [0, 1, -1, -1, -1, -1]
    nodefault = DecisionTable([row("revenue > 60", 1.0)], "collect_sum", None)
    out, _ = nodefault.evaluate(env())
    assert out[0] == 1.0 and np.isnan(out[1:]).all()


def test_portfolio_conditions_see_the_mask() -> None:
    table = DecisionTable([row("rank_pct(revenue) > 0.5", 1.0)], "first", 0.0)
    mask = np.array([False, True, True, True, True, False])
    # population 50, 30, 20, 0: ranks 1, .75, .5, .25
    out, _ = table.evaluate(env(), mask=mask)
    assert out.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert table.uses_portfolio and table.names == frozenset({"revenue"})


def test_empty_table_and_explicit_n() -> None:
    out, matched = DecisionTable([], "first", 4.0).evaluate({}, n=3)
    assert out.tolist() == [4.0] * 3 and matched.tolist() == [-1] * 3
    out, _ = DecisionTable([], "unique", None).evaluate({}, n=2)
    assert np.isnan(out).all()


def test_bad_tables_are_rejected() -> None:
    with pytest.raises(ValueError, match="hit policy 'any'"):
        DecisionTable([], "any", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="true/false"):
        DecisionTable([Row(compile_expr("revenue", FIELDS), 1.0)], "first", None)
    with pytest.raises(ValueError, match="NaN priority"):
        DecisionTable([row("vip", 1.0, priority=NAN)], "priority", None)
