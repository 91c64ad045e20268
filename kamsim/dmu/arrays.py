"""The flat array form of all decision units of a portfolio, and the value encodings.

Encodings (docs/dmu.md, "Encodings"):

* attitude: float in [-1, 1]; enemy = -1, non_supporter = -0.5, neutral = 0, supporter = 0.5,
  mentor = 1. It is continuous during a simulation; its label is the nearest level, "almost
  <level>" when short of a level off neutral (see :func:`attitude_label`).
* coverage: float in [0, 1]; none = 0, brief = 1/3, multiple = 2/3, in_depth = 1 (label: the
  nearest level, "almost <level>" when short of it).
* role: int8 index into ``Units.role_names`` (the order of ``StakeholderRules.roles``).
* held_by: int8 index into :data:`HOLDERS` (who on our side holds the contact).

People of account ``a`` are ``offsets[a]:offsets[a+1]``. Influence edges are kept sorted by
(target, source), so they form a CSR by target person (see :meth:`Units.edge_indptr`); reports_to
edges are sorted by (person, boss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from kamsim.spec.models import ATTITUDES, COVERAGE_LEVELS, HOLDERS

__all__ = [
    "ATTITUDE_VALUES", "COVERAGE_VALUES", "HOLDERS", "EPS", "Units", "attitude_value",
    "coverage_value", "attitude_label", "coverage_label", "holder_index", "empty_units",
    "concat_units", "select_accounts", "per_account_sum", "people_of", "PersonIds",
    "read_only",
]

#: value of each attitude label, in the order of ``ATTITUDES``
ATTITUDE_VALUES = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
#: value of each coverage label, in the order of ``COVERAGE_LEVELS``
COVERAGE_VALUES = np.array([0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0])
#: tolerance of every ">= level" comparison (levels like 1/3 are not exact in binary)
EPS = 1e-9

_ATT = dict(zip(ATTITUDES, ATTITUDE_VALUES.tolist(), strict=True))
_COV = dict(zip(COVERAGE_LEVELS, COVERAGE_VALUES.tolist(), strict=True))


def read_only(a: np.ndarray) -> np.ndarray:
    """``a``, made read-only in place: what every replication shares (the prepared start,
    the structure derived from it) must fail loudly if one of them writes into it, not
    change the next one's start. Pass ``a.view()`` to keep ``a`` itself writeable."""
    a.flags.writeable = False
    return a


def attitude_value(label: str) -> float:
    """The number of an attitude label (KeyError for an unknown label)."""
    return _ATT[label]


def coverage_value(label: str) -> float:
    """The number of a coverage label (KeyError for an unknown label)."""
    return _COV[label]


def _label(values: np.ndarray | float, levels: np.ndarray, names: Sequence[str],
           base: float) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    idx = np.abs(v[..., None] - levels).argmin(axis=-1)  # ties go to the lower level
    level = levels[idx]
    # short of a level away from ``base``: what kamsim.dmu.metrics would not count as it
    short = ((level > base) & (v < level - EPS)) | ((level < base) & (v > level + EPS))
    out = np.asarray(names, dtype=object)[idx]
    if short.any():
        almost = np.asarray([f"almost {n}" for n in names], dtype=object)[idx]
        out = np.where(short, almost, out)
    return np.asarray(out, dtype=object)  # (a scalar's is 0-d, not a str)


def attitude_label(values: np.ndarray | float) -> np.ndarray:
    """Attitude label of each value (object array; 0-d for a scalar): the nearest level, or
    "almost <level>" when that level is off neutral and the value falls short of it, so that
    no label claims a level the metrics do not count (a "supporter" champion is a champion,
    an "almost supporter" is not; docs/dmu.md, "Encodings")."""
    return _label(values, ATTITUDE_VALUES, ATTITUDES, 0.0)


def coverage_label(values: np.ndarray | float) -> np.ndarray:
    """Coverage label of each value (object array; 0-d for a scalar): the nearest level, or
    "almost <level>" when the value falls short of it (0.31 is "almost brief": not a covered
    economic buyer, not a thread)."""
    return _label(values, COVERAGE_VALUES, COVERAGE_LEVELS, 0.0)


def holder_index(name: str) -> int:
    """Index of a holder name in :data:`HOLDERS` (ValueError if unknown)."""
    return HOLDERS.index(name)


