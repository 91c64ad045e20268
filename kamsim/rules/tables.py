"""Decision tables: ordered rows of (condition, output), resolved by a hit policy.

Each row's condition is evaluated once over all accounts (a loop over rows, never over
accounts). See the "Decision tables" section of docs/rules.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from kamsim.rules.expr import Expr, infer_length
from kamsim.rules.functions import shared_sorts

__all__ = ["HitPolicy", "HIT_POLICIES", "Row", "TableHitError", "DecisionTable"]

HitPolicy = Literal["first", "unique", "priority", "collect_sum"]
HIT_POLICIES: tuple[str, ...] = get_args(HitPolicy)

#: How many offending accounts a TableHitError names in its message.
_NAMED_ACCOUNTS = 10


@dataclass(frozen=True)
class Row:
    """One table row: where ``when`` is true the row matches and contributes ``output``."""

    when: Expr
    output: float
    priority: float = 0.0
    label: str = ""


class TableHitError(Exception):
    """A ``unique`` table in which some accounts match more than one row.

    ``rows``: indices of the rows involved; ``accounts``: indices of the accounts that match
    more than one row (all of them; the message names the first 10).
    """

    def __init__(self, rows: list[int], accounts: np.ndarray, labels: Sequence[str] = ()) -> None:
        self.rows = rows
        self.accounts = accounts
        shown = ", ".join(str(int(a)) for a in accounts[:_NAMED_ACCOUNTS])
        more = (
            f" and {len(accounts) - _NAMED_ACCOUNTS} more"
            if len(accounts) > _NAMED_ACCOUNTS
            else ""
        )
        names = ", ".join(
            f"{r} ({labels[r]!r})" if r < len(labels) and labels[r] else str(r) for r in rows
        )
        super().__init__(
            f"hit policy 'unique' but {len(accounts)} account(s) match more than one row "
            f"(rows {names}): accounts {shown}{more}"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (TableHitError, (self.rows, self.accounts))


class DecisionTable:
    """An ordered list of rows, a hit policy and an optional default output."""

    def __init__(self, rows: Sequence[Row], hit_policy: HitPolicy, default: float | None) -> None:
        if hit_policy not in HIT_POLICIES:
            raise ValueError(f"unknown hit policy {hit_policy!r}, expected one of {HIT_POLICIES}")
        for i, row in enumerate(rows):
            if row.when.kind != "bool":
                raise TypeError(
                    f"row {i} condition {row.when.source!r} is a {row.when.kind}, "
                    f"expected a true/false condition"
                )
            if np.isnan(row.priority):
                raise ValueError(f"row {i} has a NaN priority")
        self.rows: tuple[Row, ...] = tuple(rows)
        # (asked for at every evaluation and re-tiering: collected once)
        self._names = frozenset().union(*(row.when.names for row in self.rows))
        self.hit_policy: HitPolicy = hit_policy
        self.default = None if default is None else float(default)

    @property
    def names(self) -> frozenset[str]:
        """The fields any row's condition reads."""
        return self._names

    @property
    def uses_portfolio(self) -> bool:
        """True if any row's condition uses a portfolio-wide helper."""
        return any(row.when.uses_portfolio for row in self.rows)

    def evaluate(
        self,
        env: Mapping[str, np.ndarray],
        n: int | None = None,
        mask: np.ndarray | None = None,
        moved: Mapping[str, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Resolve the table for every account (``moved``: each account's moved fields, as
        :class:`kamsim.rules.expr.Expr` takes them).

        Returns ``(output float64[n], matched_row int64[n])``. ``matched_row`` is -1 where
        no row matched; there the output is ``default``, or NaN if there is none. ``mask``
        is passed to every condition (portfolio helpers) and limits the ``unique`` check.
        For ``collect_sum`` the output is the sum of all matching rows' outputs and
        ``matched_row`` the first matching row.
        """
        output, matched = self._resolve(env, n, mask, moved, rows=True)
        assert matched is not None
        return output, matched

    def outputs(
        self,
        env: Mapping[str, np.ndarray],
        n: int | None = None,
        mask: np.ndarray | None = None,
        moved: Mapping[str, np.ndarray] | None = None,
        at: np.ndarray | None = None,
    ) -> np.ndarray:
        """:meth:`evaluate`'s output alone (a re-tiering reads no more): the matched rows
        are not written down, except where ``collect_sum`` needs them. ``at`` (indices):
        the output of those accounts only, in their order (each condition evaluated at them,
        :class:`kamsim.rules.expr.Expr`'s ``rows``)."""
        return self._resolve(env, n, mask, moved, rows=False, at=at)[0]

    def _resolve(self, env: Mapping[str, np.ndarray], n: int | None, mask: np.ndarray | None,
                 moved: Mapping[str, np.ndarray] | None, rows: bool,
                 at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        n = infer_length(env, n, sorted(self.names))
        with shared_sorts():  # e.g. rank_pct(score) in several rows: one sort
            matches = [row.when(env, n, mask, moved, at) for row in self.rows]
        if at is not None:
            n = at.shape[0]
        if self.hit_policy == "unique":
            self._check_unique(matches, mask if mask is None or at is None else mask[at], at)
        if self.hit_policy == "collect_sum":
            return self._collect_sum(matches, n)
        order = list(range(len(self.rows)))
        if self.hit_policy == "priority":
            # sorted() is stable: among equal priorities the earlier row wins.
            order.sort(key=lambda i: -self.rows[i].priority)
        return self._first(matches, order, n, rows)

    def _fallback(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        return self._default_output(n), np.full(n, -1, dtype=np.int64)

    def _default_output(self, n: int) -> np.ndarray:
        """Every account's output where no row matches: the default, or NaN if none."""
        return np.full(n, np.nan if self.default is None else self.default, dtype=np.float64)

    def _first(
        self, matches: list[np.ndarray], order: list[int], n: int, rows: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """The output and (``rows``) the matched row of the first matching row in
        ``order``."""
        output = self._default_output(n)
        matched = np.full(n, -1, dtype=np.int64) if rows else None
        # the rows written last to first, each over the ones after it: where several match,
        # the first one's output stays (putmask: a third of the cost of writing through a
        # boolean index, and no mask of the accounts taken to keep)
        for i in reversed(order):
            np.putmask(output, matches[i], self.rows[i].output)
            if matched is not None:
                np.putmask(matched, matches[i], i)
        return output, matched

    def _collect_sum(self, matches: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
        output, matched = self._fallback(n)
        total = np.zeros(n)
        for i, hit in enumerate(matches):
            total[hit] += self.rows[i].output
            matched[hit & (matched < 0)] = i
        any_hit = matched >= 0
        output[any_hit] = total[any_hit]
        return output, matched

    def _check_unique(self, matches: list[np.ndarray], mask: np.ndarray | None,
                      at: np.ndarray | None = None) -> None:
        """A TableHitError naming the accounts (their indices: ``at``'s, when the matches
        are of those accounts only) that match more than one row."""
        if not matches:
            return
        counts = np.sum(matches, axis=0)
        overlap = counts > 1
        if mask is not None:
            overlap &= np.asarray(mask, dtype=bool)
        if overlap.any():
            rows = [i for i, hit in enumerate(matches) if (hit & overlap).any()]
            labels = [row.label for row in self.rows]
            accounts = np.flatnonzero(overlap)
            raise TableHitError(rows, accounts if at is None else at[accounts], labels)
