"""Per-account metrics of the decision units, for all accounts at once (docs/dmu.md, "Metrics").

Every comparison with a level (brief = 1/3, supporter = 0.5, ...) allows ``EPS`` so that a
value that is a level in decimal is counted as that level.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from operator import is_
from typing import Any

import numpy as np

from kamsim.dmu.arrays import EPS, Units
from kamsim.dmu.span import Scratch, Span, compiled, scratch, span, split
from kamsim.dmu.structure import KEY_INFLUENCE, Structure, structure
from kamsim.lanes import lane, side_by_side

__all__ = ["Metrics", "metrics", "unit_fields", "UNIT_FIELDS", "propagated_attitude",
           "FLAG_NAMES", "FLAG_TEXT",
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
    # the blocks :func:`metrics` made the arrays as rows of (see _Blocks); not part of the value
    _blocks: Any = field(default=None, init=False, repr=False, compare=False)


#: the per-person marks counted per account in one running sum; mark i is bit i of a byte
_MARKS = ("thread", "dm_covered", "champion", "hostile", "newcomer")
#: the levels the marks compare with (EPS allowed, see the module docstring): hostile at most,
#: supporter, mentor and brief coverage at least (one definition for both paths)
_HOSTILE, _SUPPORTER, _MENTOR, _BRIEF = -0.5 + EPS, 0.5 - EPS, 1.0 - EPS, BRIEF - EPS
#: the float results and the bool ones, as rows of one block each (plus red_flags, int64):
#: one call then updates several of them. The bool rows are ordered so that rows 0-3 are
#: "count > 0" of _MARKS[1:], rows 4-5 the negations of rows 0-1 and rows 2-6 the red flags.
_FLOAT_ROWS = ("coverage", "sentiment", "strength", "multithreading", "spof_share")
_BOOL_ROWS = ("dm_covered", "champion", "hostile_influencer", "newcomer_in_key_role",
              "eb_uncovered", "no_champion", "single_threaded")
_ROWS = (*_FLOAT_ROWS, *_BOOL_ROWS, "red_flags")


class _Blocks:
    """The result blocks of one :func:`metrics` call: floats (5, n_accounts), bools
    (7, n_accounts), red flags (n_accounts), and the row arrays handed out (by identity, so
    that a Metrics whose arrays were replaced, copied or unpickled is not taken for one)."""

    __slots__ = ("f", "b", "red", "rows", "_refs")

    def __init__(self, na: int) -> None:
        self.f = np.empty((len(_FLOAT_ROWS), na))
        self.b = np.empty((len(_BOOL_ROWS), na), np.bool_)
        self.red = np.empty(na, np.int64)
        self.rows = (*self.f, *self.b, self.red)
        # how many references each array and row has with nothing else holding one (see
        # unheld)
        self._refs = self._counts()

    def _counts(self) -> tuple[int, ...]:
        return tuple(map(sys.getrefcount, (self.f, self.b, self.red, *self.rows)))

    def unheld(self) -> bool:
        """Whether nothing but these blocks holds their arrays, their rows or a view of them
        (no Metrics of theirs, nor any array of one, is alive): then their memory may be
        written over. (A Metrics holds its rows; a view of an array holds a reference to
        the array that owns its memory.)"""
        return self._counts() == self._refs

    def of(self, m: Metrics) -> bool:
        """Whether ``m``'s arrays are still exactly these rows."""
        return self.rows[0].base is self.f and all(map(is_, _rows_of(m), self.rows))

    def metrics(self) -> Metrics:
        r = dict(zip(_ROWS, self.rows, strict=True))
        m = Metrics(coverage=r["coverage"], sentiment=r["sentiment"],
                    multithreading=r["multithreading"], dm_covered=r["dm_covered"],
                    champion=r["champion"], spof_share=r["spof_share"],
                    red_flags=r["red_flags"], flags={name: r[name] for name in FLAG_NAMES},
                    strength=r["strength"])
        m._blocks = self
        return m


