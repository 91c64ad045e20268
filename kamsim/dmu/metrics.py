"""Per-account metrics of the decision units, for all accounts at once (docs/dmu.md, "Metrics").

Every comparison with a level (brief = 1/3, supporter = 0.5, ...) allows ``EPS`` so that a
value that is a level in decimal is counted as that level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kamsim.dmu.arrays import EPS, Units
from kamsim.dmu.span import Span, scratch, span
from kamsim.dmu.structure import KEY_INFLUENCE, Structure, structure

__all__ = ["Metrics", "metrics", "propagated_attitude", "FLAG_NAMES", "FLAG_TEXT",
           "PROPAGATION_LAMBDA", "BRIEF", "MULTIPLE", "KEY_INFLUENCE", "NEWCOMER_MONTHS"]

#: weight of the in-neighbours in one step of attitude propagation (assumption)
PROPAGATION_LAMBDA = 0.3
BRIEF = 1.0 / 3.0
MULTIPLE = 2.0 / 3.0
#: a person in post for less than this many months is a newcomer (assumption)
NEWCOMER_MONTHS = 6.0

FLAG_NAMES = ("no_champion", "eb_uncovered", "hostile_influencer", "newcomer_in_key_role",
              "single_threaded")
#: each red flag in words (for reports)
FLAG_TEXT = {
    "no_champion": "no champion: nobody in the unit is a supportive champion or a mentor",
    "eb_uncovered": "economic buyer not covered (not even a brief contact)",
    "hostile_influencer": "an influential person (influence >= 0.5) is hostile "
                          "(non-supporter or enemy)",
    "newcomer_in_key_role": "a key person (influence >= 0.5) has been in post under 6 months",
    "single_threaded": "single-threaded: at most one covered, influential contact",
}


@dataclass
class Metrics:
    """One value per account (arrays of length n_accounts)."""

    coverage: np.ndarray
    sentiment: np.ndarray
    multithreading: np.ndarray
    dm_covered: np.ndarray
    champion: np.ndarray
    spof_share: np.ndarray
    red_flags: np.ndarray
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    strength: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _ratio(num: np.ndarray, den: np.ndarray, empty: float) -> np.ndarray:
    """num/den where den > 0, else ``empty`` (no division warnings)."""
    out = np.full(num.shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def propagated_attitude(units: Units, lam: float = PROPAGATION_LAMBDA) -> np.ndarray:
    """Each person's attitude after one step of propagation along influence edges.

    ``s_p = (1-lam)*att_p + lam * sum_in(w*sign*att_src) / sum_in(w)`` for a person with
    in-edges of positive total weight, else ``s_p = att_p``.
    """
    st = structure(units)
    sp = span(units, st, None)
    return _propagated(units, st, sp, lam, np.empty(units.n_people))


def _propagated(units: Units, st: Structure, sp: Span, lam: float,
                out: np.ndarray) -> np.ndarray:
    """:func:`propagated_attitude` of the span's people, into ``out``."""
    ppl, att = sp.people, units.attitude[sp.people]
    pulled = units.attitude[units.edge_src[sp.edges]]
    pulled *= st.signed_weight[sp.edges]
    in_s = np.bincount(units.edge_dst[sp.edges], weights=pulled, minlength=sp.p1)[ppl]
    # mean of the in-neighbours, 0 where there are none (the step below then leaves s = att)
    mean = out
    mean.fill(0.0)
    np.divide(in_s, st.in_weight[ppl], out=mean, where=st.has_in[ppl])
    mean -= att
    mean *= st.extra(("lam_has_in", float(lam)), lambda: lam * st.has_in)[ppl]
    mean += att
    return mean


def _any_bits(sp: Span, starts: np.ndarray, nonempty: np.ndarray, masks: list[np.ndarray],
              bits: np.ndarray) -> list[np.ndarray]:
    """Per account of the span, whether any person has each mask set (one reduceat for up to 8
    masks); ``starts`` are the span's non-empty accounts' first people, ``nonempty`` those
    accounts (both relative to the span), ``bits`` a uint8 buffer."""
    bits.fill(0)
    for i, m in enumerate(masks):
        bits |= m.view(np.uint8) << np.uint8(i)
    acc_bits = np.zeros(sp.a1 - sp.a0, np.uint8)
    if nonempty.size:
        # reduceat over non-empty accounts only: an empty segment would yield the next
        # account's first element
        acc_bits[nonempty] = np.bitwise_or.reduceat(bits, starts)
    return [(acc_bits >> np.uint8(i)) & np.uint8(1) > 0 for i in range(len(masks))]


