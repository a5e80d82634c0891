"""Orders recorded in real time: exclusions and tiers reflect them on the next call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from api.deps import CatalogDep, ExposuresDep, SettingsDep, StoreDep
from api.errors import Conflict, InvalidRequest, Rejected, UnknownItems
from api.schemas import ClickIn, ClickRecorded, OrderIn, OrderRecorded, error_responses
from api.strict_query import StrictQueryRoute
from recsys.feedback.events import FeedbackError, UnknownExposure, check_touch, click, record_touch
from recsys.order_bounds import OrderBounds
from recsys.store.purchases import OrderConflict, OrderLineIn, record_order
from recsys.store.purchases import OrderIn as StoreOrder

router = APIRouter(prefix="/v1", tags=["events"], route_class=StrictQueryRoute)


@router.post(
    "/events/orders",
    response_model=OrderRecorded,
    responses=error_responses(400, 401, 409, 413, 422),
)
def order_event(
    body: OrderIn, store: StoreDep, catalog: CatalogDep, settings: SettingsDep
) -> OrderRecorded:
    """Record an order; posting the same order again changes nothing (`recorded: false`).

    Lines are held to the bounds ingest applies (quantity not 0, |quantity| and
    unit_price within RECSYS_MAX_LINE_QUANTITY / RECSYS_MAX_UNIT_PRICE); `purchased_at`
    may be at most a day ahead of the server's clock. One order id is one order: the
    same content again (posted or ingested) is `recorded: false`, other content a 409.
    """
    _check_bounds(body, settings.order_bounds)
    unknown = sorted({line.item_id for line in body.items if line.item_id not in catalog})
    if unknown:
        raise UnknownItems(f"unknown item_id(s): {', '.join(unknown[:10])}; nothing was recorded")
    at = _naive_utc(body.purchased_at)
    if at > datetime.now(UTC).replace(tzinfo=None) + FUTURE_TOLERANCE:
        raise InvalidRequest("purchased_at: is more than a day in the future; nothing was recorded")
    order = StoreOrder(
        body.order_id,
        body.customer_id,
        at,
        tuple(OrderLineIn(line.item_id, line.quantity, line.unit_price) for line in body.items),
    )
    try:
        with store.begin() as conn:
            # The exposure and voucher are checked before anything is written.
            touch = check_touch(
                conn, body.order_id, body.customer_id, at, body.exposure_id, body.voucher_code
            )
            recorded = record_order(conn, order)
            record_touch(conn, touch)
    except FeedbackError as exc:
        raise Rejected(exc.status, exc.code, str(exc)) from exc
    except OrderConflict as exc:
        raise Conflict(str(exc)) from exc
    except IntegrityError as exc:
        # A concurrent post of the same order id won the race.
        raise Conflict(f"order {body.order_id!r} is being recorded concurrently") from exc
    return OrderRecorded(order_id=body.order_id, recorded=recorded, customer_id=body.customer_id)


#: How far ahead of the server's clock `purchased_at` may be (clock skew between systems).
FUTURE_TOLERANCE = timedelta(days=1)


def _naive_utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo is not None else at


def _check_bounds(body: OrderIn, bounds: OrderBounds) -> None:
    problems = []
    for index, line in enumerate(body.items):
        quantity = bounds.quantity_problem(line.quantity)
        if quantity:
            problems.append(f"items.{index}.quantity: {quantity}")
        price = bounds.unit_price_problem(line.unit_price)
        if price:
            problems.append(f"items.{index}.unit_price: {price}")
    if problems:
        raise InvalidRequest("; ".join(problems[:5]) + "; nothing was recorded")


@router.post(
    "/events/clicks",
    response_model=ClickRecorded,
    responses=error_responses(400, 401, 404, 413, 422),
)
def click_event(body: ClickIn, store: StoreDep, exposures: ExposuresDep) -> ClickRecorded:
    """Record a click on an item of an exposure; the same click again changes nothing.

    `clicked_at` may not be before the exposure was shown, nor more than a day ahead
    of the server's clock (422, nothing recorded).
    """
    at = _naive_utc(body.clicked_at)
    latest = datetime.now(UTC).replace(tzinfo=None) + FUTURE_TOLERANCE
    for attempt in range(2):
        try:
            with store.begin() as conn:
                recorded = click(conn, body.exposure_id, body.item_id, at, latest)
            break
        except UnknownExposure as exc:
            # This worker may still hold the exposure in its queue: write it and look again.
            if attempt == 0 and exposures is not None and exposures.pending and exposures.flush():
                continue
            raise Rejected(exc.status, exc.code, str(exc)) from exc
        except FeedbackError as exc:
            raise Rejected(exc.status, exc.code, str(exc)) from exc
        except IntegrityError:
            recorded = False  # the same click posted concurrently; the first one won
            break
    return ClickRecorded(exposure_id=body.exposure_id, item_id=body.item_id, recorded=recorded)
