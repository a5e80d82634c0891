"""Simulated responses to a campaign, with a planted effect: the proof for the impact report.

Given who was sent an offer (treated) and who was held out (control), each
customer buys one catalog item (drawn at random) within `window_days` of the
campaign with probability `base_rate`, plus `uplift` if treated. A treated
buyer with a voucher redeems it with probability `redeem_rate`. The orders come back as `POST
/v1/events/orders` bodies (SPEC), so a test feeds them through the real
endpoint and checks that `recsys report impact` recovers the planted uplift;
`recsys demo-responses` records them for the demo (`record_orders`, the
endpoint's checks and writes).

Deterministic: the same arguments give the same orders (numpy `Generator`
seeded from `seed`, customers processed in id order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Recipient:
    """One customer of the campaign: sent an offer (`items`, maybe a voucher) or held out."""

    customer_id: str
    at: datetime  # the campaign instant, naive UTC
    held_out: bool
    items: tuple[str, ...] = ()
    voucher_code: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseModel:
    base_rate: float = 0.10
    uplift: float = 0.03
    redeem_rate: float = 0.6
    window_days: int = 14
    seed: int = 7

    def __post_init__(self) -> None:
        if not 0 <= self.base_rate <= 1 or not 0 <= self.base_rate + self.uplift <= 1:
            raise ValueError("base_rate and base_rate + uplift must be probabilities")
        if not 0 <= self.redeem_rate <= 1 or self.window_days < 1:
            raise ValueError("redeem_rate must be in [0, 1] and window_days at least 1")


def recipients_from_offers(
    lines: Sequence[Mapping[str, Any]], held_out: Sequence[tuple[str, datetime]], at: datetime
) -> list[Recipient]:
    """Recipients from campaign output lines and the (customer, instant) held out."""
    sent = [
        Recipient(
            str(line["customer_id"]), at, False,
            tuple(str(i["item_id"]) for i in line["items"]),
            (line.get("voucher") or {}).get("code"),
        )
        for line in lines
    ]
    return sent + [Recipient(cid, moment, True) for cid, moment in held_out]


def simulate_orders(
    recipients: Sequence[Recipient],
    prices: Mapping[str, float],
    model: ResponseModel,
    *,
    order_prefix: str = "SIM",
) -> list[dict[str, Any]]:
    """Order events for the recipients who buy, each one catalog item drawn at random.

    Treated and control buyers draw from the same catalog, so an order is worth the
    same on average in both arms and the planted revenue effect is `uplift` x the
    mean price (offered items are cheaper than the catalog's mean, and buying them
    would plant a revenue effect of the model's choosing)."""
    rng = np.random.default_rng(model.seed)
    catalog = sorted(prices)
    orders: list[dict[str, Any]] = []
    for n, person in enumerate(sorted(recipients, key=lambda r: r.customer_id)):
        # Every draw happens for everyone, so one customer's outcome never shifts another's.
        buy_draw, redeem_draw, day_draw, item_draw = rng.random(4)
        rate = model.base_rate + (0.0 if person.held_out else model.uplift)
        if buy_draw >= rate:
            continue
        item = catalog[int(item_draw * len(catalog))]
        at = person.at + timedelta(seconds=int(60 + day_draw * (model.window_days * 86400 - 120)))
        body: dict[str, Any] = {
            "order_id": f"{order_prefix}-{n:06d}",
            "customer_id": person.customer_id,
            "purchased_at": at.isoformat() + "Z",
            "items": [{"item_id": item, "quantity": 1, "unit_price": prices[item]}],
        }
        if person.voucher_code is not None and redeem_draw < model.redeem_rate:
            body["voucher_code"] = person.voucher_code
        orders.append(body)
    return orders


def held_out_of(conn: Any, occasion: str, day: date) -> list[tuple[str, datetime]]:
    """The customers a campaign held out on `day`, with the instant (its held-out exposures)."""
    from sqlalchemy import select

    from recsys.store.tables import exposures

    start = datetime.combine(day, datetime.min.time())
    query = select(exposures.c.customer_id, exposures.c.shown_at).where(
        exposures.c.held_out.is_(True),
        exposures.c.placement == occasion,
        exposures.c.shown_at >= start,
        exposures.c.shown_at < start + timedelta(days=1),
    )
    return [(r.customer_id, r.shown_at) for r in conn.execute(query)]


def record_orders(engine: Any, events: Sequence[Mapping[str, Any]]) -> int:
    """Record order events as `POST /v1/events/orders` does (the touch checked first, one
    transaction each); returns how many were new. Raises FeedbackError / OrderConflict."""
    from recsys.feedback.events import check_touch, record_touch
    from recsys.store.purchases import OrderIn, OrderLineIn, record_order

    recorded = 0
    for event in events:
        at = datetime.fromisoformat(str(event["purchased_at"]).removesuffix("Z"))
        order = OrderIn(
            str(event["order_id"]), str(event["customer_id"]), at,
            tuple(OrderLineIn(str(i["item_id"]), float(i["quantity"]), float(i["unit_price"]))
                  for i in event["items"]),
        )
        with engine.begin() as conn:
            touch = check_touch(conn, order.order_id, order.customer_id, at,
                                event.get("exposure_id"), event.get("voucher_code"))
            recorded += record_order(conn, order)
            record_touch(conn, touch)
    return recorded