class PersonIds:
    """The person ids of Units, stored compactly: id ``p`` is ``prefixes[pcode[p]] +
    suffixes[scode[p]]`` (a generated person is account id + ``"-role-k"``, an imported one
    has prefix ``""`` and its own id as suffix). 8.5M ids as Python strings were ~630 MB at
    1M accounts; the codes are 8 bytes a person. Read-only; an id is built when asked for.

    ``ids[i]`` is a ``str``; ``ids[slice or index array]`` is a PersonIds; iterating yields
    strs; ``np.asarray(ids)`` is an object array of the strs.
    """

    __slots__ = ("prefixes", "pcode", "suffixes", "scode")

    def __init__(self, prefixes: np.ndarray, pcode: np.ndarray, suffixes: np.ndarray,
                 scode: np.ndarray):
        self.prefixes, self.suffixes = prefixes, suffixes
        self.pcode = np.asarray(pcode, np.int32)
        self.scode = np.asarray(scode, np.int32)

    @classmethod
    def of(cls, ids: Any) -> PersonIds:
        """PersonIds of the given strings (or the PersonIds itself)."""
        if isinstance(ids, PersonIds):
            return ids
        strs = np.empty(len(ids), object)
        strs[:] = [str(x) for x in ids]
        return cls(np.array([""], object), np.zeros(strs.size, np.int32), strs,
                   np.arange(strs.size, dtype=np.int32))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.pcode.shape)

    @property
    def size(self) -> int:
        return int(self.pcode.size)

    def __len__(self) -> int:
        return int(self.pcode.shape[0])

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, (int, np.integer)):
            return str(self.prefixes[self.pcode[key]]) + str(self.suffixes[self.scode[key]])
        return PersonIds(self.prefixes, self.pcode[key], self.suffixes, self.scode[key])

    def __iter__(self) -> Any:
        pre, suf = self.prefixes, self.suffixes
        for a, b in zip(self.pcode.tolist(), self.scode.tolist(), strict=True):
            yield str(pre[a]) + str(suf[b])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(len(self), object)
        out[:] = list(self)
        return out if dtype is None else out.astype(dtype)

    def __repr__(self) -> str:
        return f"PersonIds({len(self)} ids)"

    def copy(self) -> PersonIds:
        return self  # read-only

    @staticmethod
    def concat(first: Any, second: Any) -> PersonIds:
        """The ids of ``first`` followed by those of ``second``."""
        a, b = PersonIds.of(first), PersonIds.of(second)
        pre = np.concatenate((a.prefixes.astype(object), b.prefixes.astype(object)))
        suf = np.concatenate((a.suffixes.astype(object), b.suffixes.astype(object)))
        return PersonIds(pre, np.concatenate((a.pcode, b.pcode + a.prefixes.size)), suf,
                         np.concatenate((a.scode, b.scode + a.suffixes.size)))


