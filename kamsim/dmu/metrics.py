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


#: the Metrics arrays (besides ``flags``) and the flags, with their dtypes
_FIELDS = {"coverage": np.float64, "sentiment": np.float64, "multithreading": np.float64,
           "dm_covered": np.bool_, "champion": np.bool_, "spof_share": np.float64,
           "red_flags": np.int64, "strength": np.float64}
_FLAGS = {name: np.bool_ for name in FLAG_NAMES}
#: the per-person marks counted per account in one running sum; mark i is bit i of a byte
_MARKS = ("thread", "dm_covered", "champion", "hostile", "newcomer")


def _ratio(num: np.ndarray, den: np.ndarray, empty: float, out: np.ndarray) -> np.ndarray:
    """num/den where den > 0, else ``empty`` (no division warnings), into ``out``."""
    out.fill(empty)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _by_influence(st: Structure, a0: int, a1: int, num: np.ndarray,
                  out: np.ndarray) -> np.ndarray:
    """``num`` / the total influence of accounts ``a0:a1``, 0 where that is not positive, into
    ``out``: :func:`_ratio`'s numbers, with the fixed divisor's zeros found once (a plain
    division, then 0 there, is much cheaper than a masked one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(num, st.sum_influence[a0:a1], out=out)
    zero = st.no_influence
    out[zero[slice(*np.searchsorted(zero, (a0, a1)))] - a0] = 0.0
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
    # (mode="clip": the sources are in range, and take() buffers ``out`` under the default)
    pulled = np.take(units.attitude, units.edge_src[sp.edges],
                     out=scratch(units).edges("e0", sp), mode="clip")
    pulled *= st.signed_weight[sp.edges]
    in_s = np.bincount(units.edge_dst[sp.edges], weights=pulled, minlength=sp.p1)[ppl]
    # mean of the in-neighbours; a person without in-edges has in_s = +0 (bincount's start)
    # and divides by 1, and the step below then leaves s = att
    mean = np.divide(in_s, st.in_weight_or_1[ppl], out=out)
    mean -= att
    mean *= st.extra(("lam_has_in", float(lam)), lambda: lam * st.has_in)[ppl]
    mean += att
    return mean


def _strength(ic: np.ndarray, att: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``ic * (1 + att) / 2`` per person, into ``out``."""
    np.add(att, 1.0, out=out)
    out *= ic
    out *= 0.5
    return out


def _mark_width(units: Units) -> np.ndarray:
    # bits of a mark's count: enough for the largest account, and at least 6 (see below)
    return np.array(max(6, int(units.sizes.max(initial=0)).bit_length()))


