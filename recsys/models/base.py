"""The contract every recommender honours, speaking external ids only.

Models are trained on an `InteractionMatrix` and answer with `ScoredItem`s; the
matrix indices they use internally never leave `recsys.models`. The shared
machinery here (id mapping, popularity fallback, padding, persistence of the
fitted state as plain numpy arrays) lets each model implement only its scoring.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

import numpy as np
import scipy.sparse as sp
from threadpoolctl import ThreadpoolController

from recsys.ids import IdMap
from recsys.matrix import InteractionMatrix, history_row
from recsys.records import ScoredItem, ScoredList

__all__ = [
    "CandidateLists",
    "ImplicitRecommender",
    "JSONValue",
    "ModelStateError",
    "Recommender",
    "TrainedData",
    "cooccurrence_similar",
    "csr_arrays",
    "csr_from_arrays",
    "params_from_mapping",
    "require_array",
    "single_threaded_blas",
    "top_n",
]

JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None

P = TypeVar("P")


class ModelStateError(ValueError):
    """Saved arrays or params do not fit the model (wrong keys, shapes or values)."""


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Pin BLAS to one thread.

    implicit parallelises with its own OpenMP threads; a multi-threaded BLAS on
    top oversubscribes the CPU (10x slower ALS) and makes implicit warn. Limiting
    before constructing a model also stops that warning from ever being printed.
    """
    with _blas_libraries().limit(limits=1, user_api="blas"):
        yield


@functools.cache
def _blas_libraries() -> ThreadpoolController:
    """The process's thread-pool libraries, found once: `threadpool_limits` scans every
    loaded library on each call (1-1.5 ms, about one API request). Importing
    `recsys.models` loads implicit, and with it scipy's BLAS, before any model can ask."""
    return ThreadpoolController()


@dataclass(frozen=True, slots=True)
class TrainedData:
    """What every fitted model keeps besides its own parameters.

    user_items: CSR `(n_users, n_items)` float32 confidences (the training matrix);
        item-kNN and repurchase score from it, and `exclude_seen` filters with it.
    order_counts: CSR `(n_users, n_items)` float32, distinct orders per pair.
    popularity: `(n_items,)` float32, number of customers who bought each item.
    """

    user_ids: IdMap
    item_ids: IdMap
    user_items: sp.csr_matrix
    order_counts: sp.csr_matrix
    popularity: np.ndarray

    @classmethod
    def from_interactions(cls, interactions: InteractionMatrix) -> TrainedData:
        matrix = interactions.matrix
        # stored entries per column, as `tocsc()` would give without converting the matrix
        # (about a second at 1M customers)
        counts = np.bincount(matrix.indices, minlength=matrix.shape[1]).astype(np.float32)
        return cls(
            interactions.user_ids,
            interactions.item_ids,
            interactions.matrix,
            interactions.order_counts,
            counts,
        )


@dataclass(frozen=True, slots=True)
class _RowFile:
    """Where a memory-mapped `(rows, width)` array's bytes lie in its artifact file."""

    path: str
    offset: int
    dtype: np.dtype[Any]
    shape: tuple[int, int]

    @classmethod
    def of(cls, array: np.ndarray) -> _RowFile | None:
        if not isinstance(array, np.memmap) or not array.filename or array.ndim != 2:
            return None
        if not array.flags.c_contiguous:
            return None
        return cls(str(array.filename), int(array.offset), array.dtype,
                   (int(array.shape[0]), int(array.shape[1])))

    def read(self, rows: np.ndarray) -> np.ndarray:
        width = self.shape[1] * self.dtype.itemsize
        out = np.empty((len(rows), self.shape[1]), dtype=self.dtype)
        with open(self.path, "rb", buffering=0) as file:
            fd = file.fileno()
            for position, row in enumerate(rows.tolist()):
                if not 0 <= row < self.shape[0]:
                    raise IndexError(f"row {row} out of range")
                out[position] = np.frombuffer(os.pread(fd, width, self.offset + row * width),
                                              dtype=self.dtype)
        return out


