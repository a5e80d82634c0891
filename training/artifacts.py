"""Versioned model artifacts on disk, with an atomically switched `current` pointer.

Layout under `models_dir`::

    current                          text file: the current version's name
    2026-11-22T10-00-00-als/         one directory per version
        meta.json                    format version, model name, params, fingerprint,
                                     timings, counts, metrics, extras, file checksums
        arrays.npz                   factors / similarity / training matrix (no pickle),
                                     and the ids as UTF-8 bytes arrays (`ids.user_ids`,
                                     `ids.item_ids`)
        ids.json                     {"user_ids": [...], "item_ids": [...]}, only when an
                                     id holds NUL (a bytes array cannot), and in format 1

A version directory is written under a temporary name and renamed into place,
and `current` is replaced with `os.replace`, so readers never see half a model.
Its files are made read-only before the rename: a version is immutable once it
exists (serving workers memory-map `arrays.npz`, and a file truncated under a
mapping kills the process that touches it); a new model is a new directory.
Nothing here is pickled: loading an artifact cannot execute code.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import time
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from recsys.ids import IdMap
from recsys.models import MODEL_TYPES, ModelStateError, Recommender
from recsys.models.base import JSONValue
from training.errors import ArtifactError

__all__ = [
    "FORMAT_VERSION",
    "ArtifactMeta",
    "LoadedModel",
    "VersionInfo",
    "current_version",
    "list_versions",
    "load_model",
    "prune",
    "save_model",
    "use_version",
]

#: 2: the ids live in arrays.npz (format 1 kept them all in ids.json); both load.
FORMAT_VERSION = 2
SUPPORTED_FORMATS = (1, 2)
CURRENT = "current"
META = "meta.json"
ARRAYS = "arrays.npz"
EXTRA_PREFIX = "extras."
IDS = "ids.json"
USER_IDS, ITEM_IDS = "ids.user_ids", "ids.item_ids"
_VERSION_TIME = "%Y-%m-%dT%H-%M-%S"
_STALE_TMP_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class ArtifactMeta:
    """Everything in `meta.json` besides the arrays.

    data_fingerprint: purchase lines read, first/last purchase and the sha256 of the
        matrix fitted (`training.train.fingerprint`); answers "what was this trained on".
    timings: seconds per stage (`matrix`, `fit`, `save`).
    counts: matrix size (`users`, `items`, `nnz`).
    metrics: evaluation results when training ran one, else empty.
    extras: free JSON-able data for other layers (learned category behaviour,
        complements); the model layer never reads it.
    """

    version: str
    model: str
    created_at: datetime
    params: dict[str, JSONValue]
    matrix_params: dict[str, JSONValue]
    data_fingerprint: dict[str, JSONValue]
    timings: dict[str, float]
    counts: dict[str, int]
    metrics: dict[str, JSONValue] = field(default_factory=dict)
    extras: dict[str, JSONValue] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    libraries: dict[str, str] = field(default_factory=dict)

    def to_json(self, checksums: Mapping[str, str]) -> dict[str, JSONValue]:
        return {
            "format_version": self.format_version,
            "version": self.version,
            "model": self.model,
            "created_at": self.created_at.isoformat(),
            "params": self.params,
            "matrix_params": self.matrix_params,
            "data_fingerprint": self.data_fingerprint,
            "timings": dict(self.timings),
            "counts": dict(self.counts),
            "metrics": self.metrics,
            "extras": self.extras,
            "libraries": dict(self.libraries),
            "checksums": dict(checksums),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ArtifactMeta:
        return cls(
            version=str(raw["version"]),
            model=str(raw["model"]),
            created_at=datetime.fromisoformat(str(raw["created_at"])),
            params=dict(raw["params"]),
            matrix_params=dict(raw["matrix_params"]),
            data_fingerprint=dict(raw["data_fingerprint"]),
            timings={str(k): float(v) for k, v in dict(raw["timings"]).items()},
            counts={str(k): int(v) for k, v in dict(raw["counts"]).items()},
            metrics=dict(raw.get("metrics") or {}),
            extras=dict(raw.get("extras") or {}),
            format_version=int(raw["format_version"]),
            libraries={str(k): str(v) for k, v in dict(raw.get("libraries") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model restored from disk with its version name, metadata and extras."""

    recommender: Recommender[Any]
    version: str
    meta: ArtifactMeta
    extras: dict[str, JSONValue]
    #: learned data saved as arrays beside the model's (`save_model(extra_arrays=...)`)
    extra_arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: str
    model: str
    created_at: datetime
    is_current: bool
    #: How `--model auto` chose the model ("" when it was named): validation score and why.
    chosen_by: str = ""