@dataclass
class Units:
    """All decision units of a portfolio, flat: one entry per person, accounts by offsets."""

    role_names: tuple[str, ...]
    offsets: np.ndarray  # int64[n_accounts+1]
    account: np.ndarray  # int64[n_people]
    role: np.ndarray  # int8[n_people]
    influence: np.ndarray  # float64, 0..1
    attitude: np.ndarray  # float64, -1..1
    coverage: np.ndarray  # float64, 0..1
    held_by: np.ndarray  # int8 index into HOLDERS
    seniority: np.ndarray  # int8
    months_in_post: np.ndarray  # float64
    price_focus: np.ndarray  # float64, 0..1
    person_id: PersonIds  # (an array of str is converted)
    edge_src: np.ndarray  # int64, influence edges sorted by (dst, src)
    edge_dst: np.ndarray  # int64
    edge_weight: np.ndarray  # float64, 0..1
    edge_sign: np.ndarray  # int8, +1 support / -1 conflict
    reports_src: np.ndarray  # int64, person
    reports_dst: np.ndarray  # int64, boss
    # what step/metrics derive from the structural arrays (kamsim.dmu.structure), and the
    # version that invalidate() moves; neither is part of the value of the units
    _version: int = field(default=0, init=False, repr=False, compare=False)
    _cache: Any = field(default=None, init=False, repr=False, compare=False)
    # reusable per-person buffers of step/metrics (kamsim.dmu.span); never copied or shared
    _scratch: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.person_id, PersonIds):
            self.person_id = PersonIds.of(self.person_id)

    @property
    def n_accounts(self) -> int:
        return int(self.offsets.shape[0] - 1)

    @property
    def n_people(self) -> int:
        return int(self.account.shape[0])

    @property
    def sizes(self) -> np.ndarray:
        """Number of people of each account (int64[n_accounts])."""
        return np.diff(self.offsets)

    def edge_indptr(self) -> np.ndarray:
        """CSR row pointer by target: in-edges of person p are ``indptr[p]:indptr[p+1]``."""
        counts = np.bincount(self.edge_dst, minlength=self.n_people)
        return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    def role_index(self, name: str) -> int:
        """Index of a role name, or -1 if the rules have no such role."""
        return self.role_names.index(name) if name in self.role_names else -1

    def copy(self) -> Units:
        """A deep copy (every array copied); a valid structure cache is shared, not recomputed
        (its arrays are read-only and describe the copy just as well)."""
        kw: dict[str, Any] = {}
        for f in fields(self):
            if not f.init:
                continue
            v = getattr(self, f.name)
            kw[f.name] = v.copy() if isinstance(v, np.ndarray) else v
        new = Units(**kw)
        cached = self._cache
        if cached is not None and cached.valid_for(self):
            new._cache = cached.rebound(new)
        return new

    def invalidate(self) -> None:
        """Drop the structure cache. Call it after writing INTO role, influence, held_by,
        offsets, account or an influence-edge array in place (assigning a new array to one of
        those fields is noticed without it)."""
        self._version += 1
        self._cache = None

    def check(self) -> None:
        """Raise ValueError if the arrays are inconsistent (lengths, offsets, edge ends)."""
        n, a = self.n_people, self.n_accounts
        if self.offsets[0] != 0 or self.offsets[-1] != n or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must start at 0, rise, and end at n_people")
        for f in ("role", "influence", "attitude", "coverage", "held_by", "seniority",
                  "months_in_post", "price_focus", "person_id"):
            if getattr(self, f).shape != (n,):
                raise ValueError(f"{f} has shape {getattr(self, f).shape}, expected ({n},)")
        if not np.array_equal(self.account, np.repeat(np.arange(a), self.sizes)):
            raise ValueError("account does not match offsets")
        for s, d in ((self.edge_src, self.edge_dst), (self.reports_src, self.reports_dst)):
            if s.shape != d.shape or (s.size and (min(s.min(), d.min()) < 0
                                                  or max(s.max(), d.max()) >= n)):
                raise ValueError("edge ends out of range")
            if s.size and np.any(self.account[s] != self.account[d]):
                raise ValueError("an edge joins people of two accounts")
        if self.edge_weight.shape != self.edge_src.shape or \
                self.edge_sign.shape != self.edge_src.shape:
            raise ValueError("edge_weight / edge_sign do not match edge_src")
        self._check_cache()

    def _check_cache(self) -> None:
        """Raise ValueError if a cached structure differs from one computed afresh (someone
        wrote into a structural array in place without calling invalidate())."""
        from kamsim.dmu.structure import compute_structure

        cached = self._cache
        if cached is None or not cached.valid_for(self):
            return
        fresh = compute_structure(self)
        for f in fields(fresh):
            a, b = getattr(cached, f.name), getattr(fresh, f.name)
            if isinstance(a, np.ndarray) and not np.array_equal(a, b):
                raise ValueError(f"the structure cache is stale ({f.name} differs): call "
                                 "Units.invalidate() after changing a structural array")


def empty_units(role_names: Sequence[str], n_accounts: int = 0) -> Units:
    """Units of ``n_accounts`` accounts with nobody in them."""
    z64, zf, z8 = (np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.int8))
    return Units(
        role_names=tuple(role_names), offsets=np.zeros(n_accounts + 1, np.int64),
        account=z64.copy(), role=z8.copy(), influence=zf.copy(), attitude=zf.copy(),
        coverage=zf.copy(), held_by=z8.copy(), seniority=z8.copy(), months_in_post=zf.copy(),
        price_focus=zf.copy(), person_id=PersonIds.of([]), edge_src=z64.copy(),
        edge_dst=z64.copy(), edge_weight=zf.copy(), edge_sign=z8.copy(),
        reports_src=z64.copy(), reports_dst=z64.copy(),
    )


_PERSON_FIELDS = ("role", "influence", "attitude", "coverage", "held_by", "seniority",
                  "months_in_post", "price_focus")


