"""Numeric kernels behind the rule language's operators and functions.

Every kernel works on numpy arrays (or 0-d arrays / numpy scalars, which broadcast) and is
total: it never raises on a value and, when called under ``np.errstate(all="ignore")`` as
:class:`kamsim.rules.expr.Expr` does, never warns. The exact definitions (division by zero,
logs of non-positive numbers, ties, NaN and empty portfolios) are documented in
``docs/rules.md`` and mirrored, independently, by :mod:`kamsim.rules.reference`.

Portfolio helpers take the ``mask`` of active accounts. Their *population* is the rows that
are in the mask and whose argument is not NaN. Per-row helpers give 0.0 on rows outside the
mask and NaN on masked-in rows whose argument is NaN; scalar helpers give the same value on
every row.
"""

from __future__ import annotations

import ast
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import reduce
from typing import Any, Literal, TypeVar

import numpy as np
from numpy.typing import NDArray

from kamsim import jit, lanes
from kamsim.blocks import cache_block

__all__ = [
    "FieldType",
    "FIELD_TYPES",
    "infer_length",
    "column",
    "Function",
    "FUNCTIONS",
    "FUNCTION_NAMES",
    "ARITHMETIC",
    "COMPARISONS",
    "BAD_OPERATORS",
    "FORBIDDEN_NODES",
    "EXP_MAX",
    "safe_divide",
    "safe_mod",
    "power",
    "safe_log",
    "safe_exp",
    "clip",
    "rank_pct",
    "cum_share",
    "quantile",
    "zscore",
    "portfolio_mean",
    "portfolio_sum",
    "keep_order",
    "rank_pct_moved",
    "cum_share_moved",
    "zscore_moved",
    "quantile_moved",
    "mean_moved",
    "sum_moved",
    "shared_sorts",
    "compiled_sorts",
    "side_by_side",
    "forget",
]

FieldType = Literal["number", "bool", "str"]
FIELD_TYPES: tuple[FieldType, ...] = ("number", "bool", "str")

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: ``exp`` clips its argument here so that the result stays finite (e^700 ~ 1e304).
EXP_MAX = 700.0


def _float(x: Any) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def safe_divide(a: Any, b: Any) -> FloatArray:
    """``a / b`` elementwise, with ``x / 0 == 0.0`` (also for NaN or infinite ``x``)."""
    a, b = np.broadcast_arrays(_float(a), _float(b))
    out = np.zeros(a.shape)
    np.divide(a, b, out=out, where=b != 0)
    return out


def safe_mod(a: Any, b: Any) -> FloatArray:
    """Python-style floor modulo (sign of ``b``) elementwise, with ``x % 0 == 0.0``."""
    a, b = np.broadcast_arrays(_float(a), _float(b))
    out = np.zeros(a.shape)
    np.remainder(a, b, out=out, where=b != 0)
    return out


def power(a: Any, b: Any) -> FloatArray:
    """IEEE ``pow``: ``0 ** -1 == inf``, ``(-8) ** 0.5`` is NaN, overflow gives +-inf."""
    return np.power(_float(a), _float(b))


def safe_log(x: Any) -> FloatArray:
    """Natural log for ``x > 0``; 0.0 for ``x <= 0`` (incl. -inf); NaN stays NaN."""
    x = _float(x)
    out = np.where(np.isnan(x), np.nan, 0.0)
    np.log(x, out=out, where=x > 0)
    return out


def safe_exp(x: Any) -> FloatArray:
    """``e ** min(x, 700)``, so the result is finite for every finite or +inf ``x``."""
    return np.exp(np.minimum(_float(x), EXP_MAX))


def clip(x: Any, lo: Any, hi: Any) -> FloatArray:
    """``min(max(x, lo), hi)``: if ``lo > hi`` the result is ``hi``; NaN in any argument -> NaN."""
    return np.minimum(np.maximum(_float(x), _float(lo)), _float(hi))


def _population(x: Any, n: int, mask: BoolArray | None) -> tuple[FloatArray, BoolArray]:
    """``x`` as a float array of length ``n`` (not to be written to) and the rows that form
    the population."""
    if type(x) is np.ndarray and x.dtype == np.float64 and x.shape == (n,):
        values = x  # (what broadcast_to gives, without its cost: ~3 us a call)
    else:
        values = np.broadcast_to(_float(x), (n,))
    selected = ~np.isnan(values)
    if mask is not None:
        selected &= mask
    return values, selected


def _per_row_result(values: FloatArray, n: int, mask: BoolArray | None) -> FloatArray:
    """0.0 outside the mask, NaN where the argument is NaN inside it (to be filled)."""
    out = np.zeros(n)
    missing = np.isnan(values)
    if mask is not None:
        missing &= mask
    out[missing] = np.nan
    return out


# --- sorting a population, shared between helpers --------------------------------------

_SIGN_BIT = np.uint64(1 << 63)
#: Above this many rows the row index does not fit beside the value's key (see _ascending).
_PACKED_MAX_ROWS = 1 << 32

_SHARED: ContextVar[dict[tuple[Any, ...], tuple[Any, ...]] | None] = ContextVar(
    "kamsim_shared_sorts", default=None)
#: Guards the creation of a block's buffers (two lanes may ask for the same one at once).
_BLOCK_LOCK = threading.Lock()

#: side_by_side runs two threads only from this many rows up: below, starting a thread costs
#: more than it saves.
_SIDE_BY_SIDE_MIN_ROWS = 100_000

_T = TypeVar("_T")
_R = TypeVar("_R")


@contextmanager
def shared_sorts() -> Iterator[None]:
    """Within this block a portfolio helper given the same array object and mask object again
    reuses its sort (e.g. ``rank_pct(score)`` in two rows of a decision table), and so does a
    helper given the array ``rank_pct`` returned (its order is the same); ``rank_pct`` and
    ``cum_share`` called again that way return the very array they returned the first time.

    Neither those arrays nor the helpers' results may be changed in place until the block
    ends. Nested blocks share the outermost block's sorts.
    """
    with cache_block(_SHARED):
        yield


