"""Train a model from the store's frames and save it as the new current version."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import polars as pl

from recsys.matrix import REQUIRED_COLUMNS, InteractionMatrix, MatrixParams, build_matrix
from recsys.models import MODEL_TYPES, Recommender, UnknownModelError, model_type
from recsys.models.base import JSONValue
from recsys.models.paired import PairedParams, PairedRecommender
from recsys.offers import COMPLEMENTS_KEY
from recsys.rules.learned_complements import LearnedComplements
from training.artifacts import load_model, prune, save_model, use_version
from training.errors import ArtifactError, TrainingError

__all__ = [
    "DEFAULT_CANDIDATES",
    "DEFAULT_MODEL",
    "DEFAULT_PARAMS",
    "ORDER_COUNT_MODELS",
    "FittedModel",
    "Progress",
    "ResolvedParams",
    "TrainResult",
    "fingerprint",
    "fit_model",
    "resolve_params",
    "train_model",
]

Progress = Callable[[str, int, int], None]
"""Progress callback: (stage description, steps done, total steps)."""

DEFAULT_MODEL = "hybrid"
#: Items precomputed per customer for serving (`--candidates`). None by default: the
#: saved norm-sorted index answers a customer's top-100 from ~5% of the catalog
#: (`recsys.models.topk`), so the lists (8 bytes per item and customer, 0.15-0.2x of the
#: fit's time at 1M customers) only pay for services that need every microsecond.
DEFAULT_CANDIDATES = 0

# Best settings of the search on UCI Online Retail (docs/models.md). Matrix keys
# (confidence, half_life_days, weighting, bm25_*, window_days) and model keys
# share one flat mapping so a CLI can pass `--param key=value` without knowing
# which layer consumes it.
DEFAULT_PARAMS: Mapping[str, Mapping[str, JSONValue]] = MappingProxyType(
    {
        "als": MappingProxyType(
            {
                "confidence": "binary",
                "weighting": "none",
                "half_life_days": 60.0,
                "factors": 64,
                "regularization": 0.1,
                "alpha": 2.0,
                "iterations": 15,
            }
        ),
        "hybrid": MappingProxyType(
            {
                "confidence": "binary",
                "weighting": "none",
                "half_life_days": 60.0,
                "factors": 64,
                "regularization": 0.1,
                "alpha": 2.0,
                "iterations": 15,
                "repurchase_weight": 2.0,
                "habit_floor": 0.5,
            }
        ),
        "bpr": MappingProxyType(
            {
                "confidence": "binary",
                "half_life_days": 60.0,
                "factors": 64,
                "learning_rate": 0.005,
                "iterations": 100,
            }
        ),
        "item-knn": MappingProxyType(
            {
                "confidence": "binary",
                "half_life_days": 60.0,
                "similarity": "bm25",
                "neighbours": 200,
            }
        ),
        "popular": MappingProxyType({"confidence": "binary", "by": "customers"}),
        "repurchase": MappingProxyType({"confidence": "orders", "by": "orders"}),
        "tifu-knn": MappingProxyType(
            {"confidence": "orders", "half_life_days": 90.0, "neighbours": 100, "alpha": 0.7}
        ),
    }
)

_MATRIX_KEYS = frozenset(f.name for f in dataclasses.fields(MatrixParams))

# Models that read `InteractionMatrix.order_counts` (distinct orders per pair). For the
# others the matrix build skips counting them and the artifact holds an empty matrix of
# the same shape (tests/training check that their fit does not depend on it).
ORDER_COUNT_MODELS = frozenset({"repurchase", "hybrid"})


@dataclass(frozen=True, slots=True)
class ResolvedParams:
    """Defaults merged with overrides, split by the layer that consumes them."""

    matrix: MatrixParams
    model: dict[str, Any]

    def matrix_json(self) -> dict[str, JSONValue]:
        return dict(dataclasses.asdict(self.matrix))


@dataclass(frozen=True, slots=True)
class FittedModel:
    """A fitted model with what is needed to save it."""

    recommender: Recommender[Any]
    params: ResolvedParams
    interactions: InteractionMatrix
    timings: dict[str, float]


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Outcome of `train_model`.

    timings: seconds per stage (`matrix`, `fit`, `save`, `verify`).
    counts: `purchases` (input rows), `users`, `items`, `nnz` of the matrix.
    """

    version: str
    model: str
    params: dict[str, JSONValue]
    timings: dict[str, float]
    counts: dict[str, int]
    made_current: bool
    pruned: tuple[str, ...] = ()


