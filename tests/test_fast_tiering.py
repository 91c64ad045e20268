"""The shortcuts of re-tiering and of the stages give the figures of the plain computation,
bit for bit: an array sorted again reuses the order kept for it only when that order still
sorts it (kamsim.rules.functions, "sorts kept from one evaluation to the next"); the moved
rank counts by a merge what a search counted; a decision table's first matching row is
written last to first; the compiled radix sort (kamsim/rules/sort_kernel.py) gives numpy's
order and ties and its moved ranks numpy's figures, and a tiering with it the figures of one
without; a period's stages move as they did with one write a rule, in every shipped
scenario."""

from __future__ import annotations

import dataclasses
import gc
import inspect
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from kamsim import jit, lanes
from kamsim.engine import step as step_module
from kamsim.engine.core import EngineOptions, Simulation
from kamsim.engine.rng import Streams, replication_seeds
from kamsim.errors import InputError
from kamsim.experiment import prepared
from kamsim.fields import field_types
from kamsim.rules import functions
from kamsim.rules.expr import compile_expr
from kamsim.rules.functions import cum_share, rank_pct, shared_sorts
from kamsim.rules.tables import DecisionTable, Row, TableHitError
from kamsim.spec.load import load_scenario
from kamsim.spec.models import TieringRules
from kamsim.tiering import compile_tiering

# few distinct values (ties), both zeros, infinities and the smallest subnormal
VALUES = [0.0, -0.0, 1.0, 2.0, -1.0, 0.5, np.inf, -np.inf, 5e-324, 3.0, 1e300]


def same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def plain_rank_pct(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """pandas' rank(pct=True, method="average") over the masked rows that are not NaN."""
    selected = ~np.isnan(x) & mask
    out = np.where(np.isnan(x) & mask, np.nan, 0.0)
    pop = x[selected]
    if pop.size:
        _, inverse, counts = np.unique(pop, return_inverse=True, return_counts=True)
        average = np.cumsum(counts) - counts + (counts + 1) / 2.0
        out[selected] = average[inverse.reshape(-1)] / pop.size
    return out


@st.composite
def runs(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[np.ndarray, dict[int, float]]]]:
    """An array and the evaluations it goes through: each a mask and the values written into
    the array just before (none, mostly: a field that does not change)."""
    n = draw(st.integers(1, 40))
    values = st.sampled_from(VALUES + ([np.nan] if draw(st.booleans()) else []))
    x = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    steps = []
    for _ in range(draw(st.integers(2, 6))):
        mask = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
        writes = draw(st.dictionaries(st.integers(0, n - 1), values, max_size=3)
                      if draw(st.integers(0, 3)) == 0 else st.just({}))
        steps.append((mask, writes))
    return x, steps


@pytest.mark.parametrize("compiled", [False, True])
@settings(max_examples=300, deadline=None)
@given(runs())
def test_an_array_sorted_again_gives_the_figures_of_a_fresh_sort(
        compiled: bool, run: tuple[np.ndarray, list[tuple[np.ndarray, dict[int, float]]]]
) -> None:
    # (compiled: the packed sort, the kept rows and the ranks put in the kernels of
    # kamsim/rules/sort_kernel.py, against the plain definition as well)
    if compiled:
        pytest.importorskip("numba", reason="numba is not installed")
    x, steps = run
    with np.errstate(all="ignore"), functions.compiled_sorts(compiled):
        for mask, writes in steps:
            for i, v in writes.items():  # (changed in place: the kept order may no longer do)
                x[i] = v
            fresh = x.copy()  # a new array: sorted afresh
            n = x.size
            same(rank_pct(x, n, mask), rank_pct(fresh, n, mask))
            same(rank_pct(x, n, mask), plain_rank_pct(x, mask))
            same(cum_share(x, n, mask), cum_share(fresh, n, mask))
            with shared_sorts():  # the sort a block shares: its ties and descending order
                pop = functions._sorted_population(x, n, mask)
                twin = functions._sorted_population(fresh, n, mask)
                same(pop.rows, twin.rows)
                for a, b in ((pop.run_start, twin.run_start), (pop.run_end, twin.run_end)):
                    assert (a is None) == (b is None)
                    if a is not None and b is not None:
                        same(a, b)
                same(pop.descending_rows(), twin.descending_rows())


