"""Two models in one artifact: one for placements that bring bought items back, one for discovery.

A newsletter may remind a customer of what they rebuy (`categories.rebuy_placements`);
an anniversary or birthday voucher is only ever for something new. The best ranking for
the first is usually repeat-aware (personal repurchase, TIFU-kNN), the best for the
second a collaborative model (ALS, item-kNN): on UCI Online Retail's validation window
TIFU-kNN serves the better newsletter and ALS the better anniversary list. `--model
auto` picks each on the validation window and saves the pair when they differ.

Each model keeps its own matrix (a repeat model counts orders with a slow decay, ALS
binary purchases), over the same customers and items; the artifact keeps the rebuy
model's matrix where a single model's would be and everything else of each model under
its own prefix. Everything but `for_placement` and `similar_items` answers with
the `rebuy` model, so a caller that does not know about placements gets the newsletter's
model; similar items (cross-sell's "goes with") come from the discovery model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from recsys.models.base import (
    CandidateLists,
    JSONValue,
    ModelStateError,
    Recommender,
    TrainedData,
    csr_arrays,
    csr_from_arrays,
    require_array,
)
from recsys.records import ScoredItem

__all__ = ["PairedParams", "PairedRecommender"]

_PREFIXES = ("rebuy.", "discovery.")


@dataclass(frozen=True, slots=True)
class PairedParams:
    """`rebuy` / `discovery`: model names; `*_params`: their hyperparameters;
    `*_matrix`: how each one's matrix was built (what the artifact records of it)."""

    rebuy: str = "tifu-knn"
    discovery: str = "als"
    rebuy_params: dict[str, JSONValue] = field(default_factory=dict)
    discovery_params: dict[str, JSONValue] = field(default_factory=dict)
    rebuy_matrix: dict[str, JSONValue] = field(default_factory=dict)
    discovery_matrix: dict[str, JSONValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from recsys.models import MODEL_TYPES

        for role, name in (("rebuy", self.rebuy), ("discovery", self.discovery)):
            if name == PairedRecommender.name or name not in MODEL_TYPES:
                known = ", ".join(m for m in MODEL_TYPES if m != PairedRecommender.name)
                raise ValueError(f"{role} must be one of {known}, got {name!r}")


class PairedRecommender(Recommender[PairedParams]):
    """`rebuy` for placements that may re-offer bought items, `discovery` for the others."""

    name = "paired"
    params_type = PairedParams

    def __init__(self, params: PairedParams | None = None, *, num_threads: int = 0) -> None:
        from recsys.models import create_model

        super().__init__(params or PairedParams(), num_threads=num_threads)
        self._rebuy = create_model(
            self._params.rebuy, self._params.rebuy_params, num_threads=num_threads
        )
        self._discovery = create_model(
            self._params.discovery, self._params.discovery_params, num_threads=num_threads
        )

    @classmethod
    def of(
        cls,
        rebuy: Recommender[Any],
        discovery: Recommender[Any],
        matrices: tuple[Mapping[str, JSONValue], Mapping[str, JSONValue]] = ({}, {}),
    ) -> PairedRecommender:
        """The pair of two fitted models over the same customers and items (no refit);
        `matrices`: each one's matrix parameters, recorded."""
        if (
            rebuy.data.user_ids.ids != discovery.data.user_ids.ids
            or rebuy.data.item_ids.ids != discovery.data.item_ids.ids
        ):
            raise ValueError("the two models of a pair must know the same customers and items")
        pair = cls(
            PairedParams(
                rebuy.name, discovery.name, rebuy.params, discovery.params,
                dict(matrices[0]), dict(matrices[1]),
            ),
            num_threads=rebuy._num_threads,
        )
        pair._rebuy, pair._discovery = rebuy, discovery
        pair._data = rebuy.data
        return pair

    @property
    def params(self) -> dict[str, JSONValue]:
        return {
            "rebuy": self._rebuy.name,
            "discovery": self._discovery.name,
            "rebuy_params": self._rebuy.params,
            "discovery_params": self._discovery.params,
            "rebuy_matrix": dict(self._params.rebuy_matrix),
            "discovery_matrix": dict(self._params.discovery_matrix),
        }

    @property
    def rebuy(self) -> Recommender[Any]:
        return self._rebuy

    @property
    def discovery(self) -> Recommender[Any]:
        return self._discovery

    def for_placement(self, rebuys: bool) -> Recommender[Any]:
        return self._rebuy if rebuys else self._discovery

    # ---- fitting and persistence: each model's own, under its prefix ---------------------

    def _fit(self, data: TrainedData, *, show_progress: bool) -> None:
        # One matrix for both: `training.train.fit_model` fits a pair as two models on
        # their own matrices and joins them with `of`.
        for model in (self._rebuy, self._discovery):
            model._fit(data, show_progress=show_progress)
            model._data = data

    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None:
        n_users, n_items = len(data.user_ids), len(data.item_ids)
        shape = (n_users, n_items)
        own_data = {
            "rebuy.": data,
            "discovery.": TrainedData(
                data.user_ids,
                data.item_ids,
                csr_from_arrays("discovery.user_items", arrays, shape),
                csr_from_arrays("discovery.order_counts", arrays, shape),
                require_array(arrays, "discovery.popularity", (n_items,)),
            ),
        }
        for prefix, model in zip(_PREFIXES, (self._rebuy, self._discovery), strict=True):
            own = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
            try:
                model._restore(own_data[prefix], own)
            except KeyError as exc:
                raise ModelStateError(f"paired artifact lacks {prefix}{exc.args[0]}") from exc
            model._data = own_data[prefix]
            model._lists = CandidateLists.from_arrays(own, n_users, n_items)

    def _model_arrays(self) -> dict[str, np.ndarray]:
        found = self._discovery.data
        arrays: dict[str, np.ndarray] = {
            **csr_arrays("discovery.user_items", found.user_items),
            **csr_arrays("discovery.order_counts", found.order_counts),
            "discovery.popularity": found.popularity.astype(np.float32),
        }
        for prefix, model in zip(_PREFIXES, (self._rebuy, self._discovery), strict=True):
            own = model._model_arrays()
            if model._lists is not None:
                own.update(model._lists.to_arrays())
            arrays.update({prefix + k: v for k, v in own.items()})
        return arrays

    @property
    def precomputed(self) -> int:
        return self._rebuy.precomputed

    def precompute(
        self,
        k: int,
        *,
        batch: int = 2048,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Precompute both models' lists (`progress` counts customers over both passes)."""
        n_users = len(self.data.user_ids)
        for step, model in enumerate((self._rebuy, self._discovery)):
            report = (
                None
                if progress is None
                else (lambda done, _total, s=step: progress(s * n_users + done, 2 * n_users))
            )
            model.precompute(k, batch=batch, progress=report)

    # ---- everything placement-blind answers with the rebuy model ---------------------------

    def knows(self, customer_id: str) -> bool:
        return self._rebuy.knows(customer_id)

    def popular(self, n: int) -> list[ScoredItem]:
        return self._rebuy.popular(n)

    def recommend(
        self,
        customer_id: str,
        n: int,
        history: Sequence[str] = (),
        *,
        exclude_seen: bool = False,
    ) -> Sequence[ScoredItem]:
        return self._rebuy.recommend(customer_id, n, history, exclude_seen=exclude_seen)

    def recommend_batch(
        self, customer_ids: Sequence[str], n: int, *, exclude_seen: bool = False
    ) -> dict[str, Sequence[ScoredItem]]:
        return self._rebuy.recommend_batch(customer_ids, n, exclude_seen=exclude_seen)

    def similar_items(self, item_id: str, n: int) -> list[ScoredItem]:
        # What goes with an item is something new: the discovery model's neighbours.
        return self._discovery.similar_items(item_id, n)

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._rebuy._score_users(user_idx, n, exclude_seen)

    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        return self._rebuy._score_row(row, n, exclude_seen)
