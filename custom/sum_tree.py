"""A sum tree over non-negative leaf values, vectorised with numpy over a batch of queries.

Proportional prioritized replay (Schaul et al. 2016) draws leaf ``i`` with probability
``value_i / total``: draw ``u`` uniform in ``[0, total)`` and find the first leaf whose
cumulative sum exceeds ``u``. A tree of partial sums makes both that search and a value update
cost O(depth) instead of O(n). Dopamine's and SB3 PR #1622's trees are binary and walk one
query at a time in Python; this one is ``fanout``-ary (32 by default) and walks the whole batch
level by level, a few numpy calls per level, so a batch's search or update costs about as much
as one query's. At this size the cost is the number of numpy calls, not the arithmetic, so the
tree is as flat as it can be: its top level holds up to ``fanout**2`` nodes (three levels for
1M leaves) and is searched at once with one cumulative sum and ``np.searchsorted``.

No library fits here: cpprb's prioritized buffer owns its storage (not our frame references),
and the segment-tree packages on PyPI answer one query per Python call.
"""

from __future__ import annotations

import math

import numpy as np


class SumTree:
    """Leaf values and their partial sums in ``fanout``-ary levels; the root level sums to total.

    ``levels[0]`` holds the leaves (zero-padded to a multiple of ``fanout``); node ``k`` of
    ``levels[d + 1]`` is the sum of children ``k * fanout .. k * fanout + fanout - 1`` of
    ``levels[d]``; the last level has at most ``fanout**2`` nodes, whose sum is :attr:`total`.
    Plain numpy arrays, so the tree pickles with the buffer that owns it.

    :param capacity: number of leaves, all 0 at first
    :param fanout: children per node (>= 2)
    """

    def __init__(self, capacity: int, fanout: int = 32) -> None:
        if capacity < 1 or fanout < 2:
            raise ValueError(f"need capacity >= 1 and fanout >= 2, got {capacity}, {fanout}")
        self.capacity = capacity
        self.fanout = fanout
        sizes = [_round_up(capacity, fanout)]
        while sizes[-1] > fanout * fanout:
            sizes.append(_round_up(sizes[-1] // fanout, fanout))
        self.levels = [np.zeros(size, dtype=np.float64) for size in sizes]

    @property
    def leaves(self) -> np.ndarray:
        """The leaf values, a read-only view of ``capacity`` entries."""
        view = self.levels[0][: self.capacity]
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        """Bytes held by the tree's arrays: about 8 per leaf, and 8 / (fanout - 1) more."""
        return sum(level.nbytes for level in self.levels)

    @property
    def total(self) -> float:
        """Sum of all leaf values."""
        return float(self.levels[-1].sum())

    def update(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``indices`` to ``values`` and recompute the sums above them.

        Each parent is recomputed from its children rather than shifted by a difference, so
        repeated indices are harmless (the last value given wins, as in numpy assignment) and
        rounding errors do not accumulate over millions of updates.

        :param indices: leaf indices in ``[0, capacity)``
        :param values: non-negative finite values, same length
        """
        nodes = np.asarray(indices, dtype=np.int64)
        self.levels[0][nodes] = values
        for children, parents in zip(self.levels[:-1], self.levels[1:], strict=True):
            nodes = nodes // self.fanout
            parents[nodes] = children.reshape(-1, self.fanout)[nodes].sum(axis=1)

    def find(self, prefix_sums: np.ndarray) -> np.ndarray:
        """For each ``u``, the first leaf whose cumulative sum exceeds ``u``.

        That is ``np.searchsorted(np.cumsum(leaves), u, side="right")``, so zero leaves are
        never returned, computed top-down: on the top level, that search itself; below, take
        the first child whose cumulative sum exceeds ``u`` and subtract the sums of the children
        before it. Cumulative sums are sequential, hence monotone: a zero node is never chosen.
        ``u`` is first capped just below the node's sum, since rounding (or ``u`` drawn at
        ``total``) could put it at or past the end.

        :param prefix_sums: values in ``[0, total)``; ``total`` must be > 0
        :return: leaf indices, int64, same length
        """
        top, *below = reversed(self.levels)
        before = np.zeros(len(top) + 1)  # before[j]: the sum of the nodes before node j
        np.cumsum(top, out=before[1:])
        remaining = np.minimum(prefix_sums, math.nextafter(before[-1], 0.0), dtype=np.float64)
        nodes = np.searchsorted(before, remaining, side="right") - 1
        remaining -= before[nodes]
        # One row per query; column 0 stays 0: row[j] is the sum of the children before child j.
        cumulative = np.zeros((len(remaining), self.fanout + 1))
        rows = np.arange(len(remaining)) * (self.fanout + 1)
        for level in below:
            np.cumsum(level.reshape(-1, self.fanout)[nodes], axis=1, out=cumulative[:, 1:])
            np.minimum(remaining, np.nextafter(cumulative[:, -1], 0.0), out=remaining)
            chosen = np.argmax(cumulative[:, 1:] > remaining[:, None], axis=1)
            remaining -= cumulative.reshape(-1)[rows + chosen]
            nodes = nodes * self.fanout + chosen
        return nodes


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
