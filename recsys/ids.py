"""Two-way map between external string ids and dense matrix indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


class IdMap:
    """A frozen bijection `external id (str) <-> index (0..n-1)`.

    Built once by the matrix builder and saved inside the model artifact, so
    matrix indices never have to leave the model layer.

    The ids are held as one numpy array of UTF-8 bytes and looked up by binary
    search, not as a dict of Python strings: a serving worker holding 1M customer
    ids used about 150 MiB for the dict, against about 10 MiB for the bytes, and a
    lookup stays a few microseconds. (Ids containing NUL cannot live in a numpy
    bytes array; such a map keeps a dict.)
    """

    __slots__ = ("_by_id", "_ids", "_keys", "_order", "_sorted")

    def __init__(self, ids: Iterable[str]) -> None:
        values = ids if isinstance(ids, (list, tuple)) else list(ids)
        self._ids: tuple[str, ...] | None = None
        self._by_id: dict[str, int] | None = None
        self._order: np.ndarray | None = None
        if any("\x00" in value for value in values):
            self._by_id = {value: i for i, value in enumerate(values)}
            if len(self._by_id) != len(values):
                raise ValueError("IdMap ids must be unique")
            self._ids = tuple(values)
            self._keys = self._sorted = np.empty(0, dtype="S1")
            return
        self._keys = (
            np.array([_utf8(value) for value in values], dtype=bytes)
            if values
            else np.empty(0, dtype="S1")
        )
        self._index_keys()

    def _index_keys(self) -> None:
        keys = self._keys
        # Customer ids arrive sorted (the matrix builder sorts them): no second copy.
        if len(keys) > 1 and not bool(np.all(keys[1:] > keys[:-1])):
            self._order = np.argsort(keys, kind="stable").astype(np.int64)
            self._sorted = keys[self._order]
            if bool(np.any(self._sorted[1:] == self._sorted[:-1])):
                raise ValueError("IdMap ids must be unique")
        else:
            self._sorted = keys

    @classmethod
    def from_utf8(cls, keys: np.ndarray) -> IdMap:
        """The map whose `utf8()` is `keys` (a numpy bytes array), without a round trip
        through Python strings."""
        self = cls.__new__(cls)
        self._ids = None
        self._by_id = None
        self._order = None
        self._keys = np.asarray(keys) if len(keys) else np.empty(0, dtype="S1")
        self._index_keys()
        return self

    def utf8(self) -> np.ndarray:
        """The ids in index order as one numpy bytes array (UTF-8), e.g. for an artifact."""
        if self._by_id is not None:
            raise ValueError("ids containing NUL cannot be stored as bytes arrays")
        return self._keys

    @classmethod
    def from_iterable(cls, ids: Iterable[str]) -> IdMap:
        """Build from ids in first-seen order, dropping repeats."""
        return cls(tuple(dict.fromkeys(ids)))

    @property
    def ids(self) -> tuple[str, ...]:
        """The external ids in index order (built on first use and kept)."""
        if self._ids is None:
            self._ids = tuple(key.decode("utf-8", "surrogatepass") for key in self._keys.tolist())
        return self._ids

    def __len__(self) -> int:
        return len(self._by_id) if self._by_id is not None else len(self._keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self.ids == other.ids

    def __hash__(self) -> int:
        return hash(self.ids)

    def __repr__(self) -> str:
        return f"IdMap({len(self)} ids)"

    def __contains__(self, external: object) -> bool:
        return isinstance(external, str) and self.get(external) is not None

    def index(self, external: str) -> int:
        """Index of an external id; raises KeyError when unknown."""
        found = self.get(external)
        if found is None:
            raise KeyError(external)
        return found

    def get(self, external: str) -> int | None:
        if self._by_id is not None:
            return self._by_id.get(external)
        if "\x00" in external or not len(self._sorted):
            return None
        key = _utf8(external)
        position = int(np.searchsorted(self._sorted, key))
        if position == len(self._sorted) or self._sorted[position] != key:
            return None
        return int(self._order[position]) if self._order is not None else position

    def lookup(self, externals: Sequence[str]) -> np.ndarray:
        """Indices of `externals` in one vectorised search: int64, -1 where unknown."""
        n = len(self._sorted)
        if self._by_id is not None or not n or not externals:
            found = (self.get(e) for e in externals)
            return np.fromiter((-1 if i is None else i for i in found), np.int64, len(externals))
        # An id holding NUL cannot be in the bytes array (and would compare wrongly).
        usable = np.fromiter(("\x00" not in e for e in externals), bool, len(externals))
        keys = np.array([_utf8(e) for e in externals], dtype=bytes)
        position = np.minimum(np.searchsorted(self._sorted, keys), n - 1)
        hit = usable & (self._sorted[position] == keys)
        index = self._order[position] if self._order is not None else position
        return np.where(hit, index, -1).astype(np.int64, copy=False)

    def external(self, idx: int) -> str:
        if self._ids is not None:
            return self._ids[idx]
        return str(self._keys[idx].decode("utf-8", "surrogatepass"))

    def indices(self, externals: Sequence[str]) -> np.ndarray:
        """Indices of the known ids among `externals` (unknown ones are skipped)."""
        found = [i for i in (self.get(e) for e in externals) if i is not None]
        return np.asarray(found, dtype=np.int32)

    def to_array(self) -> np.ndarray:
        return np.asarray(self.ids, dtype=object)


def _utf8(value: str) -> bytes:
    # surrogatepass: a lone surrogate (possible in JSON) must not break the map
    return value.encode("utf-8", "surrogatepass")
