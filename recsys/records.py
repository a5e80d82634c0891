"""Plain domain records shared by the store, the models and the rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


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