def _block_array(kind: str, m: int) -> NDArray[np.uint64]:
    """A uint64[m] kept for the shared_sorts block (fresh outside one): ``"row numbers"`` is
    ``arange(m)`` and ``"distinct ranks"`` the bits of the float64 ``arange(1, m + 1) / m``,
    both read-only; any other kind (``"scratch"``, ``"spare keys"``, ...) is overwritten by
    every sort (one per side_by_side lane).
    A fresh array of a million rows costs more in page faults than the arithmetic done on
    it."""
    shared = _SHARED.get()
    if shared is None:
        return _new_block_array(kind, m)
    # the read-only arrays serve every lane; each lane (side_by_side thread) overwrites its
    # own scratch
    key = (kind, m) if kind in ("row numbers", "distinct ranks") else (kind, m, lanes.lane())
    with _BLOCK_LOCK:
        hit = shared.get(key)
        if hit is None:
            hit = shared[key] = (_new_block_array(kind, m),)
    return hit[0]


def _new_block_array(kind: str, m: int) -> NDArray[np.uint64]:
    if kind == "row numbers":
        return np.arange(m, dtype=np.uint64)
    if kind == "distinct ranks":
        # the integers 1..m are exact as doubles: the same quotients as arange(1.0, m + 1) / m
        ranks: FloatArray = np.arange(1, m + 1, dtype=np.uint64) / float(max(m, 1))
        return ranks.view(np.uint64)
    return np.empty(m, np.uint64)


def side_by_side(fn: Callable[[_T], _R], items: Sequence[_T], rows: int, threads: int = 2
                 ) -> Iterator[_R]:
    """:func:`kamsim.lanes.side_by_side` on up to ``threads`` (at most two) threads when the
    portfolio has ``rows`` rows or more (below, starting a thread costs more than it saves).
    ``threads`` is the replication's ``EngineOptions.threads``: 1 in a worker process, whose
    other core is busy with another worker's replication."""
    return lanes.side_by_side(fn, items, min(2, threads) if rows >= _SIDE_BY_SIDE_MIN_ROWS
                              else 1)


def forget(x: Any, n: int, mask: BoolArray | None) -> None:
    """Inside shared_sorts: drop the sort and the results the block remembers for this very
    ``x`` and mask, and the sort of the rank_pct it gave, so that their memory serves the
    next arrays (a later helper on ``x`` sorts afresh). Outside a block: nothing to do."""
    shared = _SHARED.get()
    if shared is None:
        return
    # an entry holds its array and mask alive, so an entry under these ids is for these
    rank = shared.pop(("rank_pct", id(x), id(mask), n), None)
    if rank is not None:
        shared.pop(("sorted", id(rank[2]), id(mask)), None)
    shared.pop(("cum_share", id(x), id(mask), n), None)
    shared.pop(("sorted", id(x), id(mask)), None)


def _sort_keys(population: FloatArray, keys: NDArray[np.uint64] | None = None,
               spare: NDArray[np.uint64] | None = None) -> NDArray[np.uint64]:
    """Unsigned keys in the order of the (NaN-free) values, -0.0 and 0.0 one key; into
    ``keys`` if given, with ``spare`` (same size) overwritten on the way."""
    keys = np.empty(population.shape, np.uint64) if keys is None else keys
    spare = np.empty(population.shape, np.uint64) if spare is None else spare
    np.add(population, 0.0, out=keys.view(np.float64))  # + 0.0 turns -0.0 into 0.0
    # negative: flip every bit; positive: set the sign bit
    np.right_shift(keys.view(np.int64), 63, out=spare.view(np.int64))
    spare |= _SIGN_BIT
    keys ^= spare
    return keys


def _ties(ascending: FloatArray) -> NDArray[np.intp] | None:
    """Positions p of a sorted array with ``ascending[p] == ascending[p + 1]``, or None."""
    same = np.flatnonzero(ascending[1:] == ascending[:-1])
    return same if same.size else None


def _ascending(population: FloatArray) -> tuple[NDArray[np.intp], NDArray[np.intp] | None]:
    """The permutation that sorts ``population`` (no NaN) ascending, equal values by index,
    and the positions along it whose value equals the next one (None if all differ).

    One sort of the value keys with the index packed into their low bits, cheaper than an
    argsort. Keys that differ only in those low bits clash; the few clashing runs are then
    put in order by their full keys. Equal values can only be found among them.
    """
    m = population.size
    if _compiled(m):
        return _ascending_compiled(population)
    if m > _PACKED_MAX_ROWS:
        order = np.argsort(population, kind="stable")
        return order, _ties(population[order])
    bits = np.uint64(max(1, (m - 1).bit_length()))
    low = np.uint64((1 << int(bits)) - 1)
    order_bits = np.empty(m, np.uint64)  # the one new array: it becomes the order
    packed = _sort_keys(population, _block_array("scratch", m), order_bits)
    packed &= ~low
    packed |= _block_array("row numbers", m)
    packed.sort()
    np.bitwise_and(packed, low, out=order_bits)
    order = order_bits.view(np.intp)
    packed >>= bits
    clash = packed[1:] == packed[:-1]
    if not clash.any():
        return order, None
    runs = np.zeros(m, dtype=bool)
    runs[1:] = clash
    runs[:-1] |= clash
    at = np.flatnonzero(runs)
    if at.size > m // 8:  # many equal values: one stable sort is cheaper
        order = np.argsort(_sort_keys(population), kind="stable")
        return order, _ties(population[order])
    # lexsort is stable: equal keys keep their index order
    sub = order[at]
    sub = sub[np.lexsort((_sort_keys(population[sub]), packed[at]))]
    order[at] = sub
    value = population[sub]
    same = (value[1:] == value[:-1]) & (at[1:] == at[:-1] + 1)
    return order, (at[:-1][same] if same.any() else None)


