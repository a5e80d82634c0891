"""Recommendation endpoints used by email templates and the shop."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import CatalogDep, MetricsDep, ModelDep, RulesDep, StoreDep
from api.errors import NotFound
from api.schemas import (
    CrossSellIn,
    Id,
    Limit,
    Placement,
    RecommendationsOut,
    error_responses,
)
from recsys.customer_view import load_customer_data
from recsys.offers import CustomerData, Offer, cross_sell, item_complements, recommend_for_customer

router = APIRouter(prefix="/v1", tags=["recommendations"])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _render(offer: Offer, metrics: MetricsDep) -> RecommendationsOut:
    if offer.fallback:
        metrics.fallbacks.labels(offer.placement).inc()
    for rule, count in offer.removed.items():
        if count:
            metrics.filtered.labels(rule).inc(count)
    return RecommendationsOut(
        customer_id=offer.customer_id,
        model_version=offer.model_version,
        placement=offer.placement,
        fallback=offer.fallback,
        items=[item.to_dict() for item in offer.items],  # type: ignore[misc]
        warnings=list(offer.warnings),
        suppressed=offer.suppressed,
    )


@router.get(
    "/customers/{customer_id}/recommendations",
    response_model=RecommendationsOut,
    responses=error_responses(401, 422, 503),
)
def customer_recommendations(
    customer_id: Annotated[Id, Path(description="the retailer's customer id")],
    store: StoreDep,
    model: ModelDep,
    rules: RulesDep,
    catalog: CatalogDep,
    metrics: MetricsDep,
    limit: Annotated[Limit, Query()] = 4,
    placement: Annotated[Placement, Query()] = "newsletter",
) -> RecommendationsOut:
    """Personalized in-stock items; an unknown customer gets popular items (`fallback: true`)."""
    with store.connect() as conn:
        data = load_customer_data(conn, customer_id)
    offer = recommend_for_customer(
        model, rules, catalog, data, placement=placement, limit=limit, now=_now()
    )
    return _render(offer, metrics)


@router.post(
    "/recommendations/cross-sell",
    response_model=RecommendationsOut,
    responses=error_responses(401, 413, 422, 503),
)
def basket_cross_sell(
    body: CrossSellIn,
    store: StoreDep,
    model: ModelDep,
    rules: RulesDep,
    catalog: CatalogDep,
    metrics: MetricsDep,
) -> RecommendationsOut:
    """Complements of a basket; its items and their durable categories are excluded."""
    data = CustomerData(None)
    if body.customer_id is not None:
        with store.connect() as conn:
            data = load_customer_data(conn, body.customer_id)
    offer = cross_sell(model, rules, catalog, data, items=body.items, limit=body.limit, now=_now())
    return _render(offer, metrics)


@router.get(
    "/items/{item_id}/complements",
    response_model=RecommendationsOut,
    responses=error_responses(401, 404, 422, 503),
)
def complements(
    item_id: Annotated[Id, Path()],
    model: ModelDep,
    rules: RulesDep,
    catalog: CatalogDep,
    metrics: MetricsDep,
    limit: Annotated[Limit, Query()] = 4,
) -> RecommendationsOut:
    """Items bought together with an item (learned) or configured as its complements."""
    if item_id not in catalog:
        raise NotFound(f"item {item_id!r} is not in the catalog")
    offer = item_complements(model, rules, catalog, item_id=item_id, limit=limit, now=_now())
    return _render(offer, metrics)
