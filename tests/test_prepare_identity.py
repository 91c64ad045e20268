"""The fast paths of building a scenario's starting point give exactly what the plain ones
gave: the same random draws consumed in the same order, the same arrays.

Each test compares a vectorised builder with a straightforward version of it (kept here as
the reference): decision units from templates against per-rule edges sorted by
``sort_edges`` and one ``rng.choice`` per role, the decision draws against ``rng.choice``,
the industry network against its loop over ``np.unique`` industries, account ids against a
format call per id.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from kamsim.dmu import build_units
from kamsim.dmu.arrays import ATTITUDE_VALUES, COVERAGE_VALUES, HOLDERS, sort_edges
from kamsim.dmu.build import INFLUENCE_NOISE, MONTHS_IN_POST_MAX, _draw_into
from kamsim.engine.prepare import _first_k, industry_network
from kamsim.portfolio import numbered_ids
from kamsim.spec.models import ATTITUDES, COVERAGE_LEVELS, StakeholderRules

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rules() -> StakeholderRules:
    from kamsim.spec.load import load_rule_file

    r, _ = load_rule_file(ROOT / "rules" / "stakeholders.yaml", "stakeholders")
    return r


def _choice(rng: np.random.Generator, dist: dict[str, float], names: tuple[str, ...],
            values: np.ndarray, size: int) -> np.ndarray:
    if not dist:
        return np.full(size, 0.0)
    p = np.array([dist.get(n, 0.0) for n in names], dtype=np.float64)
    return rng.choice(values, size=size, p=p / p.sum())


def _reference_units(rules: StakeholderRules, segments: np.ndarray, ids: np.ndarray,
                     rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Units the plain way: every account's people and edges one by one, edges sorted and
    deduplicated by sort_edges, one rng.choice per role and draw."""
    role_names = list(rules.roles)
    arche = [rules.roles[r] for r in role_names]
    people_role, account, pid = [], [], []
    offsets = [0]
    es, ed, ew, eg, rs, rd = ([] for _ in range(6))
    for a, seg in enumerate(segments.tolist()):
        unit = rules.units.get(seg, rules.units["default"])
        roles = [role_names.index(r) for r, c in unit.roles.items() for _ in range(c)]
        first = offsets[-1]
        pid += [f"{ids[a]}-{r}-{j + 1}" for r, c in unit.roles.items() for j in range(c)]
        people_role += roles
        account += [a] * len(roles)
        offsets.append(first + len(roles))
    for e in rules.edges:  # rule by rule, as the template builder's order of precedence
        s_role, t_role = role_names.index(e.source), role_names.index(e.target)
        for a in range(len(offsets) - 1):
            roles = people_role[offsets[a]:offsets[a + 1]]
            if t_role not in roles:
                continue
            tgt = offsets[a] + roles.index(t_role)
            for pos, r in enumerate(roles):
                if r == s_role and offsets[a] + pos != tgt:
                    if e.kind == "reports_to":
                        rs.append(offsets[a] + pos)
                        rd.append(tgt)
                    else:
                        es.append(offsets[a] + pos)
                        ed.append(tgt)
                        ew.append(e.weight)
                        eg.append(1 if e.sign == "support" else -1)
    role = np.array(people_role, np.int8)
    n = role.size
    attitude, coverage = np.empty(n), np.empty(n)
    for r, arc in enumerate(arche):
        who = np.flatnonzero(role == r)
        attitude[who] = _choice(rng, arc.attitude, ATTITUDES, ATTITUDE_VALUES, who.size)
        coverage[who] = _choice(rng, arc.coverage, COVERAGE_LEVELS, COVERAGE_VALUES, who.size)
    r_infl = np.array([arc.influence for arc in arche])
    influence = np.clip(r_infl[role] + rng.uniform(-INFLUENCE_NOISE, INFLUENCE_NOISE, n),
                        0.0, 1.0)
    months = rng.uniform(0.0, MONTHS_IN_POST_MAX, n)
    src, dst, w, sg = sort_edges(np.array(es, np.int64), np.array(ed, np.int64),
                                 np.array(ew, np.float64), np.array(eg, np.int8))
    r_src, r_dst = sort_edges(np.array(rs, np.int64), np.array(rd, np.int64), by_dst=False)
    return {
        "offsets": np.array(offsets, np.int64), "account": np.array(account, np.int64),
        "role": role, "attitude": attitude, "coverage": coverage, "influence": influence,
        "months_in_post": months,
        "held_by": np.array([HOLDERS.index(arc.held_by) for arc in arche], np.int8)[role],
        "seniority": np.array([arc.seniority for arc in arche], np.int8)[role],
        "price_focus": np.array([arc.price_focus for arc in arche])[role],
        "edge_src": src, "edge_dst": dst, "edge_weight": w, "edge_sign": sg,
        "reports_src": r_src, "reports_dst": r_dst, "person_id": np.array(pid, object),
    }


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and (
        a.tolist() == b.tolist() if a.dtype == object else a.tobytes() == b.tobytes())


