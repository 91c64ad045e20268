"""What every replication of a scenario shares: the starting portfolio plus the slots of the
accounts that may arrive later, their decision units, tiers, stages and the industry
network that word of mouth travels along. Built once per scenario from the scenario seed."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from kamsim import lanes
from kamsim.compile import CompiledModel, initial_env
from kamsim.dmu import Units, build_units
from kamsim.dmu.metrics import Metrics, metrics
from kamsim.dmu.structure import structure
from kamsim.portfolio import (
    DRAWN_FIELDS,
    Accounts,
    fingerprint,
    generate_labels,
    generate_numbers,
    starting_parts,
)

__all__ = ["Prepared", "prepare", "first_tiering", "industry_network", "wom_speakers",
           "wom_split"]


@dataclass
class Prepared:
    model: CompiledModel
    accounts: Accounts  # n_slots rows: the first n_start are the starting portfolio
    n_start: int
    units: Units
    tier: np.ndarray
    score: np.ndarray
    quadrant: np.ndarray
    trust: np.ndarray
    stage: np.ndarray
    wom_src: np.ndarray  # leader -> follower edges of the industry network
    wom_dst: np.ndarray
    wom_weight: np.ndarray
    leader: np.ndarray  # bool per slot

    # (the cached properties below: prepare() fills them in from what it worked out beside
    # the first tiering; a Prepared made otherwise, or replaced, works out its own)

    @property
    def n_slots(self) -> int:
        return self.accounts.n

    @functools.cached_property
    def fingerprint(self) -> str:
        """:func:`kamsim.portfolio.fingerprint` of the starting portfolio (its first
        ``n_start`` accounts), what a result records."""
        return fingerprint(self.accounts, self.n_start)

    @functools.cached_property
    def wom_cut(self) -> int | None:
        """Where the word-of-mouth edges can be cut for two threads (:func:`wom_split`),
        found once for every replication that asks (a replaced ``wom_dst`` makes a new
        Prepared, which finds its own)."""
        return wom_split(self.wom_dst)

    @functools.cached_property
    def wom_speakers(self) -> tuple[np.ndarray, np.ndarray]:
        """:func:`wom_speakers` of the word-of-mouth edges, found once for every replication
        that asks."""
        return wom_speakers(self.wom_src)


def wom_speakers(src: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The slots word of mouth's edges come from (``src``: the leaders), ascending, and each
    edge's place among them (int32 up to 2**31 of them): a period works out the signal of
    those slots only (:func:`kamsim.engine.step_kernels.word_of_mouth`)."""
    # (np.unique and searchsorted, without sorting millions of edges: ~0.5 s at 1M accounts)
    speaks = np.zeros(int(src.max()) + 1 if src.size else 0, dtype=bool)
    speaks[src] = True
    slots = np.flatnonzero(speaks)
    kind = np.int32 if slots.size <= np.iinfo(np.int32).max else np.intp
    rank: np.ndarray = np.cumsum(speaks, dtype=kind)
    np.subtract(rank, 1, out=rank)
    return slots, rank[src]