def _mark_counts(units: Units, st: Structure, sp: Span,
                 marks: np.ndarray) -> dict[str, np.ndarray]:
    """Per account of the span, how many of its people have each mark (int64 arrays).

    ``marks`` holds a person's marks as a byte (bit i = ``_MARKS[i]``). Multiplying the byte
    by ``sum(2**(j*(width-1)))`` puts a copy of bit j at ``j*width`` (no two bits of the
    product land together, as ``width - 1`` is more than the byte's 5 bits, so nothing
    carries); masking keeps those. The result, a code with one ``width``-bit field per mark,
    sums over an account's people without a field spilling into the next. The counts are the
    differences, at the accounts' offsets, of a running sum of the codes: integer sums, exact
    in any order (a wrap-around of the running sum cancels out). One code holds 63 // width
    marks: all five unless an account has thousands of people.
    """
    width = int(st.extra("mark_width", lambda: _mark_width(units)))
    per_code = 63 // width
    # the codes, then (in place) their running sum, in the f1 buffer (free during metrics)
    code = scratch(units).get("f1", sp).view(np.int64)
    # the running sum before each account's first person: at the person before it (none
    # before the span's first person: 0)
    before = units.offsets[sp.a0:sp.a1 + 1] - (sp.p0 + 1)
    at_start = before < 0
    before[at_start] = 0
    counts: dict[str, np.ndarray] = {}
    for first in range(0, len(_MARKS), per_code):
        names = _MARKS[first:first + per_code]
        np.copyto(code, marks)
        code >>= first
        code *= sum(1 << (j * (width - 1)) for j in range(len(names)))
        code &= sum(1 << (j * width) for j in range(len(names)))
        np.cumsum(code, out=code)
        running = code[before] if code.size else np.zeros(before.size, np.int64)
        running[at_start] = 0
        summed = running[1:] - running[:-1]
        for j, name in enumerate(names):
            counts[name] = (summed >> (width * j)) & ((1 << width) - 1)
    return counts


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

    # the results are new arrays, ``previous``'s values outside the span; the span's part
    # (``part``) is computed straight into them
    def result(name: str, dtype: type) -> np.ndarray:
        new: np.ndarray = np.empty(na, dtype)
        if previous is not None and (a0 > 0 or a1 < na):
            old = previous.flags[name] if name in _FLAGS else getattr(previous, name)
            new[:a0] = old[:a0]
            new[a1:] = old[a1:]
        return new

    res = {name: result(name, dtype) for name, dtype in (*_FIELDS.items(), *_FLAGS.items())}
    part = {name: v[a0:a1] for name, v in res.items()}

    def total(v: np.ndarray) -> np.ndarray:
        return np.bincount(acc, weights=v, minlength=a1)[a0:]

    ic = np.multiply(infl, cov, out=buf.get("f0", sp))
    sum_ic = total(ic)
    _by_influence(st, a0, a1, sum_ic, part["coverage"])
    weighted = _propagated(units, st, sp, PROPAGATION_LAMBDA, buf.get("f2", sp))
    weighted *= infl  # infl * propagated attitude
    _by_influence(st, a0, a1, total(weighted), part["sentiment"])
    part["strength"][:] = total(_strength(ic, att, buf.get("f2", sp)))

    # largest single contribution per account; reduceat over non-empty accounts only, since an
    # empty segment would yield the next account's first element
    i0, i1 = np.searchsorted(st.nonempty, (a0, a1))
    max_ic = np.zeros(a1 - a0)
    if i1 > i0:
        max_ic[st.nonempty[i0:i1] - a0] = np.maximum.reduceat(ic, st.starts[i0:i1] - sp.p0)
    _ratio(max_ic, sum_ic, 1.0, part["spof_share"])

    # each person's marks, a byte with bit i = _MARKS[i]: built from the highest bit down by
    # doubling the byte and or-ing in the next mark (0 or 1)
    marks = buf.get("bits", sp, np.uint8)
    mark = buf.get("b0", sp, np.bool_)
    key = st.key_person[ppl]
    np.less(units.months_in_post[ppl], NEWCOMER_MONTHS, out=marks.view(np.bool_))
    marks &= key.view(np.uint8)  # a newcomer in a key role
    marks += marks
    np.less_equal(att, -0.5 + EPS, out=mark)
    mark &= key  # a hostile key person
    marks |= mark.view(np.uint8)
    marks += marks
    np.greater_equal(att, 0.5 - EPS, out=mark)
    mark &= st.is_champion_role[ppl]  # a supportive champion...
    marks |= mark.view(np.uint8)
    np.greater_equal(att, 1.0 - EPS, out=mark)  # ... or a mentor in any role
    marks |= mark.view(np.uint8)
    marks += marks
    covered = np.greater_equal(cov, BRIEF - EPS, out=buf.get("b1", sp, np.bool_))
    np.logical_and(covered, st.is_economic_buyer[ppl], out=mark)
    marks |= mark.view(np.uint8)
    marks += marks
    thread = st.extra(("thread", float(threshold)), lambda: units.influence >= threshold - EPS)
    np.logical_and(covered, thread[ppl], out=mark)  # a covered, influential contact
    marks |= mark.view(np.uint8)
    counts = _mark_counts(units, st, sp, marks)

    part["multithreading"][:] = counts["thread"]
    np.greater(counts["dm_covered"], 0, out=part["dm_covered"])
    np.greater(counts["champion"], 0, out=part["champion"])
    np.logical_not(part["champion"], out=part["no_champion"])
    np.logical_not(part["dm_covered"], out=part["eb_uncovered"])
    np.greater(counts["hostile"], 0, out=part["hostile_influencer"])
    np.greater(counts["newcomer"], 0, out=part["newcomer_in_key_role"])
    np.less_equal(part["multithreading"], 1.0, out=part["single_threaded"])
    red = part["red_flags"]
    red.fill(0)
    for name in FLAG_NAMES:
        red += part[name]
    return Metrics(**{name: res[name] for name in _FIELDS},
                   flags={name: res[name] for name in FLAG_NAMES})
