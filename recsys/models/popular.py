"""Popularity baseline: the same list for everyone, no personalisation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from recsys.models.base import Recommender, TrainedData, require_array, top_n

__all__ = ["PopularParams", "PopularRecommender"]


@dataclass(frozen=True, slots=True)
class PopularParams:
    """by: `customers` counts distinct buyers per item (robust to wholesale bulk
    orders); `confidence` sums the matrix values (net quantity, decayed if the
    matrix is). A recent window is a matrix setting (`window_days`)."""

    by: Literal["customers", "confidence"] = "customers"

    def __post_init__(self) -> None:
        if self.by not in ("customers", "confidence"):
            raise ValueError(f"unknown popularity measure {self.by!r}")


class PopularRecommender(Recommender[PopularParams]):
    """Most popular items; `recommend` ignores who asks (history included)."""

    name = "popular"
    personalised = False
    params_type = PopularParams

    def __init__(self, params: PopularParams | None = None, *, num_threads: int = 0) -> None:
        super().__init__(params or PopularParams(), num_threads=num_threads)
        self._scores: np.ndarray | None = None

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        if self._params.by == "customers":
            self._scores = data.popularity.astype(np.float32)
        else:
            self._scores = np.asarray(data.user_items.sum(axis=0), dtype=np.float32).ravel()

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        self._scores = require_array(arrays, "popular.scores", (len(data.item_ids),))

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {"popular.scores": self._item_scores()}

    def _item_scores(self) -> np.ndarray:
        if self._scores is None:
            raise RuntimeError("popular model is not fitted")
        return self._scores

    def _item_popularity(self) -> np.ndarray:
        return self._item_scores()

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self._item_scores()
        extra = 0
        if exclude_seen:
            extra = int(np.diff(self.data.user_items.indptr)[user_idx].max(initial=0))
        ids, values = top_n(scores, n + extra)
        return np.tile(ids, (len(user_idx), 1)), np.tile(values, (len(user_idx), 1))

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        return top_n(self._item_scores(), n + (row.nnz if exclude_seen else 0))
