"""Artifacts: round trip, refusal of corrupt ones, atomic pointer, pruning."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from training import artifacts as training_artifacts
from training.artifacts import (
    FORMAT_VERSION,
    current_version,
    list_versions,
    load_model,
    prune,
    save_model,
    use_version,
)
from training.errors import ArtifactError
from training.train import fingerprint, fit_model

FAST = {"factors": 4, "iterations": 3}


def _save(
    purchases: pl.DataFrame,
    models_dir: Path,
    when: datetime,
    model: str = "als",
    candidates: int = 0,
    **kw: object,
) -> str:
    fitted = fit_model(
        purchases, None, model=model, params=FAST if model == "als" else {}, now=when
    )
    fitted.recommender.precompute(candidates)
    return save_model(
        models_dir,
        fitted.recommender,
        created_at=when,
        matrix_params=fitted.params.matrix_json(),
        data_fingerprint=fingerprint(purchases, fitted.interactions),
        timings=fitted.timings,
        **kw,  # type: ignore[arg-type]
    )


def test_round_trip(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    extras = {"complements": {"I1": ["I3", "I5"]}, "durable": ["tv"], "n": 3}
    fitted = fit_model(purchases, None, model="als", params=FAST, now=now)
    version = save_model(
        tmp_path,
        fitted.recommender,
        created_at=now,
        matrix_params=fitted.params.matrix_json(),
        data_fingerprint=fingerprint(purchases, fitted.interactions),
        metrics={"ndcg@10": 0.5},
        extras=extras,
        make_current=True,
    )
    assert version == now.strftime("%Y-%m-%dT%H-%M-%S") + "-als"
    assert current_version(tmp_path) == version
    loaded = load_model(tmp_path)
    assert loaded.version == version
    assert loaded.extras == extras
    assert loaded.meta.format_version == FORMAT_VERSION
    assert loaded.meta.data_fingerprint["rows"] == purchases.height
    assert loaded.meta.metrics == {"ndcg@10": 0.5}
    original = fitted.recommender.recommend_batch(["C0", "C1", "nobody"], 5)
    assert loaded.recommender.recommend_batch(["C0", "C1", "nobody"], 5) == original
    assert loaded.recommender.params == fitted.recommender.params
    assert not list(tmp_path.glob(".tmp-*"))


@pytest.mark.parametrize("model", ["bpr", "item-knn", "popular", "repurchase", "hybrid"])
def test_round_trip_every_model(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime, model: str
) -> None:
    version = _save(purchases, tmp_path, now, model=model)
    loaded = load_model(tmp_path, version)
    fitted = fit_model(purchases, None, model=model, now=now)
    if model != "bpr":  # BPR's SGD is multi-threaded and not bit-reproducible
        assert loaded.recommender.recommend("C2", 4) == fitted.recommender.recommend("C2", 4)
    assert loaded.meta.model == model


def test_same_second_gets_a_new_name(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    first = _save(purchases, tmp_path, now)
    second = _save(purchases, tmp_path, now)
    assert second == first + "-2"


def _corrupt_arrays(folder: Path) -> None:
    (folder / "arrays.npz").write_bytes(b"not a zip file")


def _rewrite_arrays(folder: Path, change: Callable[[dict[str, np.ndarray]], None]) -> None:
    """Change the arrays and keep the checksum consistent: damage of content, not bytes."""
    with np.load(folder / "arrays.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(folder / "arrays.npz", **arrays)
    meta = json.loads((folder / "meta.json").read_text())
    meta["checksums"]["arrays.npz"] = hashlib.sha256(
        (folder / "arrays.npz").read_bytes()
    ).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))


def _corrupt_shapes(folder: Path) -> None:
    # factors of the wrong shape: incompatible, not damaged
    def narrow(arrays: dict[str, np.ndarray]) -> None:
        arrays["als.item_factors"] = arrays["als.item_factors"][:, :2]

    _rewrite_arrays(folder, narrow)


def _future_format(folder: Path) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (folder / "meta.json").write_text(json.dumps(meta))


def _broken_meta(folder: Path) -> None:
    (folder / "meta.json").write_text("{")


def _missing_ids(folder: Path) -> None:
    _rewrite_arrays(folder, lambda arrays: arrays.pop("ids.item_ids"))


def _ids_not_bytes(folder: Path) -> None:
    def as_numbers(arrays: dict[str, np.ndarray]) -> None:
        arrays["ids.user_ids"] = np.arange(len(arrays["ids.user_ids"]))

    _rewrite_arrays(folder, as_numbers)


def _missing_ids_json(folder: Path) -> None:
    # a format-1 artifact keeps its ids in ids.json only
    _to_format_1(folder)
    (folder / "ids.json").unlink()


def _to_format_1(folder: Path) -> None:
    """Rewrite a saved artifact as the previous format wrote it (ids in ids.json)."""
    ids: dict[str, list[str]] = {}

    def move_ids(arrays: dict[str, np.ndarray]) -> None:
        for key in ("user_ids", "item_ids"):
            ids[key] = [v.decode() for v in arrays.pop(f"ids.{key}").tolist()]

    _rewrite_arrays(folder, move_ids)
    (folder / "ids.json").write_text(json.dumps(ids))
    meta = json.loads((folder / "meta.json").read_text())
    meta["format_version"] = 1
    meta["checksums"]["ids.json"] = hashlib.sha256(
        (folder / "ids.json").read_bytes()
    ).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt_arrays,
        _corrupt_shapes,
        _future_format,
        _broken_meta,
        _missing_ids,
        _ids_not_bytes,
        _missing_ids_json,
    ],
)
def test_corrupt_artifact_is_refused_and_current_kept(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime, damage: object
) -> None:
    good = _save(purchases, tmp_path, now, make_current=True)
    bad = _save(purchases, tmp_path, now + timedelta(hours=1))
    damage(tmp_path / bad)  # type: ignore[operator]
    with pytest.raises(ArtifactError):
        load_model(tmp_path, bad)
    with pytest.raises(ArtifactError):
        load_model(tmp_path, bad, mmap=True)
    with pytest.raises(ArtifactError):
        use_version(tmp_path, bad)
    assert current_version(tmp_path) == good
    assert load_model(tmp_path).version == good


@pytest.mark.parametrize("model", ["als", "hybrid", "item-knn", "repurchase"])
def test_memory_mapped_load_serves_the_same(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime, model: str
) -> None:
    """Serving maps the arrays in place: same answers, fold-in included, no copy."""
    version = _save(purchases, tmp_path, now, model=model, candidates=6)
    mapped = load_model(tmp_path, version, mmap=True).recommender
    read = load_model(tmp_path, version).recommender
    assert mapped.precomputed == read.precomputed == 6
    if mapped.personalised:  # rows come from the file with pread, not through the mapping
        assert mapped._lists is not None and mapped._lists.files is not None
    if model in ("als", "hybrid"):  # the saved norm index is used as mapped, not rebuilt
        top = mapped._top  # type: ignore[attr-defined]
        assert top._pruned is not None and not top._pruned.items_by_norm.flags.owndata
    for customer in ("C0", "C1", "C2", "nobody"):
        assert mapped.recommend(customer, 4) == read.recommend(customer, 4)
        assert mapped.recommend(customer, 9) == read.recommend(customer, 9)
        assert mapped.recommend(customer, 4, history=["I3"]) == read.recommend(
            customer, 4, history=["I3"]
        )
    assert mapped.recommend_batch(["C0", "C3"], 5) == read.recommend_batch(["C0", "C3"], 5)
    arrays = training_artifacts._mapped_arrays(tmp_path / version / "arrays.npz")
    assert all(isinstance(a, np.memmap) for a in arrays.values() if a.size)


def test_missing_current_and_unknown_version(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no current model"):
        load_model(tmp_path)
    with pytest.raises(ArtifactError, match="not found"):
        load_model(tmp_path, "2026-01-01T00-00-00-als")
    with pytest.raises(ArtifactError, match="invalid version"):
        load_model(tmp_path, "../etc")


def test_use_version_rolls_back_atomically(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    old = _save(purchases, tmp_path, now, make_current=True)
    new = _save(purchases, tmp_path, now + timedelta(days=1), make_current=True)
    assert current_version(tmp_path) == new
    loaded = use_version(tmp_path, old)
    assert loaded.version == old
    assert current_version(tmp_path) == old
    # the pointer was replaced, not rewritten in place: no temp files are left over
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["current"]
    assert [v.version for v in list_versions(tmp_path)] == [old, new]
    assert [v.is_current for v in list_versions(tmp_path)] == [True, False]


def test_prune_keeps_current(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    versions = [_save(purchases, tmp_path, now + timedelta(days=d)) for d in range(4)]
    use_version(tmp_path, versions[0])
    removed = prune(tmp_path, keep=2)
    assert removed == versions[1:2]
    left = [v.version for v in list_versions(tmp_path)]
    assert left == [versions[0], versions[2], versions[3]]
    assert current_version(tmp_path) == versions[0]
    with pytest.raises(ValueError):
        prune(tmp_path, keep=0)


def test_extras_must_be_json(purchases: pl.DataFrame, tmp_path: Path, now: datetime) -> None:
    with pytest.raises(ArtifactError, match="extras"):
        _save(purchases, tmp_path, now, extras={"when": now})
    assert list_versions(tmp_path) == []


def test_the_fingerprint_names_the_matrix_fitted(purchases: pl.DataFrame, now: datetime) -> None:
    """Same lines in another order: same hash; one line more of a new item: another."""
    first = fit_model(purchases, None, model="als", params=FAST, now=now)
    shuffled = purchases.sample(fraction=1.0, shuffle=True, seed=3)
    again = fit_model(shuffled, None, model="als", params=FAST, now=now)
    one = fingerprint(purchases, first.interactions)
    assert one == fingerprint(shuffled, again.interactions)
    assert one["rows"] == purchases.height and len(str(one["matrix_sha256"])) == 64
    extra = pl.concat([purchases, purchases.head(1).with_columns(pl.lit("I-new").alias("item_id"))])
    changed = fit_model(extra, None, model="als", params=FAST, now=now)
    assert fingerprint(extra, changed.interactions)["matrix_sha256"] != one["matrix_sha256"]


def test_format_1_artifact_still_loads(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    version = _save(purchases, tmp_path, now)
    expected = load_model(tmp_path, version).recommender.recommend_batch(["C0", "C1"], 5)
    _to_format_1(tmp_path / version)
    for mmap in (False, True):
        loaded = load_model(tmp_path, version, mmap=mmap)
        assert loaded.meta.format_version == 1
        assert loaded.recommender.recommend_batch(["C0", "C1"], 5) == expected


def test_ids_holding_nul_are_saved_as_json(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    odd = purchases.with_columns(
        pl.when(pl.col("customer_id") == "C1").then(pl.lit("C\x001"))
        .otherwise(pl.col("customer_id")).alias("customer_id")
    )
    version = _save(odd, tmp_path, now)
    assert (tmp_path / version / "ids.json").is_file()
    with np.load(tmp_path / version / "arrays.npz") as npz:
        assert "ids.user_ids" not in npz.files
    loaded = load_model(tmp_path, version, mmap=True)
    assert loaded.meta.format_version == FORMAT_VERSION
    assert "C\x001" in loaded.recommender.data.user_ids
    assert loaded.recommender.recommend("C\x001", 3)


def test_ids_are_saved_as_bytes_arrays(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    version = _save(purchases, tmp_path, now)
    assert not (tmp_path / version / "ids.json").exists()
    loaded = load_model(tmp_path, version, mmap=True).recommender
    fitted = fit_model(purchases, None, model="als", params=FAST, now=now).recommender
    assert loaded.data.user_ids == fitted.data.user_ids
    assert loaded.data.item_ids == fitted.data.item_ids


def test_format_1_without_checksums_reads_its_ids_json(
    purchases: pl.DataFrame, tmp_path: Path, now: datetime
) -> None:
    # a format-1 meta.json always means ids.json, whatever its checksums list says
    version = _save(purchases, tmp_path, now)
    expected = load_model(tmp_path, version).recommender.recommend_batch(["C0", "C1"], 5)
    folder = tmp_path / version
    _to_format_1(folder)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["checksums"]
    (folder / "meta.json").write_text(json.dumps(meta))
    loaded = load_model(tmp_path, version, mmap=True, checksums=False)
    assert loaded.recommender.recommend_batch(["C0", "C1"], 5) == expected
    with pytest.raises(ArtifactError, match="checksum"):
        load_model(tmp_path, version)
