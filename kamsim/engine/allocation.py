"""Allocating contended capacity (hours, money) among accounts, all at once.

``allocate`` serves priority classes from the highest down; the class where capacity runs out
is served pro rata; classes below it get nothing. With a distinct priority per account this
is the greedy "best first" rule; with one class it is plain pro-rata rationing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kamsim.compile import CompiledModel

__all__ = ["allocate", "ServiceOrder", "Demand", "demand"]


class ServiceOrder:
    """The priority classes of the accounts, from the highest priority down: which class each
    account is in. Sorting the priorities is the costly part of ``allocate``, so a period
    computes its order once (on first use) and shares it among the resources it allocates.

    Only the accounts in ``among`` (default: all) are ranked; the others form one class served
    after all of them (in a period they are the accounts out of the portfolio, asking nothing).
    """

    def __init__(self, priority: np.ndarray, among: np.ndarray | None = None):
        self.priority = priority
        self.among = among
        self._classes: tuple[np.ndarray, int] | None = None

    @classmethod
    def by_level(cls, table: np.ndarray, level: np.ndarray, among: np.ndarray | None = None,
                 classes: tuple[int, np.ndarray] | None = None) -> ServiceOrder:
        """The order when each account's priority is ``table[level]``: the classes come from
        the few values of the table, without sorting the accounts (a class nobody is in asks
        nothing, which changes no one's share). ``classes``: the table's (number of distinct
        priorities, class of each entry), if already known (the compiled service levels keep
        them: ``ServiceArrays.priority_class``)."""
        order = cls(table[level], among)
        if classes is None:
            ranks, table_class = np.unique(-table, return_inverse=True)
            classes = ranks.size, table_class
        n_ranks, table_class = classes
        inverse = table_class[level]
        if among is None:
            order._classes = inverse, n_ranks
        else:
            order._classes = np.where(among, inverse, n_ranks), n_ranks + 1
        return order

    @classmethod
    def one_priority(cls, among: np.ndarray) -> ServiceOrder:
        """The order when every account has the same priority (the equal strategy): the
        classes :meth:`classes` would sort out, without the sort. The accounts in ``among``
        are class 0 and the others class 1; if none is in, all are class 0."""
        order = cls(np.zeros(among.shape[0]), among)
        if among.any():
            order._classes = np.logical_not(among).astype(np.intp), 2
        else:
            order._classes = np.zeros(among.shape[0], dtype=np.intp), 1
        return order

    @classmethod
    def with_classes(cls, priority: np.ndarray, among: np.ndarray, classes: np.ndarray,
                     n_classes: int) -> ServiceOrder:
        """The order whose classes the caller worked out already (the compiled demand does
        ``by_level``'s for a tiered strategy, in its pass over the accounts)."""
        order = cls(priority, among)
        order._classes = classes, n_classes
        return order

    def classes(self) -> tuple[np.ndarray, int]:
        """(class of each account, number of classes); class 0 is served first."""
        if self._classes is None:
            if self.among is None:
                ranks, inverse = np.unique(-self.priority, return_inverse=True)
                self._classes = inverse, ranks.size
            else:
                ranks, inverse = np.unique(-self.priority[self.among], return_inverse=True)
                full = np.full(self.priority.shape[0], ranks.size, dtype=inverse.dtype)
                full[self.among] = inverse
                self._classes = full, ranks.size + 1
        return self._classes


def allocate(asked: np.ndarray, priority: np.ndarray | ServiceOrder,
             capacity: float, kernels: bool = False) -> np.ndarray:
    """Delivered amounts (same shape as ``asked``), never above ``asked``, summing to at most
    ``capacity``. Higher ``priority`` is served first; ties share pro rata. ``kernels``: the
    classes' demand and shares in one compiled pass (``allocation_kernel.allocated``, the
    same figures), when :func:`kamsim.jit.wanted` says so."""
    total = float(asked.sum())
    if total <= capacity:
        return asked.copy()
    if capacity <= 0:
        return np.zeros_like(asked)
    order = priority if isinstance(priority, ServiceOrder) else ServiceOrder(priority)
    # classes in descending priority and their total demand
    inverse, n_classes = order.classes()
    if kernels:
        from kamsim.engine.allocation_kernel import allocated

        return allocated(asked, inverse, n_classes, float(capacity), np.empty_like(asked))
    demand = np.bincount(inverse, weights=asked, minlength=n_classes)
    before = np.cumsum(demand) - demand  # demand of the classes served before each class
    ratio = np.clip((capacity - before) / np.where(demand > 0, demand, 1.0), 0.0, 1.0)
    return asked * ratio[inverse]


@dataclass
class Demand:
    """What each account asks for this period and in which order it is served."""

    am: np.ndarray
    exec: np.ndarray
    specialist: np.ndarray
    money: np.ndarray  # discount + VIP + joint development, currency per period
    discount_rate: np.ndarray
    level: np.ndarray  # the service level (tier index) each account receives
    priority: np.ndarray
    need: np.ndarray  # hours the account's own tier's level asks for: what it needs
    order: ServiceOrder  # of the accounts in the portfolio by ``priority``, for ``allocate``


def demand(model: CompiledModel, tier: np.ndarray, active: np.ndarray, stage: np.ndarray,
           list_revenue: np.ndarray, env: dict[str, np.ndarray], quadrant: np.ndarray,
           clv_rank: np.ndarray, dt: float, kernels: bool = False) -> Demand:
    """The asked service of every account under the scenario's strategy:

    - ``equal``: every account the same service level (``strategy.level``, default the middle
      tier), one priority class: shortages are shared pro rata;
    - ``tiered``: each tier its level; tiers served by their level's priority;
    - ``value_based``: each tier its level; accounts served in order of expected lifetime
      value (or score);
    - ``cultivate``: as tiered, plus ``extra_effort`` more contact for the cultivate quadrant
      (low volume, high loyalty), served first after the top tier;
    - ``custom``: each tier its level; served in order of the priority expression.

    ``kernels``: each account's asked service in one compiled pass (``_demand_kernel``, the
    same figures), when :func:`kamsim.jit.wanted` says so.
    """
    sv = model.service
    st = model.spec.scenario.strategy
    tiers = model.tiers
    if st.name == "equal":
        level_name = st.level or tiers[len(tiers) // 2]
        level = np.full(tier.shape[0], tiers.index(level_name), dtype=np.int64)
    else:
        level = tier
    if kernels:
        return _demand_kernel(model, level, tier, active, stage, list_revenue, env, quadrant,
                              clv_rank, dt)
    stage_cost = model.stages.cost_to_serve[stage]
    mult = stage_cost * dt
    am = sv.am_hours[level] * mult
    ex = sv.exec_hours[level] * mult
    sp = sv.specialist_hours[level] * mult
    discount_rate = sv.discount[level]
    # (the per-level sum first: the same additions, one gather instead of two)
    money = (discount_rate * list_revenue + (sv.vip_cost + sv.joint_dev)[level] * dt)
    if st.name == "equal":
        order = ServiceOrder.one_priority(active)
        priority = order.priority
    elif st.name == "tiered":
        order = ServiceOrder.by_level(sv.priority, level, among=active,
                                      classes=(sv.n_priority_classes, sv.priority_class))
        priority = order.priority
    elif st.name == "value_based":
        priority = clv_rank
    elif st.name == "cultivate":
        cultivate = quadrant == 2
        boost = 1.0 + st.extra_effort * cultivate
        am = am * boost
        priority = sv.priority[level] + np.where(cultivate, 0.5, 0.0)
        top = sv.priority.max()
        priority = np.where(cultivate, np.minimum(priority, top - 0.5), priority)
    else:
        assert model.priority is not None
        priority = model.priority(env, tier.shape[0], active)
    # what the account needs is its own tier's level, whatever the strategy offers it: an
    # equal-treatment key account offered the middle level is underserved
    need = (sv.am_hours + sv.exec_hours + sv.specialist_hours)[tier] * stage_cost * dt
    off = ~active
    for a in (am, ex, sp, money, need):
        np.putmask(a, off, 0.0)  # (as a[off] = 0.0, at half the cost)
    if st.name not in ("equal", "tiered"):
        order = ServiceOrder(priority, among=active)
    return Demand(am, ex, sp, money, discount_rate, level, priority, need, order)


def _demand_kernel(model: CompiledModel, level: np.ndarray, tier: np.ndarray,
                   active: np.ndarray, stage: np.ndarray, list_revenue: np.ndarray,
                   env: dict[str, np.ndarray], quadrant: np.ndarray, clv_rank: np.ndarray,
                   dt: float) -> Demand:
    """``demand`` from its service level on, each account worked out in one compiled pass
    (``allocation_kernel.asked``): the same figures, in the same order of service."""
    from kamsim.engine import allocation_kernel as ak

    sv = model.service
    st = model.spec.scenario.strategy
    n = tier.shape[0]
    am, ex, sp, money, discount_rate, need = (np.empty(n) for _ in range(6))
    # (the per-level sums first, as ``demand`` does: kept with the service levels)
    vip_joint, need_hours = sv.vip_joint, sv.need_hours
    strategy = {"tiered": ak.TIERED, "cultivate": ak.CULTIVATE}.get(st.name, ak.PLAIN)
    priority = np.empty(n if strategy != ak.PLAIN else 0)
    klass = np.empty(n if strategy == ak.TIERED else 0, dtype=sv.priority_class.dtype)
    ak.asked(level, tier, stage, list_revenue, active, quadrant, model.stages.cost_to_serve,
             sv.am_hours, sv.exec_hours, sv.specialist_hours, sv.discount, vip_joint,
             need_hours, float(dt), strategy, float(st.extra_effort), sv.priority,
             sv.top_priority, sv.priority_class, sv.n_priority_classes,
             am, ex, sp, money, discount_rate, need, priority, klass)
    if st.name == "tiered":
        # (the classes as ServiceOrder.by_level's, made in the pass)
        order = ServiceOrder.with_classes(priority, active, klass, sv.n_priority_classes + 1)
    elif st.name == "equal":
        order = ServiceOrder.one_priority(active)
        priority = order.priority
    else:
        if st.name == "value_based":
            priority = clv_rank
        elif st.name == "custom":
            assert model.priority is not None
            priority = model.priority(env, n, active)
        order = ServiceOrder(priority, among=active)
    return Demand(am, ex, sp, money, discount_rate, level, priority, need, order)
