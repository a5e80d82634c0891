"""Loyalty-tier lookup for the shop, the CRM and templates."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import RulesDep, StoreDep
from api.errors import NotFound
from api.schemas import Id, LoyaltyOut, error_responses
from api.strict_query import StrictQueryRoute
from recsys.customer_view import loyalty_for

router = APIRouter(prefix="/v1", tags=["loyalty"], route_class=StrictQueryRoute)


@router.get(
    "/customers/{customer_id}/loyalty",
    response_model=LoyaltyOut,
    responses=error_responses(401, 404, 422),
)
def loyalty(customer_id: Annotated[Id, Path()], store: StoreDep, rules: RulesDep) -> LoyaltyOut:
    """Tier, spend and orders in the window, distance to the next tier, anniversary."""
    now = datetime.now(UTC).replace(tzinfo=None)
    with store.connect() as conn:
        status = loyalty_for(conn, customer_id, rules, now)
    if status is None:
        raise NotFound(f"customer {customer_id!r} is not known")
    return LoyaltyOut(customer_id=customer_id, **status.to_dict())  # type: ignore[arg-type]