def wom_split(dst: np.ndarray) -> int | None:
    """An edge index near the middle at which the word-of-mouth edges (their followers
    ``dst``) can be cut in two so that no follower has edges on both sides, for the two
    threads of :func:`kamsim.engine.step_kernels.word_of_mouth` (``Prepared.wom_cut``);
    None if there is none (one follower only, or a follower's edges not all one after the
    other)."""
    starts = np.flatnonzero(dst[1:] != dst[:-1]) + 1  # where a follower's run of edges begins
    if starts.size == 0 or np.bincount(dst[np.r_[0, starts]]).max() > 1:
        return None  # (the second: some follower has two runs)
    return int(starts[np.abs(starts - dst.shape[0] // 2).argmin()])


def _first_k(key: np.ndarray, k: int) -> np.ndarray:
    """``np.argsort(key, kind="stable")[:k]`` (the k smallest, equal keys by position, in that
    order) without sorting all of ``key``: only the keys up to the k-th smallest are sorted.
    A few hundred thousand accounts per industry, 5% of them leaders."""
    if k >= key.size:
        return np.argsort(key, kind="stable")[:k]
    kth = np.partition(key, k - 1)[k - 1]
    if np.isnan(kth):  # NaNs sort last: fewer than k numbers
        return np.argsort(key, kind="stable")[:k]
    cand = np.flatnonzero(key <= kth)  # every key below the k-th, and the ties at it
    return cand[np.argsort(key[cand], kind="stable")[:k]]


def industry_network(industry: np.ndarray, influence: np.ndarray, n_start: int,
                     rng: np.random.Generator, leader_share: float = 0.05, links: int = 3
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Leaders are the most influential starting accounts of each industry (top
    ``leader_share``); every other account follows up to ``links`` leaders of its industry,
    weighted by the leader's influence. Returns (src, dst, weight, leader mask).

    Industries are taken in sorted order (that of ``np.unique``). Each is numbered once
    through a dict (sorting 1.5M str objects for ``np.unique`` cost 0.6 s), and the edges are
    written straight into arrays of the final size."""
    n = industry.shape[0]
    leader = np.zeros(n, dtype=bool)
    names = industry.tolist()
    number = {name: k for k, name in enumerate(sorted(set(names)))}
    code = np.fromiter(map(number.__getitem__, names), np.intp, count=n)
    del names
    groups = []  # (leaders, followers) of each industry with starting accounts
    for k in range(len(number)):  # a loop over industries, not accounts
        members = np.flatnonzero(code == k)
        starting = members[members < n_start]
        if starting.size == 0:
            continue
        m = max(1, int(round(leader_share * starting.size)))
        leaders = starting[_first_k(-influence[starting], m)]
        leader[leaders] = True
        groups.append((leaders, members))
    # followers are picked after every industry's leaders are marked, as before: an account
    # is a leader of its own industry only, so the marks of the others do not change them
    groups = [(ld, mb[~leader[mb]]) for ld, mb in groups]
    total = sum(f.size * min(links, ld.size) for ld, f in groups)
    s = np.empty(total, np.int64)
    d = np.empty(total, np.int64)
    at = 0
    for leaders, followers in groups:
        if followers.size == 0:
            continue
        pick = rng.integers(0, leaders.size, size=(followers.size, min(links, leaders.size)))
        end = at + pick.size
        np.take(leaders, pick.ravel(), out=s[at:end])
        d[at:end].reshape(pick.shape)[...] = followers[:, None]  # each follower once per link
        at = end
    return s, d, influence[s], leader


def first_tiering(model: CompiledModel, accounts: Accounts, n_start: int,
                  start_metrics: Metrics | None, threads: int = 2
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """The start's account fields (:func:`~kamsim.compile.initial_env`) and the tier, score
    and quadrant of the first ``n_start`` accounts (the starting portfolio) from them.
    ``kamsim validate`` (kamsim.tiering.check_start) runs the same tiering without the rest
    of :func:`prepare` when the tiering reads no decision-unit field (``start_metrics``
    None), so it finds what a run's start finds. ``threads``: how many the ranks may use
    (the figures do not depend on it)."""
    env = initial_env(model, accounts, start_metrics)
    mask = np.zeros(accounts.n, dtype=bool)
    mask[:n_start] = True
    tier, score, quadrant = model.tiering.classify(env, mask, ids=accounts.account_id,
                                                   threads=threads)
    return env, tier, score, quadrant


def _units_and_structure(*args: Any, **kwargs: Any) -> Units:
    """:func:`~kamsim.dmu.build_units` and the units' structure (fixed during a run),
    derived once here, so that every replication, and every worker process forked after
    this, shares it."""
    units = build_units(*args, **kwargs)
    structure(units)
    return units


def prepare(model: CompiledModel) -> Prepared:
    """Build the shared starting point of every replication of ``model``'s scenario."""
    spec = model.spec
    sc = spec.scenario
    (start_ids, start_segment, start_industry), start_numbers = starting_parts(spec)
    n_start = start_ids.shape[0]
    n_new = int(np.ceil(n_start * spec.scenario.portfolio.max_new_share))
    gen = (sc.portfolio.generate if sc.portfolio.generate is not None
           else sc.portfolio.import_.defaults)  # type: ignore[union-attr]
    assert gen is not None
    # the arrivals' slots, named N1, N2, ... (zero-padded to the digits of n_new)
    future = gen.model_copy(update={"accounts": max(n_new, 1)})
    future_seed = sc.seed + 7_919
    future_ids, future_segment, future_industry = generate_labels(future, future_seed,
                                                                  id_prefix="N")
    account_id = np.concatenate([start_ids, future_ids[:n_new]])
    segment = np.concatenate([start_segment, future_segment[:n_new]])
    industry = np.concatenate([start_industry, future_industry[:n_new]])
    del start_ids, start_segment, start_industry, future_ids, future_segment, future_industry
    n = account_id.shape[0]
    seeds = np.random.SeedSequence([sc.seed, 0x444D55]).spawn(2)
    # explicit maps: the stakeholder rules' named accounts, then the CRM contacts export
    explicit = {**spec.stakeholders.accounts, **(spec.contacts or {})}
    build = functools.partial(_units_and_structure, spec.stakeholders, segment, account_id,
                              np.random.default_rng(seeds[0]), explicit=explicit)
    # The decision units read only the accounts' ids and segments. A tiering that reads no
    # decision-unit field does not wait for the units: a large portfolio's units and
    # structure are built on the other core (at 1M accounts ~0.7 s, and up to ~3 s when the
    # machine hands out memory slowly) while the accounts' numbers are drawn and the first
    # tiering ranks them one at a time on this one. The same units, numbers and tiers
    # either way: each is what it is built alone, from its own stream
    from kamsim.engine.core import ASIDE_MIN_SLOTS

    beside = not model.tiering.reads_units and n >= ASIDE_MIN_SLOTS
    units_done = lanes.aside(2 if beside else 1, build)
    try:
        # each field drawn straight into its column of every slot (one field's draws alive
        # at a time)
        numbers = {name: np.empty(n) for name in DRAWN_FIELDS}
        for name, values in start_numbers():
            numbers[name][:n_start] = values
        for name, values in generate_numbers(future, future_seed):
            numbers[name][n_start:] = values[:n_new]
        accounts = Accounts(account_id, numbers, segment, industry)
        # new accounts start young: no tenure, a small share, neutral loyalty
        accounts.numbers["tenure_months"][n_start:] = 0.0
        accounts.numbers["share"][n_start:] *= 0.5
        # the industry network reads the industries and influences only: beside the first
        # tiering, like the units
        # (and then, there, what each replication and the result read of it and of the
        # accounts: the speakers and the cut of word of mouth's edges, the portfolio's
        # fingerprint, ~0.16 s at 1M accounts that the run's first period and its end
        # spent on the main thread)
        network, marked = lanes.aside_each(
            2 if beside else 1,
            (_network_and_speakers, industry, numbers["influence"], n_start,
             np.random.default_rng(seeds[1])),
            (fingerprint, accounts, n_start))
        # the first tiering reads the real starting state: the units (when it reads one of
        # their fields), the starting trust and stage (neither depends on the tier;
        # docs/model.md, "The start of a run"). The units' metrics only then: a million
        # accounts' are ~200 MB, and each replication measures its own start; keeping
        # these for the run raised the 1M-account peak by that much
        start_metrics = (metrics(units_done(), spec.stakeholders.influence_threshold)
                         if model.tiering.reads_units else None)
        env, tier, score, quadrant = first_tiering(model, accounts, n_start, start_metrics,
                                                   threads=1 if beside else 2)
    except Exception:
        # a problem of the units is told first, as when they were built first (an
        # interruption goes at once: the helper is a daemon thread)
        units_done()
        raise
    del start_metrics
    tier[n_start:] = len(model.tiers) - 1  # arrivals start in the lowest tier
    trust = env["trust"]
    stage = env["stage_index"].astype(np.int64)
    stage[n_start:] = 0
    (src, dst, w, leader), speakers, cut = network()
    del env  # its state columns (~200 MB at 1M accounts) are not kept
    prep = Prepared(model, accounts, n_start, units_done(), tier, score, quadrant, trust,
                    stage, src, dst, w, leader)
    prep.__dict__.update(fingerprint=marked(), wom_speakers=speakers, wom_cut=cut)
    return prep


def _network_and_speakers(industry: np.ndarray, influence: np.ndarray, n_start: int,
                          rng: np.random.Generator
                          ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray],
                                     int | None]:
    """:func:`industry_network`, then :func:`wom_speakers` and :func:`wom_split` of its
    edges (what Prepared.wom_speakers and wom_cut find)."""
    src, dst, w, leader = industry_network(industry, influence, n_start, rng)
    return (src, dst, w, leader), wom_speakers(src), wom_split(dst)