@pytest.mark.parametrize("as_object", [True, False])
def test_units_from_templates_equal_the_plain_build(rules, as_object) -> None:
    rng = np.random.default_rng(3)
    segs = rng.choice(np.array(["enterprise", "midmarket", "small", "public_sector"]), 300)
    ids = np.array([f"A{i:03d}" for i in range(300)])
    if as_object:
        segs, ids = segs.astype(object), ids.astype(object)
    got = build_units(rules, segs, ids, np.random.default_rng(11))
    want = _reference_units(rules, segs, ids, np.random.default_rng(11))
    for name, arr in want.items():
        mine = np.asarray(getattr(got, name))
        assert _same(mine, arr), name


def test_units_of_odd_rules_equal_the_plain_build() -> None:
    """Rules with repeated pairs (the earlier rule wins), a role linked to itself, an empty
    template and a role without draws."""
    roles = {r: {"influence": 0.4 + 0.1 * i, "attitude": {"neutral": 0.3, "supporter": 0.7},
                 "coverage": {"none": 0.5, "brief": 0.5}, "held_by": "account_manager",
                 "seniority": 1, "price_focus": 0.2}
             for i, r in enumerate(["boss", "user", "buyer"])}
    rules = StakeholderRules.model_validate({
        "kamsim": 1, "kind": "stakeholders", "roles": roles,
        "units": {"default": {"roles": {"user": 3, "boss": 2, "buyer": 1}},
                  "tiny": {"roles": {"boss": 0}}, "flat": {"roles": {"user": 2}}},
        "edges": [
            {"source": "user", "target": "boss", "kind": "influences", "weight": 0.3},
            {"source": "user", "target": "user", "kind": "influences", "weight": 0.2,
             "sign": "conflict"},
            {"source": "user", "target": "boss", "kind": "influences", "weight": 0.9},
            {"source": "buyer", "target": "boss", "kind": "reports_to"},
            {"source": "boss", "target": "boss", "kind": "reports_to"},
            {"source": "user", "target": "buyer", "kind": "reports_to"},
        ]})
    # a role without coverage draws: a file cannot say so (an empty mix is refused), but the
    # build must not depend on every role having them
    buyer = rules.roles["buyer"].model_copy(update={"coverage": {}})
    rules = rules.model_copy(update={"roles": {**rules.roles, "buyer": buyer}})
    rng = np.random.default_rng(5)
    segs = rng.choice(np.array(["default", "tiny", "flat", "other"], object), 80)
    ids = np.array([f"X{i}" for i in range(80)], object)
    got = build_units(rules, segs, ids, np.random.default_rng(2))
    want = _reference_units(rules, segs, ids, np.random.default_rng(2))
    for name, arr in want.items():
        assert _same(np.asarray(getattr(got, name)), arr), name


