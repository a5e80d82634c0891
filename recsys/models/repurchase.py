"""Personal-repurchase baseline: a customer's own most-bought items."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsys.models.base import Recommender, TrainedData, top_n

__all__ = ["RepurchaseParams", "RepurchaseRecommender", "aligned_values", "repurchase_scores"]


@dataclass(frozen=True, slots=True)
class RepurchaseParams:
    """by: `orders` ranks a customer's items by how many orders contained them
    (habit), `confidence` by the matrix value (net quantity, decayed if set)."""

    by: Literal["orders", "confidence"] = "orders"

    def __post_init__(self) -> None:
        if self.by not in ("orders", "confidence"):
            raise ValueError(f"unknown repurchase measure {self.by!r}")


def repurchase_scores(
    counts: np.ndarray, confidence: np.ndarray, popularity: np.ndarray
) -> np.ndarray:
    """Score one customer's own items: `counts` first, ties by confidence then popularity.

    All arrays are aligned per item of the row (same length); the tie-breaks are
    scaled below 1 so they never overturn a whole count.
    """
    conf = confidence / (confidence.max(initial=0.0) + 1.0)
    pop = popularity / (popularity.max(initial=0.0) + 1.0)
    return np.asarray(counts + 0.5 * conf + 0.01 * pop, dtype=np.float64)


def aligned_values(target: sp.csr_matrix, source: sp.csr_matrix) -> np.ndarray:
    """Values of the 1-row `source` at the column indices of `target` (0 where absent).

    Both rows must have sorted indices (the matrix builder guarantees it).
    """
    if source.nnz == 0:
        return np.zeros(target.nnz, dtype=np.float32)
    pos = np.minimum(np.searchsorted(source.indices, target.indices), source.nnz - 1)
    hit = source.indices[pos] == target.indices
    return np.where(hit, source.data[pos], 0.0).astype(np.float32)


class RepurchaseRecommender(Recommender[RepurchaseParams]):
    """Ranks the customer's own history; popular items fill the rest of the list."""

    name = "repurchase"
    params_type = RepurchaseParams

    def __init__(self, params: RepurchaseParams | None = None, *, num_threads: int = 0) -> None:
        super().__init__(params or RepurchaseParams(), num_threads=num_threads)

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        return None  # the training matrix is the whole model

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        return None

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _rank(
        self, indices: np.ndarray, counts: np.ndarray, conf: np.ndarray, n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        primary = counts if self._params.by == "orders" else conf
        scores = repurchase_scores(primary, conf, self.data.popularity[indices])
        order, values = top_n(scores.astype(np.float64), n)
        return indices[order], values

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ids = np.full((len(user_idx), n), -1, dtype=np.int64)
        scores = np.full((len(user_idx), n), -np.inf, dtype=np.float64)
        if exclude_seen:
            return ids, scores  # everything it knows is seen: all popular padding
        data = self.data
        for row, u in enumerate(user_idx):
            counts = data.order_counts[u]
            conf = aligned_values(counts, data.user_items[u])
            found, values = self._rank(counts.indices, counts.data, conf, n)
            ids[row, : len(found)] = found
            scores[row, : len(found)] = values
        return ids, scores

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        if exclude_seen:
            return np.empty(0, dtype=np.int64), np.empty(0)
        # an ad-hoc history only has occurrence counts: use them for both signals
        return self._rank(row.indices, row.data, row.data, n)
