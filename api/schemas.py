"""Request and response bodies (the SPEC's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Opaque ids: any printable text without slashes or control characters.
Id = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f/\\]+$")
]
Placement = Literal["order_confirmation", "anniversary", "newsletter", "birthday"]
Limit = Annotated[int, Field(ge=1, le=50)]
Explain = Annotated[
    bool,
    Query(description="also list the candidates the rules removed and the rule that removed each"),
]

Send = Annotated[
    bool,
    Query(
        description="the caller sends this list (mails it): a marketing placement's served "
        "list is then recorded as a contact and counts toward the contact cap; without it the "
        "call is a render, which never counts"
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ItemOut(BaseModel):
    item_id: str
    name: str | None
    category: str | None
    price: float | None
    url: str | None
    image_url: str | None
    score: float
    reason: str


class RemovedOut(BaseModel):
    """A candidate the rules removed (with `explain=true`)."""

    item_id: str
    rule: str = Field(description="the pipeline rule, or contact_policy")
    reason: str = Field(
        description="out_of_stock, not_in_catalog, excluded, already_bought, cooldown, "
        "in_basket, basket_durable, duplicate, opted_out, cap_reached"
    )
    detail: str
    until: str | None = Field(description="when the rule stops applying (UTC), if it does")
    score: float
    source: str


class RecommendationsOut(BaseModel):
    customer_id: str | None
    model_version: str
    placement: str
    fallback: bool
    items: list[ItemOut]
    warnings: list[str] = Field(default_factory=list)
    suppressed: str | None = Field(
        default=None,
        description="why a marketing placement returned no items (opted_out, cap_reached, "
        "held_out: the customer is in the control group)",
    )
    exposure_id: str | None = Field(
        default=None,
        description="the exposure to name in clicks and orders; null when nothing was shown "
        "or the exposure log is off",
    )
    variant: str | None = Field(
        default=None, description="the experiment variant served, when the placement has one"
    )
    removed: list[RemovedOut] | None = Field(
        default=None, description="only with explain=true: what the rules removed, and why"
    )


class CrossSellIn(_Strict):
    customer_id: Id | None = None
    items: Annotated[list[Id], Field(min_length=1, max_length=100)]
    limit: Limit = 4


class OrderLineIn(_Strict):
    item_id: Id
    quantity: Annotated[float, Field(allow_inf_nan=False)] = 1.0
    unit_price: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None


class OrderIn(_Strict):
    order_id: Id
    customer_id: Id
    purchased_at: datetime
    items: Annotated[list[OrderLineIn], Field(min_length=1, max_length=1000)]
    voucher_code: Id | None = Field(default=None, description="a campaign voucher redeemed")
    exposure_id: Id | None = Field(default=None, description="the exposure the order came from")


class ClickIn(_Strict):
    exposure_id: Id
    item_id: Id
    clicked_at: datetime


class ClickRecorded(BaseModel):
    exposure_id: str
    item_id: str
    recorded: bool = Field(description="false when the same click was already recorded")


class OrderRecorded(BaseModel):
    order_id: str
    recorded: bool = Field(description="false when the identical order was already recorded")
    customer_id: str


class LoyaltyOut(BaseModel):
    customer_id: str
    tier: str
    spend: float
    orders: int
    window_days: int
    next_tier: str | None
    spend_to_next_tier: float | None
    orders_to_next_tier: int | None
    member_since: str | None
    next_anniversary: str | None
    benefits: list[str]
    anniversary_voucher_percent: int
    birthday_voucher_percent: int


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """The one error shape of every 4xx/5xx answer."""

    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {s: {"model": ErrorOut, "description": _ERROR_TEXT[s]} for s in statuses}


_ERROR_TEXT = {
    400: "the body is not UTF-8 text (JSON is parsed only after that)",
    401: "missing or invalid API key",
    404: "not found",
    409: "conflicts with a recorded order",
    413: "request body too large",
    422: "invalid request",
    503: "no model loaded yet",
}


def json_error_responses(*statuses: int) -> dict[int | str, dict[str, object]]:
    """`error_responses` for a route whose own answer is not JSON (the email block).

    FastAPI files a `model` under the route's media type (text/html there); errors are
    JSON whatever the route answers, so they name the schema under application/json.
    """
    ref = {"$ref": "#/components/schemas/ErrorOut"}
    return {
        s: {"description": _ERROR_TEXT[s], "content": {"application/json": {"schema": ref}}}
        for s in statuses
    }