def resolve_params(model: str, overrides: Mapping[str, Any] | None = None) -> ResolvedParams:
    """Merge `DEFAULT_PARAMS[model]` with `overrides` and validate both parts.

    Raises TrainingError for an unknown model or parameter, or a bad value.
    """
    try:
        cls = model_type(model)
    except UnknownModelError as exc:
        raise TrainingError(str(exc)) from exc
    merged: dict[str, Any] = {**DEFAULT_PARAMS.get(model, {}), **(overrides or {})}
    matrix_values = {k: v for k, v in merged.items() if k in _MATRIX_KEYS}
    model_values = {k: v for k, v in merged.items() if k not in _MATRIX_KEYS}
    try:
        matrix = MatrixParams(**matrix_values)
        cls.from_params(model_values)  # validates names and values now, not after the fit
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"bad parameters for {model!r}: {exc}") from exc
    return ResolvedParams(matrix, model_values)


def fingerprint(purchases: pl.DataFrame, interactions: InteractionMatrix) -> dict[str, JSONValue]:
    """What a model was trained on: the purchase lines read, their time range, and a
    sha256 of the matrix fitted (customer and item ids, CSR arrays).

    Two artifacts with the same hash were fitted on the same matrix, whatever the
    lines that produced it. Hashing the matrix costs about 0.1 s at 1M customers
    (160 MB); hashing the 24M purchase rows took 1.7 s, and counting their distinct
    order ids 15-20 s, as long as the rest of saving.
    """
    matrix = interactions.matrix
    digest = hashlib.sha256()
    for ids in (interactions.user_ids, interactions.item_ids):
        try:
            digest.update(np.ascontiguousarray(ids.utf8()).data)
        except ValueError:  # ids containing NUL have no bytes-array form
            digest.update(json.dumps(list(ids.ids)).encode("utf-8", "surrogatepass"))
    for part in (matrix.indptr, matrix.indices, matrix.data):
        digest.update(np.ascontiguousarray(part).data)
    times = purchases.get_column("purchased_at")
    first, last = (times.min(), times.max()) if purchases.height else (None, None)
    return {
        "rows": purchases.height,
        "first_purchase": first.isoformat() if isinstance(first, datetime) else None,
        "last_purchase": last.isoformat() if isinstance(last, datetime) else None,
        "matrix_sha256": digest.hexdigest(),
    }


def _check_purchases(purchases: pl.DataFrame) -> None:
    missing = [c for c in REQUIRED_COLUMNS if c not in purchases.columns]
    if missing:
        raise TrainingError(f"purchases lack columns {missing}")
    if purchases.height == 0:
        raise TrainingError("no purchases to train on")


def _catalog_items(catalog: pl.DataFrame | None) -> pl.Series | None:
    """The items a model may learn: the store rejects lines whose item is not in the
    catalog, and an item removed from the catalog since must not be recommended."""
    if catalog is None or not catalog.height or "item_id" not in catalog.columns:
        return None
    return catalog.get_column("item_id")


#: Where an artifact's metrics record the instant its decay was measured from.
DATA_AS_OF_KEY = "data_as_of"

#: Decay weights below 2**-100 are indistinguishable from nothing in float32 sums.
MAX_DECAY_HALF_LIVES = 100


def reference_time(
    purchases: pl.DataFrame,
    as_of: datetime | None,
    *,
    half_life_days: float | None = None,
) -> datetime:
    """The instant training measures recency from: `as_of`, else the newest purchase.

    Decay and learned cycles are relative to the data, not the wall clock, so an old
    export trains the same model today as on the day it was taken. Raises
    TrainingError when nothing is left before `as_of`, or when `as_of` lies so far
    after the newest purchase that the recency decay would weigh every line ~0.
    """
    _check_purchases(purchases)
    newest = purchases.get_column("purchased_at").max()
    assert isinstance(newest, datetime)
    if as_of is None:
        return newest
    if half_life_days is not None:
        age_days = (as_of - newest).total_seconds() / 86400.0
        if age_days > MAX_DECAY_HALF_LIVES * half_life_days:
            raise TrainingError(
                f"the newest purchase ({newest:%Y-%m-%d}) is {age_days:,.0f} days before "
                f"{as_of:%Y-%m-%d}: with a {half_life_days:g}-day half-life every line would "
                "weigh ~0; train as of the data (drop --as-of) or set a longer --half-life-days"
            )
    return as_of