@dataclass(frozen=True, slots=True)
class CandidateLists:
    """Each training customer's top-`k` items, scored once at training time.

    ids: `(n_users, k)` int32 item indices, best first, -1 in empty slots.
    scores: `(n_users, k)` float32, the model's scores for `ids` (0 in empty slots).

    Serving reads a row instead of scoring the whole catalog per request, as
    recommendation servers do with per-user lists computed offline.
    """

    ids: np.ndarray
    scores: np.ndarray
    # Set when both arrays are mapped from an artifact: rows are then read with `pread`.
    # Mapping a page of a file the kernel read ahead in large folios puts the whole folio
    # (about a megabyte here) in the resident set for one 400-byte row, so every worker
    # would soon hold the whole file.
    files: tuple[_RowFile, _RowFile] | None = None

    @property
    def k(self) -> int:
        return int(self.ids.shape[1])

    def rows(self, user_idx: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
        """`(ids, scores)` of one row (int) or of several rows (array), copied out."""
        if self.files is None:
            return np.array(self.ids[user_idx]), np.array(self.scores[user_idx])
        wanted = np.atleast_1d(np.asarray(user_idx, dtype=np.int64))
        ids, scores = (source.read(wanted) for source in self.files)
        return (ids[0], scores[0]) if np.ndim(user_idx) == 0 else (ids, scores)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"candidates.ids": self.ids, "candidates.scores": self.scores}

    @classmethod
    def from_arrays(
        cls, arrays: Mapping[str, np.ndarray], n_users: int, n_items: int
    ) -> CandidateLists | None:
        """The saved lists, None when the artifact has none; ModelStateError when invalid."""
        if "candidates.ids" not in arrays:
            return None
        ids = np.asarray(arrays["candidates.ids"])
        scores = require_array(arrays, "candidates.scores", (n_users, None))
        if ids.shape != scores.shape or not np.issubdtype(ids.dtype, np.integer):
            raise ModelStateError(
                f"candidates.ids has shape {ids.shape} and type {ids.dtype}, expected integers "
                f"of shape {scores.shape}"
            )
        if _mapped(arrays["candidates.ids"]):
            if ids.dtype != np.int32 or not ids.flags.c_contiguous:
                raise ModelStateError("candidates.ids must be a contiguous int32 array")
        elif ids.size and (int(ids.min()) < -1 or int(ids.max()) >= n_items):
            raise ModelStateError("candidates.ids holds item indices outside the catalog")
        id_file = _RowFile.of(arrays["candidates.ids"])
        score_file = _RowFile.of(arrays["candidates.scores"])
        files = (id_file, score_file) if id_file and score_file else None
        return cls(np.ascontiguousarray(ids, dtype=np.int32), scores, files)


def csr_arrays(prefix: str, matrix: sp.csr_matrix) -> dict[str, np.ndarray]:
    """A CSR matrix as four named arrays (data keeps float32/float64)."""
    dtype = np.float64 if matrix.dtype == np.float64 else np.float32
    return {
        f"{prefix}.data": np.asarray(matrix.data, dtype=dtype),
        f"{prefix}.indices": np.asarray(matrix.indices, dtype=np.int32),
        f"{prefix}.indptr": np.asarray(matrix.indptr, dtype=np.int64),
        f"{prefix}.shape": np.asarray(matrix.shape, dtype=np.int64),
    }


def csr_from_arrays(
    prefix: str,
    arrays: Mapping[str, np.ndarray],
    shape: tuple[int, int] | None = None,
    dtype: type[np.floating[Any]] = np.float32,
) -> sp.csr_matrix:
    """Rebuild a CSR matrix saved by `_csr_arrays`; raises ModelStateError when inconsistent."""
    try:
        data = arrays[f"{prefix}.data"]
        indices = arrays[f"{prefix}.indices"]
        indptr = arrays[f"{prefix}.indptr"]
        saved_shape = tuple(int(x) for x in arrays[f"{prefix}.shape"])
    except KeyError as exc:
        raise ModelStateError(f"missing array {exc.args[0]!r}") from exc
    if len(saved_shape) != 2 or (shape is not None and saved_shape != shape):
        raise ModelStateError(f"{prefix} has shape {saved_shape}, expected {shape}")
    try:
        matrix = sp.csr_matrix((data, indices, indptr), shape=saved_shape, dtype=dtype)
        # Mapped arrays passed the artifact checksum; a full check would page them all in.
        matrix.check_format(full_check=not _mapped(data, indices, indptr))
    except (ValueError, TypeError) as exc:
        raise ModelStateError(f"{prefix} is not a valid CSR matrix: {exc}") from exc
    return matrix


