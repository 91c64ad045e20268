"""rank_pct and cum_share sort with packed keys and may share a sort inside shared_sorts();
the figures must be those of the plain definitions (an argsort), bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from kamsim import lanes
from kamsim.rules import functions
from kamsim.rules.functions import (
    cum_share,
    forget,
    rank_pct,
    shared_sorts,
    side_by_side,
)
from kamsim.spec.models import TieringRules
from kamsim.tiering import _rank_pct, compile_tiering


def plain_rank_pct(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    n = x.size
    selected = ~np.isnan(x) & (True if mask is None else mask)
    out = np.where(np.isnan(x) & (True if mask is None else mask), np.nan, 0.0)
    pop = x[selected]
    if pop.size:
        _, inverse, counts = np.unique(pop, return_inverse=True, return_counts=True)
        average = np.cumsum(counts) - counts + (counts + 1) / 2.0
        out[selected] = average[inverse.reshape(-1)] / pop.size
    assert out.shape == (n,)
    return out


def plain_cum_share(x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    selected = ~np.isnan(x) & (True if mask is None else mask)
    out = np.where(np.isnan(x) & (True if mask is None else mask), np.nan, 0.0)
    pop = x[selected]
    if pop.size:
        order = np.argsort(-pop, kind="stable")
        running = np.cumsum(pop[order])
        shares = np.ones(pop.size)
        if running[-1] > 0:
            shares[order] = running / running[-1]
        out[selected] = shares
    return out


def samples() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    n = 5000
    return [
        rng.random(n),
        rng.integers(-3, 4, n).astype(float),  # many ties
        1.0 + rng.integers(0, 6, n) * 2.0**-40,  # differ only in the bits the index takes
        1.0 + rng.integers(0, 6000, n) * 2.0**-44,  # a few clashing runs, some ties
        rng.choice([0.0, -0.0, 1.0, np.nan, np.inf, -np.inf, -1e300, 5e-324], n),
        np.where(rng.random(n) < 0.4, 0.0, rng.lognormal(10, 2, n)),
        -rng.random(n) * 1e-300,
        np.array([]),
        np.array([3.0]),
    ]


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("masked", [False, True])
def test_rank_pct_and_cum_share_match_the_plain_definitions(masked: bool) -> None:
    rng = np.random.default_rng(3)
    with np.errstate(all="ignore"):
        for x in samples():
            mask = rng.random(x.size) < 0.7 if masked else None
            same(rank_pct(x, x.size, mask), plain_rank_pct(x, mask))
            same(cum_share(x, x.size, mask), plain_cum_share(x, mask))


def test_a_shared_sort_gives_the_same_figures() -> None:
    rng = np.random.default_rng(4)
    with np.errstate(all="ignore"):
        for x in samples():
            mask = rng.random(x.size) < 0.6
            with shared_sorts():
                first = rank_pct(x, x.size, mask)
                again = rank_pct(x, x.size, mask)  # reused sort
                share = cum_share(x, x.size, mask)  # reused sort, descending
                of_rank = cum_share(first, x.size, mask)  # the rank's own order
                rank_of_rank = rank_pct(first, x.size, mask)
            same(first, plain_rank_pct(x, mask))
            same(again, first)
            same(share, plain_cum_share(x, mask))
            same(of_rank, plain_cum_share(plain_rank_pct(x, mask), mask))
            same(rank_of_rank, plain_rank_pct(plain_rank_pct(x, mask), mask))


def test_a_new_array_or_mask_is_sorted_afresh() -> None:
    x = np.array([3.0, 1.0, 2.0])
    everyone = np.ones(3, dtype=bool)
    with shared_sorts():
        rank_pct(x, 3, everyone)
        same(rank_pct(x * -1.0, 3, everyone), plain_rank_pct(-x, everyone))
        two = np.array([True, True, False])
        same(rank_pct(x, 3, two), plain_rank_pct(x, two))


def test_tiering_rank_with_nan_keeps_its_own_definition() -> None:
    # NaN ranks last, each on its own (the rule language's rank_pct leaves NaN out)
    x = np.array([0.5, np.nan, 0.1, 0.9])
    got = _rank_pct(x, np.ones(4, dtype=bool))
    same(got, np.array([2.0, 4.0, 1.0, 3.0]) / 4)


def test_classify_is_assign_and_quadrant() -> None:
    rules = TieringRules.model_validate({
        "kind": "tiering", "tiers": ["key", "other"],
        "indicators": {"revenue": {"expr": "revenue", "weight": 0.6},
                       "loyalty": {"expr": "loyalty * 2", "weight": 0.4}},
        "table": {"hit_policy": "first", "default": "other", "rows": [
            {"when": "rank_pct(score) >= 0.5 or cum_share(revenue) <= 0.5", "tier": "key"}]},
        "retier": {"every_months": 12, "hysteresis": 0.05},
    })
    rng = np.random.default_rng(5)
    n = 2000
    env = {"revenue": np.round(rng.lognormal(8, 1, n), -2), "loyalty": rng.random(n)}
    mask = rng.random(n) < 0.8
    current = rng.integers(0, 2, n)
    tiering = compile_tiering(rules)
    for cur in (None, current):
        tier, score = tiering.assign(env, mask, cur)
        quadrant = tiering.quadrant(env, mask)
        got = tiering.classify(env, mask, cur)
        for a, b in zip((tier, score, quadrant), got, strict=True):
            same(a, b)


def test_a_helper_called_again_in_a_block_returns_its_first_result() -> None:
    x = np.array([3.0, 1.0, 2.0, 1.0])
    mask = np.array([True, True, True, False])
    with shared_sorts():
        first, share = rank_pct(x, 4, mask), cum_share(x, 4, mask)
        assert rank_pct(x, 4, mask) is first and cum_share(x, 4, mask) is share
        other = np.ones(4, dtype=bool)  # another mask object: computed afresh
        same(rank_pct(x, 4, other), plain_rank_pct(x, other))
    same(first, plain_rank_pct(x, mask))
    same(share, plain_cum_share(x, mask))
    assert rank_pct(x, 4, mask) is not rank_pct(x, 4, mask)  # outside a block: fresh


def test_a_forgotten_array_is_sorted_afresh() -> None:
    x = np.array([3.0, 1.0, 2.0, 1.0])
    mask = np.ones(4, dtype=bool)
    with shared_sorts():
        first = rank_pct(x, 4, mask)
        cum_share(x, 4, mask)
        forget(x, 4, mask)
        again = rank_pct(x, 4, mask)
        assert again is not first
        same(again, first)
        same(cum_share(first, 4, mask), plain_cum_share(first, mask))
    forget(x, 4, mask)  # outside a block: nothing to forget


@pytest.mark.parametrize("masked", [False, True])
def test_side_by_side_gives_the_figures_of_one_thread(monkeypatch: pytest.MonkeyPatch,
                                                      masked: bool) -> None:
    # the threads run here even on a one-core machine and on small arrays
    monkeypatch.setattr(lanes, "CORES", 2)
    monkeypatch.setattr(functions, "_SIDE_BY_SIDE_MIN_ROWS", 0)
    rng = np.random.default_rng(6)
    xs = [x for x in samples() if x.size == 5000]
    mask = rng.random(5000) < 0.7 if masked else np.ones(5000, dtype=bool)
    with np.errstate(all="ignore"), shared_sorts():
        ranks = side_by_side(lambda x: rank_pct(x, 5000, mask), xs, 5000)
        shares = side_by_side(lambda x: cum_share(x, 5000, mask), xs, 5000)  # shared sorts
        again = [rank_pct(x, 5000, mask) for x in xs]  # the threads filled the block
        for x, r, s, a in zip(xs, ranks, shares, again, strict=True):
            same(r, plain_rank_pct(x, mask))
            same(s, plain_cum_share(x, mask))
            assert a is r


def test_tiering_on_threads_is_tiering_on_one(monkeypatch: pytest.MonkeyPatch) -> None:
    rules = TieringRules.model_validate({
        "kind": "tiering", "tiers": ["key", "other"],
        "indicators": {"revenue": {"expr": "revenue", "weight": 0.5},
                       "loyalty": {"expr": "loyalty * 2", "weight": 0.3},
                       "risk": {"expr": "payment_risk", "weight": -0.2,
                                "normalize": "minmax"}},
        "table": {"hit_policy": "first", "default": "other", "rows": [
            {"when": "rank_pct(score) >= 0.7 or cum_share(revenue) <= 0.5", "tier": "key"}]},
        "retier": {"every_months": 12, "hysteresis": 0.05},
    })
    rng = np.random.default_rng(8)
    n = 3000
    env = {"revenue": np.round(rng.lognormal(8, 1, n), -2), "loyalty": rng.random(n),
           "payment_risk": rng.random(n)}
    mask = rng.random(n) < 0.8
    current = rng.integers(0, 2, n)
    tiering = compile_tiering(rules)
    alone = [tiering.classify(env, mask, cur) for cur in (None, current)]
    monkeypatch.setattr(lanes, "CORES", 2)
    monkeypatch.setattr(functions, "_SIDE_BY_SIDE_MIN_ROWS", 0)
    threaded = [tiering.classify(env, mask, cur) for cur in (None, current)]
    for a, b in zip(alone, threaded, strict=True):
        for x, y in zip(a, b, strict=True):
            same(x, y)


def test_side_by_side_raises_in_order_and_may_stop_early(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr(lanes, "CORES", 2)
    monkeypatch.setattr(functions, "_SIDE_BY_SIDE_MIN_ROWS", 0)

    def half(k: int) -> float:
        if k == 3:
            raise ValueError("three")
        return k / 2

    got = []
    with pytest.raises(ValueError, match="three"):
        for value in side_by_side(half, range(8), 10):
            got.append(value)
    assert got == [0.0, 0.5, 1.0]
    results = side_by_side(half, range(3), 10)
    assert next(results) == 0.0
    results.close()  # the helper thread finishes what it took and stops


def test_cum_share_moved_sums_the_sorted_values_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """cum_share_moved summed the population along its descending order again right after
    cum_share had (the hysteresis nudges call it for every re-tiering): the running sum is
    kept with the sort, and the figures stay those of summing it anew."""
    rng = np.random.default_rng(3)
    x = rng.random(500)
    y = x.copy()
    y[::7] += 0.05  # some rows moved
    with shared_sorts():
        expected = functions.cum_share_moved(x, y, x.size, None)
    sums = []
    real = np.cumsum

    def counted(a, *args, **kw):  # type: ignore[no-untyped-def]
        sums.append(np.shape(a))
        return real(a, *args, **kw)

    monkeypatch.setattr(np, "cumsum", counted)
    with shared_sorts():
        got = functions.cum_share_moved(x, y, x.size, None)
    assert sums == [(500,)]  # (the values are distinct: no run of ties to number)
    np.testing.assert_array_equal(got, expected)
