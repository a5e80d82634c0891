"""Plausibility bounds of an order line, shared by ingest and the order-event endpoint.

A line past them is refused, not stored: it would feed tier spend (one `1e308` price
makes a customer Platinum for a year). The defaults fit a retailer's largest B2B
lines; `RECSYS_MAX_LINE_QUANTITY` and `RECSYS_MAX_UNIT_PRICE` change them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OrderBounds:
    max_quantity: float = 100_000.0  # in either direction: a return is negative
    max_unit_price: float = 1_000_000.0

    def quantity_problem(self, quantity: float) -> str | None:
        """Why `quantity` is refused, or None."""
        if not math.isfinite(quantity):
            return "is not a finite number"
        if quantity == 0:
            return "is 0 (not a purchase)"
        if abs(quantity) > self.max_quantity:
            return f"is beyond ±{self.max_quantity:g} (RECSYS_MAX_LINE_QUANTITY)"
        return None

    def unit_price_problem(self, unit_price: float | None) -> str | None:
        """Why `unit_price` is refused, or None (no price is allowed)."""
        if unit_price is None:
            return None
        if not math.isfinite(unit_price):
            return "is not a finite number"
        if unit_price < 0:
            return "is negative"
        if unit_price > self.max_unit_price:
            return f"is over {self.max_unit_price:g} (RECSYS_MAX_UNIT_PRICE)"
        return None
