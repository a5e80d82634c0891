"""The product block as email-safe HTML, for email tools that cannot loop over JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse

from api.deps import ServingDep
from api.email_blocks import render_block
from api.exposure import arm_for, log_served
from api.filters import Category, Exclude, item_filters
from api.schemas import Id, Limit, Placement, Send, json_error_responses
from api.strict_query import StrictQueryRoute
from recsys.customer_view import load_customer_data
from recsys.offers import recommend_for_customer

router = APIRouter(prefix="/v1", tags=["recommendations"], route_class=StrictQueryRoute)


@router.get(
    "/customers/{customer_id}/email-block",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {}}, "description": "the product block"},
        **json_error_responses(401, 422, 503),
    },
)
async def email_block(
    customer_id: Annotated[Id, Path(description="the retailer's customer id")],
    serving: ServingDep,
    limit: Annotated[Limit, Query()] = 4,
    placement: Annotated[Placement, Query()] = "newsletter",
    heading: Annotated[
        str | None,
        Query(max_length=200, description="title above the items (default per placement)"),
    ] = None,
    send: Send = False,
    exclude: Exclude = None,
    category: Category = None,
) -> HTMLResponse:
    """The items of `/recommendations` rendered as one HTML table with inline CSS.

    The same items, rules and fallbacks as the JSON endpoint; a placement the contact
    policy suppresses renders an empty block (`X-Recsys-Suppressed` says why). The
    customer's experiment variant applies as on the JSON endpoint (`X-Recsys-Variant`);
    a block with items, or a held-out one, is an exposure (`X-Exposure-Id`). With
    `send=true` a served marketing block is recorded as a contact.
    """
    filters = item_filters(exclude, category)
    now = datetime.now(UTC).replace(tzinfo=None)
    with serving.store.connect() as conn:
        data = load_customer_data(conn, customer_id)
    arm, model, rules = arm_for(serving, customer_id, placement)
    offer = recommend_for_customer(
        model,
        rules,
        serving.catalog,
        data,
        placement=placement,
        limit=limit,
        now=now,
        behaviour_cache=serving.behaviour_cache(model, rules),
        filters=filters,
    )
    html = render_block([i.to_dict() for i in offer.items], placement=placement, heading=heading)
    headers = {"X-Model-Version": offer.model_version}
    if offer.suppressed:
        headers["X-Recsys-Suppressed"] = offer.suppressed
    if arm.variant is not None:
        headers["X-Recsys-Variant"] = arm.variant
    exposure_id = log_served(serving, offer, arm, rules, now, send=send)
    if exposure_id is not None:
        headers["X-Exposure-Id"] = exposure_id
    return HTMLResponse(str(html), headers=headers)