@functools.cache
def _library_versions() -> tuple[tuple[str, str], ...]:
    """Installed versions, looked up once per process (importlib.metadata scans every
    distribution's metadata: ~10-30 ms a call)."""
    found = {}
    for name in ("implicit", "numpy", "scipy", "polars"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "unknown"
    return tuple(found.items())


def _libraries() -> dict[str, str]:
    return dict(_library_versions())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_json(value: object, where: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"{where} is not JSON-serialisable: {exc}") from exc


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_model(
    models_dir: Path,
    recommender: Recommender[Any],
    *,
    created_at: datetime,
    matrix_params: Mapping[str, JSONValue],
    data_fingerprint: Mapping[str, JSONValue],
    timings: Mapping[str, float] | None = None,
    metrics: Mapping[str, JSONValue] | None = None,
    extras: Mapping[str, JSONValue] | None = None,
    make_current: bool = False,
    extra_arrays: Mapping[str, np.ndarray] | None = None,
) -> str:
    """Write a fitted model as a new version directory and return the version name.

    `extra_arrays` (learned data too large for JSON) are stored in `arrays.npz`
    beside the model's own, under `extras.<name>`, and come back as
    `LoadedModel.extra_arrays`.

    The name is `created_at` (naive UTC) as `YYYY-MM-DDTHH-MM-SS` plus the model
    name, with `-2`, `-3`... appended if taken. `current` is switched only when
    `make_current` is set (training verifies the artifact loads first).
    """
    if not recommender.is_fitted:
        raise ArtifactError("cannot save an unfitted model")
    extras_dict = dict(extras or {})
    metrics_dict = dict(metrics or {})
    _check_json(extras_dict, "extras")
    _check_json(metrics_dict, "metrics")
    models_dir.mkdir(parents=True, exist_ok=True)
    data = recommender.data
    base = f"{created_at.strftime(_VERSION_TIME)}-{recommender.name}"

    tmp = models_dir / f".tmp-{base}-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        arrays = recommender.to_arrays()
        arrays.update({EXTRA_PREFIX + name: v for name, v in (extra_arrays or {}).items()})
        files = [ARRAYS]
        try:
            # mapped by serving workers and searched without decoding each id to a str
            arrays.update({USER_IDS: data.user_ids.utf8(), ITEM_IDS: data.item_ids.utf8()})
        except ValueError:  # an id holds NUL
            ids = {"user_ids": list(data.user_ids.ids), "item_ids": list(data.item_ids.ids)}
            (tmp / IDS).write_text(json.dumps(ids), encoding="utf-8")
            files.append(IDS)
        np.savez(tmp / ARRAYS, allow_pickle=False, **arrays)
        checksums = {name: _sha256(tmp / name) for name in files}
        version = _claim_version(
            models_dir,
            base,
            tmp,
            recommender,
            created_at,
            checksums,
            matrix_params,
            data_fingerprint,
            timings,
            metrics_dict,
            extras_dict,
        )
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if make_current:
        _write_text_atomic(models_dir / CURRENT, version + "\n")
    return version


def _claim_version(
    models_dir: Path,
    base: str,
    tmp: Path,
    recommender: Recommender[Any],
    created_at: datetime,
    checksums: Mapping[str, str],
    matrix_params: Mapping[str, JSONValue],
    data_fingerprint: Mapping[str, JSONValue],
    timings: Mapping[str, float] | None,
    metrics: dict[str, JSONValue],
    extras: dict[str, JSONValue],
) -> str:
    """Rename `tmp` to the first free version name; meta.json names that version."""
    for attempt in range(1, 1000):
        version = base if attempt == 1 else f"{base}-{attempt}"
        if (models_dir / version).exists():
            continue
        meta = ArtifactMeta(
            version=version,
            model=recommender.name,
            created_at=created_at,
            params=recommender.params,
            matrix_params=dict(matrix_params),
            data_fingerprint=dict(data_fingerprint),
            timings=dict(timings or {}),
            counts={
                "users": len(recommender.data.user_ids),
                "items": len(recommender.data.item_ids),
                "nnz": int(recommender.data.user_items.nnz),
            },
            metrics=metrics,
            extras=extras,
            libraries=_libraries(),
        )
        text = json.dumps(meta.to_json(checksums), indent=2, sort_keys=True, allow_nan=False)
        (tmp / META).write_text(text, encoding="utf-8")
        _make_read_only(tmp)
        try:
            # rename onto a non-existent name is atomic; a racing writer makes it fail
            tmp.rename(models_dir / version)
        except OSError:
            continue
        return version
    raise ArtifactError(f"no free version name for {base!r}")


#: Mode of every file of a saved version (the directory stays writable so prune can delete it).
READ_ONLY = 0o444


def _make_read_only(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(READ_ONLY)


def current_version(models_dir: Path) -> str | None:
    """The version `current` points to, or None when there is none."""
    try:
        name = (models_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ArtifactError(f"cannot read {models_dir / CURRENT}: {exc}") from exc
    return name or None


def _version_dir(models_dir: Path, version: str) -> Path:
    if not version or "/" in version or "\\" in version or version.startswith("."):
        raise ArtifactError(f"invalid version name {version!r}")
    return models_dir / version


def read_meta(models_dir: Path, version: str) -> ArtifactMeta:
    """Parse and check `meta.json` of a version (format version, known model)."""
    path = _version_dir(models_dir, version) / META
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"model version {version!r} not found in {models_dir}") from exc
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path} is unreadable: {exc}") from exc
    if not isinstance(raw, dict):
        raise ArtifactError(f"{path} is not a JSON object")
    fmt = raw.get("format_version")
    if fmt not in SUPPORTED_FORMATS:
        supported = " or ".join(map(str, SUPPORTED_FORMATS))
        raise ArtifactError(
            f"{version}: artifact format {fmt!r} is not supported (expected {supported})"
        )
    try:
        meta = ArtifactMeta.from_json(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path} is missing or has a bad field: {exc}") from exc
    if meta.model not in MODEL_TYPES:
        raise ArtifactError(f"{version}: unknown model type {meta.model!r}")
    return meta


def _mapped_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an `np.savez` file, memory-mapped where stored uncompressed.

    `np.load(mmap_mode=...)` ignores the flag for .npz archives; but `np.savez`
    stores each member uncompressed, so the .npy data lies contiguously in the
    file and can be mapped in place. Serving workers then share one copy of the
    pages through the page cache and read only the rows they touch.
    """
    arrays: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as archive, path.open("rb") as raw:
        for info in archive.infolist():
            key = info.filename.removesuffix(".npy")
            if info.compress_type != zipfile.ZIP_STORED:
                with archive.open(info) as member:
                    arrays[key] = np.lib.format.read_array(member, allow_pickle=False)
                continue
            raw.seek(info.header_offset)
            local = raw.read(30)
            if len(local) != 30 or local[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"bad local header for {info.filename}")
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            raw.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(raw)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
            if dtype.hasobject:
                raise ValueError(f"{info.filename} holds Python objects")
            if int(np.prod(shape)) == 0:
                arrays[key] = np.empty(shape, dtype=dtype)
                continue
            # copy-on-write: implicit's solvers take writable buffers but never write
            # these, so the pages stay shared with the file
            arrays[key] = np.memmap(
                path,
                dtype=dtype,
                mode="c",
                offset=raw.tell(),
                shape=shape,
                order="F" if fortran else "C",
            )
    return arrays


def load_model(
    models_dir: Path,
    version: str | None = None,
    *,
    num_threads: int = 0,
    mmap: bool = False,
    checksums: bool = True,
) -> LoadedModel:
    """Load `version` (default: the current one) and check it end to end.

    Raises ArtifactError when there is no such version, when a file is missing,
    fails its checksum or does not match the model's expected arrays and shapes.
    Never changes `current`.

    `mmap` maps the arrays instead of reading them (serving): shapes
    are checked, and the values rely on the checksum of bytes that were fully
    checked when the version was saved and loaded back.
    `checksums=False` skips hashing the files: only for the version a caller has just
    saved, whose checksums were computed from the written files a moment before.
    """
    if version is None:
        version = current_version(models_dir)
        if version is None:
            raise ArtifactError(f"no current model in {models_dir}; train one first")
    meta = read_meta(models_dir, version)
    folder = _version_dir(models_dir, version)
    raw = json.loads((folder / META).read_text(encoding="utf-8"))
    expected = raw.get("checksums") or {}
    ids_in_json = meta.format_version == 1 or IDS in expected
    for name in (ARRAYS, IDS) if ids_in_json else (ARRAYS,):
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{version}: {name} is missing")
        if checksums and expected.get(name) != _sha256(path):
            raise ArtifactError(f"{version}: {name} does not match its checksum (corrupt)")
    try:
        if mmap:
            arrays = _mapped_arrays(folder / ARRAYS)
        else:
            with np.load(folder / ARRAYS, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        if ids_in_json:
            ids = json.loads((folder / IDS).read_text(encoding="utf-8"))
            user_ids = IdMap(tuple(_strings(ids["user_ids"])))
            item_ids = IdMap(tuple(_strings(ids["item_ids"])))
        else:
            user_ids = _saved_ids(arrays.pop(USER_IDS, None), USER_IDS)
            item_ids = _saved_ids(arrays.pop(ITEM_IDS, None), ITEM_IDS)
        extra_arrays = {
            key[len(EXTRA_PREFIX) :]: arrays.pop(key)
            for key in [k for k in arrays if k.startswith(EXTRA_PREFIX)]
        }
        recommender = MODEL_TYPES[meta.model].from_arrays(
            meta.params, arrays, user_ids, item_ids, num_threads=num_threads
        )
    except (KeyError, TypeError, ValueError, OSError, zipfile.BadZipFile) as exc:
        # ModelStateError is a ValueError: shapes or params that do not fit the model
        kind = "incompatible" if isinstance(exc, ModelStateError) else "corrupt"
        raise ArtifactError(f"{version}: artifact is {kind}: {exc}") from exc
    return LoadedModel(recommender, version, meta, dict(meta.extras), extra_arrays)


def _saved_ids(keys: np.ndarray | None, name: str) -> IdMap:
    """The id map of a format 2 artifact, from its bytes array (mapped, not copied)."""
    if keys is None:
        raise ValueError(f"{ARRAYS} holds no {name}")
    if keys.dtype.kind != "S" or keys.ndim != 1:
        raise TypeError(f"{name} is not a 1-d bytes array")
    return IdMap.from_utf8(keys)


def _strings(values: object) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("ids must be a list of strings")
    return values


@dataclass(frozen=True, slots=True)
class BrokenVersion:
    """A version directory whose `meta.json` cannot be read, and why."""

    version: str
    problem: str
    is_current: bool


def broken_versions(models_dir: Path) -> list[BrokenVersion]:
    """Version directories `list_versions` leaves out, by name."""
    if not models_dir.is_dir():
        return []
    current = current_version(models_dir)
    found = []
    for child in sorted(models_dir.iterdir()):
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            read_meta(models_dir, child.name)
        except ArtifactError as exc:
            found.append(BrokenVersion(child.name, str(exc), child.name == current))
    return found


def list_versions(models_dir: Path) -> list[VersionInfo]:
    """Readable versions, oldest first; unreadable directories are skipped
    (`broken_versions` lists them)."""
    if not models_dir.is_dir():
        return []
    current = current_version(models_dir)
    found = []
    for child in models_dir.iterdir():
        if not child.is_dir() or child.name.startswith("."):
            continue
        try:
            meta = read_meta(models_dir, child.name)
        except ArtifactError:
            continue
        found.append(
            VersionInfo(
                child.name, meta.model, meta.created_at, child.name == current, _chosen_by(meta)
            )
        )
    return sorted(found, key=lambda v: (v.created_at, v.version))


def _chosen_by(meta: ArtifactMeta) -> str:
    selection = meta.metrics.get("selection")
    if not isinstance(selection, dict):
        return ""
    scores = selection.get("scores")
    chosen = selection.get("chosen")
    if not isinstance(scores, dict) or not isinstance(chosen, str):
        return ""
    # A pair is scored on the newsletter by its rebuy model and on new items by the other.
    rebuy = selection.get("rebuy")
    score = scores.get(rebuy if isinstance(rebuy, str) else chosen)
    metric = selection.get("metric", "validation score")
    text = f"auto: {metric} {score:.4f}" if isinstance(score, float) else "auto"
    discovery = selection.get("discovery")
    found = selection.get("discovery_scores")
    if isinstance(discovery, str) and discovery != rebuy and isinstance(found, dict):
        best = found.get(discovery)
        if isinstance(best, float):
            text += f"; {discovery} {selection.get('discovery_metric', 'new items')} {best:.4f}"
    return text


def use_version(
    models_dir: Path,
    version: str,
    *,
    num_threads: int = 0,
    mmap: bool = False,
    checksums: bool = True,
) -> LoadedModel:
    """Point `current` at `version` (rollback or roll forward) after loading it fully.

    A version that does not load raises ArtifactError and `current` stays as it was.
    `mmap` and `checksums` as for `load_model`.
    """
    loaded = load_model(models_dir, version, num_threads=num_threads, mmap=mmap,
                        checksums=checksums)
    _write_text_atomic(models_dir / CURRENT, version + "\n")
    return loaded


def prune(models_dir: Path, keep: int) -> list[str]:
    """Delete all but the `keep` newest versions; never the current one. Returns the deleted.

    Temporary directories of interrupted saves older than an hour are removed too
    (younger ones may belong to a save that is still running).
    """
    if keep < 1:
        raise ValueError("keep must be >= 1")
    if not models_dir.is_dir():
        return []
    stale_before = time.time() - _STALE_TMP_SECONDS
    for child in models_dir.iterdir():
        stale = child.name.startswith(".tmp-") and child.stat().st_mtime < stale_before
        if stale and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
    versions = list_versions(models_dir)
    current = current_version(models_dir)
    doomed = [v.version for v in versions[: max(len(versions) - keep, 0)]]
    removed = []
    for version in doomed:
        if version == current:
            continue
        shutil.rmtree(models_dir / version, ignore_errors=True)
        removed.append(version)
    return removed
