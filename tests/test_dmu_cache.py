"""The structure cache of Units (kamsim.dmu.structure): cached and uncached paths agree
exactly, copies share it safely, and changes to the structure are noticed."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from kamsim.dmu import StepInput, StepParams, build_units, metrics, step
from kamsim.dmu.structure import compute_structure, structure
from kamsim.spec.models import StakeholderRules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rules() -> StakeholderRules:
    from kamsim.spec.yamlpos import load_yaml

    return StakeholderRules.model_validate(load_yaml(ROOT / "rules/stakeholders.yaml").data)


def make_units(rules: StakeholderRules, n: int = 400, seed: int = 3):
    rng = np.random.default_rng(seed)
    segs = rng.choice(np.array(["enterprise", "midmarket", "small", "other"]), n)
    return build_units(rules, segs, np.arange(n), np.random.default_rng(seed + 1))


def period_input(n: int, rng: np.random.Generator) -> StepInput:
    inp = StepInput.idle(n)
    inp.am_hours[:] = rng.uniform(0, 10, n) * (rng.random(n) < 0.8)
    inp.exec_hours[:] = rng.uniform(0, 3, n) * (rng.random(n) < 0.3)
    inp.specialist_hours[:] = rng.uniform(0, 4, n) * (rng.random(n) < 0.4)
    inp.quality[:] = rng.uniform(-1, 1, n)
    inp.complaints_resolved[:] = rng.random(n) < 0.1
    inp.complaints_unresolved[:] = rng.random(n) < 0.05
    inp.active[:] = rng.random(n) < 0.9
    return inp


def metric_arrays(m) -> dict[str, np.ndarray]:
    out = {k: getattr(m, k) for k in ("coverage", "sentiment", "multithreading", "dm_covered",
                                      "champion", "spof_share", "red_flags", "strength")}
    out.update({f"flag_{k}": v for k, v in m.flags.items()})
    return out


PERSON = ("attitude", "coverage", "months_in_post", "price_focus")


@pytest.mark.parametrize("dt", [1.0, 0.25])
def test_cached_and_uncached_runs_are_identical(rules, dt):
    roles = list(rules.roles.values())
    cached, fresh = make_units(rules), make_units(rules)
    params = StepParams(dt_months=dt)
    rng = np.random.default_rng(11)
    departures = 0
    for _ in range(24):
        inp = period_input(cached.n_accounts, rng)
        # a high draw rate of departures so that newcomers are exercised too
        u = rng.random(cached.n_people) * 0.5
        fresh.invalidate()  # the uncached path: everything derived again this period
        a = step(cached, inp, params, roles, u)
        b = step(fresh, inp, params, roles, u)
        departures += a.departed.size
        for f in ("departed", "departed_account", "departed_role", "departed_coverage",
                  "departed_influence"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), f
        for f in PERSON:
            assert np.array_equal(getattr(cached, f), getattr(fresh, f)), f
        fresh.invalidate()
        ma, mb = metric_arrays(metrics(cached, 0.3)), metric_arrays(metrics(fresh, 0.3))
        for k in ma:
            assert np.array_equal(ma[k], mb[k]), k
    assert departures > 0
    cached.check()  # the cache that served 24 periods still matches the arrays


def test_cache_is_built_once_and_reused(rules):
    units = make_units(rules)
    assert units._cache is None
    metrics(units, 0.3)
    first = units._cache
    assert first is not None and first.valid_for(units)
    step(units, StepInput.idle(units.n_accounts), StepParams(), list(rules.roles.values()),
         np.ones(units.n_people))
    metrics(units, 0.3)
    assert units._cache is first  # step changes attitudes and coverage, not the structure


def test_copy_shares_a_valid_cache_and_stays_independent(rules):
    units = make_units(rules)
    metrics(units, 0.3)
    twin = units.copy()
    assert twin._cache is not None and twin._cache.valid_for(twin)
    assert twin._cache.in_weight_or_1 is units._cache.in_weight_or_1  # shared, not recomputed
    twin.check()
    twin.attitude[:] = -1.0
    assert not np.array_equal(units.attitude, twin.attitude)
    ref = twin.copy()
    ref.invalidate()
    for k, v in metric_arrays(metrics(twin, 0.3)).items():
        assert np.array_equal(v, metric_arrays(metrics(ref, 0.3))[k]), k


def test_derived_arrays_are_read_only(rules):
    st = structure(make_units(rules))
    with pytest.raises(ValueError):
        st.in_weight_or_1[0] = 5.0
    with pytest.raises(ValueError):
        st.group_weight[0] = 5.0


def test_assigning_a_new_structural_array_is_noticed(rules):
    units = make_units(rules)
    before = metrics(units, 0.3).coverage.copy()
    units.influence = np.where(units.role == units.role_index("user"), 1.0, units.influence)
    after = metrics(units, 0.3).coverage
    fresh = units.copy()
    fresh.invalidate()
    assert np.array_equal(after, metrics(fresh, 0.3).coverage)
    assert not np.array_equal(before, after)


def test_in_place_write_needs_invalidate_and_check_catches_it(rules):
    units = make_units(rules)
    stale = metrics(units, 0.3).coverage.copy()
    units.influence[units.offsets[0]] = 0.0  # in place: identity unchanged
    with pytest.raises(ValueError, match="stale"):
        units.check()
    units.invalidate()
    units.check()
    fixed = metrics(units, 0.3).coverage
    assert fixed[0] != stale[0]
    assert np.array_equal(fixed[1:], stale[1:])


def test_pickled_units_keep_a_valid_cache(rules):
    units = make_units(rules, n=50)
    metrics(units, 0.3)
    back = pickle.loads(pickle.dumps(units))
    assert back._cache is not None and back._cache.valid_for(back)
    back.check()


def test_compute_structure_matches_definitions(rules):
    units = make_units(rules, n=60)
    st = compute_structure(units)
    na = units.n_accounts
    for a in range(na):
        lo, hi = units.offsets[a], units.offsets[a + 1]
        assert st.sum_influence[a] == pytest.approx(units.influence[lo:hi].sum())
        for h in range(3):
            mine = units.held_by[lo:hi] == h
            assert st.group_has[a, h] == mine.any()
    for p in range(units.n_people):
        incoming = units.edge_dst == p
        total = units.edge_weight[incoming].sum()
        assert st.has_in[p] == (total > 0)
        assert st.in_weight_or_1[p] == pytest.approx(total if total > 0 else 1.0)
