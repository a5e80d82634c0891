"""Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via implicit's CPU solver."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares

from recsys.models.base import (
    ImplicitRecommender,
    ModelStateError,
    TrainedData,
    require_array,
)
from recsys.models.topk import FactorTopK

__all__ = ["ALSParams", "ALSRecommender", "build_als", "restore_als"]


@dataclass(frozen=True, slots=True)
class ALSParams:
    """factors: latent dimensions; regularization: L2 weight; alpha: confidence
    scale (C = 1 + alpha * value); iterations: ALS sweeps; random_state: seed."""

    factors: int = 64
    regularization: float = 0.1
    alpha: float = 2.0
    iterations: int = 15
    random_state: int = 42

    def __post_init__(self) -> None:
        if self.factors < 1 or self.iterations < 1:
            raise ValueError("factors and iterations must be >= 1")
        if self.regularization < 0 or self.alpha <= 0:
            raise ValueError("regularization must be >= 0 and alpha > 0")


def build_als(params: ALSParams, num_threads: int) -> AlternatingLeastSquares:
    """An unfitted CPU ALS model (call inside `single_threaded_blas`)."""
    return AlternatingLeastSquares(
        factors=params.factors,
        regularization=params.regularization,
        alpha=params.alpha,
        iterations=params.iterations,
        random_state=params.random_state,
        num_threads=num_threads,
    )


def restore_als(
    params: ALSParams, num_threads: int, data: TrainedData, arrays: Mapping[str, np.ndarray]
) -> AlternatingLeastSquares:
    model = build_als(params, num_threads)
    model.user_factors = require_array(
        arrays, "als.user_factors", (len(data.user_ids), params.factors)
    )
    model.item_factors = require_array(
        arrays, "als.item_factors", (len(data.item_ids), params.factors)
    )
    return model


def als_arrays(model: AlternatingLeastSquares, top: FactorTopK | None) -> dict[str, np.ndarray]:
    """The factors, and the norm-sorted index that lets serving prune every top-k."""
    arrays = {
        "als.user_factors": np.asarray(model.user_factors, dtype=np.float32),
        "als.item_factors": np.asarray(model.item_factors, dtype=np.float32),
    }
    if top is not None:
        arrays.update(top.to_arrays("als"))
    return arrays


def restore_top(model: AlternatingLeastSquares, arrays: Mapping[str, np.ndarray]) -> FactorTopK:
    """The top-k scorer over the restored item factors, with the saved index if any."""
    try:
        return FactorTopK.from_arrays(np.asarray(model.item_factors), arrays, "als")
    except ValueError as exc:
        raise ModelStateError(str(exc)) from exc


class ALSRecommender(ImplicitRecommender[ALSParams, AlternatingLeastSquares]):
    """Matrix factorisation; unknown customers are folded in with `recalculate_user`."""

    name = "als"
    params_type = ALSParams

    _top: FactorTopK | None = None

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        model = build_als(self._params, self._num_threads)
        model.fit(data.user_items, show_progress=show_progress)
        self._model = model
        self._top = FactorTopK(np.asarray(model.item_factors))

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        self._model = restore_als(self._params, self._num_threads, data, arrays)
        self._top = restore_top(self._model, arrays)

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """As implicit's batch `recommend`; without seen-item filtering, large batches
        (precomputing every customer's list) take the norm-pruned search."""
        if exclude_seen or self._top is None:
            return super()._score_users(user_idx, n, exclude_seen)
        users = np.asarray(self.model.user_factors)[user_idx]
        return self._top(users, min(n, len(self.data.item_ids)), self._num_threads)

    def _model_arrays(self) -> dict[str, np.ndarray]:
        return als_arrays(self.model, self._top)

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.model.recommend(
            0,
            row,
            N=min(n, len(self.data.item_ids)),
            recalculate_user=True,
            filter_already_liked_items=exclude_seen,
        )
        return np.asarray(ids), np.asarray(scores)

    def _similar(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        ids, scores = self.model.similar_items(item_idx, N=min(n, len(self.data.item_ids)))
        return np.asarray(ids), np.asarray(scores)