def test_a_field_ranked_again_is_not_sorted_again(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(0, 50, 3000).astype(float)  # ties
    sorts = []
    ascending = functions._ascending
    monkeypatch.setattr(functions, "_ascending", lambda p: sorts.append(p.size) or ascending(p))
    masks = [rng.random(x.size) < share for share in (0.9, 0.6, 0.7, 0.3)]
    for mask in masks:
        same(rank_pct(x, x.size, mask), plain_rank_pct(x, mask))
    # the first sort is of the population, the second of every row, then none
    assert sorts == [int(masks[0].sum()), x.size]
    x[[3, 7]] = x[[7, 3]] + 0.5  # changed in place: the kept order no longer sorts it
    same(rank_pct(x, x.size, masks[1]), plain_rank_pct(x, masks[1]))
    same(rank_pct(x, x.size, masks[2]), plain_rank_pct(x, masks[2]))
    # sorted afresh from then on, the population only
    assert sorts == [int(masks[0].sum()), x.size, int(masks[1].sum()), int(masks[2].sum())]


def test_a_kept_order_goes_with_its_array() -> None:
    x = np.random.default_rng(1).random(100)
    key = id(x)
    mask = np.ones(100, dtype=bool)
    rank_pct(x, 100, mask)
    rank_pct(x, 100, mask)
    assert functions._KEPT[key].rows is not None
    del x
    gc.collect()
    assert key not in functions._KEPT


def test_an_unchanged_array_passes_on_its_bits_and_a_changed_one_is_checked() -> None:
    rng = np.random.default_rng(3)
    x = np.sort(rng.integers(0, 400, 1000).astype(float))[rng.permutation(1000)]
    mask = rng.random(1000) < 0.7
    for _ in range(3):  # noted, sorted, then checked along the kept order
        same(rank_pct(x, 1000, mask), plain_rank_pct(x, mask))
    entry = functions._KEPT[id(x)]
    kept = entry.values
    assert kept is not None and entry.run is not None
    same(rank_pct(x, 1000, mask), plain_rank_pct(x, mask))
    assert entry.values is kept  # (the same bits: taken from the kept runs, not checked)
    # changed in place, the order still sorting it: two neighbours made equal (a new tie),
    # and a zero made -0.0 (the same value, other bits)
    order = entry.rows
    assert order is not None
    i = next(i for i in range(500, 999)
             if x[order[i]] != x[order[i + 1]] and order[i] < order[i + 1])
    x[order[i + 1]] = x[order[i]]
    zeros = np.flatnonzero(x == 0.0)
    assert zeros.size
    x[zeros[0]] = -0.0
    for m in (mask, ~mask, np.ones(1000, dtype=bool)):
        same(rank_pct(x, 1000, m), plain_rank_pct(x, m))
        same(cum_share(x, 1000, m), cum_share(x.copy(), 1000, m))
    assert entry.values is not kept and not entry.changed  # (checked, and kept again)


@pytest.mark.parametrize("compiled", [False, True])
def test_an_order_kept_ahead_gives_the_figures_of_a_fresh_sort(compiled: bool) -> None:
    """keep_order works the order out at once (first sight or not), the ranks after it are
    a fresh sort's, and one changed in place since is checked as any kept order."""
    if compiled:
        pytest.importorskip("numba", reason="numba is not installed")
    rng = np.random.default_rng(8)
    with functions.compiled_sorts(compiled):
        for noted_first in (False, True):
            x = rng.integers(0, 30, 2000).astype(float)  # ties
            mask = rng.random(x.size) < 0.7
            if noted_first:
                rank_pct(x, x.size, mask)
            functions.keep_order(x)
            entry = functions._KEPT[id(x)]
            assert entry.rows is not None and entry.values is not None
            same(rank_pct(x, x.size, mask), plain_rank_pct(x, mask))
            x[[5, 9]] = x[[9, 5]] + 0.25  # the kept order no longer sorts it
            same(rank_pct(x, x.size, ~mask), plain_rank_pct(x, ~mask))
            assert entry.changed or entry.values is not None


def test_the_fields_a_tiering_ranks_as_they_are() -> None:
    """Bare number fields normalised by rank; not an expression, nor another normalisation."""
    rules = _rules(0.0).model_dump()
    rules["indicators"]["margin"] = {"expr": "revenue * 0.1", "weight": 0.1}
    rules["indicators"]["risk"]["normalize"] = "minmax"
    tiering = compile_tiering(TieringRules.model_validate(rules))
    assert tiering.ranked_fields == {"revenue", "loyalty"}


def test_a_run_keeps_the_orders_of_the_fields_it_ranks_before_it_starts() -> None:
    """With two threads, a run that will re-tier has the orders of the indicator fields
    that do not change worked out in its set-up (and the same figures as with one thread,
    which leaves them to the first re-tiering)."""
    spec = load_scenario(ROOT / "scenarios/baseline.yaml", [
        "portfolio.generate.accounts=60000", "horizon_months=13", "replications=1"])
    prep = prepared(spec)
    nums = prep.accounts.numbers
    static = sorted(name for name in prep.model.tiering.ranked_fields
                    if name in nums and name not in {"wallet", "share", "tenure_months"})
    assert "loyalty" in static and "payment_risk" in static
    outputs = []
    for threads in (2, 1):
        functions._KEPT.clear()
        sim = Simulation(prep, Streams(replication_seeds(3, 1)[0]),
                         EngineOptions(False, threads=threads))
        kept = [name for name in static if id(nums[name]) in functions._KEPT
                and functions._KEPT[id(nums[name])].rows is not None]
        assert kept == (static if threads == 2 and lanes.CORES > 1 else [])
        outputs.append(sim.run())
    from _identical import differences

    assert differences(outputs[0], outputs[1], "output") == []


def _rules(hysteresis: float) -> TieringRules:
    return TieringRules.model_validate({
        "kamsim": 1, "kind": "tiering", "tiers": ["key", "important", "general"],
        "indicators": {"volume": {"expr": "revenue", "weight": 0.5},
                       "loyal": {"expr": "loyalty", "weight": 0.3},
                       "risk": {"expr": "payment_risk", "weight": -0.2}},
        "table": {"hit_policy": "first", "rows": [
            {"when": "rank_pct(score) >= 0.8 or cum_share(revenue) <= 0.3", "tier": "key"},
            {"when": "rank_pct(score) >= 0.5 and payment_risk < 0.6", "tier": "important"}],
            "default": "general"},
        "retier": {"every_months": 12, "hysteresis": hysteresis},
        "quadrants": {"volume": "rank_pct(revenue)", "loyalty": "loyalty",
                      "volume_cut": 0.5, "loyalty_cut": 0.5},
    })


@pytest.mark.parametrize("hysteresis", [0.0, 0.05])
def test_re_tiering_the_same_fields_gives_the_figures_of_new_ones(hysteresis: float) -> None:
    # as a run re-tiers: the fields that do not change are the same arrays each time, the
    # portfolio (mask) and the revenue change
    tiering = compile_tiering(_rules(hysteresis))
    rng = np.random.default_rng(9)
    n = 2000
    loyalty = rng.integers(0, 20, n) / 20.0  # ties
    risk = rng.random(n)
    current = None
    for year in range(4):
        revenue = rng.lognormal(10, 1, n)
        mask = rng.random(n) < 0.8 - 0.1 * year
        env = {"revenue": revenue, "loyalty": loyalty, "payment_risk": risk}
        fresh = {name: value.copy() for name, value in env.items()}
        got = tiering.classify(env, mask, current=current, threads=1)
        want = tiering.classify(fresh, mask, current=current, threads=1)
        for a, b in zip(got, want, strict=True):
            same(a, b)
        current = got[0]
    assert functions._KEPT[id(loyalty)].rows is not None  # (the kept orders were used)


# -- a re-tiering against its plain definition, on any table

#: conditions for random tables: the score, fields and indicators, every portfolio helper
#: (moved or not by the hysteresis), and parts that do not read the score
CONDITIONS = ["rank_pct(score) >= 0.7", "rank_pct(score) > 0.5", "cum_share(revenue) <= 0.5", "payment_risk < 0.4",
              "zscore(score) > 0.5", "score > mean(score)", "quantile(score, 0.8) <= score",
              "cum_share(score) <= 0.3", "volume > 0.5", "rank_pct(loyal) < 0.4",
              "sum(score) * 0.0005 < score", "rank_pct(score * 2) > 0.5", "true",
              "loyalty >= 0.5", "rank_pct(revenue + score) >= 0.6"]


def plain_assign(tiering: Any, env: dict[str, np.ndarray], mask: np.ndarray,
                 current: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray, Any]:
    """The re-tiering by its definition (docs/model.md): the score, the table's tier read
    from every row's match and the table's output (NaN: the last tier), and with a current
    tier the table read again with each account's score nudged up and down alone. (tier,
    score, the table's tiers for a score nudged so, or not: None.)"""
    n = mask.shape[0]
    values = tiering.indicator_values(env, mask, threads=1)
    score = tiering.score(env, mask, values)

    def table(nudged: np.ndarray | None) -> np.ndarray:
        env2 = {**env, **values, "score": score}
        out, _row = tiering.table.evaluate(env2, n, mask,
                                           None if nudged is None else {"score": nudged})
        return np.where(np.isnan(out), len(tiering.tiers) - 1, out).astype(np.int64)

    tier = table(None)
    if current is not None and tiering.hysteresis > 0:
        up = table(np.minimum(score + tiering.hysteresis, 1.0))
        down = table(np.maximum(score - tiering.hysteresis, 0.0))
        tier = np.where((current >= up) & (current <= down), current, tier)
    return np.where(mask, tier, current if current is not None else tier), score, table


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_re_tiering_is_its_plain_definition(data: st.DataObject) -> None:
    # any rows, hit policy, outputs (NaN and no default included), hysteresis and portfolio;
    # the kernels on and off
    rows = [Row(compile_expr(" or ".join(data.draw(st.lists(st.sampled_from(CONDITIONS),
                                                            min_size=1, max_size=2))),
                             {**field_types(), "score": "number", "volume": "number",
                              "loyal": "number", "risk": "number"}, expect="bool"),
                data.draw(st.sampled_from([0.0, 1.0, 2.0, np.nan, 7.0])),
                data.draw(st.sampled_from([0.0, 1.0, 2.0])))
            for _ in range(data.draw(st.integers(0, 3)))]
    policy = data.draw(st.sampled_from(["first", "priority", "collect_sum", "unique"]))
    table = DecisionTable(rows, policy, data.draw(st.sampled_from([None, 2.0, 1.0])))
    hysteresis = data.draw(st.sampled_from([0.0, 0.03, 0.5]))
    tiering = dataclasses.replace(compile_tiering(_rules(hysteresis)), table=table)
    n = data.draw(st.integers(1, 60))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    env = {"revenue": np.round(rng.lognormal(3, 1, n), data.draw(st.sampled_from([0, 3]))),
           "loyalty": rng.integers(0, 5, n) / 4.0, "payment_risk": rng.random(n)}
    mask = rng.random(n) < data.draw(st.sampled_from([1.0, 0.7]))
    current = data.draw(st.sampled_from([None, rng.integers(0, 3, n)]))
    try:
        want = plain_assign(tiering, env, mask, current)
    except TableHitError:
        want = None
    problems = set()
    # (two threads: the ranks two at a time and the nudged tables side by side, whatever
    # the portfolio's size; the same figures, and the same problem of an overlap, the
    # upward nudge's first)
    for kernels, threads in ((False, 1), (True, 1), (True, 2)):
        fresh = {name: value.copy() for name, value in env.items()}
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(functions, "_SIDE_BY_SIDE_MIN_ROWS", 1)
            mp.setattr(lanes, "CORES", 2)
            if want is None:
                with pytest.raises(InputError) as raised:
                    tiering.classify(fresh, mask, current=current, threads=threads,
                                     kernels=kernels)
                problems.add(str(raised.value))
                continue
            tier, score, _quadrant = tiering.classify(fresh, mask, current=current,
                                                      threads=threads, kernels=kernels)
        same(tier, want[0])
        same(score, want[1])
        # and each of the three tables (a nudge may move no account's tier)
        h = tiering.hysteresis
        with shared_sorts(), functions.compiled_sorts(kernels):
            values = tiering.indicator_values(fresh, mask, threads=1)
            for nudged in (None, np.minimum(score + h, 1.0), np.maximum(score - h, 0.0)):
                try:
                    plain = want[2](nudged)
                except TableHitError:
                    with pytest.raises(InputError):
                        tiering._table(fresh, score, values, mask, None, nudged)
                    continue
                same(tiering._table(fresh, score, values, mask, None, nudged), plain)
    assert len(problems) <= 1


@pytest.mark.parametrize("policy", ["unique", "first"])
@pytest.mark.parametrize("kernels", [False, True])
def test_a_tables_nudges_move_accounts_whatever_its_policy(policy: str, kernels: bool) -> None:
    """Bands of rank_pct(score) that never overlap, as a `unique` table (read for every
    account) and as `first` (read at the accounts that move only): the hysteresis keeps
    the accounts its definition keeps, and some it keeps would move without it."""
    if kernels:
        pytest.importorskip("numba", reason="numba is not installed")
    band = {"unique": "rank_pct(score) >= 0.5 and rank_pct(score) < 0.8",
            "first": "rank_pct(score) >= 0.5"}[policy]
    rows = [Row(compile_expr(src, {**field_types(), "score": "number"}, expect="bool"),
                float(out), 0.0)
            for src, out in (("rank_pct(score) >= 0.8", 0), (band, 1))]
    tiering = dataclasses.replace(compile_tiering(_rules(0.05)),
                                  table=DecisionTable(rows, policy, 2.0))
    rng = np.random.default_rng(7)
    n = 4000
    env = {"revenue": rng.lognormal(3, 1, n), "loyalty": rng.random(n),
           "payment_risk": rng.random(n)}
    mask = rng.random(n) < 0.9
    current = rng.integers(0, 3, n)
    want, _score, _table = plain_assign(tiering, env, mask, current)
    plain, _score, _table = plain_assign(dataclasses.replace(tiering, hysteresis=0.0), env,
                                         mask, current)
    assert ((want == current) & (plain != current) & mask).sum() > 20  # (kept by the margin)
    got, _score, _quadrant = tiering.classify(env, mask, current=current, threads=1,
                                              kernels=kernels)
    same(got, want)


# -- rank_pct_moved's count of the values below each moved one


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VALUES), min_size=1, max_size=30),
       st.lists(st.sampled_from(VALUES), min_size=0, max_size=30),
       st.booleans())