@pytest.mark.parametrize("dist", [
    {"enemy": 0.05, "non_supporter": 0.2, "neutral": 0.4, "supporter": 0.3, "mentor": 0.05},
    {"supporter": 0.6, "mentor": 0.4},  # zeros before and between
    {"neutral": 1.0},
    {"enemy": 0.5, "mentor": 0.5},
])
@pytest.mark.parametrize("size", [0, 1, 7, 5000])
def test_draws_are_those_of_rng_choice(dist, size) -> None:
    ref, mine = np.random.default_rng(9), np.random.default_rng(9)
    want = _choice(ref, dist, ATTITUDES, ATTITUDE_VALUES, size)
    out = np.full(size + 3, np.nan)
    who = np.arange(size) + 2 if size else np.zeros(0, np.int64)
    scratch = (np.empty(size + 1), np.empty(size + 1, np.int8), np.empty(size + 1, bool))
    _draw_into(out, who, mine, dist, ATTITUDES, ATTITUDE_VALUES, 0.0, scratch)
    assert out[who].tobytes() == want.tobytes()
    assert ref.random() == mine.random()  # as many numbers drawn


def _reference_network(industry: np.ndarray, influence: np.ndarray, n_start: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    n = industry.shape[0]
    leader = np.zeros(n, dtype=bool)
    src, dst = [], []
    for ind in np.unique(industry):
        members = np.flatnonzero(industry == ind)
        starting = members[members < n_start]
        if starting.size == 0:
            continue
        k = max(1, int(round(0.05 * starting.size)))
        leaders = starting[np.argsort(-influence[starting], kind="stable")[:k]]
        leader[leaders] = True
        followers = members[~leader[members]]
        if followers.size == 0:
            continue
        pick = rng.integers(0, leaders.size, size=(followers.size, min(3, leaders.size)))
        src.append(leaders[pick].ravel())
        dst.append(np.repeat(followers, pick.shape[1]))
    s = np.concatenate(src) if src else np.zeros(0, dtype=np.int64)
    d = np.concatenate(dst) if dst else np.zeros(0, dtype=np.int64)
    return s, d, influence[s], leader


@pytest.mark.parametrize("n, n_start", [(0, 0), (1, 1), (30, 20), (2000, 1500), (500, 0)])
def test_industry_network_equals_the_loop_over_np_unique(n, n_start) -> None:
    g = np.random.default_rng(n)
    names = np.array(["utilities", "retail", "telecom", "b", "a_few"], object)
    industry = names[g.integers(0, 5, n)]
    influence = np.round(g.random(n), 1)  # ties among leaders
    got = industry_network(industry, influence, n_start, np.random.default_rng(4))
    want = _reference_network(industry, influence, n_start, np.random.default_rng(4))
    for a, b in zip(got, want, strict=True):
        assert _same(a, b)


@pytest.mark.parametrize("prefix", ["A", "N", "", "acc-"])
@pytest.mark.parametrize("n", [0, 1, 9, 10, 99, 100, 1234])
def test_numbered_ids_are_the_formatted_ones(prefix, n) -> None:
    width = len(str(n))
    want = np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)], dtype=object)
    got = numbered_ids(prefix, n)
    assert _same(got, want)
    assert all(type(x) is str for x in got.tolist())


@pytest.mark.parametrize("k", [1, 2, 5, 50, 199, 200, 250])
def test_first_k_is_the_head_of_the_stable_argsort(k) -> None:
    g = np.random.default_rng(k)
    key = -np.round(g.random(200), 1)  # many ties, and -0.0 beside 0.0
    key[g.integers(0, 200, 20)] = 0.0
    assert np.array_equal(_first_k(key, k), np.argsort(key, kind="stable")[:k])
    key[:150] = np.nan  # fewer numbers than k
    assert np.array_equal(_first_k(key, k), np.argsort(key, kind="stable")[:k])


# -- the units built on the other core while the first tiering ranks the accounts


def _prepared_arrays(prep: object) -> dict[str, object]:
    import dataclasses

    out: dict[str, object] = {}
    for f in dataclasses.fields(prep):  # type: ignore[arg-type]
        value = getattr(prep, f.name)
        if f.name == "model":
            continue
        if f.name == "accounts":
            value = (value.account_id, value.numbers, value.segment, value.industry)
        elif f.name == "units":
            # (the people's ids as their strings: a PersonIds has no equality of its own)
            value = {g.name: (np.asarray(getattr(value, g.name)) if g.name == "person_id"
                              else getattr(value, g.name))
                     for g in dataclasses.fields(value) if g.init}
        out[f.name] = value
    return out