#: whether the sorts run in the compiled kernel (see compiled_sorts)
_COMPILED: ContextVar[bool] = ContextVar("kamsim_compiled_sorts", default=False)


@contextmanager
def compiled_sorts(on: bool = True) -> Iterator[None]:
    """Within this block (``on``) the portfolio helpers sort in the compiled kernel of
    :mod:`kamsim.rules.sort_kernel`: the same orders and ties, faster. The engine's
    re-tiering asks for it when its period runs the kernels (``kamsim.jit.wanted``), so
    numba is already loaded; a tiering on its own (a first tiering, ``kamsim tier``) sorts
    in numpy and does not pay numba's start (~0.5 s) for a dozen sorts. The side_by_side
    lanes run in a copy of the caller's context, so they sort alike."""
    token = _COMPILED.set(on)
    try:
        yield
    finally:
        _COMPILED.reset(token)


def _compiled(rows: int) -> bool:
    """Whether a sort of ``rows`` values runs in the compiled kernel: inside
    ``compiled_sorts()``, if numba is there."""
    return rows > 1 and _COMPILED.get() and jit.available()


def _sorted_rows(values: FloatArray, selected: BoolArray | None
                 ) -> tuple[NDArray[np.intp], NDArray[np.intp] | None]:
    """The rows of the population ``values[selected]`` (every row if ``selected`` is None;
    no NaN among them) in ascending order of value, equal values by row, and the positions
    of its ties: :func:`_ascending` of the population, taken back to rows. Compiled
    (:mod:`kamsim.rules.sort_kernel`), the packed sort of :func:`_ascending` reads the keys
    straight from the selected rows with the row (not the place in the population) packed
    in, and numpy sorts them (~3.6 ms a million keys here, numpy's AVX-512 sort); nothing is
    gathered before or after: ~7 ms where gathering the population, the compiled radix
    sort of key and place, and gathering the rows took ~15."""
    n = values.shape[0]
    everyone = selected is None or bool(selected.all())
    if _compiled(n) and n <= _PACKED_MAX_ROWS:
        from kamsim.rules.sort_kernel import packed_keys, rows_of_packed

        bits = values.view(np.int64)
        shift = max(1, (n - 1).bit_length())
        packed = _block_array("scratch", n).view(np.int64)
        m = packed_keys(bits, _EVERY if everyone else selected, everyone, shift, packed)
        packed = packed[:m]
        packed.view(np.uint64).sort()  # (numpy's sort: every key differs)
        rows = np.empty(m, np.intp)  # (returned)
        ties = _block_array("spare order", m).view(np.intp)
        t = rows_of_packed(packed, shift, bits, rows, ties)
        if t >= 0:
            return rows, (ties[:t].copy() if t else None)
    if everyone:
        return _ascending(values)
    assert selected is not None
    order, found = _ascending(values[selected])
    return np.flatnonzero(selected)[order], found


#: (the ``selected`` packed_keys is given for every row: it reads none of it)
_EVERY = np.ones(0, dtype=bool)
#: (the runs put_ranks is given for a population without ties: it reads none of them)
_NO_ROWS = np.zeros(0, dtype=np.intp)
#: (the runs kept_rows is given for an order without ties: it reads none of them)
_NO_RUNS = np.zeros(0, dtype=np.int32)


def _ascending_compiled(population: FloatArray
                        ) -> tuple[NDArray[np.intp], NDArray[np.intp] | None]:
    """:func:`_ascending` by the compiled radix sort: the same order (the stable one) and
    the same ties (equal keys are equal values, -0.0 and 0.0 included)."""
    from kamsim.rules.sort_kernel import ascending

    m = population.size
    # (the keys and the kernel's spare room are the block's scratch, one set a lane: a
    # million-row portfolio sorts a dozen arrays into the same pages)
    spare_keys = _block_array("spare keys", m)
    keys = _sort_keys(population, _block_array("scratch", m), spare_keys).view(np.int64)
    order = np.empty(m, np.intp)  # the one new array: it is returned
    ascending(keys, order, spare_keys.view(np.int64), _block_array("spare order", m).view(np.intp))
    same = np.flatnonzero(keys[1:] == keys[:-1])
    return order, (same if same.size else None)


