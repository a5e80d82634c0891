"""Repeat-aware user-kNN in the spirit of TIFU-KNN (Hu et al., SIGIR 2020).

Li et al. (2023, "A Next Basket Recommendation Reality Check") found that this simple
recipe, a customer's own time-decayed purchase frequencies blended with those of
similar customers, beats most deep next-basket models on grocery-like data, mostly
through repeat purchases. Here it is a model like the others:

- a customer's vector `u` is their row of the training matrix (the matrix's
  confidence and recency decay, by default decayed distinct orders), L2-normalised;
- the neighbourhood is the `neighbours` most cosine-similar customers;
- the score is `alpha * u + (1 - alpha) * mean(neighbour vectors)`.

Neighbour search is exact and costs one sparse product per block of customers: fine
for the tens of thousands of customers it is meant for (a baseline and a candidate of
`--model auto`), not for millions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from recsys.models.base import Recommender, TrainedData, top_n

__all__ = ["TifuKNNParams", "TifuKNNRecommender"]

_BLOCK = 256


@dataclass(frozen=True, slots=True)
class TifuKNNParams:
    """neighbours: similar customers averaged; alpha: weight of the customer's own vector."""

    neighbours: int = 100
    alpha: float = 0.7

    def __post_init__(self) -> None:
        if self.neighbours < 1:
            raise ValueError("neighbours must be >= 1")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError("alpha must be in [0, 1]")


def _normalised(rows: sp.csr_matrix) -> sp.csr_matrix:
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1), dtype=np.float64).ravel())
    scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    return sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ rows, dtype=np.float32)


class TifuKNNRecommender(Recommender[TifuKNNParams]):
    """Own decayed frequencies blended with the nearest customers' (see the module doc)."""

    name = "tifu-knn"
    params_type = TifuKNNParams

    def __init__(self, params: TifuKNNParams | None = None, *, num_threads: int = 0) -> None:
        super().__init__(params or TifuKNNParams(), num_threads=num_threads)
        self._vectors: sp.csr_matrix | None = None

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        self._vectors = _normalised(data.user_items)

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        self._vectors = _normalised(data.user_items)  # derived: nothing extra is saved

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {}

    @property
    def vectors(self) -> sp.csr_matrix:
        if self._vectors is None:
            raise RuntimeError("tifu-knn model is not fitted")
        return self._vectors

    def _predict(self, own: sp.csr_matrix, skip: np.ndarray | None) -> np.ndarray:
        """Dense `(rows, n_items)` scores for normalised customer rows `own`.

        `skip[r]` is the matrix row of customer r itself (never its own neighbour), -1 if none.
        """
        vectors = self.vectors
        k = min(self._params.neighbours, vectors.shape[0])
        sims = (own @ vectors.T).toarray()
        if skip is not None:
            rows = np.flatnonzero(skip >= 0)
            sims[rows, skip[rows]] = -np.inf
        k = min(k, sims.shape[1])
        if k <= 0:
            return np.asarray(own.toarray() * self._params.alpha, dtype=np.float64)
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        picked = np.take_along_axis(sims, near, axis=1)
        weights = np.where(np.isfinite(picked) & (picked > 0), 1.0 / k, 0.0)
        mix = sp.csr_matrix(
            (weights.ravel(), near.ravel(), np.arange(0, near.size + 1, k)),
            shape=(own.shape[0], vectors.shape[0]),
        )
        neighbourhood = (mix @ vectors).toarray()
        alpha = self._params.alpha
        return np.asarray(alpha * own.toarray() + (1.0 - alpha) * neighbourhood, dtype=np.float64)

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        data = self.data
        n = min(n, len(data.item_ids))
        all_ids = np.full((len(user_idx), n), -1, dtype=np.int64)
        all_scores = np.full((len(user_idx), n), -np.inf, dtype=np.float64)
        for start in range(0, len(user_idx), _BLOCK):
            block = np.asarray(user_idx[start : start + _BLOCK], dtype=np.int64)
            scores = self._predict(self.vectors[block], block)
            if exclude_seen:
                seen = data.user_items[block].tocoo()
                scores[seen.row, seen.col] = -np.inf
            for row in range(len(block)):
                ids, values = top_n(scores[row], n)
                keep = np.isfinite(values) & (values > 0)
                all_ids[start + row, : keep.sum()] = ids[keep]
                all_scores[start + row, : keep.sum()] = values[keep]
        return all_ids, all_scores

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = self._predict(_normalised(sp.csr_matrix(row, dtype=np.float32)), None)[0]
        if exclude_seen:
            scores[row.indices] = -np.inf
        ids, values = top_n(scores, n)
        keep = np.isfinite(values) & (values > 0)
        return ids[keep], values[keep]
