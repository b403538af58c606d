"""custom.sum_tree against numpy: prefix-sum search, updates and totals."""

import numpy as np
import pytest

from custom.sum_tree import SumTree


def filled(values: np.ndarray, fanout: int = 32) -> SumTree:
    tree = SumTree(len(values), fanout)
    tree.update(np.arange(len(values)), values)
    return tree


@pytest.mark.parametrize("capacity", [1, 7, 32, 33, 1000, 40_000])
@pytest.mark.parametrize("fanout", [2, 32])
def test_find_equals_searchsorted_on_the_cumulative_sum(capacity: int, fanout: int) -> None:
    rng = np.random.default_rng(capacity)
    # Integer values (a third of them 0) and half-integer queries: every sum is exact, so the
    # tree must agree with numpy everywhere, boundaries included.
    values = rng.integers(0, 5, size=capacity).astype(float)
    values[0] = 1.0
    tree = filled(values, fanout)
    cumulative = np.cumsum(values)
    queries = np.concatenate(
        [rng.integers(0, int(cumulative[-1]), 500) + 0.5, [0.0], cumulative[:-1]]
    )
    queries = queries[queries < cumulative[-1]]
    expected = np.searchsorted(cumulative, queries, side="right")
    np.testing.assert_array_equal(tree.find(queries), expected)
    # Random floats: the same, and never a zero leaf, even for u rounded up to the total.
    values = rng.random(capacity) * (rng.random(capacity) > 0.3)
    values[-1] = 0.5
    tree = filled(values, fanout)
    queries = rng.random(2000) * tree.total
    np.testing.assert_array_equal(
        tree.find(queries), np.searchsorted(np.cumsum(values), queries, side="right")
    )
    at_total = tree.find(np.full(3, tree.total))
    assert (values[at_total] > 0).all()


def test_update_changes_exactly_the_given_leaves_and_the_total() -> None:
    rng = np.random.default_rng(0)
    values = rng.random(5000)
    tree = filled(values)
    indices = np.array([3, 4999, 1200, 3])  # a repeat: the last value wins, as in numpy
    new = np.array([7.0, 0.0, 2.5, 9.0])
    tree.update(indices, new)
    expected = values.copy()
    expected[indices] = new
    np.testing.assert_array_equal(tree.leaves, expected)
    assert tree.total == pytest.approx(expected.sum(), rel=1e-12)
    # every internal node is the sum of its children (recomputed, not shifted)
    for children, parents in zip(tree.levels[:-1], tree.levels[1:], strict=True):
        sums = children.reshape(-1, tree.fanout).sum(axis=1)
        np.testing.assert_array_equal(parents[: len(sums)], sums)


def test_leaves_are_read_only_and_arguments_checked() -> None:
    tree = filled(np.ones(10))
    with pytest.raises(ValueError, match="read-only"):
        tree.leaves[0] = 2.0
    with pytest.raises(ValueError, match="capacity >= 1 and fanout >= 2"):
        SumTree(0)
