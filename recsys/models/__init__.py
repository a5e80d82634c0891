"""Recommender models behind one contract (`Recommender`), keyed by name."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from recsys.models.als import ALSParams, ALSRecommender
from recsys.models.base import JSONValue, ModelStateError, Recommender
from recsys.models.bpr import BPRParams, BPRRecommender
from recsys.models.hybrid import HybridParams, HybridRecommender
from recsys.models.item_knn import ItemKNNParams, ItemKNNRecommender
from recsys.models.paired import PairedParams, PairedRecommender
from recsys.models.popular import PopularParams, PopularRecommender
from recsys.models.repurchase import RepurchaseParams, RepurchaseRecommender
from recsys.models.tifu_knn import TifuKNNParams, TifuKNNRecommender

__all__ = [
    "MODEL_TYPES",
    "ALSParams",
    "ALSRecommender",
    "BPRParams",
    "BPRRecommender",
    "HybridParams",
    "HybridRecommender",
    "ItemKNNParams",
    "ItemKNNRecommender",
    "JSONValue",
    "ModelStateError",
    "PairedParams",
    "PairedRecommender",
    "PopularParams",
    "PopularRecommender",
    "Recommender",
    "RepurchaseParams",
    "RepurchaseRecommender",
    "TifuKNNParams",
    "TifuKNNRecommender",
    "UnknownModelError",
    "create_model",
    "model_type",
]


class UnknownModelError(ValueError):
    """A model name that is not one of `MODEL_TYPES`."""


# read-only: the set of models is fixed at import, nobody registers at runtime
MODEL_TYPES: Mapping[str, type[Recommender[Any]]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            ALSRecommender,
            BPRRecommender,
            ItemKNNRecommender,
            PopularRecommender,
            RepurchaseRecommender,
            HybridRecommender,
            TifuKNNRecommender,
            PairedRecommender,
        )
    }
)


def model_type(name: str) -> type[Recommender[Any]]:
    """The model class for `name`; raises UnknownModelError listing the valid names."""
    try:
        return MODEL_TYPES[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of {', '.join(MODEL_TYPES)}"
        ) from None


def create_model(
    name: str, params: Mapping[str, Any] | None = None, *, num_threads: int = 0
) -> Recommender[Any]:
    """An unfitted model; unknown parameter names raise ValueError."""
    return model_type(name).from_params(params or {}, num_threads=num_threads)
