"""Per-account metrics of the decision units, for all accounts at once (docs/dmu.md, "Metrics").

Every comparison with a level (brief = 1/3, supporter = 0.5, ...) allows ``EPS`` so that a
value that is a level in decimal is counted as that level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kamsim.dmu.arrays import EPS, Units
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
    n = units.n_people
    in_s = np.bincount(units.edge_dst, weights=st.signed_weight * units.attitude[units.edge_src],
                       minlength=n)
    # mean of the in-neighbours, 0 where there are none (the step below then leaves s = att)
    mean = np.zeros(n)
    np.divide(in_s, st.in_weight, out=mean, where=st.has_in)
    mean -= units.attitude
    mean *= lam * st.has_in
    return units.attitude + mean


def _any_bits(units: Units, st: Structure, masks: list[np.ndarray]) -> list[np.ndarray]:
    """Per account, whether any person has each mask set (one reduceat for up to 8 masks)."""
    bits = np.zeros(units.n_people, np.uint8)
    for i, m in enumerate(masks):
        bits |= m.astype(np.uint8) << np.uint8(i)
    acc_bits = np.zeros(units.n_accounts, np.uint8)
    if st.nonempty.size:
        # reduceat over non-empty accounts only: an empty segment would yield the next
        # account's first element
        acc_bits[st.nonempty] = np.bitwise_or.reduceat(bits, st.starts)
    return [(acc_bits >> np.uint8(i)) & np.uint8(1) > 0 for i in range(len(masks))]


def _strength(ic: np.ndarray, att: np.ndarray) -> np.ndarray:
    """``ic * (1 + att) / 2`` per person, with one temporary array."""
    out = att + 1.0
    out *= ic
    out *= 0.5
    return out


def metrics(units: Units, threshold: float) -> Metrics:
    """Decision-unit metrics of every account; ``threshold`` is the influence of a "thread".

    Accounts with nobody in them get coverage 0, sentiment 0, multithreading 0, strength 0 and
    spof_share 1 (no relationship: everything hangs on nobody).
    """
    na, acc = units.n_accounts, units.account
    infl, cov, att = units.influence, units.coverage, units.attitude
    st = structure(units)  # what does not change between periods (kamsim.dmu.structure)

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(acc, weights=v, minlength=na)

    sum_infl = st.sum_influence
    ic = infl * cov
    sum_ic = total(ic)
    coverage = _ratio(sum_ic, sum_infl, 0.0)
    sentiment = _ratio(total(infl * propagated_attitude(units)), sum_infl, 0.0)
    covered = cov >= BRIEF - EPS
    thread = st.extra(("thread", float(threshold)), lambda: infl >= threshold - EPS)
    multithreading = total((covered & thread).astype(np.float64))

    is_champ = (att >= 1.0 - EPS) | (st.is_champion_role & (att >= 0.5 - EPS))  # mentor/champ
    key = st.key_person
    dm_covered, champion, hostile, newcomer = _any_bits(units, st, [
        st.is_economic_buyer & covered, is_champ, (att <= -0.5 + EPS) & key,
        (units.months_in_post < NEWCOMER_MONTHS) & key])

    # largest single contribution per account; reduceat over non-empty accounts only, since an
    # empty segment would yield the next account's first element
    max_ic = np.zeros(na)
    if st.nonempty.size:
        max_ic[st.nonempty] = np.maximum.reduceat(ic, st.starts)
    spof_share = _ratio(max_ic, sum_ic, 1.0)

    flags = {
        "no_champion": ~champion,
        "eb_uncovered": ~dm_covered,
        "hostile_influencer": hostile,
        "newcomer_in_key_role": newcomer,
        "single_threaded": multithreading <= 1.0,
    }
    red_flags = np.zeros(na, np.int64)
    for f in flags.values():
        red_flags += f
    return Metrics(
        coverage=coverage, sentiment=sentiment, multithreading=multithreading,
        dm_covered=dm_covered, champion=champion, spof_share=spof_share, red_flags=red_flags,
        flags=flags, strength=total(_strength(ic, att)),
    )
