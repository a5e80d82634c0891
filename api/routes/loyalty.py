"""Loyalty-tier lookup for the shop, the CRM and templates.

Like the recommendation handlers, the handler is `async def` and renders its body
directly (`LoyaltyOut` documents it): a plain `def` ran in the thread pool, and the
hop plus validating and serializing the response model again cost more than the
lookup itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from api.deps import RulesDep, StoreDep
from api.errors import NotFound
from api.schemas import Id, LoyaltyOut, error_responses
from api.strict_query import StrictQueryRoute
from recsys.customer_view import loyalty_for
from recsys.rules.tiers import LoyaltyStatus

router = APIRouter(prefix="/v1", tags=["loyalty"], route_class=StrictQueryRoute)


@router.get(
    "/customers/{customer_id}/loyalty",
    response_model=LoyaltyOut,
    responses=error_responses(401, 404, 422),
)
async def loyalty(
    customer_id: Annotated[Id, Path()], store: StoreDep, rules: RulesDep
) -> JSONResponse:
    """Tier, spend and orders in the window, distance to the next tier, anniversary."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.connect() as conn:
        status = loyalty_for(conn, customer_id, rules, now)
    if status is None:
        raise NotFound(f"customer {customer_id!r} is not known")
    return JSONResponse(loyalty_body(customer_id, status))


def loyalty_body(customer_id: str, status: LoyaltyStatus) -> dict[str, object]:
    """`LoyaltyOut`'s fields in its order, with its types (what validating it would give)."""
    body = status.to_dict()
    spend_to_next = status.spend_to_next_tier
    orders_to_next = status.orders_to_next_tier
    return {
        "customer_id": customer_id,
        **body,
        "spend": float(status.spend),
        "orders": int(status.orders),
        "window_days": int(status.window_days),
        "spend_to_next_tier": float(spend_to_next) if spend_to_next is not None else None,
        "orders_to_next_tier": int(orders_to_next) if orders_to_next is not None else None,
        "anniversary_voucher_percent": int(status.anniversary_voucher_percent),
        "birthday_voucher_percent": int(status.birthday_voucher_percent),
    }
