"""Plain domain records shared by the store, the models and the rules."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import overload


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


class ScoredList(Sequence[ScoredItem]):
    """A ranked model output kept as two parallel lists; `ScoredItem`s are made on access.

    A campaign batch asks for 100 candidates for each of thousands of customers, and
    the rules usually stop after a few dozen (`recsys.rules.pipeline`): building every
    record up front was an eighth of the job's time at 1M customers.
    """

    __slots__ = ("item_ids", "scores")

    def __init__(self, item_ids: list[str], scores: list[float]) -> None:
        if len(item_ids) != len(scores):
            raise ValueError("item_ids and scores must have the same length")
        self.item_ids = item_ids
        self.scores = scores

    def __len__(self) -> int:
        return len(self.item_ids)

    @overload
    def __getitem__(self, index: int) -> ScoredItem: ...

    @overload
    def __getitem__(self, index: slice) -> list[ScoredItem]: ...

    def __getitem__(self, index: int | slice) -> ScoredItem | list[ScoredItem]:
        if isinstance(index, slice):
            return [
                ScoredItem(i, s)
                for i, s in zip(self.item_ids[index], self.scores[index], strict=True)
            ]
        return ScoredItem(self.item_ids[index], self.scores[index])

    def __iter__(self) -> Iterator[ScoredItem]:
        return (ScoredItem(i, s) for i, s in zip(self.item_ids, self.scores, strict=True))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ScoredList):
            return self.item_ids == other.item_ids and self.scores == other.scores
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ScoredList({list(self)!r})"