def fit_model(
    purchases: pl.DataFrame,
    catalog: pl.DataFrame | None,
    *,
    model: str,
    params: Mapping[str, Any] | None = None,
    now: datetime,
    num_threads: int = 0,
    show_progress: bool = False,
) -> FittedModel:
    """Build the matrix (reference time `now`, naive UTC) and fit `model` on it.

    Raises TrainingError for empty data, fewer than two customers, an unknown
    model or parameter.
    """
    if model == PairedRecommender.name:
        return _fit_paired(
            purchases, catalog, params or {}, now=now, num_threads=num_threads,
            show_progress=show_progress,
        )
    resolved = resolve_params(model, params)
    _check_purchases(purchases)
    catalog_items = _catalog_items(catalog)
    started = time.perf_counter()
    interactions = build_matrix(
        purchases,
        resolved.matrix,
        now=now,
        catalog_items=catalog_items,
        order_counts=model in ORDER_COUNT_MODELS,
    )
    built = time.perf_counter()
    users, items = interactions.shape
    if users == 0 and catalog_items is not None and not bool(
        purchases.get_column("item_id").cast(pl.Utf8)
        .is_in(catalog_items.cast(pl.Utf8).implode()).any()
    ):
        raise TrainingError("no purchase refers to an item of the catalog")
    if users < 2:
        raise TrainingError(
            f"need purchases (net quantity > 0) from at least two customers, found {users}"
        )
    if items < 2:
        raise TrainingError(f"need at least two purchased items, found {items}")
    recommender = model_type(model).from_params(resolved.model, num_threads=num_threads)
    try:
        recommender.fit(interactions, show_progress=show_progress)
    except (ValueError, RuntimeError) as exc:
        raise TrainingError(f"fitting {model} failed: {exc}") from exc
    fitted = time.perf_counter()
    timings = {"matrix": built - started, "fit": fitted - built}
    return FittedModel(recommender, resolved, interactions, timings)


def _fit_paired(
    purchases: pl.DataFrame,
    catalog: pl.DataFrame | None,
    params: Mapping[str, Any],
    *,
    now: datetime,
    num_threads: int,
    show_progress: bool,
) -> FittedModel:
    """A `paired` model: each of its two models fitted on its own matrix, then joined.

    `params`: `rebuy` and `discovery` (model names) and `rebuy_params` /
    `discovery_params` (overrides of each model's defaults, matrix keys included).
    """
    resolve_params(PairedRecommender.name, params)  # names and keys, before any fitting
    defaults = PairedParams()
    fitted = [
        fit_model(
            purchases,
            catalog,
            model=str(params.get(role, getattr(defaults, role))),
            params=dict(params.get(f"{role}_params") or {}),
            now=now,
            num_threads=num_threads,
            show_progress=show_progress,
        )
        for role in ("rebuy", "discovery")
    ]
    rebuy, discovery = fitted
    try:
        pair = PairedRecommender.of(
            rebuy.recommender,
            discovery.recommender,
            (rebuy.params.matrix_json(), discovery.params.matrix_json()),
        )
    except ValueError as exc:
        raise TrainingError(f"fitting paired failed: {exc}") from exc
    timings = {
        stage: rebuy.timings.get(stage, 0.0) + discovery.timings.get(stage, 0.0)
        for stage in ("matrix", "fit")
    }
    resolved = ResolvedParams(rebuy.params.matrix, dict(pair.params))
    return FittedModel(pair, resolved, rebuy.interactions, timings)


