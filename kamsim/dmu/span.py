"""The part of the units one period works on, and reusable per-person buffers.

Accounts are filled in slot order and never come back once lost, so the accounts in the
portfolio lie between the first and the last active slot; the slots not yet filled (a third of
a run's slots at the start) are all after it. :func:`span` is that stretch of accounts, of
their people (``offsets``) and of their influence edges (sorted by target, so the edges into
those people are one stretch too). ``step`` and ``metrics`` work on views of it only: people
outside it belong to inactive accounts, which a period does not change.

:class:`Scratch` holds full-length per-person (and per-account, per-edge) buffers that ``step``
and ``metrics`` reuse from period to period instead of allocating (and page-faulting) fresh
temporaries. It belongs to one
:class:`~kamsim.dmu.arrays.Units` (not shared by its copies, which may run in other threads).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kamsim import jit
from kamsim.dmu.arrays import HOLDERS, Units
from kamsim.dmu.structure import Structure

__all__ = ["Span", "span", "Scratch", "scratch", "split", "edges_sorted", "compiled",
           "LANE_MIN_PEOPLE"]

#: ``step`` and ``metrics`` split their stretch over threads (``threads`` > 1) only from this
#: many people on: below, handing half to another thread costs more than it saves (at 100k
#: accounts, ~600k people, a step takes ~11 instead of ~14 ms; at 1M, ~86 instead of ~150 ms)
LANE_MIN_PEOPLE = 400_000


@dataclass(frozen=True)
class Span:
    """Accounts ``a0:a1``, their people ``p0:p1`` and the edges into them ``e0:e1``."""

    a0: int
    a1: int
    p0: int
    p1: int
    e0: int
    e1: int

    @property
    def people(self) -> slice:
        return slice(self.p0, self.p1)

    @property
    def accounts(self) -> slice:
        return slice(self.a0, self.a1)

    @property
    def edges(self) -> slice:
        return slice(self.e0, self.e1)

    @property
    def full(self) -> bool:
        return self.a0 == 0 and self.p0 == 0 and self.e0 == 0


def _edges_sorted(units: Units) -> np.ndarray:
    d = units.edge_dst
    return np.array(bool(d.size < 2 or np.all(d[1:] >= d[:-1])))


def edges_sorted(units: Units, st: Structure) -> bool:
    """Whether the influence edges are sorted by target (as every builder makes them; worked
    out once, kept with the structure)."""
    return bool(st.extra("edges_sorted", lambda: _edges_sorted(units)))


def _edges_in_range(units: Units) -> np.ndarray:
    n, src, dst = units.n_people, units.edge_src, units.edge_dst
    return np.array(not src.size or (int(src.min()) >= 0 and int(src.max()) < n
                                     and int(dst.min()) >= 0 and int(dst.max()) < n))


def _people_in_range(units: Units) -> np.ndarray:
    # the person ids the kernels index with besides the edges: each person's role (the
    # per-role tables), who holds the contact (the per-holder hours) and account (the
    # kernels go through an account's people by the offsets and read a person's account
    # values by its account: the two must agree, as Units.check requires)
    offsets, n = units.offsets, units.n_people
    role, held = units.role, units.held_by
    return np.array(
        offsets.dtype.kind in "iu" and role.dtype.kind in "iu" and held.dtype.kind in "iu"
        and offsets.size >= 1 and int(offsets[0]) == 0 and int(offsets[-1]) == n
        and bool(np.all(offsets[1:] >= offsets[:-1]))
        and np.array_equal(units.account, np.repeat(np.arange(units.n_accounts), units.sizes))
        and (not n or (int(role.min()) >= 0 and int(role.max()) < len(units.role_names)
                       and int(held.min()) >= 0 and int(held.max()) < len(HOLDERS))))


def compiled(units: Units, st: Structure, kernels: bool | None = None) -> bool:
    """Whether the step and the metrics of these units run compiled
    (kamsim.dmu.step_kernel, metrics_kernel): when :func:`kamsim.jit.wanted` says so (or
    ``kernels``, what the caller's simulation decided once for its run) and the
    kernels can take the units, that is the influence edges sorted by target with both ends
    in range, the people's roles, holders and accounts in range (the kernels index with
    them unchecked; numpy's indexing raises) and the people's values float64, as every
    builder makes them (numpy works some steps of float32 values in float32, the kernels in
    float64). The id checks are worked out once, kept with the structure."""
    # (jit.wanted reads the environment: ~10 µs a call in a period's cold cache, twice a
    # period for a simulation that already knows)
    wanted = jit.wanted(units.n_people) if kernels is None else kernels
    return (wanted and edges_sorted(units, st)
            and bool(st.extra("edges_in_range", lambda: _edges_in_range(units)))
            and bool(st.extra("people_in_range", lambda: _people_in_range(units)))
            and all(a.dtype == np.float64 for a in (units.influence, units.coverage,
                                                     units.attitude, units.months_in_post)))


def span(units: Units, st: Structure, active: np.ndarray | None) -> Span:
    """The stretch from the first to the last active account (everything if ``active`` is None
    or the influence edges are not sorted by target, nothing if no account is active). Influence
    edges must join people of one account, as :meth:`Units.check` requires."""
    na, n, ne = units.n_accounts, units.n_people, units.edge_dst.shape[0]
    if active is None:
        return Span(0, na, 0, n, 0, ne)
    # (argmax of a bool array stops at the first True: cheaper than listing them all)
    active = np.asarray(active, np.bool_)
    a0 = int(active.argmax()) if na else 0
    if not na or not active[a0]:
        return Span(0, 0, 0, 0, 0, 0)
    # (the last active one, as the bytes left once the trailing zeros are stripped: a
    # reversed view's argmax runs value by value, ~5 µs at 10,000 accounts, this ~1 µs)
    a1 = len(active.tobytes().rstrip(b"\0"))
    p0, p1 = int(units.offsets[a0]), int(units.offsets[a1])
    if not edges_sorted(units, st):
        return Span(0, na, 0, n, 0, ne)  # edges not by target: everything
    e0, e1 = units.edge_dst.searchsorted((p0, p1))
    return Span(a0, a1, p0, p1, int(e0), int(e1))


class Scratch:
    """Named full-length buffers, made on first use and reused: per person (``get``), per
    account (``accounts``, ``width`` values an account) and per influence edge (``edges``).

    ``step`` and ``metrics`` share them: per person the float block ``f`` (3 rows, see
    :meth:`rows`; metrics also uses row 1 as int64), ``b0``..``b2`` bool and ``bits``; per edge
    ``e0``; per account ``a3`` (3 an account), metrics' ``red8`` (a byte) and, for small
    portfolios, metrics' ``by_rank``. A name is a slot, not a meaning, so that the buffers
    cost ~28 bytes a person, 8 an edge and 25 an account.
    """

    def __init__(self, n: int, n_accounts: int = 0, n_edges: int = 0) -> None:
        self.n, self.n_accounts, self.n_edges = n, n_accounts, n_edges
        self._arrays: dict[str, np.ndarray] = {}

    def array(self, name: str, size: int, dtype: type = np.float64) -> np.ndarray:
        """The buffer ``name`` of ``size`` values (contents undefined)."""
        buf = self._arrays.get(name)
        if buf is None or buf.dtype != dtype or buf.shape[0] != size:
            buf = self._arrays[name] = np.empty(size, dtype)
        return buf

    def get(self, name: str, sp: Span, dtype: type = np.float64) -> np.ndarray:
        """The person buffer ``name``'s view of the span's people (contents undefined)."""
        return self.array(name, self.n, dtype)[sp.people]

    def rows(self, name: str, k: int, sp: Span, dtype: type = np.float64,
             extra: int = 0) -> np.ndarray:
        """The span's people in the ``k`` rows of the person block ``name`` (k, n + 1), with
        ``extra`` (0 or 1) values more after them (contents undefined). One call hands out
        several buffers (unpack the rows); the spare value at the end of each row is room for
        one value more than the people (a running sum's leading 0, a padding value)."""
        buf = self._arrays.get(name)
        if buf is None or buf.dtype != dtype or buf.shape != (k, self.n + 1):
            buf = self._arrays[name] = np.empty((k, self.n + 1), dtype)
        return buf[:, sp.p0:sp.p1 + extra]

    def accounts(self, name: str, sp: Span, dtype: type = np.float64,
                 width: int = 1) -> np.ndarray:
        """The account buffer ``name``'s view of the span's accounts, ``width`` values each
        (accounts ``a0:a1`` are ``width*a0:width*a1``; contents undefined)."""
        buf = self.array(name, width * self.n_accounts, dtype)
        return buf[width * sp.a0:width * sp.a1]

    def edges(self, name: str, sp: Span, dtype: type = np.float64) -> np.ndarray:
        """The edge buffer ``name``'s view of the edges into the span's people."""
        return self.array(name, self.n_edges, dtype)[sp.edges]

    def whole(self, name: str) -> np.ndarray:
        """The whole buffer ``name`` (made by :meth:`get` or :meth:`accounts` before)."""
        return self._arrays[name]


def scratch(units: Units, lane: int = 0) -> Scratch:
    """The scratch buffers of ``units`` for the thread ``lane`` (:func:`kamsim.lanes.lane`;
    new ones if it has none or its sizes changed). Each lane has its own full-length buffers, so that two threads never
    write into the same one (a block's spare value past a span's people would be the next
    span's first); a lane only touches the part of its stretch, so only those pages are
    ever made resident."""
    lanes = units._scratch
    if not isinstance(lanes, list):
        lanes = units._scratch = []
    while len(lanes) <= lane:
        lanes.append(None)
    s = lanes[lane]
    sizes = (units.n_people, units.n_accounts, int(units.edge_dst.shape[0]))
    if not isinstance(s, Scratch) or (s.n, s.n_accounts, s.n_edges) != sizes:
        s = lanes[lane] = Scratch(*sizes)
    return s


def split(units: Units, st: Structure, sp: Span, parts: int) -> list[Span]:
    """``sp`` cut at account boundaries into up to ``parts`` stretches of about as many people
    each (the edges into a stretch's people are a stretch of the span's edges, as in
    :func:`span`); just ``[sp]`` if ``parts`` < 2, it has fewer than ``LANE_MIN_PEOPLE``
    people or fewer than two accounts (nothing to cut between) or the edges are not sorted by
    target. Every account of ``sp`` is in exactly one part, in order."""
    if (parts < 2 or sp.p1 - sp.p0 < LANE_MIN_PEOPLE or sp.a1 - sp.a0 < 2
            or not edges_sorted(units, st)):
        return [sp]
    targets = sp.p0 + (sp.p1 - sp.p0) * np.arange(1, parts) // parts
    cuts = np.unique(np.clip(units.offsets.searchsorted(targets), sp.a0 + 1, sp.a1 - 1))
    a = [sp.a0, *cuts.tolist(), sp.a1]
    p = units.offsets[a].tolist()
    if len(a) > 2 and sp.e1 > sp.e0:
        e = [sp.e0, *(sp.e0 + units.edge_dst[sp.e0:sp.e1].searchsorted(p[1:-1])).tolist(),
             sp.e1]
    else:
        e = [sp.e0] + [sp.e1] * (len(a) - 1)
    return [Span(a[i], a[i + 1], p[i], p[i + 1], int(e[i]), int(e[i + 1]))
            for i in range(len(a) - 1) if a[i + 1] > a[i]]
