"""Item-item nearest neighbours (cosine or BM25-weighted) via implicit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from implicit._nearest_neighbours import NearestNeighboursScorer
from implicit.nearest_neighbours import ItemItemRecommender, bm25_weight, normalize

from recsys.models.base import ImplicitRecommender, TrainedData, csr_arrays, csr_from_arrays

__all__ = ["ItemKNNParams", "ItemKNNRecommender"]


@dataclass(frozen=True, slots=True)
class ItemKNNParams:
    """similarity: `cosine` or `bm25`; neighbours: kept neighbours per item (K);
    bm25_k1, bm25_b: BM25 parameters (only with `bm25`)."""

    similarity: Literal["cosine", "bm25"] = "cosine"
    neighbours: int = 100
    bm25_k1: float = 1.2
    bm25_b: float = 0.75

    def __post_init__(self) -> None:
        if self.similarity not in ("cosine", "bm25"):
            raise ValueError(f"unknown similarity {self.similarity!r}")
        if self.neighbours < 1:
            raise ValueError("neighbours must be >= 1")


class ItemKNNRecommender(ImplicitRecommender[ItemKNNParams, ItemItemRecommender]):
    """Scores = history row x item-item similarity; fold-in is the same product."""

    name = "item-knn"
    params_type = ItemKNNParams

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        p = self._params
        # Same weighting as implicit's CosineRecommender/BM25Recommender.fit, but
        # handed over as CSR: theirs passes a COO matrix and implicit then warns.
        if p.similarity == "bm25":
            weighted = bm25_weight(data.user_items.T, K1=p.bm25_k1, B=p.bm25_b).T
        else:
            weighted = normalize(data.user_items.T).T
        model = ItemItemRecommender(K=p.neighbours, num_threads=self._num_threads)
        model.fit(sp.csr_matrix(weighted), show_progress=show_progress)
        self._model = model

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        n_items = len(data.item_ids)
        # the Cython scorer wants float64, which is what fit produced
        similarity = csr_from_arrays("knn.similarity", arrays, (n_items, n_items), np.float64)
        model = ItemItemRecommender(K=self._params.neighbours, num_threads=self._num_threads)
        model.similarity = similarity
        model.scorer = NearestNeighboursScorer(similarity)
        self._model = model

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return csr_arrays("knn.similarity", sp.csr_matrix(self.model.similarity))

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.model.recommend(0, row, N=n, filter_already_liked_items=exclude_seen)
        return np.asarray(ids), np.asarray(scores)

    def _similar(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.model.similar_items(item_idx, N=n)
        return np.asarray(ids), np.asarray(scores)
