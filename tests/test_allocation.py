"""The allocation kernel ``kamsim.engine.allocation.allocate`` on hand-built arrays.

Promise under test: priority classes are served from the highest down, the class where capacity
runs out is served pro rata, lower classes get nothing, nobody gets more than asked, and the
total never exceeds capacity (docs/model.md, "Allocation").
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kamsim.engine.allocation import ServiceOrder, allocate


def test_enough_capacity_gives_everyone_what_they_asked() -> None:
    asked = np.array([3.0, 0.0, 2.5, 1.0])
    out = allocate(asked, np.array([1.0, 2.0, 3.0, 1.0]), 100.0)
    assert np.array_equal(out, asked)
    assert out is not asked  # a copy: the caller may change it


def test_priorities_served_in_order_and_marginal_class_pro_rata() -> None:
    asked = np.array([4.0, 6.0, 10.0, 30.0, 5.0])
    priority = np.array([3.0, 3.0, 2.0, 2.0, 1.0])
    # class 3 asks 10, class 2 asks 40, class 1 asks 5; capacity 30 leaves 20 for class 2
    out = allocate(asked, priority, 30.0)
    np.testing.assert_allclose(out, [4.0, 6.0, 5.0, 15.0, 0.0])
    assert out.sum() <= 30.0 + 1e-9


def test_capacity_exactly_at_a_class_boundary() -> None:
    asked = np.array([2.0, 3.0, 4.0])
    out = allocate(asked, np.array([5.0, 4.0, 3.0]), 5.0)
    np.testing.assert_allclose(out, [2.0, 3.0, 0.0])


def test_single_class_is_plain_pro_rata() -> None:
    asked = np.array([1.0, 2.0, 3.0, 4.0])
    out = allocate(asked, np.zeros(4), 5.0)
    np.testing.assert_allclose(out, asked * 0.5)


def test_zero_capacity_delivers_nothing() -> None:
    asked = np.array([1.0, 2.0])
    assert np.array_equal(allocate(asked, np.array([1.0, 0.0]), 0.0), np.zeros(2))


def test_distinct_priorities_are_greedy_best_first() -> None:
    asked = np.array([5.0, 5.0, 5.0, 5.0])
    priority = np.array([0.1, 0.9, 0.5, 0.7])  # order of service: 1, 3, 2, 0
    out = allocate(asked, priority, 12.0)
    np.testing.assert_allclose(out, [0.0, 5.0, 2.0, 5.0])


_asked = arrays(np.float64, st.integers(1, 40),
                elements=st.one_of(st.just(0.0), st.floats(1e-6, 100.0)))  # no subnormals


@settings(max_examples=200, deadline=None)
@given(asked=_asked, data=st.data(), capacity=st.floats(0.0, 2000.0))
def test_allocation_properties(asked: np.ndarray, data: st.DataObject, capacity: float) -> None:
    n = asked.shape[0]
    priority = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)),
                        dtype=np.float64)
    out = allocate(asked, priority, capacity)
    assert out.shape == asked.shape
    assert np.all(out >= 0.0)
    assert np.all(out <= asked * (1 + 1e-12) + 1e-12)  # never above asked
    assert out.sum() <= max(capacity, 0.0) * (1 + 1e-9) + 1e-9  # never above capacity
    # no capacity is wasted while someone is short
    if asked.sum() > capacity:
        assert out.sum() >= capacity * (1 - 1e-9) - 1e-9
    else:
        np.testing.assert_array_equal(out, asked)
    # a class is only short if every higher class is fully served
    short = out < asked * (1 - 1e-9) - 1e-12
    if short.any():
        top_short = priority[short].max()
        higher = priority > top_short
        np.testing.assert_allclose(out[higher], asked[higher], rtol=1e-9, atol=1e-9)
        # within the marginal class everyone gets the same fraction
        marginal = (priority == top_short) & (asked > 0)
        fractions = out[marginal] / asked[marginal]
        np.testing.assert_allclose(fractions, fractions[0], rtol=1e-9, atol=1e-12)
        lower = priority < top_short
        assert np.all(out[lower] == 0.0)


@settings(max_examples=200, deadline=None)
@given(asked=_asked, data=st.data(), capacity=st.floats(0.0, 2000.0))
def test_shared_order_gives_the_same_allocation(asked: np.ndarray, data: st.DataObject,
                                               capacity: float) -> None:
    """A period sorts its priorities once (``ServiceOrder``) for all resources and ranks only
    the accounts in the portfolio; those outside ask nothing, so every delivery is the same, bit
    for bit, as sorting all priorities for each resource."""
    n = asked.shape[0]
    priority = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)),
                        dtype=np.float64)
    among = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    asked = np.where(among, asked, 0.0)
    order = ServiceOrder(priority, among=among)
    for scale in (1.0, 0.5):  # the order is reused for a second resource
        expected = allocate(asked * scale, priority, capacity)
        assert np.array_equal(allocate(asked * scale, order, capacity), expected)
        assert np.array_equal(allocate(asked * scale, ServiceOrder(priority), capacity),
                              expected)


@settings(max_examples=200, deadline=None)
@given(asked=_asked, data=st.data(), capacity=st.floats(0.0, 2000.0))
def test_order_by_level_gives_the_same_allocation(asked: np.ndarray, data: st.DataObject,
                                                 capacity: float) -> None:
    """Priorities looked up from a table by service level: the order built from the table
    (levels nobody is at included) serves everyone exactly as sorting the accounts would."""
    n = asked.shape[0]
    table = np.array([3.0, 1.0, 1.0, 0.5, 2.0])
    level = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))
    among = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    asked = np.where(among, asked, 0.0)
    expected = allocate(asked, table[level], capacity)
    for order in (ServiceOrder.by_level(table, level, among=among),
                  ServiceOrder.by_level(table, level)):
        assert np.array_equal(allocate(asked, order, capacity), expected)


@pytest.mark.parametrize("share_in", [0.0, 0.3, 1.0])
def test_one_priority_has_the_classes_a_sort_gives(share_in: float) -> None:
    # the equal strategy's order is made without sorting its one priority: the same classes
    # (and dtype) as ServiceOrder.classes works out by sorting, with no account in too
    among = np.random.default_rng(3).random(500) < share_in
    quick = ServiceOrder.one_priority(among).classes()
    sorted_ = ServiceOrder(np.zeros(500), among).classes()
    assert quick[1] == sorted_[1]
    assert quick[0].dtype == sorted_[0].dtype
    assert np.array_equal(quick[0], sorted_[0])
