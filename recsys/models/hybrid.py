"""Hybrid for "all purchases": ALS scores plus the customer's repurchase habit.

Many retail customers re-order the same items; ALS alone ranks those below
novel-but-similar items. The hybrid adds, per item the customer already bought,
`repurchase_weight * habit * orders(u, i) / max_i orders(u, i)` to the ALS score
normalised to the customer's best ALS score. `habit` in [0, 1] is the share of
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

from recsys.models.als import ALSParams, als_arrays, build_als, restore_als
from recsys.models.base import Recommender, TrainedData, require_array, top_n

__all__ = ["HybridParams", "HybridRecommender", "repurchase_habit"]

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

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        self._als = restore_als(self._params.als_params(), self._num_threads, data, arrays)
        self._habit = require_array(arrays, "hybrid.habit", (len(data.user_ids),))

    def _model_arrays(self) -> dict[str, np.ndarray]:
        assert self._habit is not None
        return {**als_arrays(self.als), "hybrid.habit": self._habit}

    def _blend(self, users: np.ndarray, counts: sp.csr_matrix, habit: np.ndarray) -> np.ndarray:
        """Blended `(len(users), n_items)` scores from user factors and order counts."""
        item_factors = np.asarray(self.als.item_factors)
        als = users @ item_factors.T
        top = np.abs(als).max(axis=1, keepdims=True)
        als = als / np.where(top > 0, top, 1.0)
        weight = np.maximum(habit, self._params.habit_floor) * self._params.repurchase_weight
        peak = np.asarray(counts.max(axis=1).todense(), dtype=np.float64).ravel()
        scale = np.where(peak > 0, weight / np.where(peak > 0, peak, 1.0), 0.0)
        boost = sp.diags(scale) @ counts
        return np.asarray(als + boost.toarray(), dtype=np.float64)

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
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
        user = self.als.recalculate_user(0, row)
        # an ad-hoc history only has occurrences, a proxy for orders per item
        counts = sp.csr_matrix(row, dtype=np.float32)
        habit = repurchase_habit(counts)
        scores = self._blend(np.atleast_2d(user), counts, habit)[0]
        if exclude_seen:
            scores[row.indices] = -np.inf
        return top_n(scores, n)

    def _similar(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.als.similar_items(item_idx, N=min(n, len(self.data.item_ids)))
        return np.asarray(ids), np.asarray(scores)