class _SortedPopulation:
    """A portfolio helper's population (``values`` on the ``selected`` rows) sorted once.

    ``rows`` are the selected row indices by ascending value, equal values by row index;
    ``run_start``/``run_end`` the runs of equal values along ``rows``, or None if every value
    is distinct.
    """

    def __init__(self, values: FloatArray, selected: BoolArray, rows: NDArray[np.intp],
                 ties: NDArray[np.intp] | None) -> None:
        self.values = values
        self.selected = selected
        self.rows = rows
        self.size = rows.size
        self.run_start: NDArray[np.intp] | None = None
        self.run_end: NDArray[np.intp] | None = None
        self._ascending: FloatArray | None = None
        self._descending: tuple[NDArray[np.intp], FloatArray] | None = None
        if ties is not None:
            new_run = np.ones(self.size, dtype=bool)
            new_run[ties + 1] = False
            self.run_start = np.flatnonzero(new_run)
            self.run_end = np.r_[self.run_start[1:], self.size]

    @classmethod
    def sort(cls, values: FloatArray, selected: BoolArray) -> _SortedPopulation:
        kept = _kept_order(values, selected)
        if kept is not None:
            return cls(values, selected, *kept)
        return cls(values, selected, *_sorted_rows(values, selected))

    def same_order(self, values: FloatArray) -> _SortedPopulation:
        """This sort for other ``values`` on the same rows, in the same order, equal where
        these are equal (the average ranks of these)."""
        twin = _SortedPopulation(values, self.selected, self.rows, None)
        twin.run_start, twin.run_end = self.run_start, self.run_end
        return twin

    def ascending(self) -> FloatArray:
        """The population's values in ascending order (kept: the moved helpers of both
        hysteresis nudges search the same one)."""
        if self._ascending is None:
            self._ascending = self.values[self.rows]
        return self._ascending

    def average_rank(self) -> FloatArray:
        """The average 1-based rank of each value along ``rows``, divided by the size
        (read-only: without ties it is the same array for every population of this size)."""
        if self.run_start is None or self.run_end is None:
            return _block_array("distinct ranks", self.size).view(np.float64)
        counts = self.run_end - self.run_start
        rank = np.repeat(self.run_start + (counts + 1) / 2.0, counts)
        rank /= max(self.size, 1)
        return rank

    def descending_sums(self) -> tuple[NDArray[np.intp], FloatArray]:
        """:meth:`descending_rows` and the running sum of the values along them (kept:
        cum_share and its moved version, one after the other, read both)."""
        if self._descending is None:
            rows = self.descending_rows()
            self._descending = rows, np.cumsum(self.values[rows])
        return self._descending

    def descending_rows(self) -> NDArray[np.intp]:
        """Selected rows by descending value, equal values by ascending row index."""
        rows = self.rows[::-1]
        if self.run_start is None or self.run_end is None:
            return rows
        # reversing put each run of equal values in descending row order: turn it back
        start = self.size - self.run_end[::-1]
        counts = (self.run_end - self.run_start)[::-1]
        last = np.repeat(2 * start + counts - 1, counts)  # first + last position of the run
        return rows[last - np.arange(self.size)]


# --- sorts kept from one evaluation to the next -------------------------------------------
#
# An array sorted again (the same object: a field that does not change, such as an
# account's loyalty or payment risk, which each re-tiering of a run and each replication of
# a study ranks anew over the accounts in the portfolio then) has the order of all its rows
# kept while it lives. Each later sort checks that the kept order still sorts the array, in
# one pass, and takes the population's rows from it: a stable order (equal values by row)
# is the only one that passes, so the rows and ties are those a sort would give, whatever
# became of the array meanwhile. An array that no longer passes is sorted afresh from then
# on. The first sort of an array only notes it: most arrays are sorted once (a field worked
# out anew for each evaluation, a portfolio tiered once).
#
# The check gathers the array along the order (a million random reads, ~30 ms at 1M
# slots). So an order that passed keeps a copy of the array as it was, with its runs of
# equal values: an array that still holds exactly those bits (compared in one sequential
# pass) passes without the gather, and its ties are read from the runs. An array that holds
# other bits goes through the check as before.


_INT32_MAX = np.iinfo(np.int32).max


class _KeptOrder:
    """What is known of one array sorted before: ``rows``, the order of all its rows
    (int32 up to 2**31 rows; None: not worked out yet, or the array changed since), and
    once that order has been checked, ``values`` (a copy of the array as it sorted) and
    ``run`` (each position's run of equal values along ``rows``, counted from 0; None if
    every value differs)."""

    __slots__ = ("array", "rows", "changed", "values", "run")

    def __init__(self, array: weakref.ref[FloatArray]) -> None:
        self.array = array
        self.rows: NDArray[np.signedinteger[Any]] | None = None
        self.changed = False
        self.values: FloatArray | None = None
        self.run: NDArray[np.signedinteger[Any]] | None = None


#: id of an array sorted before -> what is known of it (dropped with the array)
_KEPT: dict[int, _KeptOrder] = {}


def _forget_kept(key: int, ref: weakref.ref[FloatArray]) -> None:
    entry = _KEPT.get(key)
    if entry is not None and entry.array is ref:
        del _KEPT[key]


def _kept_order(values: FloatArray, selected: BoolArray
                ) -> tuple[NDArray[np.intp], NDArray[np.intp] | None] | None:
    """The rows of the population ``values[selected]`` in ascending order (equal values
    by row) and the positions of its ties, as _SortedPopulation.sort gives them, from the
    order kept for ``values``; None: sort it (see above)."""
    key = id(values)
    entry = _KEPT.get(key)
    if entry is None or entry.array() is not values:
        try:
            ref = weakref.ref(values, lambda ref: _forget_kept(key, ref))
        except TypeError:  # (a view of a kind that takes no weak reference)
            return None
        _KEPT[key] = _KeptOrder(ref)
        return None
    if entry.changed:
        return None
    order = entry.rows
    if order is None:
        # seen again: every row sorted once (no NaN: the population is then any subset)
        if np.isnan(values).any():
            entry.changed = True
            return None
        everyone, ties = _sorted_rows(values, None)
        # (kept in half the memory: 4 MB a million rows)
        entry.rows = everyone.astype(np.int32) if everyone.size <= _INT32_MAX else everyone
        if ties is None:
            # just sorted, every value distinct: the order sorts them (the check below
            # would pass, and find no ties)
            entry.values, entry.run = values.copy(), None
            return _kept_rows(entry, selected)
        order = entry.rows
    elif _same_bits(values, entry.values):
        # not changed since its order was checked (a field that does not change, ranked at
        # each re-tiering): what the check below would find again, without its gathers
        return _kept_rows(entry, selected)
    ordered = values[order]
    rising = ordered[1:] > ordered[:-1]
    distinct = bool(rising.all())
    if not distinct:
        # equal values must come by row, and nothing else may be out of order (NaN fails)
        equal = ordered[1:] == ordered[:-1]
        rising |= equal & (order[1:] > order[:-1])
        if not rising.all():
            entry.changed = True
            entry.rows = entry.values = entry.run = None
            return None
    # the order sorts the array as it is now: remember it so, with its runs of equal values
    # (along a sorted order without NaN, two values are equal if and only if nothing rises
    # between them, so the population's ties are its neighbours in one run)
    entry.values = values.copy()
    entry.run = None
    if not distinct:
        run = np.zeros(order.size, order.dtype)
        np.cumsum(~equal, dtype=order.dtype, out=run[1:])
        entry.run = run
    return _kept_rows(entry, selected)