def sort_edges(src: np.ndarray, dst: np.ndarray, *extra: np.ndarray, by_dst: bool = True,
               dedupe: bool = True) -> tuple[np.ndarray, ...]:
    """Edges sorted by (dst, src) (or (src, dst)); with ``dedupe`` the first of equal pairs is kept.

    "First" means first in the given order, so earlier rules win over later duplicates.
    """
    src = np.asarray(src, np.int64)
    dst = np.asarray(dst, np.int64)
    if src.size == 0:
        return (src, dst, *extra)
    major, minor = (dst, src) if by_dst else (src, dst)
    order = np.lexsort((np.arange(src.size), minor, major))  # stable: ties keep given order
    src, dst = src[order], dst[order]
    extra = tuple(e[order] for e in extra)
    if dedupe:
        keep = np.ones(src.size, bool)
        keep[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        src, dst = src[keep], dst[keep]
        extra = tuple(e[keep] for e in extra)
    return (src, dst, *extra)


def concat_units(first: Units, second: Units) -> Units:
    """The accounts of ``first`` followed by those of ``second`` (indices of ``second`` shifted)."""
    if tuple(first.role_names) != tuple(second.role_names):
        raise ValueError(f"role names differ: {first.role_names} vs {second.role_names}")
    n0, a0 = first.n_people, first.n_accounts
    cat = np.concatenate
    kw: dict[str, Any] = {f: cat((getattr(first, f), getattr(second, f)))
                          for f in _PERSON_FIELDS}
    kw["person_id"] = PersonIds.concat(first.person_id, second.person_id)
    return Units(
        role_names=first.role_names,
        offsets=cat((first.offsets, second.offsets[1:] + n0)),
        account=cat((first.account, second.account + a0)),
        edge_src=cat((first.edge_src, second.edge_src + n0)),
        edge_dst=cat((first.edge_dst, second.edge_dst + n0)),
        edge_weight=cat((first.edge_weight, second.edge_weight)),
        edge_sign=cat((first.edge_sign, second.edge_sign)),
        reports_src=cat((first.reports_src, second.reports_src + n0)),
        reports_dst=cat((first.reports_dst, second.reports_dst + n0)),
        **kw,
    )


def select_accounts(units: Units, order: np.ndarray) -> Units:
    """The accounts ``order`` (indices, each at most once) as a new Units, in that order.

    Edges whose ends are both kept are kept; edge order is restored (by target for influence).
    """
    order = np.asarray(order, np.int64)
    sizes = units.sizes[order]
    new_off = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    total = int(new_off[-1])
    old = np.repeat(units.offsets[:-1][order] - new_off[:-1], sizes) + np.arange(total)
    new_of_old = np.full(units.n_people, -1, np.int64)
    new_of_old[old] = np.arange(total)
    kw = {f: getattr(units, f)[old] for f in (*_PERSON_FIELDS, "person_id")}

    def remap(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, d = new_of_old[src], new_of_old[dst]
        keep = (s >= 0) & (d >= 0)
        return s[keep], d[keep], keep

    es, ed, keep = remap(units.edge_src, units.edge_dst)
    es, ed, ew, eg = sort_edges(es, ed, units.edge_weight[keep], units.edge_sign[keep])
    rs, rd, _ = remap(units.reports_src, units.reports_dst)
    rs, rd = sort_edges(rs, rd, by_dst=False)
    return Units(
        role_names=units.role_names, offsets=new_off,
        account=np.repeat(np.arange(order.size, dtype=np.int64), sizes),
        edge_src=es, edge_dst=ed, edge_weight=ew, edge_sign=eg, reports_src=rs, reports_dst=rd,
        **kw,
    )


def per_account_sum(units: Units, values: np.ndarray) -> np.ndarray:
    """Sum of a per-person array over each account (float64[n_accounts]; 0 for empty units)."""
    return np.bincount(units.account, weights=values, minlength=units.n_accounts)


def people_of(units: Units, accounts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The people of ``accounts`` (int64 indices; people are grouped by account in account
    order, see ``Units.offsets``, so ascending accounts give ascending people) and the number
    of people of each account."""
    # (array methods rather than the np.* wrappers: this is called each period for a few
    # accounts, where the wrappers cost more than the work)
    lo = units.offsets[accounts]
    sizes = units.offsets[accounts + 1] - lo
    starts = sizes.cumsum()
    total = int(starts[-1]) if starts.size else 0
    starts -= sizes
    people = (lo - starts).repeat(sizes)
    people += np.arange(total)
    return people, sizes
