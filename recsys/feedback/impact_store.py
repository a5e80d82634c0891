"""Reading what `compute_impact` needs from the store: exposures, orders, clicks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Connection, and_, case, func, select

from recsys.feedback.attribution import OrderFact, Touch, window_end
from recsys.rules.config import AttributionConfig
from recsys.store.tables import (
    clicks,
    exposures,
    items,
    order_lines,
    order_touches,
    orders,
    vouchers,
)


@dataclass(frozen=True, slots=True)
class ImpactData:
    touches: list[Touch]
    orders: list[OrderFact]
    clicked: list[str]  # one exposure id per clicked item


def longest_window_days(config: AttributionConfig, voucher_days: int) -> int:
    return max(config.placement_window_days, config.campaign_window_days, voucher_days) + 1


def load_impact_data(
    conn: Connection,
    start: date,
    end: date,
    config: AttributionConfig,
    *,
    voucher_days: int = 30,
) -> ImpactData:
    """Exposures that may take credit for the orders of the period's customers, those
    orders (from `start` to the end of the longest window after `end`), and the clicks
    on the period's exposures. `voucher_days` bounds a campaign voucher's validity."""
    first = datetime.combine(start, time.min)
    last_shown = datetime.combine(end + timedelta(days=1), time.min)
    span = timedelta(days=longest_window_days(config, voucher_days))
    last_order = last_shown + span
    in_period = and_(
        exposures.c.shown_at >= first,
        exposures.c.shown_at < last_shown,
        exposures.c.customer_id.is_not(None),
    )
    period_customers = select(exposures.c.customer_id).where(in_period).distinct()

    touch_query = (
        select(exposures, vouchers.c.valid_until)
        .select_from(exposures.outerjoin(vouchers, vouchers.c.code == exposures.c.voucher_code))
        .where(
            exposures.c.customer_id.in_(period_customers),
            # Earlier exposures can still hold an order's credit at the period's start.
            exposures.c.shown_at >= first - span,
            exposures.c.shown_at < last_order,
        )
    )
    touches = []
    for row in conn.execute(touch_query):
        valid_until = row.valid_until
        touches.append(
            Touch(
                row.exposure_id,
                row.customer_id,
                row.placement,
                row.shown_at,
                window_end(row.placement, row.shown_at, valid_until, config),
                bool(row.held_out),
                row.experiment,
                row.variant,
                row.voucher_code,
                row.voucher_percent,
            )
        )

    value = order_lines.c.quantity * order_lines.c.unit_price
    known = items.c.cost.is_not(None) & order_lines.c.unit_price.is_not(None)
    order_query = (
        select(
            orders.c.order_id,
            orders.c.customer_id,
            orders.c.purchased_at,
            func.coalesce(func.sum(value), 0.0).label("revenue"),
            func.coalesce(func.sum(case((known, order_lines.c.quantity * items.c.cost))), 0.0)
            .label("cost"),
            func.coalesce(func.sum(case((known, value))), 0.0).label("costed_revenue"),
            order_touches.c.exposure_id,
            order_touches.c.voucher_code,
        )
        .select_from(
            orders.join(order_lines, order_lines.c.order_id == orders.c.order_id)
            .outerjoin(items, items.c.item_id == order_lines.c.item_id)
            .outerjoin(order_touches, order_touches.c.order_id == orders.c.order_id)
        )
        .where(
            orders.c.customer_id.in_(period_customers),
            orders.c.purchased_at >= first,
            orders.c.purchased_at < last_order,
        )
        .group_by(
            orders.c.order_id, orders.c.customer_id, orders.c.purchased_at,
            order_touches.c.exposure_id, order_touches.c.voucher_code,
        )
    )
    facts = [
        OrderFact(
            r.order_id, r.customer_id, r.purchased_at, float(r.revenue), float(r.cost),
            float(r.costed_revenue), r.exposure_id, r.voucher_code,
        )
        for r in conn.execute(order_query)
    ]
    click_query = (
        select(clicks.c.exposure_id)
        .select_from(clicks.join(exposures, exposures.c.exposure_id == clicks.c.exposure_id))
        .where(in_period)
    )
    clicked = list(conn.execute(click_query).scalars())
    return ImpactData(touches, facts, clicked)
