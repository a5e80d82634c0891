"""Bayesian Personalised Ranking (Rendle et al. 2009) via implicit's CPU SGD."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking

from recsys.models.base import ImplicitRecommender, TrainedData, require_array, top_n

__all__ = ["BPRParams", "BPRRecommender"]


@dataclass(frozen=True, slots=True)
class BPRParams:
    """factors: latent dimensions (implicit adds one bias column); learning_rate,
    regularization: SGD settings; iterations: epochs; random_state: seed."""

    factors: int = 64
    learning_rate: float = 0.05
    regularization: float = 0.01
    iterations: int = 100
    random_state: int = 42

    def __post_init__(self) -> None:
        if self.factors < 1 or self.iterations < 1:
            raise ValueError("factors and iterations must be >= 1")
        if self.learning_rate <= 0 or self.regularization < 0:
            raise ValueError("learning_rate must be > 0 and regularization >= 0")


class BPRRecommender(ImplicitRecommender[BPRParams, BayesianPersonalizedRanking]):
    """Pairwise-ranking factorisation; unknown customers = mean of their items' factors."""

    name = "bpr"
    params_type = BPRParams

    def _build(self) -> BayesianPersonalizedRanking:
        p = self._params
        return BayesianPersonalizedRanking(
            factors=p.factors,
            learning_rate=p.learning_rate,
            regularization=p.regularization,
            iterations=p.iterations,
            random_state=p.random_state,
            num_threads=self._num_threads,
        )

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        model = self._build()
        model.fit(data.user_items, show_progress=show_progress)
        self._model = model

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        model = self._build()
        width = self._params.factors + 1  # implicit appends the item-bias column
        model.user_factors = require_array(arrays, "bpr.user_factors", (len(data.user_ids), width))
        model.item_factors = require_array(arrays, "bpr.item_factors", (len(data.item_ids), width))
        self._model = model

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return {
            "bpr.user_factors": np.asarray(self.model.user_factors, dtype=np.float32),
            "bpr.item_factors": np.asarray(self.model.item_factors, dtype=np.float32),
        }

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(self.model.item_factors)
        user = items[row.indices].mean(axis=0)
        user[-1] = 1.0  # the user side of implicit's bias column is a constant 1
        scores = items @ user
        if exclude_seen:
            scores[row.indices] = -np.inf
        return top_n(scores, n)

    def _similar(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.model.similar_items(item_idx, N=min(n, len(self.data.item_ids)))
        return np.asarray(ids), np.asarray(scores)