def _strength(ic: np.ndarray, att: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``ic * (1 + att) / 2`` per person, into ``out``."""
    np.add(att, 1.0, out=out)
    out *= ic
    out *= 0.5
    return out


def metrics(units: Units, threshold: float, active: np.ndarray | None = None,
            previous: Metrics | None = None) -> Metrics:
    """Decision-unit metrics of every account; ``threshold`` is the influence of a "thread".

    Accounts with nobody in them get coverage 0, sentiment 0, multithreading 0, strength 0 and
    spof_share 1 (no relationship: everything hangs on nobody).

    Given ``active`` (bool per account) and ``previous`` (these units' metrics from before,
    with no change since then to the people of the accounts inactive now, as :func:`step`
    guarantees), only the accounts from the first to the last active one are computed; the
    others keep their values from ``previous``, which recomputing would give again.
    """
    na = units.n_accounts
    st = structure(units)  # what does not change between periods (kamsim.dmu.structure)
    sp = span(units, st, active if previous is not None else None)
    ppl, a0, a1 = sp.people, sp.a0, sp.a1
    acc = units.account[ppl]
    infl, cov, att = units.influence[ppl], units.coverage[ppl], units.attitude[ppl]
    buf = scratch(units)

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(acc, weights=v, minlength=a1)[a0:]

    # the span's non-empty accounts and their first people, relative to the span
    i0, i1 = np.searchsorted(st.nonempty, (a0, a1))
    nonempty = st.nonempty[i0:i1] - a0
    starts = st.starts[i0:i1] - sp.p0

    sum_infl = st.sum_influence[a0:a1]
    ic = np.multiply(infl, cov, out=buf.get("f0", sp))
    sum_ic = total(ic)
    coverage = _ratio(sum_ic, sum_infl, 0.0)
    weighted = _propagated(units, st, sp, PROPAGATION_LAMBDA, buf.get("f2", sp))
    weighted *= infl  # infl * propagated attitude
    sentiment = _ratio(total(weighted), sum_infl, 0.0)
    covered = np.greater_equal(cov, BRIEF - EPS, out=buf.get("b0", sp, np.bool_))
    thread = st.extra(("thread", float(threshold)), lambda: units.influence >= threshold - EPS)
    threads = np.logical_and(covered, thread[ppl], out=buf.get("b1", sp, np.bool_))
    # a count of people (exact in any order): differences of a running count at the offsets
    running = np.zeros(sp.p1 - sp.p0 + 1, np.int64)
    np.cumsum(threads, out=running[1:])
    off = units.offsets[a0:a1 + 1] - sp.p0
    multithreading = (running[off[1:]] - running[off[:-1]]).astype(np.float64)

    key = st.key_person[ppl]
    is_champ = np.greater_equal(att, 0.5 - EPS, out=buf.get("b2", sp, np.bool_))
    is_champ &= st.is_champion_role[ppl]
    is_champ |= np.greater_equal(att, 1.0 - EPS, out=buf.get("b3", sp, np.bool_))  # mentor
    eb_cov = np.logical_and(st.is_economic_buyer[ppl], covered, out=threads)
    hostile = np.less_equal(att, -0.5 + EPS, out=buf.get("b3", sp, np.bool_))
    hostile &= key
    newcomer = np.less(units.months_in_post[ppl], NEWCOMER_MONTHS,
                       out=buf.get("b4", sp, np.bool_))
    newcomer &= key
    dm_covered, champion, hostile_acc, newcomer_acc = _any_bits(
        sp, starts, nonempty, [eb_cov, is_champ, hostile, newcomer],
        buf.get("bits", sp, np.uint8))

    # largest single contribution per account; reduceat over non-empty accounts only, since an
    # empty segment would yield the next account's first element
    max_ic = np.zeros(a1 - a0)
    if nonempty.size:
        max_ic[nonempty] = np.maximum.reduceat(ic, starts)
    spof_share = _ratio(max_ic, sum_ic, 1.0)

    flags = {
        "no_champion": ~champion,
        "eb_uncovered": ~dm_covered,
        "hostile_influencer": hostile_acc,
        "newcomer_in_key_role": newcomer_acc,
        "single_threaded": multithreading <= 1.0,
    }
    red_flags = np.zeros(a1 - a0, np.int64)
    for f in flags.values():
        red_flags += f
    strength = total(_strength(ic, att, buf.get("f2", sp)))
    part = Metrics(
        coverage=coverage, sentiment=sentiment, multithreading=multithreading,
        dm_covered=dm_covered, champion=champion, spof_share=spof_share, red_flags=red_flags,
        flags=flags, strength=strength,
    )
    if previous is None or (a0 == 0 and a1 == na):
        return part
    return _merged(previous, part, a0, a1)


def _merged(previous: Metrics, part: Metrics, a0: int, a1: int) -> Metrics:
    """``previous`` with accounts ``a0:a1`` replaced by ``part`` (new arrays)."""

    def merge(old: np.ndarray, new: np.ndarray) -> np.ndarray:
        out = old.copy()
        out[a0:a1] = new
        return out

    return Metrics(
        coverage=merge(previous.coverage, part.coverage),
        sentiment=merge(previous.sentiment, part.sentiment),
        multithreading=merge(previous.multithreading, part.multithreading),
        dm_covered=merge(previous.dm_covered, part.dm_covered),
        champion=merge(previous.champion, part.champion),
        spof_share=merge(previous.spof_share, part.spof_share),
        red_flags=merge(previous.red_flags, part.red_flags),
        flags={k: merge(previous.flags[k], v) for k, v in part.flags.items()},
        strength=merge(previous.strength, part.strength),
    )