@pytest.mark.parametrize("name", ["baseline.yaml", "crm_import.yaml"])
def test_prepare_builds_the_units_beside_the_first_tiering_to_the_same_arrays(
        monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """A large portfolio's decision units and their structure are built on the other core
    (``kamsim.lanes.aside``) while the first tiering ranks the accounts on one thread: the
    same starting point, array for array, as built one after the other (here on every
    portfolio: the threshold at 0, two cores even on a one-core machine)."""
    import threading

    from _identical import differences

    from kamsim import lanes
    from kamsim.compile import compile_model
    from kamsim.dmu import structure as structure_module
    from kamsim.engine import core, prepare
    from kamsim.spec.load import load_scenario

    spec = load_scenario(ROOT / "scenarios" / name, ["portfolio.generate.accounts=3000"]
                         if name == "baseline.yaml" else [])
    model = compile_model(spec)
    serial = prepare.prepare(model)
    built_on: list[str] = []
    real = structure_module.structure

    def noting(units):  # type: ignore[no-untyped-def]
        built_on.append(threading.current_thread().name)
        return real(units)

    monkeypatch.setattr(core, "ASIDE_MIN_SLOTS", 0)
    monkeypatch.setattr(lanes, "CORES", 2)
    monkeypatch.setattr(prepare, "structure", noting)
    aside = prepare.prepare(model)
    assert built_on == ["kamsim-aside"]
    # (the structure was made with the units, on the other core, for these very units)
    assert aside.units._cache.valid_for(aside.units)
    assert not differences(_prepared_arrays(serial), _prepared_arrays(aside))


def test_a_problem_of_the_units_built_aside_is_told_before_the_tiering_s(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Built first, the units' problem was the one raised; built beside a first tiering that
    fails too, it still is."""
    from kamsim import lanes
    from kamsim.compile import compile_model
    from kamsim.engine import core, prepare
    from kamsim.spec.load import load_scenario

    model = compile_model(load_scenario(ROOT / "scenarios" / "baseline.yaml",
                                        ["portfolio.generate.accounts=500"]))

    def units_fail(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise ValueError("the units' problem")

    def tiering_fails(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyError("the tiering's problem")

    monkeypatch.setattr(core, "ASIDE_MIN_SLOTS", 0)
    monkeypatch.setattr(lanes, "CORES", 2)
    monkeypatch.setattr(prepare, "build_units", units_fail)
    monkeypatch.setattr(prepare, "first_tiering", tiering_fails)
    with pytest.raises(ValueError, match="the units' problem"):
        prepare.prepare(model)
    monkeypatch.setattr(prepare, "build_units", build_units)
    with pytest.raises(KeyError, match="the tiering's problem"):
        prepare.prepare(model)


def test_an_interruption_of_the_first_tiering_does_not_wait_for_the_units(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the first tiering runs goes at once: it does not wait for the units
    being built beside it (here a build that would never end)."""
    import threading

    from kamsim import lanes
    from kamsim.compile import compile_model
    from kamsim.engine import core, prepare
    from kamsim.spec.load import load_scenario

    model = compile_model(load_scenario(ROOT / "scenarios" / "baseline.yaml",
                                        ["portfolio.generate.accounts=500"]))
    release = threading.Event()

    def units_hang(*args, **kwargs):  # type: ignore[no-untyped-def]
        release.wait(60)
        raise ValueError("the units' problem")

    def interrupted(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    monkeypatch.setattr(core, "ASIDE_MIN_SLOTS", 0)
    monkeypatch.setattr(lanes, "CORES", 2)
    monkeypatch.setattr(prepare, "build_units", units_hang)
    monkeypatch.setattr(prepare, "first_tiering", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            prepare.prepare(model)
    finally:
        release.set()  # (the helper ends)


@pytest.mark.parametrize("name, sets", [
    ("baseline.yaml", ["portfolio.generate.accounts=40000"]),  # 60,000 slots: built beside
    ("baseline.yaml", ["portfolio.generate.accounts=300", "portfolio.max_new_share=0"]),
    ("crm_import.yaml", []),
])
def test_prepare_draws_the_accounts_of_the_plain_assembly(name: str, sets: list[str]) -> None:
    """prepare draws the accounts' labels first (the units are built from them), then each
    number field straight into its column of every slot: the same accounts, field for field
    and bit for bit, as the starting portfolio and the arrivals' slots built whole and put
    end to end (the arrivals young: no tenure, half the share), and the industry network of
    those."""
    import math

    from kamsim.compile import compile_model
    from kamsim.engine.prepare import prepare
    from kamsim.portfolio import build_portfolio, generate_portfolio
    from kamsim.spec.load import load_scenario

    spec = load_scenario(ROOT / "scenarios" / name, sets)
    sc = spec.scenario
    prep = prepare(compile_model(spec))
    start = build_portfolio(spec)
    n_new = int(math.ceil(start.n * sc.portfolio.max_new_share))
    gen = sc.portfolio.generate or sc.portfolio.import_.defaults  # type: ignore[union-attr]
    future = generate_portfolio(gen.model_copy(update={"accounts": max(n_new, 1)}),
                                sc.seed + 7_919, id_prefix="N").take(slice(0, n_new))
    numbers = {k: np.concatenate([v, future.numbers[k]]) for k, v in start.numbers.items()}
    numbers["tenure_months"][start.n:] = 0.0
    numbers["share"][start.n:] *= 0.5
    got = prep.accounts
    assert prep.n_start == start.n and got.n == start.n + n_new
    for field, plain in (("account_id", start.account_id), ("segment", start.segment),
                         ("industry", start.industry)):
        assert getattr(got, field).tolist() == np.concatenate(
            [plain, getattr(future, field)]).tolist(), field
    assert list(got.numbers) == list(numbers)
    for k, v in numbers.items():
        assert got.numbers[k].tobytes() == v.tobytes(), k
    seeds = np.random.SeedSequence([sc.seed, 0x444D55]).spawn(2)
    network = industry_network(got.industry, numbers["influence"], start.n,
                               np.random.default_rng(seeds[1]))
    for a, b in zip(network, (prep.wom_src, prep.wom_dst, prep.wom_weight, prep.leader),
                    strict=True):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("beside", [False, True])
def test_prepare_takes_the_fingerprint_and_the_speakers_beside_the_tiering(
        monkeypatch: pytest.MonkeyPatch, beside: bool) -> None:
    """The portfolio's fingerprint, word of mouth's speakers and its cut, worked out beside
    the first tiering, are what they are worked out afresh from the prepared arrays (and
    what a result and each replication read)."""
    from kamsim import lanes
    from kamsim.compile import compile_model
    from kamsim.engine import core, prepare
    from kamsim.engine.prepare import wom_speakers, wom_split
    from kamsim.experiment import _about
    from kamsim.portfolio import fingerprint
    from kamsim.spec.load import load_scenario

    if beside:
        monkeypatch.setattr(core, "ASIDE_MIN_SLOTS", 0)
        monkeypatch.setattr(lanes, "CORES", 2)
    spec = load_scenario(ROOT / "scenarios" / "baseline.yaml",
                         ["portfolio.generate.accounts=3000"])
    prep = prepare.prepare(compile_model(spec))
    assert prep.fingerprint == fingerprint(prep.accounts, prep.n_start)
    assert _about(prep)["portfolio"] == prep.fingerprint
    slots, place = wom_speakers(prep.wom_src)
    assert np.array_equal(prep.wom_speakers[0], slots)
    assert np.array_equal(prep.wom_speakers[1], place)
    assert prep.wom_cut == wom_split(prep.wom_dst)
    # a Prepared made without it takes the fingerprint when a result asks
    other = dataclasses.replace(prep)
    assert "fingerprint" not in other.__dict__
    assert _about(other)["portfolio"] == prep.fingerprint