def keep_order(values: FloatArray) -> None:
    """Work out now the order a later sort of ``values`` keeps (see above): for an array that
    will be ranked again (a run's fields that do not change, which each re-tiering ranks),
    on a core that has time for it now rather than at the first re-tiering, which waited
    for it. The ranks to come are the same either way: each later sort checks the kept
    order as it would have."""
    nothing = np.zeros(values.shape[0], dtype=bool)
    # (the first sight of an array only notes it: then a second one works its order out)
    if _kept_order(values, nothing) is None:
        _kept_order(values, nothing)


def _same_bits(values: FloatArray, kept: FloatArray | None) -> bool:
    """Whether ``values`` holds exactly the bits of ``kept`` (so -0.0 is not 0.0, and a NaN
    only its own bits)."""
    return (kept is not None and kept.shape == values.shape
            and bool(np.array_equal(values.view(np.uint64), kept.view(np.uint64))))


def _kept_rows(entry: _KeptOrder, selected: BoolArray
               ) -> tuple[NDArray[np.intp], NDArray[np.intp] | None]:
    """The population's rows along the kept order and its ties (positions whose value
    equals the next one's), from the kept runs of equal values."""
    order = entry.rows
    assert order is not None
    if _compiled(order.shape[0]):
        from kamsim.rules.sort_kernel import kept_rows

        m = int(np.count_nonzero(selected))
        rows = np.empty(m + 1, np.intp)  # (returned, but for the spare place)
        ties = _block_array("spare order", m + 1).view(np.intp)
        t = kept_rows(order, _NO_RUNS if entry.run is None else entry.run, selected, rows,
                      ties)
        return rows[:m], (ties[:t].copy() if t else None)
    keep = selected[order]
    # (what order[keep] gives, in half the time)
    rows = np.compress(keep, order).astype(np.intp, copy=False)
    if entry.run is None:
        return rows, None
    run = np.compress(keep, entry.run)
    ties = np.flatnonzero(run[1:] == run[:-1])
    return rows, (ties if ties.size else None)


def _sorted_population(x: Any, n: int, mask: BoolArray | None) -> _SortedPopulation:
    """The population of ``x`` sorted, or the sort remembered for this very ``x`` and mask."""
    shared = _SHARED.get()
    key = ("sorted", id(x), id(mask))
    if shared is not None:
        hit = shared.get(key)
        # the entry holds x and mask, so their ids cannot be reused inside the block
        if hit is not None and hit[0] is x and hit[1] is mask:
            return hit[2]
    values, selected = _population(x, n, mask)
    result = _SortedPopulation.sort(values, selected)
    if shared is not None and isinstance(x, np.ndarray):
        shared[key] = (x, mask, result)
    return result


def _remember(result: FloatArray, sort: _SortedPopulation, mask: BoolArray | None) -> None:
    """Inside shared_sorts: ``result`` (a rank_pct) sorts as its argument did."""
    shared = _SHARED.get()
    if shared is not None:
        # NaN where the argument was NaN inside the mask, so the same rows are selected
        shared[("sorted", id(result), id(mask))] = (result, mask, sort.same_order(result))


def _result_of(helper: str, x: Any, n: int, mask: BoolArray | None
               ) -> tuple[FloatArray | None, tuple[Any, ...] | None]:
    """Inside shared_sorts: the result ``helper`` already gave for this very ``x`` and mask
    (None if none), and the key to remember a new one under (None outside a block)."""
    shared = _SHARED.get()
    if shared is None or not isinstance(x, np.ndarray):
        return None, None
    key = (helper, id(x), id(mask), n)
    hit = shared.get(key)
    # the entry holds x and mask, so their ids cannot be reused inside the block
    if hit is not None and hit[0] is x and hit[1] is mask:
        return hit[2], key
    return None, key


def _result_array(pop: _SortedPopulation, n: int, mask: BoolArray | None) -> FloatArray:
    """The array a per-row helper fills on ``pop.rows``: _per_row_result, or uninitialised
    when the population is every row (the helper then writes each row)."""
    if pop.size == n:
        return np.empty(n)
    return _per_row_result(pop.values, n, mask)