def require_array(
    arrays: Mapping[str, np.ndarray], key: str, shape: tuple[int | None, ...]
) -> np.ndarray:
    """Fetch `arrays[key]` as float32 and check its shape (None = any length)."""
    if key not in arrays:
        raise ModelStateError(f"missing array {key!r}")
    value = np.asarray(arrays[key])
    if value.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(value.shape, shape, strict=True)
    ):
        raise ModelStateError(f"{key} has shape {value.shape}, expected {shape}")
    if not np.issubdtype(value.dtype, np.number):
        raise ModelStateError(f"{key} must be finite numbers")
    if _mapped(arrays[key]):
        # Checked when the artifact was saved and loaded back; its checksum vouches for
        # the bytes since. Reading every value would page the whole file into each worker.
        if value.dtype != np.float32 or not value.flags.c_contiguous:
            raise ModelStateError(f"{key} must be a contiguous float32 array")
        return value
    if not np.all(np.isfinite(value)):
        raise ModelStateError(f"{key} must be finite numbers")
    return np.ascontiguousarray(value, dtype=np.float32)


def _mapped(*arrays: np.ndarray) -> bool:
    """True when every array is a memory map of an artifact (loaded for serving)."""
    return all(isinstance(a, np.memmap) for a in arrays)


def params_from_mapping(cls: type[P], values: Mapping[str, Any]) -> P:
    """Build a params dataclass, refusing unknown keys instead of swallowing them."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown}; expected some of {sorted(names)}")
    return cls(**values)


class Recommender(ABC, Generic[P]):
    """Base class of all models: fit on an `InteractionMatrix`, answer in external ids.

    Subclasses set `name` and `params_type` and implement the `_score_*` hooks,
    which work in matrix indices and return `(ids, scores)` arrays, best first;
    ids < 0 mark missing slots.

    Already-bought items are *not* filtered by default: consumables come back and
    the rules layer decides what may be offered. `exclude_seen=True` is for
    callers (evaluation of new items) that want only unseen items.
    """

    name: ClassVar[str]
    params_type: ClassVar[type[Any]]
    #: False where every customer gets the same list (nothing to precompute).
    personalised: ClassVar[bool] = True

    def __init__(self, params: P, *, num_threads: int = 0) -> None:
        """`num_threads`: implicit's OpenMP threads for fit and batch scoring (0 = all cores)."""
        self._params = params
        self._num_threads = num_threads
        self._data: TrainedData | None = None
        self._lists: CandidateLists | None = None

    # ---- construction and persistence -------------------------------------------------

    @classmethod
    def from_params(cls, values: Mapping[str, Any], *, num_threads: int = 0) -> Recommender[P]:
        """Build an unfitted model from a plain mapping; unknown keys raise ValueError."""
        return cls(params_from_mapping(cls.params_type, values), num_threads=num_threads)

    @property
    def params(self) -> dict[str, JSONValue]:
        """The hyperparameters as JSON-able values (what the artifact stores)."""
        return dict(dataclasses.asdict(self._params))  # type: ignore[call-overload]

    @property
    def data(self) -> TrainedData:
        if self._data is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return self._data

    @property
    def is_fitted(self) -> bool:
        return self._data is not None

    def fit(self, interactions: InteractionMatrix, *, show_progress: bool = False) -> None:
        """Train on `interactions` (CSR `(n_users, n_items)`); BLAS pinned to one thread."""
        if interactions.matrix.nnz == 0:
            raise ValueError("cannot fit on an empty interaction matrix")
        data = TrainedData.from_interactions(interactions)
        with single_threaded_blas():
            self._fit(data, show_progress=show_progress)
        self._data = data

    @property
    def precomputed(self) -> int:
        """How many items per customer were precomputed (0: none; every call scores)."""
        return 0 if self._lists is None else self._lists.k

    def precompute(
        self,
        k: int,
        *,
        batch: int = 2048,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """Score every training customer once and keep their top-`k` items.

        `recommend` and `recommend_batch` then answer a known customer without
        fresh orders from that list when at most `k` items are asked for.
        `progress(done, total)` is called after each batch of customers.
        """
        data = self.data
        if not self.personalised or k <= 0:
            self._lists = None
            return
        n_users = len(data.user_ids)
        k = min(k, len(data.item_ids))
        ids = np.full((n_users, k), -1, dtype=np.int32)
        scores = np.zeros((n_users, k), dtype=np.float32)
        with single_threaded_blas():
            for start in range(0, n_users, batch):
                block = np.arange(start, min(start + batch, n_users), dtype=np.int32)
                got_ids, got_scores = self._score_users(block, k, False)
                width = min(k, got_ids.shape[1])
                valid = (got_ids[:, :width] >= 0) & np.isfinite(got_scores[:, :width])
                ids[block, :width] = np.where(valid, got_ids[:, :width], -1)
                scores[block, :width] = np.where(valid, got_scores[:, :width], 0.0)
                if progress is not None:
                    progress(int(block[-1]) + 1, n_users)
        self._lists = CandidateLists(ids, scores)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as named numeric arrays (saved with allow_pickle=False)."""
        data = self.data
        arrays = {
            **csr_arrays("user_items", data.user_items),
            **csr_arrays("order_counts", data.order_counts),
            "popularity": data.popularity.astype(np.float32),
        }
        arrays.update(self._model_arrays())
        if self._lists is not None:
            arrays.update(self._lists.to_arrays())
        return arrays

    @classmethod
    def from_arrays(
        cls,
        params: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        user_ids: IdMap,
        item_ids: IdMap,
        *,
        num_threads: int = 0,
    ) -> Recommender[P]:
        """Restore a fitted model; raises ModelStateError when arrays do not match."""
        try:
            model = cls.from_params(params, num_threads=num_threads)
        except (TypeError, ValueError) as exc:
            raise ModelStateError(f"bad {cls.name} params: {exc}") from exc
        shape = (len(user_ids), len(item_ids))
        data = TrainedData(
            user_ids,
            item_ids,
            csr_from_arrays("user_items", arrays, shape),
            csr_from_arrays("order_counts", arrays, shape),
            require_array(arrays, "popularity", (len(item_ids),)),
        )
        with single_threaded_blas():
            model._restore(data, arrays)
        model._data = data
        model._lists = CandidateLists.from_arrays(arrays, len(user_ids), len(item_ids))
        return model

    # ---- public API (external ids) ----------------------------------------------------

    def for_placement(self, rebuys: bool) -> Recommender[Any]:
        """The model that ranks a placement which does (`rebuys`) or does not re-offer
        bought items: this one, except for a pair (`recsys.models.paired`)."""
        return self

    def knows(self, customer_id: str) -> bool:
        """True when the customer had purchases in the training data."""
        return self._data is not None and customer_id in self._data.user_ids

    def knows_item(self, item_id: str) -> bool:
        return self._data is not None and item_id in self._data.item_ids

    def popular(self, n: int) -> list[ScoredItem]:
        """The `n` most popular items (by default score = number of buying customers)."""
        data = self.data
        scores = self._item_popularity()
        order = self._popular_order()[: max(n, 0)]
        return [ScoredItem(data.item_ids.external(int(i)), float(scores[i])) for i in order]

    def recommend(
        self,
        customer_id: str,
        n: int,
        history: Sequence[str] = (),
        *,
        exclude_seen: bool = False,
    ) -> Sequence[ScoredItem]:
        """Top-`n` items for one customer.

        Known customer: the model's scores; with `history` (item ids ordered after
        training) the customer is folded in again from training row + history.
        Unknown customer with `history`: folded in from those items alone.
        Neither: popular items. Lists shorter than `n` are padded with popular
        items scored below the model's last score.
        """
        data = self.data
        if n <= 0:
            return []
        user_idx = data.user_ids.get(customer_id)
        extra = [item for item in history if item in data.item_ids]
        if user_idx is not None and not extra and self._stored(n, exclude_seen):
            assert self._lists is not None
            ids, scores = self._lists.rows(user_idx)
            return self._finish(ids, scores, n, None)
        if user_idx is not None and not extra:
            ids, scores = self._score_users(np.asarray([user_idx], dtype=np.int32), n, exclude_seen)
            seen = data.user_items[user_idx] if exclude_seen else None
            return self._finish(ids[0], scores[0], n, seen)
        if not extra:
            return self.popular(n)
        row = history_row(extra, data.item_ids)
        if user_idx is not None:
            row = sp.csr_matrix(row + data.user_items[user_idx], dtype=np.float32)
        ids, scores = self._score_row(row, n, exclude_seen)
        return self._finish(ids, scores, n, row if exclude_seen else None)

    def recommend_batch(
        self, customer_ids: Sequence[str], n: int, *, exclude_seen: bool = False
    ) -> dict[str, Sequence[ScoredItem]]:
        """Top-`n` for many customers in one batched call; unknown customers get popular."""
        data = self.data
        if n <= 0:
            return {c: [] for c in customer_ids}
        unique = list(dict.fromkeys(customer_ids))
        rows = data.user_ids.lookup(unique)
        known = [c for c, row in zip(unique, rows.tolist(), strict=True) if row >= 0]
        out: dict[str, Sequence[ScoredItem]] = {}
        if known:
            idx = rows[rows >= 0].astype(np.int32)
            if self._stored(n, exclude_seen):
                assert self._lists is not None
                ids, scores = self._lists.rows(idx)
                out.update(self._finish_rows(known, ids[:, :n], scores[:, :n], n))
            else:
                # implicit's top-k already runs its batches on every core; a threaded
                # BLAS inside each would only oversubscribe them (2.5x slower here)
                with single_threaded_blas():
                    ids, scores = self._score_users(idx, n, exclude_seen)
                if exclude_seen:
                    for row, customer_id in enumerate(known):
                        seen = data.user_items[idx[row]]
                        out[customer_id] = self._finish(ids[row], scores[row], n, seen)
                else:
                    out.update(self._finish_rows(known, ids, scores, n))
        fallback: list[ScoredItem] | None = None
        for customer_id in customer_ids:
            if customer_id not in out:
                fallback = fallback if fallback is not None else self.popular(n)
                out[customer_id] = list(fallback)
        return out

    def similar_items(self, item_id: str, n: int) -> list[ScoredItem]:
        """Up to `n` items most similar to `item_id` (itself excluded); [] when unknown."""
        data = self.data
        item_idx = data.item_ids.get(item_id)
        if item_idx is None or n <= 0:
            return []
        ids, scores = self._similar(item_idx, n + 1)
        result = []
        for i, score in zip(ids, scores, strict=True):
            if i < 0 or i == item_idx or not np.isfinite(score):
                continue
            result.append(ScoredItem(data.item_ids.external(int(i)), float(score)))
        return result[:n]

    def _stored(self, n: int, exclude_seen: bool) -> bool:
        """Whether precomputed lists answer a top-`n` query for a known customer."""
        return self._lists is not None and not exclude_seen and n <= self._lists.k

    # ---- hooks ------------------------------------------------------------------------

    @abstractmethod
    def _fit(self, data: TrainedData, *, show_progress: bool) -> None: ...

    @abstractmethod
    def _restore(self, data: TrainedData, arrays: Mapping[str, np.ndarray]) -> None: ...

    @abstractmethod
    def _model_arrays(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores for known users: ids/scores of shape `(len(user_idx), <=n)`."""

    @abstractmethod
    def _score_row(
        self, row: sp.csr_matrix, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fold-in scores for a `(1, n_items)` history row: 1-d ids/scores."""

    def _similar(self, item_idx: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Default item similarity: cosine over the binary customer columns."""
        return cooccurrence_similar(self.data.user_items, item_idx, n)

    # ---- helpers ----------------------------------------------------------------------

    def _item_popularity(self) -> np.ndarray:
        """`(n_items,)` popularity used for `popular()` and for padding."""
        return self.data.popularity

    def _popular_order(self) -> np.ndarray:
        # stable sort so ties keep column order and answers are deterministic
        return np.argsort(-self._item_popularity(), kind="stable")

    def _finish_rows(
        self, customer_ids: Sequence[str], ids: np.ndarray, scores: np.ndarray, n: int
    ) -> dict[str, Sequence[ScoredItem]]:
        """`_finish` (no seen items) for a batch of rows, vectorised for the usual full rows.

        A row of `n` valid, distinct items needs no dropping or padding, so it is
        mapped straight to external ids; any other row goes through `_finish`.
        """
        ordered = np.sort(ids, axis=1)
        clean = (
            (ids.shape[1] == n)
            & (ordered[:, :1] >= 0).all(axis=1)
            & (ordered[:, 1:] != ordered[:, :-1]).all(axis=1)
            & np.isfinite(scores).all(axis=1)
        )
        external = self.data.item_ids.ids
        id_rows = ids.tolist()
        score_rows = scores.astype(np.float64).tolist()
        out: dict[str, Sequence[ScoredItem]] = {}
        for row, customer_id in enumerate(customer_ids):
            if clean[row]:
                out[customer_id] = ScoredList([external[i] for i in id_rows[row]], score_rows[row])
            else:
                out[customer_id] = self._finish(ids[row], scores[row], n, None)
        return out

    def _finish(
        self, ids: np.ndarray, scores: np.ndarray, n: int, seen: sp.csr_matrix | None
    ) -> Sequence[ScoredItem]:
        """Drop missing/seen slots, pad with popular items, map to external ids."""
        data = self.data
        flat_ids = np.asarray(ids).ravel().astype(np.int64, copy=False)
        flat_scores = np.asarray(scores, dtype=np.float64).ravel()
        keep = (flat_ids >= 0) & np.isfinite(flat_scores)
        if seen is not None and seen.nnz:
            keep &= ~np.isin(flat_ids, seen.indices)
        flat_ids, flat_scores = flat_ids[keep], flat_scores[keep]
        # First occurrence of each id, in ranked order (vectorised: this runs per request).
        _, first = np.unique(flat_ids, return_index=True)
        first.sort()
        chosen_ids = flat_ids[first][:n].tolist()
        chosen_scores = flat_scores[first][:n].tolist()
        if len(chosen_ids) < n:
            blocked = set() if seen is None else {int(i) for i in seen.indices}
            taken = set(chosen_ids)
            floor = min(0.0, chosen_scores[-1]) if chosen_scores else 0.0
            for rank, idx in enumerate(self._popular_order()):
                if len(chosen_ids) == n:
                    break
                j = int(idx)
                if j in blocked or j in taken:
                    continue
                # padding ranks strictly below every model score
                chosen_ids.append(j)
                chosen_scores.append(floor - 1e-6 * (rank + 1))
                taken.add(j)
        external = data.item_ids.ids
        # Parallel lists: the rules usually read a few dozen of the candidates (see ItemColumns).
        return ScoredList([external[i] for i in chosen_ids], chosen_scores)


def cooccurrence_similar(
    user_items: sp.csr_matrix, item_idx: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Items whose buyers overlap most with `item_idx`'s: cosine on binarised columns."""
    binary = user_items.astype(bool).astype(np.float32).tocsc()
    column = binary[:, item_idx]
    overlap = np.asarray((binary.T @ column).todense()).ravel()
    sizes = np.asarray(binary.sum(axis=0)).ravel()
    with np.errstate(divide="ignore", invalid="ignore"):
        cosine = overlap / np.sqrt(sizes * max(sizes[item_idx], 1.0))
    cosine = np.nan_to_num(cosine, nan=0.0)
    candidates = np.flatnonzero(overlap > 0)
    order = candidates[np.argsort(-cosine[candidates], kind="stable")][:n]
    return order, cosine[order]


def top_n(scores: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the `n` largest entries of a 1-d array, best first (stable)."""
    n = min(n, scores.shape[0])
    if n <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=scores.dtype)
    part = np.argpartition(-scores, n - 1)[:n]
    order = part[np.lexsort((part, -scores[part]))]
    return order, scores[order]


M = TypeVar("M")


class ImplicitRecommender(Recommender[P], Generic[P, M]):
    """A recommender backed by one fitted `implicit` model object (`self.model`)."""

    def __init__(self, params: P | None = None, *, num_threads: int = 0) -> None:
        super().__init__(
            params if params is not None else self.params_type(), num_threads=num_threads
        )
        self._model: M | None = None

    @property
    def model(self) -> M:
        if self._model is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return self._model

    def _score_users(
        self, user_idx: np.ndarray, n: int, exclude_seen: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """implicit's batch recommend over the training rows of `user_idx`."""
        model: Any = self.model
        ids, scores = model.recommend(
            user_idx,
            self.data.user_items[user_idx],
            N=min(n, len(self.data.item_ids)),
            filter_already_liked_items=exclude_seen,
        )
        return np.atleast_2d(ids), np.atleast_2d(scores)
