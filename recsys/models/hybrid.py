"""Hybrid for "all purchases": ALS scores plus the customer's repurchase habit.

Many retail customers re-order the same items; ALS alone ranks those below
novel-but-similar items. The hybrid adds, per item the customer already bought,
`repurchase_weight * habit * orders(u, i) / max_i orders(u, i)` to the ALS score
normalised to the customer's best ALS score (by its best positive score: dividing
by the largest absolute score, as before 2026-11-30, let a strongly negative item
set the scale; that changed 0.5% of UCI customers' scale and made the top-n need a
full pass over the catalog). `habit` in [0, 1] is the share of
the customer's purchase events that were of an item bought in an earlier order,
so one-off shoppers get (almost) pure ALS and habitual re-orderers mostly
repurchase, with ALS ordering and filling the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recsys.models.als import ALSParams, als_arrays, build_als, restore_als, restore_top
from recsys.models.base import Recommender, TrainedData, require_array, top_n
from recsys.models.topk import FactorTopK

__all__ = ["HybridParams", "HybridRecommender", "repurchase_habit"]


def _positive(top: np.ndarray) -> np.ndarray:
    """A customer's best ALS score as the divisor, 1 when it is not positive."""
    return np.where(top > 0, top, 1.0)

# users scored per dense block in batch mode: bounds memory to ~block * n_items floats
_BLOCK = 512


@dataclass(frozen=True, slots=True)
class HybridParams:
    """ALS hyperparameters (see `ALSParams`) plus the blend:

    repurchase_weight: how much a full habit (habit = 1) on the customer's
        most-ordered item adds to a normalised ALS score of at most 1.
    habit_floor: the habit used is max(habit, habit_floor), so a customer
        without repeats yet still gets some weight on their own items
        (1.0 = the same weight for everyone).
    """

    factors: int = 64
    regularization: float = 0.1
    alpha: float = 2.0
    iterations: int = 15
    random_state: int = 42
    repurchase_weight: float = 2.0
    habit_floor: float = 0.5

    def __post_init__(self) -> None:
        self.als_params()  # validates the ALS part
        if self.repurchase_weight < 0 or not 0 <= self.habit_floor <= 1:
            raise ValueError("repurchase_weight must be >= 0 and habit_floor in [0, 1]")

    def als_params(self) -> ALSParams:
        return ALSParams(
            factors=self.factors,
            regularization=self.regularization,
            alpha=self.alpha,
            iterations=self.iterations,
            random_state=self.random_state,
        )


def repurchase_habit(order_counts: sp.csr_matrix) -> np.ndarray:
    """`(n_users,)` share of purchase events that repeated an item bought earlier.

    With c_ui orders per pair: (sum c_ui - #pairs) / sum c_ui, 0 for no history.
    """
    events = np.asarray(order_counts.sum(axis=1), dtype=np.float64).ravel()
    pairs = np.diff(order_counts.indptr).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        habit = np.where(events > 0, (events - pairs) / events, 0.0)
    return habit.astype(np.float32)