def rank_pct(x: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """Percentile rank in (0, 1]: (number of smaller values + (ties incl. itself + 1) / 2) / m.

    This is ``pandas.Series.rank(pct=True, method="average")`` over the population of size m.
    """
    out, key = _result_of("rank_pct", x, n, mask)
    if out is not None:
        return out
    pop = _sorted_population(x, n, mask)
    out = _result_array(pop, n, mask)
    if pop.size and _compiled(pop.size):
        from kamsim.rules.sort_kernel import put_ranks

        put_ranks(pop.rows, _NO_ROWS if pop.run_start is None else pop.run_start,
                  _NO_ROWS if pop.run_end is None else pop.run_end, out)
    elif pop.size:
        out[pop.rows] = pop.average_rank()
    _remember(out, pop, mask)
    if key is not None:
        _SHARED.get()[key] = (x, mask, out)  # type: ignore[index]
    return out


def cum_share(x: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """Cumulative share of the total, largest first, including the account itself.

    Ties are ordered by row index (a stable sort). If the population's total is not
    positive every population row gets 1.0.
    """
    out, key = _result_of("cum_share", x, n, mask)
    if out is not None:
        return out
    pop = _sorted_population(x, n, mask)
    out = _result_array(pop, n, mask)
    if pop.size:
        rows, running = pop.descending_sums()
        total = running[-1]  # the same additions, in the same order: the largest share is 1.0
        out[rows] = running / total if total > 0 else 1.0
    if key is not None:
        _SHARED.get()[key] = (x, mask, out)  # type: ignore[index]
    return out


def quantile(x: Any, q: float, n: int, mask: BoolArray | None) -> np.float64:
    """The q-quantile of the population (numpy's default "linear" method); NaN if empty."""
    values, selected = _population(x, n, mask)
    population = values[selected]
    if not population.size:
        return np.float64(np.nan)
    return np.float64(np.quantile(population, q))


def zscore(x: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """``(x - mean) / std`` with the population std (ddof=0); 0.0 if all values are equal."""
    values, selected = _population(x, n, mask)
    out = _per_row_result(values, n, mask)
    population = values[selected]
    # Test equality rather than std == 0: the mean of equal values may be off by an ulp,
    # which would turn an all-equal portfolio into z-scores of +-1.
    if population.size and population.max() != population.min():
        mean = population.mean()
        std = np.sqrt(np.mean((population - mean) ** 2))
        out[selected] = (population - mean) / std
    return out


def portfolio_mean(x: Any, n: int, mask: BoolArray | None) -> np.float64:
    """Mean over the population; NaN if the population is empty."""
    values, selected = _population(x, n, mask)
    population = values[selected]
    if not population.size:
        return np.float64(np.nan)
    return np.float64(population.mean())


def portfolio_sum(x: Any, n: int, mask: BoolArray | None) -> np.float64:
    """Sum over the population; 0.0 if the population is empty."""
    values, selected = _population(x, n, mask)
    return np.float64(values[selected].sum())


# --- one account moved against the others -------------------------------------------
#
# Re-tiering hysteresis asks, for each account, what a helper would give if only that
# account's value were moved (its score nudged back toward its current tier) and every other
# account kept its own. Moving everyone at once is no test: a rank or a z-score does not
# change when all scores move together. Each ``*_moved(x, y, ...)`` takes the unmoved values
# ``x`` (the population) and the moved ones ``y``, and gives for each row the helper's value
# in the portfolio where that row alone has ``y`` in place of ``x``: the others' values are
# searched or summed once, never recomputed per account. Rows where ``y`` equals ``x``, is
# NaN, or that are outside the population keep the helper's plain value (an account outside
# the population stays outside it).


def _moved_rows(x: Any, y: Any, n: int, mask: BoolArray | None
                ) -> tuple[FloatArray, BoolArray, FloatArray, NDArray[np.intp]] | None:
    """(x's values, its population, y's values, the rows to work out), or None if no row
    is moved (then the helper's plain value is the answer: ``x is y``, a field the moved
    fields do not change, is told before the population is worked out)."""
    if x is y:
        return None
    values, selected = _population(x, n, mask)
    moved_to = np.broadcast_to(_float(y), (n,))
    moved = selected & (moved_to != values)  # (a NaN y compares unequal: left out below)
    moved &= ~np.isnan(moved_to)
    if not moved.any():
        return None
    return values, selected, moved_to, np.flatnonzero(moved)


def _sorted_moved(x: Any, y: Any, n: int, mask: BoolArray | None
                  ) -> tuple[_SortedPopulation, NDArray[np.intp], FloatArray] | None:
    """What the sort-based moved functions work from: the sorted population of ``x``, the
    moved rows in its order and every row's moved value (None: no row is moved)."""
    found = _moved_rows(x, y, n, mask)
    if found is None:
        return None
    _values, _selected, moved_to, rows = found
    pop = _sorted_population(x, n, mask)
    return pop, _in_order(rows, pop, n), moved_to


def _own(pop: _SortedPopulation, rows: NDArray[np.intp]) -> FloatArray:
    """The unmoved values of ``rows`` (in ``pop``'s order): with every row moved, the
    population's own, already in that order."""
    return pop.ascending() if rows is pop.rows else pop.values[rows]


def _in_order(rows: NDArray[np.intp], pop: _SortedPopulation, n: int) -> NDArray[np.intp]:
    """``rows`` in the ascending order of ``pop`` (y is usually a non-decreasing function of
    x, so their moved values then come nearly sorted)."""
    if rows.size == pop.size:
        return pop.rows
    picked = np.zeros(n, dtype=bool)
    picked[rows] = True
    return pop.rows[picked[pop.rows]]


def _count_below(ascending: FloatArray, value: FloatArray) -> NDArray[np.intp]:
    """``np.searchsorted(ascending, value, "left")``: how many of ``ascending`` are below
    each of ``value`` (no NaN in either). When ``value`` is sorted too (the moved rows come
    in the population's order, and a hysteresis nudge keeps it), a stable sort of the two
    merges their runs in one pass, a third of the searches' cost: ``value[j]``, put before
    the values equal to it, then has j of its own and those below it in front of it. Only
    when ``value`` is a fair part of ``ascending`` (a re-tiering's hysteresis moves nearly
    every row): the merge sorts both, so for a few values the searches are far cheaper (2
    values among 1M: 10.8 ms against 15 µs)."""
    if (value.size > 1 and 4 * value.size >= ascending.size
            and bool((value[1:] >= value[:-1]).all())):
        merged = np.argsort(np.concatenate((value, ascending)), kind="stable")
        return np.flatnonzero(merged < value.size) - np.arange(value.size)
    return np.searchsorted(ascending, value, "left")


def rank_pct_moved(x: Any, y: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """rank_pct of each row's ``y`` among the other rows' ``x`` (see above). Inside
    shared_sorts, called again with the same ``x``, ``y`` and mask (``rank_pct(score)`` in
    two rows of a table) it returns the array it gave the first time."""
    shared = _SHARED.get()
    key = ("rank_pct_moved", id(x), id(y), id(mask), n)
    if shared is not None:
        hit = shared.get(key)
        # the entry holds x, y and mask, so their ids cannot be reused inside the block
        if hit is not None and hit[0] is x and hit[1] is y and hit[2] is mask:
            return hit[3]
    plain = rank_pct(x, n, mask)
    moved = _sorted_moved(x, y, n, mask)
    if moved is None:
        return plain
    pop, rows, moved_to = moved
    ascending = pop.ascending()
    out = plain.copy()  # (plain may be the block's shared result)
    if (_compiled(pop.size) and pop.values.flags.c_contiguous
            and moved_to.flags.c_contiguous):
        # the lines below in one pass over the moved rows, each search starting where the
        # one before ended (sort_kernel.ranks_moved: the same counts, the same arithmetic)
        from kamsim.rules.sort_kernel import ranks_moved

        ranks_moved(ascending, rows, pop.values, moved_to, out, rows is pop.rows)
    else:
        value, own = moved_to[rows], _own(pop, rows)
        below = _count_below(ascending, value)
        # the others equal to the moved value (own != value): few, so searched for them only
        equal = np.zeros(rows.size, dtype=np.intp)
        at = np.minimum(below, pop.size - 1)
        tie = np.flatnonzero(ascending[at] == value)
        if tie.size:
            equal[tie] = np.searchsorted(ascending, value[tie], "right") - below[tie]
        below -= own < value  # the account's unmoved value is not among the others
        out[rows] = (below + (equal + 2) / 2.0) / pop.size
    if shared is not None:
        shared[key] = (x, y, mask, out)
    return out


def cum_share_moved(x: Any, y: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """cum_share of each row's ``y`` among the other rows' ``x``: the others larger than
    it, and those equal to it with a lower row index, come first (see above)."""
    plain = cum_share(x, n, mask)
    moved = _sorted_moved(x, y, n, mask)
    if moved is None:
        return plain
    pop, rows, moved_to = moved
    value, own = moved_to[rows], _own(pop, rows)
    m = pop.size
    descending, running = pop.descending_sums()  # (those cum_share just summed)
    ascending = pop.ascending()
    above = m - np.searchsorted(ascending, value, "right")  # values > value, own included
    before = np.where(above > 0, running[np.maximum(above - 1, 0)], 0.0)
    before -= np.where(own > value, own, 0.0)
    equal = m - above - np.searchsorted(ascending, value, "left")
    tied = np.flatnonzero(equal > 0)
    if tied.size:
        # the others equal to the moved value with a lower row index come first: along the
        # descending order each run of equal values is in ascending row order, so a key of
        # (run, row) is sorted and one search counts them
        dvalues = pop.values[descending]
        run = np.cumsum(np.r_[0, dvalues[1:] != dvalues[:-1]]).astype(np.int64)
        key = run * (n + 1) + descending
        start = above[tied]
        first = np.searchsorted(key, run[start] * (n + 1) + rows[tied], "left")
        before[tied] += (first - start) * value[tied]
    total = running[-1] - own + value  # (a moved row is in the population: m >= 1)
    out = plain.copy()
    out[rows] = np.where(total > 0, (before + value) / np.where(total > 0, total, 1.0), 1.0)
    return out


def zscore_moved(x: Any, y: Any, n: int, mask: BoolArray | None) -> FloatArray:
    """zscore of each row's ``y`` in the population of the other rows' ``x`` and it (see
    above): the mean and the spread move with it; 0.0 if the others all equal it."""
    plain = zscore(x, n, mask)
    found = _moved_rows(x, y, n, mask)
    if found is None:
        return plain
    values, selected, moved_to, rows = found
    population = values[selected]
    m = population.size
    value, own = moved_to[rows], values[rows]
    mean = population.mean()
    squares = np.sum((population - mean) ** 2)
    # the sum of squares about the old mean with one value swapped, then about the new mean
    shift = (value - own) / m
    squares = squares - (own - mean) ** 2 + (value - mean) ** 2 - m * shift ** 2
    std = np.sqrt(np.maximum(squares, 0.0) / m)
    z = (value - (mean + shift)) / np.where(std > 0, std, 1.0)
    # all equal once moved: the others (the population without the own value) equal it
    if m > 1:
        low, high = np.partition(population, 1)[:2], np.partition(population, m - 2)[-2:]
        others_min = np.where(own == low[0], low[1], low[0])
        others_max = np.where(own == high[1], high[0], high[1])
        equal = (others_min == value) & (others_max == value)
    else:
        equal = np.ones(rows.size, dtype=bool)
    out = plain.copy()
    out[rows] = np.where(equal | ~(std > 0), 0.0, z)
    return out


def quantile_moved(x: Any, y: Any, q: float, n: int, mask: BoolArray | None) -> Any:
    """The q-quantile of the population with each row's ``x`` replaced by its ``y``, per
    row (see above); the plain quantile (one value) if no row is moved."""
    plain = quantile(x, q, n, mask)
    moved = _sorted_moved(x, y, n, mask)
    if moved is None:
        return plain
    pop, rows, moved_to = moved
    value, own = moved_to[rows], _own(pop, rows)
    ascending = pop.ascending()
    m = pop.size
    # the sorted population without the own value, with the moved value put in at `at`
    gone = np.searchsorted(ascending, own, "left")  # a position holding the own value
    at = np.searchsorted(ascending, value, "left") - (own < value)

    def sorted_at(j: int) -> FloatArray:
        other = np.minimum(np.where(j < at, j, j - 1), m - 2) if m > 1 else np.zeros_like(at)
        other = other + (other >= gone)  # skip the own value's position
        return np.where(j == at, value, ascending[np.clip(other, 0, m - 1)])

    h = (m - 1) * q
    lo = int(np.floor(h))
    hi = min(lo + 1, m - 1)
    t = h - lo
    a, b = sorted_at(lo), sorted_at(hi)
    diff = b - a
    # numpy's interpolation (its _lerp): from the nearer end
    result = b - diff * (1 - t) if t >= 0.5 else a + diff * t
    out = np.full(n, plain)
    out[rows] = result
    return out


def mean_moved(x: Any, y: Any, n: int, mask: BoolArray | None) -> Any:
    """The population's mean with each row's ``x`` replaced by its ``y``, per row."""
    return _total_moved(x, y, n, mask, portfolio_mean(x, n, mask), mean=True)


def sum_moved(x: Any, y: Any, n: int, mask: BoolArray | None) -> Any:
    """The population's sum with each row's ``x`` replaced by its ``y``, per row."""
    return _total_moved(x, y, n, mask, portfolio_sum(x, n, mask), mean=False)


def _total_moved(x: Any, y: Any, n: int, mask: BoolArray | None, plain: Any,
                 mean: bool) -> Any:
    """The population's sum (or mean) with each row's ``x`` replaced by its ``y``; rows
    that do not move keep ``plain``, the population's own."""
    found = _moved_rows(x, y, n, mask)
    if found is None:
        return plain
    values, selected, moved_to, rows = found
    population = values[selected]
    out = np.full(n, plain)
    out[rows] = population.sum() - values[rows] + moved_to[rows]
    if mean:
        out[rows] /= population.size
    return out


# --- the columns the kernels work on ----------------------------------------------------


def infer_length(env: Mapping[str, Any], n: int | None, names: Iterable[str] = ()) -> int:
    """``n`` if given, else the length of the first of ``names`` (or any column) in ``env``."""
    if n is not None:
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        return int(n)
    for name in [*names, *env]:
        if name in env:
            return int(np.shape(env[name])[0]) if np.ndim(env[name]) else 1
    raise ValueError("cannot tell the number of accounts from an empty env: pass n")


def column(env: Mapping[str, Any], name: str, kind: FieldType, n: int) -> np.ndarray:
    """Field ``name`` from ``env`` as a checked 1-D array of length ``n`` in its kind's dtype."""
    if name not in env:
        raise KeyError(f"field {name!r} is missing from the env")
    arr = np.asarray(env[name])
    if arr.shape != (n,):
        raise ValueError(f"field {name!r} has shape {arr.shape}, expected ({n},)")
    if kind == "number":
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"number field {name!r} has dtype {arr.dtype}, expected float or int")
        return arr.astype(np.float64, copy=False)
    if kind == "bool":
        if arr.dtype != np.bool_:
            raise TypeError(f"bool field {name!r} has dtype {arr.dtype}, expected bool")
        return arr
    if arr.dtype.kind not in "UO":
        raise TypeError(f"str field {name!r} has dtype {arr.dtype}, expected str or object")
    return arr.astype(object, copy=False)


# --- the whitelist: the only operators and functions the language has ------------------


@dataclass(frozen=True)
class Function:
    signature: str
    min_args: int
    max_args: int | None
    impl: Callable[..., Any]
    portfolio: bool = False
    #: a portfolio helper's value with one account moved against the others (``*_moved``)
    moved: Callable[..., Any] | None = None


FUNCTIONS: dict[str, Function] = {
    "min": Function("min(a, b, ...)", 2, None, lambda *xs: reduce(np.minimum, xs)),
    "max": Function("max(a, b, ...)", 2, None, lambda *xs: reduce(np.maximum, xs)),
    "abs": Function("abs(x)", 1, 1, np.abs),
    "log": Function("log(x)", 1, 1, safe_log),
    "exp": Function("exp(x)", 1, 1, safe_exp),
    "clip": Function("clip(x, lo, hi)", 3, 3, clip),
    "rank_pct": Function("rank_pct(x)", 1, 1, rank_pct, True, rank_pct_moved),
    "cum_share": Function("cum_share(x)", 1, 1, cum_share, True, cum_share_moved),
    "zscore": Function("zscore(x)", 1, 1, zscore, True, zscore_moved),
    "mean": Function("mean(x)", 1, 1, portfolio_mean, True, mean_moved),
    "sum": Function("sum(x)", 1, 1, portfolio_sum, True, sum_moved),
    "quantile": Function("quantile(x, q)", 2, 2, quantile, True, quantile_moved),
}
FUNCTION_NAMES: frozenset[str] = frozenset(FUNCTIONS) | {"if"}

ARITHMETIC: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", np.add),
    ast.Sub: ("-", np.subtract),
    ast.Mult: ("*", np.multiply),
    ast.Div: ("/", safe_divide),
    ast.Mod: ("%", safe_mod),
    ast.Pow: ("**", power),
}
COMPARISONS: dict[type, tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Lt: ("<", np.less),
    ast.LtE: ("<=", np.less_equal),
    ast.Gt: (">", np.greater),
    ast.GtE: (">=", np.greater_equal),
    ast.Eq: ("==", np.equal),
    ast.NotEq: ("!=", np.not_equal),
}
BAD_OPERATORS = {
    ast.FloorDiv: "'//' is not supported; use '/'",
    ast.BitAnd: "'&' is not supported; use 'and'",
    ast.BitOr: "'|' is not supported; use 'or'",
    ast.BitXor: "'^' is not supported; use '**' for powers",
    ast.LShift: "'<<' is not supported",
    ast.RShift: "'>>' is not supported",
    ast.MatMult: "'@' is not supported",
    ast.Invert: "'~' is not supported; use 'not'",
    ast.Is: "'is' is not supported; use '=='",
    ast.IsNot: "'is not' is not supported; use '!='",
}
FORBIDDEN_NODES = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "indexing ('[...]') is not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.List: "a list is only allowed on the right of 'in' / 'not in'",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.Starred: "starred arguments are not allowed",
    ast.IfExp: "'a if c else b' is not supported; write if(c, a, b)",
    ast.Slice: "slices are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}