def test_the_merged_count_is_the_searched_one(population: list[float], moved: list[float],
                                              ordered: bool) -> None:
    ascending = np.sort(np.array(population))
    value = np.array(sorted(moved) if ordered else moved, dtype=np.float64)
    same(functions._count_below(ascending, value), np.searchsorted(ascending, value, "left"))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([*VALUES, np.nan]), min_size=1, max_size=40), st.data())
def test_the_compiled_moved_rank_is_the_numpy_one(values: list[float],
                                                  data: st.DataObject) -> None:
    # sort_kernel.ranks_moved: rank_pct_moved's searches and arithmetic in one pass, moved
    # values in the population's order (a nudge) or in any order, every row moved or some
    pytest.importorskip("numba", reason="numba is not installed")
    x = np.array(values, dtype=np.float64)
    n = x.size
    how = data.draw(st.sampled_from(["up", "down", "any", "some"]))
    with np.errstate(all="ignore"):
        if how == "up":
            y = np.minimum(x + data.draw(st.sampled_from([0.03, 1.0, 0.0])), 1.0)
        elif how == "down":
            y = np.maximum(x - 0.5, 0.0)
        else:
            y = np.array(data.draw(st.lists(st.sampled_from([*VALUES, np.nan, 0.25]),
                                            min_size=n, max_size=n)), dtype=np.float64)
            if how == "some":
                y = np.where(np.arange(n) % 2 == 0, x, y)
    mask = (np.ones(n, dtype=bool) if data.draw(st.booleans())
            else np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool))
    figures = []
    for compiled in (False, True):
        with shared_sorts(), functions.compiled_sorts(compiled):
            figures.append(functions.rank_pct_moved(x.copy(), y.copy(), n, mask))
    same(figures[1], figures[0])