def pack_extras(
    extras: Mapping[str, JSONValue] | None,
) -> tuple[dict[str, JSONValue], dict[str, np.ndarray]]:
    """Move the learned complements out of the JSON extras into arrays for the artifact.

    At 100k items they are 27 MB of JSON that every serving worker would parse into
    a dict of objects; as arrays they are mapped and read per anchor. Extras that
    are not in `LearnedComplements.to_dict` form stay JSON.
    """
    json_extras = dict(extras or {})
    raw = json_extras.get(COMPLEMENTS_KEY)
    if not isinstance(raw, dict):
        return json_extras, {}
    try:
        packed = LearnedComplements.from_dict(raw).to_arrays()
    except (KeyError, TypeError, ValueError):
        return json_extras, {}
    del json_extras[COMPLEMENTS_KEY]
    return json_extras, {f"{COMPLEMENTS_KEY}.{name}": value for name, value in packed.items()}


def train_model(
    purchases: pl.DataFrame,
    catalog: pl.DataFrame | None,
    *,
    model: str = DEFAULT_MODEL,
    params: Mapping[str, Any] | None = None,
    now: datetime,
    models_dir: Path,
    progress: Progress | None = None,
    num_threads: int = 0,
    show_progress: bool = False,
    extras: Mapping[str, JSONValue] | None = None,
    metrics: Mapping[str, JSONValue] | None = None,
    make_current: bool = True,
    keep: int | None = None,
    candidates: int = DEFAULT_CANDIDATES,
    created_at: datetime | None = None,
) -> TrainResult:
    """Train `model` on `purchases`, save a new version and make it current.

    `candidates` items per customer are precomputed for serving (0: none, every
    request scores the catalog).

    `now` (naive UTC) is the reference time for recency decay (see `reference_time`),
    saved as `metrics["data_as_of"]`; the version is named after `created_at`
    (default: the wall clock). The new artifact is loaded back before `current` is switched, so a
    broken model never becomes current. `keep` prunes older versions afterwards.
    Raises TrainingError (bad input/settings) or ArtifactError (saving failed).
    """
    if model not in MODEL_TYPES:
        raise TrainingError(f"unknown model {model!r}; choose one of {', '.join(MODEL_TYPES)}")
    total = 4
    report = progress or (lambda _stage, _done, _total: None)
    report(f"fitting {model}", 0, total)
    fitted = fit_model(
        purchases,
        catalog,
        model=model,
        params=params,
        now=now,
        num_threads=num_threads,
        show_progress=show_progress,
    )
    timings = dict(fitted.timings)
    if candidates > 0 and fitted.recommender.personalised:
        report(f"precomputing {candidates} candidates per customer", 1, total)
        started = time.perf_counter()
        fitted.recommender.precompute(candidates)
        timings["precompute"] = time.perf_counter() - started
    report("saving artifact", 2, total)
    started = time.perf_counter()
    extras, extra_arrays = pack_extras(extras)
    version = save_model(
        models_dir,
        fitted.recommender,
        created_at=created_at or datetime.now(UTC).replace(tzinfo=None),
        matrix_params=fitted.params.matrix_json(),
        data_fingerprint=fingerprint(purchases, fitted.interactions),
        timings=timings,
        metrics={**(metrics or {}), DATA_AS_OF_KEY: now.isoformat()},
        extras=extras,
        make_current=False,
        extra_arrays=extra_arrays,
    )
    saved = time.perf_counter()
    report("verifying artifact", 3, total)
    try:
        # Checked as the API and the campaign load it (mapped: names and shapes),
        # without reading a second copy of the arrays into memory. The checksums were
        # just computed from the written files; hashing them again proves nothing.
        if make_current:
            use_version(models_dir, version, num_threads=num_threads, mmap=True,
                        checksums=False)
        else:
            load_model(models_dir, version, num_threads=num_threads, mmap=True,
                       checksums=False)
    except ArtifactError as exc:
        raise ArtifactError(
            f"saved model {version} does not load back; current kept: {exc}"
        ) from exc
    verified = time.perf_counter()
    timings.update(save=saved - started, verify=verified - saved)
    pruned = tuple(prune(models_dir, keep)) if keep is not None else ()
    report("done", total, total)
    users, items = fitted.interactions.shape
    return TrainResult(
        version=version,
        model=model,
        params={**fitted.params.matrix_json(), **fitted.recommender.params},
        timings=timings,
        counts={
            "purchases": purchases.height,
            "users": users,
            "items": items,
            "nnz": fitted.interactions.nnz,
        },
        made_current=make_current,
        pruned=pruned,
    )
