"""Two-way map between external string ids and dense matrix indices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class IdMap:
    """A frozen bijection `external id (str) <-> index (0..n-1)`.

    Built once by the matrix builder and saved inside the model artifact, so
    matrix indices never have to leave the model layer.
    """

    ids: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index = {external: i for i, external in enumerate(self.ids)}
        if len(index) != len(self.ids):
            raise ValueError("IdMap ids must be unique")
        object.__setattr__(self, "_index", index)

    @classmethod
    def from_iterable(cls, ids: Iterable[str]) -> IdMap:
        """Build from ids in first-seen order, dropping repeats."""
        return cls(tuple(dict.fromkeys(ids)))

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, external: object) -> bool:
        return external in self._index

    def index(self, external: str) -> int:
        """Index of an external id; raises KeyError when unknown."""
        return self._index[external]

    def get(self, external: str) -> int | None:
        return self._index.get(external)

    def external(self, idx: int) -> str:
        return self.ids[idx]

    def indices(self, externals: Sequence[str]) -> np.ndarray:
        """Indices of the known ids among `externals` (unknown ones are skipped)."""
        found = [self._index[e] for e in externals if e in self._index]
        return np.asarray(found, dtype=np.int32)

    def to_array(self) -> np.ndarray:
        return np.asarray(self.ids, dtype=object)
