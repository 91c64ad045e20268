"""What ``step`` and ``metrics`` derive from the parts of the units that a run never changes.

Role, influence, holder, offsets and the influence edges stay fixed during a simulation (a
newcomer takes over the post: same role, influence and holder; see :mod:`kamsim.dmu.dynamics`).
So the (account, holder) grouping, group influence sums, incoming edge weights and the
role/influence masks are computed once and kept on the :class:`~kamsim.dmu.arrays.Units`.

The cache is valid while the Units holds the very same structural arrays (checked by
identity, so assigning a new array to a field invalidates it by itself) and its version has
not moved. Whoever writes INTO a structural array in place must call
:meth:`Units.invalidate` afterwards. ``Units.check()`` recomputes the cache and raises if it is
stale. The derived arrays are read-only, so copies may share them.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from operator import attrgetter, is_
from typing import Any

import numpy as np

from kamsim.dmu.arrays import EPS, Units, read_only

__all__ = ["Structure", "structure", "compute_structure", "STRUCTURAL_FIELDS", "KEY_INFLUENCE",
           "SPLIT_EPS"]

#: a person at or above this influence is a key person (assumption)
KEY_INFLUENCE = 0.5
#: tiny weight added to influence when splitting hours, so zero-influence people still get an
#: equal share when everyone in their group has influence 0
SPLIT_EPS = 1e-9
#: the Units fields the structure is derived from (a change to any invalidates the cache)
STRUCTURAL_FIELDS = ("offsets", "account", "role", "influence", "held_by", "edge_src",
                     "edge_dst", "edge_weight", "edge_sign")


@dataclass(frozen=True, eq=False)
class Structure:
    """Arrays derived from the structural fields of one Units (all read-only)."""

    token: tuple[Any, ...]  # (version, role_names, *structural arrays) it was computed from
    nonempty: np.ndarray  # int64 indices of the accounts with people
    starts: np.ndarray  # offsets of those accounts (for reduceat)
    sum_influence: np.ndarray  # per account
    group_key: np.ndarray  # per person: 3 * account + holder
    split_weight: np.ndarray  # per person: influence + SPLIT_EPS
    group_weight: np.ndarray  # per (account, holder): sum of split_weight
    group_has: np.ndarray  # bool (n_accounts, 3): the account has people of that holder
    all_split_weight: np.ndarray  # per account: sum of split_weight
    has_in: np.ndarray  # bool per person: the influence edges coming in weigh more than 0
    signed_weight: np.ndarray  # per edge: weight * sign
    key_person: np.ndarray  # bool per person: influence >= KEY_INFLUENCE
    is_economic_buyer: np.ndarray  # bool per person
    is_champion_role: np.ndarray  # bool per person
    # per person, the total weight of the influence edges coming in, 1 where that is 0: the
    # quotient there is 0/1 = 0 (a person without in-edges is not pulled), and a plain
    # division is much cheaper than a masked one. (The plain total is not kept: nothing in a
    # run reads it, and at 1M accounts it is 48 MB of the peak)
    in_weight_or_1: np.ndarray
    sum_influence_or_1: np.ndarray  # per account, the same for sum_influence
    no_influence: np.ndarray  # int64 indices of the accounts with sum_influence <= 0
    # arrays (and other fixed values) that also depend on a parameter (a threshold, a dt),
    # keyed by it
    extras: dict[Hashable, Any] = field(default_factory=dict)

    def valid_for(self, units: Units) -> bool:
        """Whether this was computed from exactly ``units``' current structural arrays."""
        return _same(self.token, _token(units))

    def extra(self, key: Hashable, make: Callable[[], np.ndarray]) -> np.ndarray:
        """The array under ``key``, made (and kept, read-only) on first use."""
        got = self.extras.get(key)
        if got is None:
            got = self.extras[key] = read_only(np.asarray(make()))
        return got

    def value(self, key: Hashable, make: Callable[[], Any]) -> Any:
        """The object under ``key`` (made and kept on first use; it must not be changed)."""
        got = self.extras.get(key)
        if got is None:
            got = self.extras[key] = make()
        return got

    def rebound(self, units: Units) -> Structure:
        """The same derived arrays for ``units``, a copy whose structure equals the original's."""
        return replace(self, token=_token(units))


_structural = attrgetter(*STRUCTURAL_FIELDS)


def _token(units: Units) -> tuple[Any, ...]:
    return (units._version, tuple(units.role_names), *_structural(units))


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    # arrays by identity (an equality test would cost as much as recomputing); this runs a few
    # times a period, hence C-level helpers (attrgetter, map) rather than generator loops
    return (len(a) == len(b) and a[0] == b[0] and a[1] == b[1]
            and all(map(is_, a[2:], b[2:])))


def compute_structure(units: Units) -> Structure:
    """The structure of ``units``, computed afresh (no cache read or written)."""
    na, n, acc = units.n_accounts, units.n_people, units.account
    nonempty = np.flatnonzero(units.sizes > 0)
    split_weight = units.influence + SPLIT_EPS
    group_key = np.multiply(acc, 3)  # (account, holder) group, holders in HOLDERS order
    group_key += units.held_by
    group_weight = np.bincount(group_key, weights=split_weight, minlength=3 * na)
    in_weight = np.bincount(units.edge_dst, weights=units.edge_weight, minlength=n)
    has_in = in_weight > 0
    sum_influence = np.bincount(acc, weights=units.influence, minlength=na)
    eb, ch = units.role_index("economic_buyer"), units.role_index("champion")
    arrays = {
        "nonempty": nonempty,
        "starts": units.offsets[:-1][nonempty],
        "sum_influence": sum_influence,
        "group_key": group_key,
        "split_weight": split_weight,
        "group_weight": group_weight,
        # a group has people iff its weight is positive (every weight is at least SPLIT_EPS)
        "group_has": (group_weight > 0).reshape(na, 3),
        "all_split_weight": np.bincount(acc, weights=split_weight, minlength=na),
        "has_in": has_in,
        # the int8 sign is cast by the multiplication itself (no float copy of it first)
        "signed_weight": np.multiply(units.edge_weight, units.edge_sign),
        "key_person": units.influence >= KEY_INFLUENCE - EPS,
        # role -1 (absent from the rules) matches nobody
        "is_economic_buyer": units.role == eb,
        "is_champion_role": units.role == ch,
        "in_weight_or_1": np.where(has_in, in_weight, 1.0),
        "sum_influence_or_1": np.where(sum_influence > 0, sum_influence, 1.0),
        "no_influence": np.flatnonzero(~(sum_influence > 0)),
    }
    frozen: dict[str, Any] = {k: read_only(v) for k, v in arrays.items()}
    return Structure(token=_token(units), **frozen)


def structure(units: Units) -> Structure:
    """The structure of ``units``: the cached one while it is valid, else computed and cached."""
    cached = units._cache
    if isinstance(cached, Structure) and cached.valid_for(units):
        return cached
    fresh = compute_structure(units)
    units._cache = fresh
    return fresh
