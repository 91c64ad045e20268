"""``kamsim.engine.step._people_of``: the people of some accounts, for per-account sums over
only those accounts that equal (bit for bit) a sum over every person."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from kamsim.engine.step import _people_of


def test_people_of_some_accounts_sum_like_all_people() -> None:
    sizes = np.array([3, 0, 2, 4, 0, 1])  # accounts 1 and 4 have nobody
    offsets = np.r_[0, np.cumsum(sizes)]
    account = np.repeat(np.arange(sizes.size), sizes)
    units = SimpleNamespace(offsets=offsets)
    values = np.random.default_rng(1).random(offsets[-1]) * 1e3
    full = np.bincount(account, weights=values, minlength=sizes.size)
    for chosen in ([0, 2, 5], [1, 3], [4], []):
        accounts = np.array(chosen, dtype=np.int64)
        people, owner = _people_of(units, accounts)  # type: ignore[arg-type]
        assert np.array_equal(account[people], accounts[owner])
        part = np.bincount(owner, weights=values[people], minlength=accounts.size)
        assert np.array_equal(part.astype(np.float64), full[accounts])