def _ratio(num: np.ndarray, den: np.ndarray, empty: float, out: np.ndarray) -> np.ndarray:
    """num/den where den > 0, else ``empty`` (no division warnings), into ``out``."""
    # a plain division, then ``empty`` where den is not positive: a masked division runs
    # value-run by value-run, several times slower
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(num, den, out=out)
    np.putmask(out, np.logical_not(den > 0), empty)
    return out


def propagated_attitude(units: Units, lam: float = PROPAGATION_LAMBDA) -> np.ndarray:
    """Each person's attitude after one step of propagation along influence edges.

    ``s_p = (1-lam)*att_p + lam * sum_in(w*sign*att_src) / sum_in(w)`` for a person with
    in-edges of positive total weight, else ``s_p = att_p``.
    """
    st = structure(units)
    sp = span(units, st, None)
    out = np.empty(units.n_people)
    if compiled(units, st):
        from kamsim.dmu.metrics_kernel import propagated

        return propagated(units, st, sp, lam, out)
    return _propagated(units, st, sp, lam, out, scratch(units))


def _propagated(units: Units, st: Structure, sp: Span, lam: float,
                out: np.ndarray, buf: Scratch) -> np.ndarray:
    """:func:`propagated_attitude` of the span's people, into ``out``."""
    ppl, att = sp.people, units.attitude[sp.people]
    # (mode="wrap": the sources are in range, so any mode gathers the same; take() buffers
    # ``out`` under the default mode, and "wrap" runs a little faster than "clip")
    pulled = units.attitude.take(units.edge_src[sp.edges], out=buf.edges("e0", sp),
                                 mode="wrap")
    pulled *= st.signed_weight[sp.edges]
    in_s = np.bincount(units.edge_dst[sp.edges], weights=pulled, minlength=sp.p1)[ppl]
    # mean of the in-neighbours; a person without in-edges has in_s = +0 (bincount's start)
    # and divides by 1, and the step below then leaves s = att
    mean = np.divide(in_s, st.in_weight_or_1[ppl], out=out)
    mean -= att
    mean *= _lam_has_in(st, lam)[ppl]
    mean += att
    return mean


def _lam_has_in(st: Structure, lam: float) -> np.ndarray:
    """Per person, ``lam`` where the in-edges weigh more than 0, else 0 (kept per ``lam``)."""
    return st.extra(("lam_has_in", float(lam)), lambda: lam * st.has_in)