def test_the_moved_rank_is_worked_out_in_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba", reason="numba is not installed")
    from kamsim.rules import sort_kernel

    calls = []
    kernel = sort_kernel.ranks_moved
    monkeypatch.setattr(sort_kernel, "ranks_moved", lambda *a: calls.append(1) or kernel(*a))
    x = np.random.default_rng(4).random(50)
    mask = np.ones(50, dtype=bool)
    functions.rank_pct_moved(x, x + 0.1, 50, mask)
    assert not calls
    with functions.compiled_sorts(True):
        functions.rank_pct_moved(x, x + 0.1, 50, mask)
    assert calls


# -- a decision table's first matching row


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 4), st.integers(1, 30), st.data())
def test_the_first_matching_row_wins(rows: int, n: int, data: st.DataObject) -> None:
    matches = [np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
               for _ in range(rows)]
    outputs = [float(data.draw(st.sampled_from([0.0, 1.0, 2.0, -0.0, 7.5]))) for _ in range(rows)]
    order = data.draw(st.permutations(range(rows)))
    table = DecisionTable([Row(compile_expr("true", {}), out) for out in outputs], "first",
                          data.draw(st.sampled_from([None, 3.0])))
    got_output, got_row = table._first(matches, list(order), n)
    # the plain definition: each account takes the first row in order that matches it
    want_output, want_row = table._fallback(n)
    taken = np.zeros(n, dtype=bool)
    for i in order:
        new = matches[i] & ~taken
        want_output[new] = outputs[i]
        want_row[new] = i
        taken |= new
    same(got_output, want_output)
    same(got_row, want_row)


