"""Plain domain records shared by the store, the models and the rules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar, overload

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Item:
    """A catalog item. `category` is hierarchical, levels joined by `/` (`electronics/tv`)."""

    item_id: str
    name: str | None = None
    category: str | None = None
    price: float | None = None
    in_stock: bool = True
    url: str | None = None
    image_url: str | None = None
    brand: str | None = None
    cost: float | None = None


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    email: str | None = None
    joined_at: date | None = None
    birthday: date | None = None
    marketing_opt_in: bool = True


@dataclass(frozen=True, slots=True)
class Purchase:
    """One order line of a customer's history. Negative quantity is a return. Times are UTC."""

    order_id: str
    item_id: str
    quantity: float
    unit_price: float | None
    purchased_at: datetime


@dataclass(frozen=True, slots=True)
class ScoredItem:
    """A model's output: an external item id and its score (higher is better)."""

    item_id: str
    score: float


class ItemColumns(Sequence[R]):
    """Records of `(item_id, score)` held as two parallel lists, each made when read.

    A campaign batch asks for 100 candidates for each of thousands of customers, and
    the rules usually stop after a few dozen (`recsys.rules.pipeline`): building every
    record up front was an eighth of the job's time at 1M customers. Subclasses say
    which record `_make` builds.
    """

    __slots__ = ("item_ids", "scores")

    def __init__(self, item_ids: Sequence[str], scores: Sequence[float]) -> None:
        if len(item_ids) != len(scores):
            raise ValueError("item_ids and scores must have the same length")
        self.item_ids = item_ids
        self.scores = scores

    def _make(self, item_id: str, score: float) -> R:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.item_ids)

    @overload
    def __getitem__(self, index: int) -> R: ...

    @overload
    def __getitem__(self, index: slice) -> list[R]: ...

    def __getitem__(self, index: int | slice) -> R | list[R]:
        if isinstance(index, slice):
            make, ids, scores = self._make, self.item_ids[index], self.scores[index]
            return [make(i, s) for i, s in zip(ids, scores, strict=True)]
        return self._make(self.item_ids[index], self.scores[index])

    def __iter__(self) -> Iterator[R]:
        make = self._make
        return (make(i, s) for i, s in zip(self.item_ids, self.scores, strict=True))

    def best_score_from(self, start: int) -> float:
        """The highest score at positions >= `start` (the list must reach past it)."""
        return max(self.scores[start:])


class ScoredList(ItemColumns[ScoredItem]):
    """A ranked model output as parallel lists; `ScoredItem`s are made on access."""

    __slots__ = ()

    def _make(self, item_id: str, score: float) -> ScoredItem:
        return ScoredItem(item_id, score)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScoredList):
            return self.item_ids == other.item_ids and self.scores == other.scores
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ScoredList({list(self)!r})"
