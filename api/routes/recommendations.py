"""Recommendation endpoints used by email templates and the shop.

The handlers are `async def` and do their work on the event loop: it is CPU work
of about a millisecond plus indexed reads of one customer's rows, and a hop to
the thread pool cost as much as the work while threads only contend for the GIL.
Parallelism comes from `recsys serve --workers`. The body is rendered directly
(`RecommendationsOut` documents it) instead of being re-validated per request.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import Serving, ServingDep
from api.errors import InvalidRequest, NotFound
from api.exposure import arm_for, log_exposure, log_served
from api.filters import Category, Exclude, item_filters
from api.schemas import (
    CrossSellIn,
    Explain,
    Id,
    Limit,
    Placement,
    RecommendationsOut,
    Send,
    error_responses,
)
from api.strict_query import StrictQueryRoute
from recsys.customer_view import load_customer_data
from recsys.experiments import NO_ARM, Arm
from recsys.offers import CustomerData, Offer, cross_sell, item_complements, recommend_for_customer
from recsys.rules._time import naive_utc, replay_range, replayable

router = APIRouter(prefix="/v1", tags=["recommendations"], route_class=StrictQueryRoute)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


AsOf = Annotated[
    datetime | None,
    Query(
        description="ISO 8601 instant to answer as of (replays): rules, history and contact "
        "cap see only what happened before it; default now (or RECSYS_AS_OF). Years "
        f"{replay_range()}: the rules' windows reach years either side"
    ),
]


def _replay_at(as_of: datetime | None, serving: Serving) -> datetime | None:
    """The instant a replay is answered at (the query's, else `RECSYS_AS_OF`), naive UTC."""
    if as_of is not None and not replayable(as_of):
        raise InvalidRequest(
            f"as_of: {as_of.isoformat()} is outside the years {replay_range()} "
            "a replay can be answered in"
        )
    moment = as_of or serving.as_of
    return naive_utc(moment) if moment is not None else None


def _as_of(data: CustomerData, replay: datetime | None) -> CustomerData:
    """The customer as they were before a replay's instant: it must not see later orders."""
    if replay is None:
        return data
    return replace(
        data,
        purchases=[p for p in data.purchases if naive_utc(p.purchased_at) < replay],
        contact_history=[t for t in data.contact_history if naive_utc(t) < replay],
    )


def _render(
    offer: Offer,
    serving: Serving,
    explain: bool = False,
    arm: Arm = NO_ARM,
    exposure_id: str | None = None,
) -> JSONResponse:
    serving.metrics.count_offer(offer.placement, offer.fallback, offer.removed)
    body: dict[str, Any] = {
        "customer_id": offer.customer_id,
        "model_version": offer.model_version,
        "placement": offer.placement,
        "fallback": offer.fallback,
        "items": [item.to_dict() for item in offer.items],
        "warnings": list(offer.warnings),
        "suppressed": offer.suppressed,
        "exposure_id": exposure_id,
        "variant": arm.variant,
    }
    if explain:
        body["removed"] = [e.to_dict() for e in offer.explanation]
    return JSONResponse(body)


def _customer_data(serving: Serving, customer_id: str) -> CustomerData:
    with serving.store.connect() as conn:
        return load_customer_data(conn, customer_id)


@router.get(
    "/customers/{customer_id}/recommendations",
    response_model=RecommendationsOut,
    responses=error_responses(401, 422, 503),
)
async def customer_recommendations(
    customer_id: Annotated[Id, Path(description="the retailer's customer id")],
    serving: ServingDep,
    limit: Annotated[Limit, Query()] = 4,
    placement: Annotated[Placement, Query()] = "newsletter",
    as_of: AsOf = None,
    explain: Explain = False,
    send: Send = False,
    exclude: Exclude = None,
    category: Category = None,
) -> JSONResponse:
    """Personalized in-stock items; an unknown customer gets popular items (`fallback: true`)."""
    filters = item_filters(exclude, category)
    replay = _replay_at(as_of, serving)
    if send and replay is not None:
        raise InvalidRequest("send: a replay (as_of) records nothing, so it cannot be a send")
    now = replay or _now()
    arm, model, rules = arm_for(serving, customer_id, placement)
    offer = recommend_for_customer(
        model,
        rules,
        serving.catalog,
        _as_of(_customer_data(serving, customer_id), replay),
        placement=placement,
        limit=limit,
        now=now,
        explain=explain,
        behaviour_cache=serving.behaviour_cache(model, rules),
        filters=filters,
    )
    exposure_id = (
        None if replay is not None else log_served(serving, offer, arm, rules, now, send=send)
    )
    return _render(offer, serving, explain, arm, exposure_id)


@router.post(
    "/recommendations/cross-sell",
    response_model=RecommendationsOut,
    responses=error_responses(400, 401, 413, 422, 503),
)
async def basket_cross_sell(
    body: CrossSellIn,
    serving: ServingDep,
    as_of: AsOf = None,
    explain: Explain = False,
    exclude: Exclude = None,
    category: Category = None,
) -> JSONResponse:
    """Complements of a basket; its items and their durable categories are excluded."""
    filters = item_filters(exclude, category)
    replay = _replay_at(as_of, serving)
    now = replay or _now()
    data = (
        _customer_data(serving, body.customer_id)
        if body.customer_id is not None
        else CustomerData(None)
    )
    arm, model, rules = arm_for(serving, body.customer_id, "order_confirmation")
    offer = cross_sell(
        model,
        rules,
        serving.catalog,
        _as_of(data, replay),
        items=body.items,
        limit=body.limit,
        now=now,
        explain=explain,
        behaviour_cache=serving.behaviour_cache(model, rules),
        filters=filters,
    )
    exposure_id = None if replay is not None else log_exposure(serving, offer, arm, now)
    return _render(offer, serving, explain, arm, exposure_id)


@router.get(
    "/items/{item_id}/complements",
    response_model=RecommendationsOut,
    responses=error_responses(401, 404, 422, 503),
)
async def complements(
    item_id: Annotated[Id, Path()],
    serving: ServingDep,
    limit: Annotated[Limit, Query()] = 4,
    as_of: AsOf = None,
    explain: Explain = False,
    exclude: Exclude = None,
    category: Category = None,
) -> JSONResponse:
    """Items bought together with an item (learned) or configured as its complements."""
    filters = item_filters(exclude, category)
    if item_id not in serving.catalog:
        raise NotFound(f"item {item_id!r} is not in the catalog")
    replay = _replay_at(as_of, serving)
    now = replay or _now()
    offer = item_complements(
        serving.model,
        serving.rules,
        serving.catalog,
        item_id=item_id,
        limit=limit,
        now=now,
        explain=explain,
        behaviour_cache=serving.behaviour_cache(serving.model, serving.rules),
        filters=filters,
    )
    exposure_id = None if replay is not None else log_exposure(serving, offer, NO_ARM, now)
    return _render(offer, serving, explain, NO_ARM, exposure_id)
