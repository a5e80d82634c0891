"""The canonical columns of each input kind (SPEC "Data contract")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["transactions", "catalog", "customers"]
KINDS: tuple[Kind, ...] = ("transactions", "catalog", "customers")


@dataclass(frozen=True, slots=True)
class KindSchema:
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


SCHEMAS: dict[Kind, KindSchema] = {
    "transactions": KindSchema(
        required=("order_id", "customer_id", "item_id", "purchased_at"),
        optional=("quantity", "unit_price", "line_total"),
    ),
    "catalog": KindSchema(
        required=("item_id",),
        optional=("name", "category", "price", "in_stock", "url", "image_url", "brand", "cost"),
    ),
    "customers": KindSchema(
        required=("customer_id",),
        optional=("email", "joined_at", "birthday", "marketing_opt_in"),
    ),
}
