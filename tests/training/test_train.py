"""train_model: happy path, typed errors, and `current` never pointing at a broken model."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from recsys.matrix import build_matrix
from recsys.models import MODEL_TYPES, model_type
from recsys.rules.learned_complements import LearnedComplements
from training.artifacts import current_version, list_versions, load_model, save_model
from training.errors import TrainingError
from training.serving import load_serving_model
from training.train import ORDER_COUNT_MODELS, fit_model, resolve_params, train_model

FAST = {"factors": 4, "iterations": 3}


def test_train_saves_and_marks_current(
    purchases: pl.DataFrame, catalog: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    calls: list[tuple[str, int, int]] = []
    result = train_model(
        purchases,
        catalog,
        model="hybrid",
        params=FAST,
        now=now,
        models_dir=tmp_path,
        progress=lambda stage, done, total: calls.append((stage, done, total)),
        extras={"categories": {"gifts": "consumable"}},
    )
    assert result.made_current
    assert current_version(tmp_path) == result.version
    assert result.counts["users"] == purchases["customer_id"].n_unique()
    assert set(result.timings) >= {"matrix", "fit", "save", "verify"}
    assert calls[-1][1] == calls[-1][2]
    loaded = load_model(tmp_path)
    assert loaded.extras == {"categories": {"gifts": "consumable"}}
    assert loaded.recommender.recommend("C1", 3)


def test_learned_complements_are_saved_as_arrays(
    purchases: pl.DataFrame, catalog: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    """Complements leave meta.json for arrays.npz; the served model sees the same mapping."""
    learned = {"I1": [{"item_id": "I3", "lift": 4.5, "support": 3},
                      {"item_id": "I2", "lift": 2.0, "support": 2}],
               "I2": [{"item_id": "I1", "lift": 2.0, "support": 2}]}
    extras = {"complements": learned, "category_behaviour": {}}
    result = train_model(purchases, catalog, model="als", params=FAST, now=now,
                         models_dir=tmp_path, extras=extras)
    loaded = load_model(tmp_path, result.version)
    assert "complements" not in loaded.extras
    assert set(loaded.extra_arrays) >= {"complements.anchors", "complements.item_codes"}
    served = load_serving_model(tmp_path, result.version)
    assert served.complements == LearnedComplements.from_dict(learned)
    assert [c.item_id for c in served.complements.for_item("I1")] == ["I3", "I2"]
    # an artifact with the complements in meta.json (as before 2026-11-30) still serves them
    fitted = fit_model(purchases, catalog, model="als", params=FAST, now=now)
    old = save_model(tmp_path / "old", fitted.recommender, created_at=now,
                     matrix_params=fitted.params.matrix_json(), data_fingerprint={},
                     extras={"complements": learned})
    served_old = load_serving_model(tmp_path / "old", old)
    assert served_old.complements == served.complements


def test_keep_prunes_old_versions(
    purchases: pl.DataFrame, catalog: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    for hour in range(3):
        result = train_model(
            purchases,
            catalog,
            model="popular",
            now=now.replace(hour=hour),
            models_dir=tmp_path,
            keep=2,
        )
    assert len(list_versions(tmp_path)) == 2
    assert current_version(tmp_path) == result.version


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        ("svd", None, "unknown model"),
        ("als", {"factorz": 3}, "unknown parameter"),
        ("als", {"factors": 0}, "factors"),
        ("als", {"weighting": "magic"}, "weighting"),
    ],
)
def test_bad_settings_raise_training_error(
    purchases: pl.DataFrame,
    tmp_path: Path,
    now: datetime,
    model: str,
    params: dict[str, object] | None,
    message: str,
) -> None:
    with pytest.raises(TrainingError, match=message):
        train_model(purchases, None, model=model, params=params, now=now, models_dir=tmp_path)
    assert current_version(tmp_path) is None


def test_empty_data(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    with pytest.raises(TrainingError, match="no purchases"):
        train_model(purchases.clear(), None, model="als", now=now, models_dir=tmp_path)


def test_one_customer(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    one = purchases.filter(pl.col("customer_id") == "C1")
    with pytest.raises(TrainingError, match="two customers"):
        train_model(one, None, model="als", now=now, models_dir=tmp_path)


def test_only_returns(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    returns = purchases.filter(pl.col("quantity") < 0)
    with pytest.raises(TrainingError):
        train_model(returns, None, model="als", now=now, models_dir=tmp_path)


def test_failed_training_keeps_current(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    good = train_model(purchases, None, model="popular", now=now, models_dir=tmp_path)
    with pytest.raises(TrainingError):
        train_model(purchases.clear(), None, model="als", now=now, models_dir=tmp_path)
    assert current_version(tmp_path) == good.version


def test_catalog_limits_items(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    catalog = pl.DataFrame({"item_id": ["I0", "I1", "I2", "I3"]})
    result = train_model(purchases, catalog, model="popular", now=now, models_dir=tmp_path)
    assert result.counts["items"] == 4


def test_resolve_params_splits_layers() -> None:
    resolved = resolve_params("als", {"half_life_days": 10.0, "factors": 8})
    assert resolved.matrix.half_life_days == 10.0
    assert resolved.model["factors"] == 8
    assert "half_life_days" not in resolved.model


# A pair is fitted as its two models, each on its own matrix (tests/training/test_paired.py).
@pytest.mark.parametrize("model", sorted(set(MODEL_TYPES) - ORDER_COUNT_MODELS - {"paired"}))
def test_models_without_order_counts_do_not_read_them(
    purchases: pl.DataFrame, now: datetime, model: str
) -> None:
    """fit_model skips the order counts for these models: their fit must not depend on them."""
    resolved = resolve_params(model, FAST if model in ("als", "bpr") else {})
    full = build_matrix(purchases, resolved.matrix, now=now)
    lean = dataclasses.replace(full, order_counts=sp.csr_matrix(full.shape, dtype=np.float32))
    fitted = []
    for interactions in (full, lean):
        recommender = model_type(model).from_params(resolved.model, num_threads=1)
        recommender.fit(interactions)
        fitted.append(recommender)
    arrays = [
        {k: v for k, v in r.to_arrays().items() if not k.startswith("order_counts.")}
        for r in fitted
    ]
    assert arrays[0].keys() == arrays[1].keys()
    for key in arrays[0]:
        np.testing.assert_array_equal(arrays[0][key], arrays[1][key], err_msg=key)
    for customer in ("C1", "C2", "nobody"):
        assert fitted[0].recommend(customer, 5) == fitted[1].recommend(customer, 5)
    assert fitted[0].recommend("nobody", 5, ["I1", "I3"]) == fitted[1].recommend(
        "nobody", 5, ["I1", "I3"]
    )


@pytest.mark.parametrize("model", ["als", "hybrid"])
def test_order_counts_only_where_read(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime, model: str
) -> None:
    fitted = fit_model(purchases, None, model=model, params=FAST, now=now)
    counts = fitted.interactions.order_counts
    assert counts.shape == fitted.interactions.shape
    assert (counts.nnz > 0) == (model in ORDER_COUNT_MODELS)
    result = train_model(purchases, None, model=model, params=FAST, now=now, models_dir=tmp_path)
    loaded = load_model(tmp_path, result.version).recommender
    assert loaded.data.order_counts.nnz == counts.nnz
    assert loaded.recommend("C1", 3)  # two fits (threads) may differ in the last digits


def test_catalog_without_any_purchased_item_is_a_clear_error(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    catalog = pl.DataFrame({"item_id": ["not-sold-1", "not-sold-2"]})
    with pytest.raises(TrainingError, match="no purchase refers to an item of the catalog"):
        train_model(purchases, catalog, model="als", now=now, models_dir=tmp_path)
    assert current_version(tmp_path) is None


def test_catalog_of_other_id_type_without_a_match_is_a_clear_error(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    catalog = pl.DataFrame({"item_id": [101, 102]})
    with pytest.raises(TrainingError, match="no purchase refers to an item of the catalog"):
        train_model(purchases, catalog, model="als", now=now, models_dir=tmp_path)