class HybridRecommender(Recommender[HybridParams]):
    """ALS + personal repurchase, blended by each customer's repurchase habit."""

    name = "hybrid"
    params_type = HybridParams

    def __init__(self, params: HybridParams | None = None, *, num_threads: int = 0) -> None:
        super().__init__(params or HybridParams(), num_threads=num_threads)
        self._als: AlternatingLeastSquares | None = None
        self._habit: np.ndarray | None = None
        self._top: FactorTopK | None = None

    @property
    def als(self) -> AlternatingLeastSquares:
        if self._als is None:
            raise RuntimeError("hybrid model is not fitted")
        return self._als

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        model = build_als(self._params.als_params(), self._num_threads)
        model.fit(data.user_items, show_progress=show_progress)
        self._als = model
        self._habit = repurchase_habit(data.order_counts)
        self._top = FactorTopK(np.asarray(model.item_factors))

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        self._als = restore_als(self._params.als_params(), self._num_threads, data, arrays)
        self._habit = require_array(arrays, "hybrid.habit", (len(data.user_ids),))
        self._top = restore_top(self._als, arrays)

    def _model_arrays(self) -> dict[str, np.ndarray]:
        assert self._habit is not None
        return {**als_arrays(self.als, self._top), "hybrid.habit": self._habit}

    def _blend(self, users: np.ndarray, counts: sp.csr_matrix, habit: np.ndarray) -> np.ndarray:
        """Blended `(len(users), n_items)` scores from user factors and order counts.

        The reference definition; `_score_users` gets the same top-n without the
        dense matrix.
        """
        item_factors = np.asarray(self.als.item_factors)
        als = users @ item_factors.T
        als = als / _positive(als.max(axis=1, keepdims=True))
        boost = sp.diags(self._boost_scale(counts, habit)) @ counts
        return np.asarray(als + boost.toarray(), dtype=np.float64)

    def _boost_scale(self, counts: sp.csr_matrix, habit: np.ndarray) -> np.ndarray:
        """`(n_rows,)` boost per order of an item: weight / the row's most-ordered count."""
        weight = np.maximum(habit, self._params.habit_floor) * self._params.repurchase_weight
        peak = np.asarray(counts.max(axis=1).todense(), dtype=np.float64).ravel()
        return np.where(peak > 0, weight / np.where(peak > 0, peak, 1.0), 0.0)

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n of the blend for known users without materialising `(users, n_items)`.

        The boost is >= 0 and only on items the customer bought, so the blend's
        top-n lies within ALS's top-n plus the bought items: implicit's top-k
        (BLAS + a C++ heap) finds the first, the bought items are scored directly.
        """
        if exclude_seen:
            return self._score_users_dense(user_idx, n, exclude_seen)
        assert self._habit is not None
        users = np.asarray(self.als.user_factors)[user_idx]
        return self._top_blend(users, self.data.order_counts[user_idx], self._habit[user_idx], n)

    def _top_blend(
        self, users: np.ndarray, counts: sp.csr_matrix, habit: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-n `(ids, scores)` of the blend for `users` `(rows, factors)` with their counts."""
        n_items = len(self.data.item_ids)
        n = min(n, n_items)
        items = np.asarray(self.als.item_factors)
        assert self._top is not None
        als_ids, als_scores = self._top(users, n, self._num_threads)
        rows_n = users.shape[0]
        scale = _positive(np.asarray(als_scores[:, 0], dtype=np.float64))
        bought = counts.tocoo()
        b_rows = bought.row.astype(np.int64)
        b_ids = bought.col.astype(np.int64)
        b_als = np.einsum("ij,ij->i", users[b_rows], items[b_ids], dtype=np.float64)
        boost = self._boost_scale(counts, habit)
        b_scores = b_als / scale[b_rows] + boost[b_rows] * bought.data
        a_rows = np.repeat(np.arange(rows_n, dtype=np.int64), als_ids.shape[1])
        a_ids = np.asarray(als_ids, dtype=np.int64).ravel()
        a_scores = (np.asarray(als_scores, dtype=np.float64) / scale[:, None]).ravel()
        # a bought item among ALS's best keeps only its boosted entry
        keep = (a_ids >= 0) & ~np.isin(a_rows * n_items + a_ids, b_rows * n_items + b_ids)
        rows = np.concatenate([a_rows[keep], b_rows])
        ids = np.concatenate([a_ids[keep], b_ids])
        scores = np.concatenate([a_scores[keep], b_scores])
        order = np.lexsort((ids, -scores, rows))  # per row: best first, ties by index
        rows, ids, scores = rows[order], ids[order], scores[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows, side="left")
        take = rank < n
        out_ids = np.full((rows_n, n), -1, dtype=np.int64)
        out_scores = np.full((rows_n, n), -np.inf, dtype=np.float64)
        out_ids[rows[take], rank[take]] = ids[take]
        out_scores[rows[take], rank[take]] = scores[take]
        return out_ids, out_scores

    def _score_users_dense(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """`_score_users` through the dense blend (evaluation's unseen-items mode)."""
        data = self.data
        assert self._habit is not None
        n = min(n, len(data.item_ids))
        all_ids = np.empty((len(user_idx), n), dtype=np.int64)
        all_scores = np.empty((len(user_idx), n), dtype=np.float64)
        for start in range(0, len(user_idx), _BLOCK):
            block = user_idx[start : start + _BLOCK]
            scores = self._blend(
                np.asarray(self.als.user_factors)[block],
                data.order_counts[block],
                self._habit[block],
            )
            if exclude_seen:
                seen = data.user_items[block].tocoo()
                scores[seen.row, seen.col] = -np.inf
            for row in range(len(block)):
                ids, values = top_n(scores[row], n)
                all_ids[start + row] = ids
                all_scores[start + row] = values
        return all_ids, all_scores

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        user = np.atleast_2d(self.als.recalculate_user(0, row)).astype(np.float32)
        # an ad-hoc history only has occurrences, a proxy for orders per item
        counts = sp.csr_matrix(row, dtype=np.float32)
        habit = repurchase_habit(counts)
        if not exclude_seen:
            ids, scores = self._top_blend(user, counts, habit, n)
            return ids[0], scores[0]
        scores = self._blend(user, counts, habit)[0]
        scores[row.indices] = -np.inf
        return top_n(scores, n)

    def _similar(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.als.similar_items(item_idx, N=min(n, len(self.data.item_ids)))
        return np.asarray(ids), np.asarray(scores)