def _strength(ic: np.ndarray, att: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``ic * (1 + att) / 2`` per person, into ``out``."""
    np.add(att, 1.0, out=out)
    out *= ic
    out *= 0.5
    return out


def _mark_width(units: Units) -> int:
    # bits of a mark's count: enough for the largest account, and at least 6 (see below)
    return max(6, int(units.sizes.max(initial=0)).bit_length())


def _mark_bytes(units: Units, st: Structure, threshold: float) -> np.ndarray:
    # per person, the bits of the marks that hang on the role and influence alone, each at its
    # mark's place: (covered) thread, economic buyer; (supportive) champion role; (hostile,
    # newcomer) key person. One multiply by these then sets a mark from its condition.
    thread = units.influence >= threshold - EPS
    out = np.zeros((3, units.n_people), np.uint8)
    out[0] = thread
    out[0] |= st.is_economic_buyer.view(np.uint8) << 1
    out[1] = st.is_champion_role.view(np.uint8) << 2
    out[2] = st.key_person.view(np.uint8) << 3
    return out


def _mark_groups(units: Units) -> tuple[tuple[int, int, int, int, int, np.ndarray], ...]:
    # for each code (see _mark_counts): its first mark, how many, the multiplier, the mask,
    # the field width and the (k, 1) shifts that take the fields apart
    width = _mark_width(units)
    per_code = 63 // width
    groups = []
    for first in range(0, len(_MARKS), per_code):
        k = len(_MARKS[first:first + per_code])
        groups.append((first, k, sum(1 << (j * (width - 1)) for j in range(k)),
                       sum(1 << (j * width) for j in range(k)), width,
                       np.arange(0, width * k, width).reshape(k, 1)))
    return tuple(groups)


def _mark_counts(units: Units, st: Structure, sp: Span, marks: np.ndarray,
                 code: np.ndarray) -> np.ndarray:
    """Per account of the span, how many of its people have each mark: int64 (5, accounts),
    rows in ``_MARKS`` order.

    ``marks`` holds a person's marks as a byte (bit i = ``_MARKS[i]``). Multiplying the byte
    by ``sum(2**(j*(width-1)))`` puts a copy of bit j at ``j*width`` (no two bits of the
    product land together, as ``width - 1`` is more than the byte's 5 bits, so nothing
    carries); masking keeps those. The result, a code with one ``width``-bit field per mark,
    sums over an account's people without a field spilling into the next. The counts are the
    differences, at the accounts' offsets, of a running sum of the codes: integer sums, exact
    in any order (a wrap-around of the running sum cancels out). One code holds 63 // width
    marks: all five unless an account has thousands of people. ``code`` is an int64 buffer of
    one more value than the span has people: its first value stays 0, so that the running sum
    before each account's first person is at that person's place in it.
    """
    starts = units.offsets[sp.a0:sp.a1 + 1]
    if sp.p0:
        starts = starts - sp.p0
    counts = np.empty((len(_MARKS), sp.a1 - sp.a0), np.int64)
    code[0] = 0
    codes = code[1:]
    for first, k, spread, mask, width, shifts in st.value("mark_groups",
                                                          lambda: _mark_groups(units)):
        np.copyto(codes, marks)
        if first:
            codes >>= first
        codes *= spread
        codes &= mask
        code.cumsum(out=code)
        running = code.take(starts, mode="wrap")  # (the offsets are in range)
        summed = running[1:] - running[:-1]
        np.right_shift(summed, shifts, out=counts[first:first + k])
        counts[first:first + k] &= (1 << width) - 1
        code[0] = 0
    return counts


#: the largest rank layout (values) :func:`_by_rank` uses: 4 MB, so that it stays in cache
#: (larger portfolios add value by value: there the layout's gather costs as much as it saves)
RANK_LAYOUT_MAX = 1 << 19
#: from this many accounts in the stretch on, :func:`_by_rank` gathers rank by rank (a call a
#: rank, each reading one run of the index: ~5% faster metrics at 10,000 accounts); below,
#: one call for all ranks (the calls would cost more than the index copy saves)
RANK_BY_RANK_FROM = 4096


def _rank_index(units: Units) -> np.ndarray:
    # (largest unit, n_accounts): person ``offsets[a] + r`` at [r, a], n_people past the end;
    # empty (0, 0) when the layout of all accounts would be too big or mostly padding
    sizes = units.sizes
    m, na = int(sizes.max(initial=0)), units.n_accounts
    if 3 * m * na > RANK_LAYOUT_MAX or m * na > 2 * units.n_people + 64:
        return np.zeros((0, 0), np.int64)
    rank = np.arange(m)[:, None]
    return np.where(rank < sizes, units.offsets[:-1] + rank, units.n_people)


def _by_rank(units: Units, st: Structure, sp: Span, buf: Scratch, sums: np.ndarray,
             max_ic: np.ndarray) -> bool:
    """Per account of the span, the sums of the person rows f0-f2 (into ``sums``) and the
    largest of f0 (into ``max_ic``), from the rows laid out by rank in the unit: (3, largest
    unit, accounts), 0 past an account's people. Adding the ranks in turn to 0 adds each
    account's values in their order, as ``bincount`` does (and the zeros past the end leave
    a sum as it is: no sum of bincount's is -0), so the sums are bincount's to the bit; and
    the rows are a few long calls, where bincount and ``maximum.reduceat`` work value by value
    or account by account. False (nothing done) when the units are too many (see
    RANK_LAYOUT_MAX) or too uneven for the padding to pay, or the span has one account.

    The zeros past an account's people can change its largest f0 only where all its values
    are negative (or -0.0): then its sum of f0 is not positive, and the one reader of the
    largest, spof_share, is 1 there whatever the largest is (a NaN gives a NaN sum: 1 too).
    So the sums and the spof shares are those of the plain path for any f0, and f0 is not
    searched for a negative value first (a pass over every person).
    """
    a0, a1 = sp.a0, sp.a1
    index = st.extra("rank_index", lambda: _rank_index(units))
    m = index.shape[0]
    # (one account: the layout's account axis is then of length 1 and numpy reduces along the
    # ranks, from 8 values on in its pairwise order, not bincount's)
    if (index.shape[1] != units.n_accounts or a1 - a0 < 2
            or m * (a1 - a0) > 2 * (sp.p1 - sp.p0) + 64):
        return False
    rows = buf.whole("f")
    rows[:, units.n_people] = 0.0  # what the index past the end points at
    laid = buf.array("by_rank", 3 * m * units.n_accounts)[:3 * m * (a1 - a0)]
    if a1 - a0 < RANK_BY_RANK_FROM:
        # one gather, (3, rank, accounts)
        laid = rows.take(index[:, a0:a1], axis=1, out=laid.reshape(3, m, a1 - a0), mode="wrap")
        ranks, ic = 1, laid[0]
    else:
        # rank by rank, (rank, 3, accounts): each gather reads its part of the index as one
        # run (a single call copies the span's columns of the index first) and writes one
        # block; the sums add the ranks in the same order
        laid = laid.reshape(m, 3, a1 - a0)
        for r in range(m):  # a loop over the ranks in a unit (m is small: see RANK_LAYOUT_MAX)
            rows.take(index[r, a0:a1], axis=1, out=laid[r], mode="wrap")
        ranks, ic = 0, laid[:, 0]
    np.add.reduce(laid, axis=ranks, initial=0.0, out=sums)
    if m:
        np.maximum.reduce(ic, axis=0, out=max_ic)
    return True


def _rows_of(m: Metrics) -> tuple[np.ndarray, ...]:
    """``m``'s arrays in ``_ROWS`` order."""
    fl = m.flags
    return (m.coverage, m.sentiment, m.strength, m.multithreading, m.spof_share,
            m.dm_covered, m.champion, fl["hostile_influencer"], fl["newcomer_in_key_role"],
            fl["eb_uncovered"], fl["no_champion"], fl["single_threaded"], m.red_flags)


def metrics(units: Units, threshold: float, active: np.ndarray | None = None,
            previous: Metrics | None = None, *, threads: int = 1) -> Metrics:
    """Decision-unit metrics of every account; ``threshold`` is the influence of a "thread".

    Accounts with nobody in them get coverage 0, sentiment 0, multithreading 0, strength 0 and
    spof_share 1 (no relationship: everything hangs on nobody).

    Given ``active`` (bool per account) and ``previous`` (these units' metrics from before,
    with no change since then to the people of the accounts inactive now, as :func:`step`
    guarantees), only the accounts from the first to the last active one are computed; the
    others keep their values from ``previous``, which recomputing would give again. With
    ``threads`` 2, a large stretch is worked on in two halves at once (every value is an
    account's own: the same as one pass gives).
    """
    st = structure(units)  # what does not change between periods (kamsim.dmu.structure)
    sp = span(units, st, active if previous is not None else None)
    return _metrics_span(units, st, threshold, sp, previous, threads)


def _metrics_span(units: Units, st: Structure, threshold: float, sp: Span,
                  previous: Metrics | None, threads: int, kernels: bool | None = None,
                  into: _Blocks | None = None) -> Metrics:
    """:func:`metrics` of the accounts of the stretch ``sp``, ``previous``'s values elsewhere
    (in parts with ``threads`` > 1; ``kernels`` as :func:`kamsim.dmu.span.compiled` takes
    it; ``into``: see :func:`_blocks_for`)."""
    blocks = _blocks_for(units.n_accounts, sp, previous, into)
    for _ in side_by_side(lambda part: _metrics_part(units, st, threshold, part,
                                                     scratch(units, lane()), blocks, kernels),
                          split(units, st, sp, threads), threads):
        pass  # each part writes its accounts' columns of the blocks
    return blocks.metrics()


def _blocks_for(na: int, sp: Span, previous: Metrics | None,
                into: _Blocks | None = None) -> _Blocks:
    """New result blocks for ``na`` accounts, ``previous``'s values outside the span (copied
    block by block when ``previous`` is made of such rows); the span's part is computed
    straight into them. ``into``: blocks nothing uses any more (of another ``previous``),
    whose memory is written over instead (every value of the blocks is written: outside
    the span here, inside it by the metrics)."""
    a0, a1 = sp.a0, sp.a1
    blocks = into if into is not None and into.red.shape == (na,) else _Blocks(na)
    if previous is not None and (a0 > 0 or a1 < na):
        old = previous._blocks
        pairs: Any = ((blocks.f, old.f), (blocks.b, old.b), (blocks.red, old.red)) \
            if isinstance(old, _Blocks) and old.red.shape == (na,) and old.of(previous) \
            else zip(blocks.rows, _rows_of(previous), strict=True)
        for new, prev in pairs:
            if a0:  # (the stretch mostly starts at the first slot)
                new[..., :a0] = prev[..., :a0]
            new[..., a1:] = prev[..., a1:]
    return blocks


def _metrics_part(units: Units, st: Structure, threshold: float, sp: Span, buf: Scratch,
                  blocks: _Blocks, kernels: bool | None = None) -> None:
    """The metrics of the accounts of ``sp`` into their columns of ``blocks``, with the
    scratch buffers ``buf`` (compiled, :mod:`kamsim.dmu.metrics_kernel`, where
    :func:`kamsim.dmu.span.compiled`)."""
    if compiled(units, st, kernels):
        from kamsim.dmu.metrics_kernel import metrics_part

        metrics_part(units, st, threshold, sp, buf, blocks)
        return
    p0, p1, a0, a1 = sp.p0, sp.p1, sp.a0, sp.a1
    ppl = slice(p0, p1)
    acc = units.account[ppl]
    infl, cov, att = units.influence[ppl], units.coverage[ppl], units.attitude[ppl]
    f0, f1, f2 = buf.rows("f", 3, sp)
    res_f, res_b, red = blocks.f[:, a0:a1], blocks.b[:, a0:a1], blocks.red[a0:a1]

    # per account: sums of ic, influence-weighted propagated attitude and strength (into the
    # coverage, sentiment and strength rows), and the largest ic
    ic = np.multiply(infl, cov, out=f0)
    weighted = _propagated(units, st, sp, PROPAGATION_LAMBDA, f1, buf)
    weighted *= infl  # infl * propagated attitude
    _strength(ic, att, f2)
    max_ic = np.empty(a1 - a0)
    sums = res_f[0:3]
    if not _by_rank(units, st, sp, buf, sums, max_ic):
        for k, v in enumerate((ic, weighted, f2)):
            sums[k] = np.bincount(acc, weights=v, minlength=a1)[a0:]
        # reduceat over non-empty accounts only, since an empty segment would yield the next
        # account's first element (an empty account's value is never read: its sum of ic is 0)
        i0, i1 = st.nonempty.searchsorted((a0, a1))
        if i1 - i0 == a1 - a0:
            if i1 > i0:
                np.maximum.reduceat(ic, st.starts[i0:i1] - p0, out=max_ic)
        else:
            max_ic[st.nonempty[i0:i1] - a0] = np.maximum.reduceat(ic, st.starts[i0:i1] - p0)
    _ratio(max_ic, sums[0], 1.0, res_f[4])  # spof_share
    # coverage and sentiment: per unit of the account's total influence, 0 where that is not
    # positive (a plain division by it, 1 there, then 0 there: cheaper than a masked one)
    np.divide(res_f[0:2], st.sum_influence_or_1[a0:a1], out=res_f[0:2])
    zero = st.no_influence
    zero = zero[slice(*zero.searchsorted((a0, a1)))]
    if zero.size:
        res_f[0:2, zero - a0] = 0.0

    # each person's marks, a byte with bit i = _MARKS[i]: a condition (0 or 1) times the
    # person's fixed bits of that mark (see _mark_bytes), or-ed together
    fixed = st.extra(("mark_bytes", float(threshold)),
                     lambda: _mark_bytes(units, st, threshold))
    on_cov, on_champ, on_key = fixed[0, ppl], fixed[1, ppl], fixed[2, ppl]
    marks = buf.get("bits", sp, np.uint8)
    mark = buf.get("b0", sp, np.bool_).view(np.uint8)
    np.less(units.months_in_post[ppl], NEWCOMER_MONTHS, out=marks.view(np.bool_))
    marks *= on_key
    marks += marks  # a newcomer in a key role (bit 4)
    np.less_equal(att, _HOSTILE, out=mark.view(np.bool_))
    mark *= on_key  # a hostile key person (bit 3)
    marks |= mark
    np.greater_equal(att, _SUPPORTER, out=mark.view(np.bool_))
    mark *= on_champ  # a supportive champion (bit 2)...
    marks |= mark
    np.greater_equal(att, _MENTOR, out=mark.view(np.bool_))
    mark *= 4  # ... or a mentor in any role (bit 2; a multiply: uint8 shifts run ~5x slower)
    marks |= mark
    np.greater_equal(cov, _BRIEF, out=mark.view(np.bool_))
    mark *= on_cov  # a covered economic buyer (bit 1), a covered influential contact (bit 0)
    marks |= mark
    counts = _mark_counts(units, st, sp, marks, buf.rows("f", 3, sp, extra=1)[1].view(np.int64))

    np.copyto(res_f[3], counts[0])  # multithreading
    # dm_covered, champion, hostile_influencer, newcomer_in_key_role; then eb_uncovered,
    # no_champion; single_threaded; red_flags = rows 2-6
    np.greater(counts[1:], 0, out=res_b[0:4])
    np.logical_not(res_b[0:2], out=res_b[4:6])
    np.less_equal(res_f[3], 1.0, out=res_b[6])
    # (summed as bytes, then widened: a reduction that casts each bool to int64 on the way
    # runs through numpy's casting buffers, about twice as slow; five flags fit in a byte)
    red8 = np.add.reduce(res_b[2:7].view(np.uint8), axis=0,
                         out=buf.accounts("red8", sp, np.uint8))
    np.copyto(red, red8)


#: the rule-expression fields a decision unit's metrics give (docs/rules.md), ``red_flags``
#: as a number
UNIT_FIELDS = ("coverage", "sentiment", "multithreading", "champion", "dm_covered",
               "spof_share", "red_flags")


def unit_fields(m: Metrics, red_flags: bool = True) -> dict[str, np.ndarray]:
    """The fields of :data:`UNIT_FIELDS` from ``m`` (the engine's fields and the first
    tiering's read them the same way); ``red_flags=False`` leaves out the one that needs a
    conversion, for a caller that works it out only when read."""
    out = {"coverage": m.coverage, "sentiment": m.sentiment,
           "multithreading": m.multithreading, "champion": m.champion,
           "dm_covered": m.dm_covered, "spof_share": m.spof_share}
    if red_flags:
        out["red_flags"] = m.red_flags.astype(np.float64)
    return out

