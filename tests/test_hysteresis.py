"""Re-tiering hysteresis on tables that read the portfolio (rank_pct(score), zscore(score),
...): each account's score is moved back toward its current tier on its own, against the
other accounts' unmoved scores (docs/rules.md, `retier`).

Moving every account's score together, as re-tiering once did, leaves every rank where it
was: with the shipped table (`rank_pct(score) >= 0.92`) a hysteresis of 0.2 kept no more
accounts in their tier than none at all.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kamsim.rules.expr import compile_expr
from kamsim.rules.reference import evaluate_row
from kamsim.spec.models import TieringRules
from kamsim.tiering import compile_tiering

# one account moved at a time: the helpers that read the portfolio, each in an expression
# the language allows (quantile, mean and sum are one value per account once moved)
HELPERS = [
    "rank_pct(score)",
    "cum_share(score)",
    "zscore(score)",
    "quantile(score, 0.9)",
    "quantile(score, 0.25)",
    "mean(score)",
    "sum(score)",
    "rank_pct(score * 2 - loyalty)",  # a function of the score, row by row
]
FIELDS: dict[str, Any] = {"score": "number", "loyalty": "number"}


def _one_at_a_time(source: str, env: dict[str, np.ndarray], moved: np.ndarray,
                   mask: np.ndarray) -> np.ndarray:
    """The reference: for each account, the slow evaluator in the portfolio where that
    account alone has its moved score."""
    n = moved.size
    out = np.empty(n)
    for i in range(n):
        table = {**env, "score": env["score"].copy()}
        table["score"][i] = moved[i]
        row = {name: table[name][i] for name in FIELDS}
        out[i] = evaluate_row(source, FIELDS, row, table, i, mask)
    return out


def _portfolio(seed: int, n: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    # a coarse grid: ties among the scores, and moved scores equal to other accounts' ones
    score = rng.integers(0, 11, n) / 10.0
    score[rng.random(n) < 0.1] = np.nan
    env = {"score": score, "loyalty": rng.integers(0, 4, n) / 4.0}
    return env, rng.random(n) < 0.8


@pytest.mark.parametrize("source", HELPERS)
@pytest.mark.parametrize("shift", [0.1, -0.2, 0.05])
def test_a_moved_score_is_measured_against_the_others_unmoved(source: str, shift: float
                                                              ) -> None:
    expr = compile_expr(source, FIELDS, expect="number")
    for seed in range(4):
        env, mask = _portfolio(seed, 23)
        moved = np.clip(env["score"] + shift, 0.0, 1.0)  # some land on other accounts' scores
        got = expr(env, moved.size, mask, moved={"score": moved})
        want = _one_at_a_time(source, env, moved, mask)
        inside = mask & ~np.isnan(env["score"])
        np.testing.assert_allclose(got[inside], want[inside], rtol=1e-12, atol=1e-12)
        # an account outside the population keeps the helper's plain value
        plain = expr(env, moved.size, mask)
        np.testing.assert_array_equal(got[~inside], plain[~inside])


@pytest.mark.parametrize("source", HELPERS)
def test_an_unmoved_score_gives_the_plain_value(source: str) -> None:
    expr = compile_expr(source, FIELDS, expect="number")
    env, mask = _portfolio(7, 40)
    same = env["score"].copy()
    np.testing.assert_array_equal(expr(env, 40, mask, moved={"score": same}),
                                  expr(env, 40, mask))


def test_rank_of_a_moved_score_counts_the_others_only() -> None:
    # by hand: scores 0.1 0.2 0.3 0.4; the lowest moved up to 0.35 passes two others
    env = {"score": np.array([0.1, 0.2, 0.3, 0.4]), "loyalty": np.zeros(4)}
    moved = np.array([0.35, 0.2, 0.3, 0.4])
    rank = compile_expr("rank_pct(score)", FIELDS)(env, 4, None, moved={"score": moved})
    assert list(rank) == [0.75, 0.5, 0.75, 1.0]
    # moving every score together (what re-tiering did) changes no rank at all
    together = compile_expr("rank_pct(score)", FIELDS)({"score": env["score"] + 0.25}, 4)
    assert list(together) == [0.25, 0.5, 0.75, 1.0]


def test_rank_of_moved_scores_is_worked_out_once_in_a_block() -> None:
    # rank_pct(score) in two rows of a table: the second row reuses the first one's ranks
    from kamsim.rules.functions import rank_pct_moved, shared_sorts

    x, y = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.35, 0.2, 0.3, 0.4])
    with shared_sorts():
        first = rank_pct_moved(x, y, 4, None)
        assert rank_pct_moved(x, y, 4, None) is first
        assert rank_pct_moved(x, y.copy(), 4, None) is not first  # other moved values
    assert list(first) == [0.75, 0.5, 0.75, 1.0]


# -- tiering ---------------------------------------------------------------------------


def _shipped(accounts: int) -> tuple[Any, dict[str, np.ndarray], np.ndarray]:
    from pathlib import Path

    from kamsim.portfolio import build_portfolio
    from kamsim.spec.load import load_scenario

    baseline = Path(__file__).resolve().parents[1] / "scenarios" / "baseline.yaml"
    spec = load_scenario(baseline, [f"portfolio.generate.accounts={accounts}"])
    accounts_ = build_portfolio(spec)
    return (compile_tiering(spec.tiering, spec.table_place), accounts_.env(),
            np.ones(accounts_.n, dtype=bool))


def test_hysteresis_keeps_accounts_in_their_tier_with_the_shipped_rules() -> None:
    # the shipped table reads rank_pct(score): a year's drift of the fields, re-tiered with
    # hysteresis 0 and 0.2
    tiering, env, mask = _shipped(500)
    current, _ = tiering.assign(env, mask)
    rng = np.random.default_rng(3)
    later = dict(env)
    for name in ("revenue", "gross_profit", "loyalty", "share", "strategic_fit"):
        later[name] = env[name] * rng.lognormal(0.0, 0.3, env[name].size)
    changes = {}
    for h in (0.0, 0.03, 0.2):
        t = dataclasses.replace(tiering, hysteresis=h)
        tier, _ = t.assign(later, mask, current)
        changes[h] = int((tier != current).sum())
    assert changes[0.0] > 0
    assert changes[0.2] < changes[0.03] < changes[0.0]


# -- properties --------------------------------------------------------------------------

# tables whose tier never gets worse as an account's own score rises (the others fixed):
# for them a wider margin can only keep more accounts where they are
MONOTONE_ROWS = {
    "rank_pct": "rank_pct(score) >= {a}",
    "zscore": "zscore(score) >= {b}",
    "quantile": "score >= quantile(score, {a})",
    "mean": "score >= mean(score) * {c}",
    "plain": "score >= {a}",
}


def _tiering(row: str, second: str, h: float) -> Any:
    return compile_tiering(TieringRules.model_validate({
        "kind": "tiering", "tiers": ["key", "important", "general"],
        "indicators": {"l": {"expr": "loyalty", "weight": 1, "normalize": "none"}},
        "table": {"hit_policy": "first", "default": "general",
                  "rows": [{"when": row, "tier": "key"}, {"when": second, "tier": "important"}]},
        "retier": {"hysteresis": h}}))


@settings(max_examples=60, deadline=None)
@given(
    loyalty=st.lists(st.integers(0, 20).map(lambda k: k / 20), min_size=1, max_size=30),
    current_seed=st.integers(0, 2**16),
    kind=st.sampled_from(sorted(MONOTONE_ROWS)),
    a=st.sampled_from([0.1, 0.5, 0.8]), b=st.sampled_from([-0.5, 0.0, 1.0]),
    c=st.sampled_from([0.5, 1.0, 1.5]),
    h1=st.sampled_from([0.0, 0.01, 0.05, 0.1]), more=st.sampled_from([0.0, 0.02, 0.1, 0.3]),
)
def test_a_wider_margin_never_moves_more_accounts(loyalty: list[float], current_seed: int,
                                                   kind: str, a: float, b: float, c: float,
                                                   h1: float, more: float) -> None:
    n = len(loyalty)
    env = {"loyalty": np.array(loyalty)}
    mask = np.ones(n, dtype=bool)
    current = np.random.default_rng(current_seed).integers(0, 3, n)
    key = MONOTONE_ROWS[kind].format(a=a, b=b, c=c)
    second = "rank_pct(score) >= 0.3"
    plain, _ = _tiering(key, second, 0.0).assign(env, mask)
    # hysteresis 0 is no hysteresis: the table alone decides
    np.testing.assert_array_equal(_tiering(key, second, 0.0).assign(env, mask, current)[0],
                                  plain)
    narrow = _tiering(key, second, h1).assign(env, mask, current)[0]
    wide = _tiering(key, second, min(h1 + more, 0.5)).assign(env, mask, current)[0]
    # the accounts the wider margin moves are among those the narrower one moves, and go
    # where the table sends them
    assert not ((wide != current) & (narrow == current)).any()
    moved = wide != current
    np.testing.assert_array_equal(wide[moved], plain[moved])
