"""Exact top-k inner products that skip the items whose norm proves they cannot make the list.

Scoring every customer against every item (`users @ items.T`, then a top-k) is what
precomputing candidate lists costs: about as much as fitting ALS at 1M x 100k. ALS
item norms are very skewed (popular items have large factors; on the generated 1M x
100k retailer the norm at rank 10,000 is 1/900 of the largest), and an item can only
enter a customer's top-k if `|u| |v|` reaches the k-th score already found, by
Cauchy-Schwarz. So the items are searched in norm order: the top-k among the
largest-norm "head" is exact for every customer whose k-th score beats `|u|` times
the largest norm left outside the head; the others go on to a head twice as large, and
so on, and finally to the whole catalog. The answer is the same top-k as the full scan (ties
aside); only the work differs. On that retailer 98% of customers are settled by the
first 10% of the items.
"""

from __future__ import annotations

import numpy as np
from implicit.cpu.topk import topk

__all__ = ["PRUNE_MIN_USERS", "FactorTopK", "NormPrunedTopK"]

#: Relative slack on the bound: the scores are float32 dot products whose rounding
#: error is far below this, so a tail item the bound rules out cannot outscore by rounding.
_SLACK = 1e-3


class NormPrunedTopK:
    """`topk(users, k)` over fixed item factors, searching the items in decreasing norm."""

    def __init__(self, items: np.ndarray, *, first_head: int = 4096, growth: int = 2) -> None:
        if first_head < 1 or growth < 2:
            raise ValueError("first_head must be >= 1 and growth >= 2")
        items = np.asarray(items)
        norms = np.linalg.norm(items.astype(np.float64, copy=False), axis=1)
        self._order = np.argsort(-norms, kind="stable")
        # One copy of the factors in norm order: every head is a contiguous prefix of it.
        self._sorted = np.ascontiguousarray(items[self._order])
        self._items = items
        sorted_norms = norms[self._order]
        #: (users x items) dot products computed so far: the work the pruning saves shows here.
        self.scored_pairs = 0
        self._heads: list[tuple[int, float]] = []
        head = first_head
        while head * 2 <= len(items):  # a head must leave a tail worth skipping
            self._heads.append((head, float(sorted_norms[head])))
            head *= growth

    @property
    def n_items(self) -> int:
        return len(self._order)

    def topk(
        self, users: np.ndarray, k: int, num_threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """`(ids, scores)` of shape `(len(users), min(k, n_items))`, best first, as `topk` gives."""
        users = np.ascontiguousarray(users)
        k = min(k, self.n_items)
        n_users = users.shape[0]
        ids = np.full((n_users, k), -1, dtype=np.int64)
        scores = np.full((n_users, k), -np.inf, dtype=np.float32)
        if n_users == 0 or k <= 0:
            return ids, scores
        pending = np.arange(n_users)
        user_norms = np.linalg.norm(users.astype(np.float64, copy=False), axis=1)
        for head, tail_norm in self._heads:
            if head < k:
                continue
            head_items = self._sorted[:head]
            got_ids, got_scores = topk(head_items, users[pending], k, num_threads=num_threads)
            self.scored_pairs += len(pending) * head
            kth = got_scores[:, k - 1].astype(np.float64)
            settled = np.isfinite(kth) & (kth >= user_norms[pending] * tail_norm * (1 + _SLACK))
            rows = pending[settled]
            ids[rows] = self._order[got_ids[settled]]
            scores[rows] = got_scores[settled]
            pending = pending[~settled]
            if not len(pending):
                return ids, scores
        got_ids, got_scores = topk(self._items, users[pending], k, num_threads=num_threads)
        self.scored_pairs += len(pending) * self.n_items
        ids[pending] = got_ids
        scores[pending] = got_scores
        return ids, scores


#: Batches at least this large use the pruned search; fewer users (an API request) use
#: the plain scan, which needs no sorted copy of the factors in every serving worker.
PRUNE_MIN_USERS = 256


class FactorTopK:
    """Top-k of `users @ items.T`: implicit's `topk` for a few users, norm-pruned for batches.

    The pruned index (a norm-sorted copy of the item factors) is built on the first
    large batch, e.g. when training precomputes every customer's list.
    """

    def __init__(self, items: np.ndarray, *, first_head: int = 4096) -> None:
        self._items = items
        self._first_head = first_head
        self._pruned: NormPrunedTopK | None = None

    def __call__(
        self, users: np.ndarray, k: int, num_threads: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        if users.shape[0] < PRUNE_MIN_USERS:
            ids, scores = topk(self._items, np.ascontiguousarray(users), k, num_threads=num_threads)
            return np.atleast_2d(ids), np.atleast_2d(scores)
        if self._pruned is None:
            self._pruned = NormPrunedTopK(self._items, first_head=self._first_head)
        return self._pruned.topk(users, k, num_threads)
