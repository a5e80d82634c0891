"""Orders recorded in real time: exclusions and tiers reflect them on the next call."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from api.deps import CatalogDep, StoreDep
from api.errors import Conflict, UnknownItems
from api.schemas import OrderIn, OrderRecorded, error_responses
from recsys.store.purchases import OrderConflict, OrderLineIn, record_order
from recsys.store.purchases import OrderIn as StoreOrder

router = APIRouter(prefix="/v1", tags=["events"])


@router.post(
    "/events/orders",
    response_model=OrderRecorded,
    responses=error_responses(401, 409, 413, 422),
)
def order_event(body: OrderIn, store: StoreDep, catalog: CatalogDep) -> OrderRecorded:
    """Record an order; posting the same order again changes nothing (`recorded: false`)."""
    unknown = sorted({line.item_id for line in body.items if line.item_id not in catalog})
    if unknown:
        raise UnknownItems(f"unknown item_id(s): {', '.join(unknown[:10])}; nothing was recorded")
    at = body.purchased_at
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    order = StoreOrder(
        body.order_id,
        body.customer_id,
        at,
        tuple(OrderLineIn(line.item_id, line.quantity, line.unit_price) for line in body.items),
    )
    try:
        with store.begin() as conn:
            recorded = record_order(conn, order)
    except OrderConflict as exc:
        raise Conflict(str(exc)) from exc
    except IntegrityError as exc:
        # A concurrent post of the same order id won the race.
        raise Conflict(f"order {body.order_id!r} is being recorded concurrently") from exc
    return OrderRecorded(order_id=body.order_id, recorded=recorded, customer_id=body.customer_id)