# -- the stages of a period (kamsim/engine/step.py, "-- stages")


def plain_stages(stages: Any, env: dict[str, np.ndarray], stage: np.ndarray,
                 months_in_stage: np.ndarray, act: np.ndarray) -> np.ndarray:
    """The stages after a period's moves, one write a rule (the step's lines before they
    added the moves up)."""
    n = stage.shape[0]
    new_stage = stage.copy()
    may_move = act & (months_in_stage >= stages.min_dwell[stage])
    for s in range(stages.ladder):
        here = may_move & (stage == s)
        if not here.any():
            continue
        if stages.up[s] is not None and s + 1 < stages.ladder:
            up = here & stages.up[s](env, n, act)
            new_stage[up] = s + 1
            here &= ~up
        if stages.down[s] is not None and s > 0:
            new_stage[here & stages.down[s](env, n, act)] = s - 1
    unc = act & (stage != stages.uncoupled) & stages.uncouple(env, n, act)
    new_stage[unc] = stages.uncoupled
    if stages.recover is not None:
        rec = act & (stage == stages.uncoupled) & stages.recover(env, n, act)
        new_stage[rec] = 0
    return new_stage


def _stage_fields_lines() -> set[int]:
    """The lines of the stages section that read the fields (the compiled path's and the
    numpy path's)."""
    lines, _start = inspect.getsourcelines(step_module)
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("# -- stages"))
    end = next(i for i in range(at + 1, len(lines)) if lines[i].strip().startswith("# -- "))
    found = {1 + i for i in range(at, end) if "sim.fields()" in lines[i]}
    assert len(found) == 2, found
    return found


ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted(p for p in [*(ROOT / "scenarios").glob("*.yaml"),
                               *(ROOT / "scenarios" / "lessons").glob("*.yaml")]
                   if (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("kind")
                   == "scenario")


@pytest.mark.parametrize("kernels", ["off", "on"])
@pytest.mark.parametrize(("path", "overlap"), [*((p, False) for p in SCENARIOS),
                                               (ROOT / "scenarios" / "baseline.yaml", True)],
                         ids=lambda p: p.stem if isinstance(p, Path) else str(p))
def test_the_stages_move_as_one_write_a_rule_moved_them(monkeypatch: pytest.MonkeyPatch,
                                                        path: Path, overlap: bool,
                                                        kernels: str) -> None:
    """Every shipped scenario; and the baseline with rules whose up and down overlap (up
    wins), that uncouple and recover often; numpy's lines and the compiled ones
    (kamsim/engine/stages_kernel.py)."""
    if kernels == "on":
        pytest.importorskip("numba", reason="numba is not installed")
    monkeypatch.setenv(jit.ENV, kernels)
    over = ["horizon_months=24", "replications=1"]
    spec = load_scenario(path, over)
    gen = spec.scenario.portfolio.generate
    if gen is not None and gen.accounts > 400:
        spec = load_scenario(path, [*over, "portfolio.generate.accounts=400"])
    sim = Simulation(prepared(spec), Streams(replication_seeds(spec.scenario.seed, 1)[0]),
                     EngineOptions())
    stages = sim.model.stages
    if overlap:
        fields = field_types()
        stages = dataclasses.replace(
            stages, down=tuple(None if rule is None else compile_expr("trust < 0.9", fields)
                               for rule in stages.down),
            uncouple=compile_expr("trust < 0.45 and coverage < 0.5", fields),
            recover=compile_expr("trust >= 0.3", fields))
        sim.model = dataclasses.replace(sim.model, stages=stages)
    names = set().union(*(rule.names for rule in (*stages.up, *stages.down, stages.uncouple,
                                                  stages.recover) if rule is not None))
    lines = _stage_fields_lines()
    seen: list[tuple[Any, ...]] = []
    read = sim.fields

    def noting() -> Any:
        env = read()
        if sys._getframe(1).f_lineno in lines:  # the state the stages section starts from
            seen.append(({name: np.array(env[name]) for name in names}, sim.stage.copy(),
                         sim.months_in_stage.copy(), sim.active.copy()))
        return env

    sim.fields = noting  # type: ignore[method-assign]
    step = sim.step
    checked = 0
    moves = {"up and down": 0, "uncoupled": 0, "recovered": 0}

    def checking(k: int) -> None:
        seen.clear()
        step(k)
        if not seen:  # (no churn effects: no stage moves)
            return
        nonlocal checked
        env, stage, months, act = seen[-1]
        want = plain_stages(stages, env, stage, months, act)
        n = stage.shape[0]
        may = act & (months >= stages.min_dwell[stage])
        ups = np.zeros(n, dtype=bool)
        downs = np.zeros(n, dtype=bool)
        for s in range(stages.ladder):
            if stages.up[s] is not None and s + 1 < stages.ladder:
                ups |= may & (stage == s) & stages.up[s](env, n, act)
            if stages.down[s] is not None and s > 0:
                downs |= may & (stage == s) & stages.down[s](env, n, act)
        moves["up and down"] += int((ups & downs).sum())
        moves["uncoupled"] += int((act & (want == stages.uncoupled) & (stage != want)).sum())
        moves["recovered"] += int((act & (stage == stages.uncoupled) & (want == 0)).sum())
        # (an account that arrived since keeps the stage it arrived with)
        same(sim.stage[act], want[act])
        assert sim.stage.dtype == want.dtype
        checked += 1

    sim.step = checking  # type: ignore[method-assign]
    sim.run()
    assert checked > 0
    if overlap:  # (the rules did overlap, uncouple and recover)
        assert moves["up and down"] and moves["uncoupled"] and moves["recovered"]


# -- the compiled sort (kamsim/rules/sort_kernel.py)

FINITE = st.one_of(st.sampled_from(VALUES), st.floats(allow_nan=False),
                   st.floats(-1.0, 1.0, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(st.lists(FINITE, max_size=80), st.booleans())
def test_the_compiled_sort_is_the_numpy_one(values: list[float], few: bool) -> None:
    pytest.importorskip("numba", reason="numba is not installed")
    x = np.array(values, dtype=np.float64)
    if few:  # (many ties, and keys that differ only in their low bits: numpy's clash path)
        with np.errstate(invalid="ignore"):  # (inf % 5, left out by the where)
            x = 1.0 + np.where(np.isfinite(x), np.abs(np.round(x, 0) % 5), 2.0) * 2.0**-40
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAMSIM_KERNELS", "off")
        want_order, want_ties = functions._ascending(x)
    got_order, got_ties = functions._ascending_compiled(x)
    same(got_order, want_order)
    assert (got_ties is None) == (want_ties is None)
    if got_ties is not None and want_ties is not None:
        same(got_ties, want_ties)


@settings(max_examples=300, deadline=None)
@given(st.lists(FINITE, max_size=150), st.sampled_from(["any", "few", "clash"]), st.data())
def test_the_compiled_rows_are_the_numpy_ones(values: list[float], kind: str,
                                              data: st.DataObject) -> None:
    """The rows of a population by the packed keys sorted in numpy (the rows packed in,
    clashing runs put in order in place) are those of numpy's packed sort of the
    population, taken back to rows, and so are the ties."""
    pytest.importorskip("numba", reason="numba is not installed")
    x = np.array(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):  # (inf % 5, left out by the where)
        if kind == "few":  # (many ties, and keys that differ only in their low bits)
            x = 1.0 + np.where(np.isfinite(x), np.abs(np.round(x, 0) % 5), 2.0) * 2.0**-40
        elif kind == "clash":  # (runs of keys that differ only in the rows' bits)
            x = 1.0 + np.where(np.isfinite(x), np.abs(np.round(x, 0) % 200), 7.0) * 2.0**-50
    selected = (None if data.draw(st.booleans()) else np.array(
        data.draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size)), dtype=bool))
    rows_agree(x, selected)


def rows_agree(x: np.ndarray, selected: np.ndarray | None) -> None:
    """The population's rows and ties, compiled and in numpy, are the same."""
    want = functions._sorted_rows(x, selected)
    with functions.compiled_sorts(True):
        got = functions._sorted_rows(x, selected)
    same(got[0], want[0])
    assert (got[1] is None) == (want[1] is None)
    if got[1] is not None and want[1] is not None:
        same(got[1], want[1])


@pytest.mark.parametrize("size", [10, 64, 65, 1000, 5000])
def test_a_long_run_of_clashing_keys_is_sorted_whole(size: int) -> None:
    """Values that differ only in the bits the rows take, in long runs out of order (runs of
    256 at 1,000 values): the kernel gives up on putting them in order in place and the
    radix sort of whole keys gives the same rows and ties as numpy."""
    pytest.importorskip("numba", reason="numba is not installed")
    rng = np.random.default_rng(size)
    for x in (1.0 + np.arange(size)[::-1] * 2.0**-50,
              1.0 + rng.permutation(size) * 2.0**-50,
              1.0 + (np.arange(size)[::-1] // 3) * 2.0**-50):
        for selected in (None, rng.random(size) < 0.7):
            rows_agree(x, selected)


@pytest.mark.parametrize("hysteresis", [0.0, 0.05])
def test_tiering_with_the_compiled_sort_is_tiering_without(monkeypatch: pytest.MonkeyPatch,
                                                            hysteresis: float) -> None:
    pytest.importorskip("numba", reason="numba is not installed")
    from kamsim.rules import sort_kernel

    sorted_ = []
    kernel = sort_kernel.packed_keys
    monkeypatch.setattr(sort_kernel, "packed_keys",
                        lambda *a: sorted_.append(threading.get_ident()) or kernel(*a))
    tiering = compile_tiering(_rules(hysteresis))
    rng = np.random.default_rng(11)
    n = 3000
    env = {"revenue": np.round(rng.lognormal(10, 1, n), 1),  # a few ties
           "loyalty": rng.integers(0, 20, n) / 20.0, "payment_risk": rng.random(n)}
    mask = rng.random(n) < 0.8
    current = rng.integers(0, 3, n)
    figures = {}
    for kernels in (False, True):
        fresh = {name: value.copy() for name, value in env.items()}  # (sorted afresh)
        figures[kernels] = tiering.classify(fresh, mask, current=current, threads=1,
                                            kernels=kernels)
        assert bool(sorted_) == kernels
    for a, b in zip(figures[False], figures[True], strict=True):
        same(a, b)
    # the same on two threads (each lane sorts in the kernel too)
    monkeypatch.setattr(functions, "_SIDE_BY_SIDE_MIN_ROWS", 1)
    sorted_.clear()
    fresh = {name: value.copy() for name, value in env.items()}
    for a, b in zip(figures[False], tiering.classify(fresh, mask, current=current, threads=2,
                                                     kernels=True), strict=True):
        same(a, b)
    assert len(set(sorted_)) == 2  # (both lanes sorted in the kernel)


def test_only_a_block_that_asks_sorts_compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAMSIM_KERNELS", "on")
    assert not functions._compiled(10**6)  # (a tiering on its own: numpy's sort)
    with functions.compiled_sorts(True):
        assert functions._compiled(10**6) == functions.jit.available()
        with functions.compiled_sorts(False):
            assert not functions._compiled(10**6)
    assert not functions._compiled(10**6)
