"""Order events: bounds as ingest applies them, and one order id = one order however it arrived."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from recsys.settings import Settings
from recsys.store.tables import order_lines, orders
from tests.api.conftest import make_client


def _store_rows(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        return (
            conn.execute(select(orders).order_by(orders.c.order_id)).all(),
            conn.execute(
                select(order_lines).order_by(order_lines.c.order_id, order_lines.c.item_id)
            ).all(),
        )


def _an_item(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(order_lines.c.item_id).limit(1)).scalar_one())


def _order(item: str, **line: object) -> dict[str, object]:
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    return {
        "order_id": "EV-BOUNDS",
        "customer_id": "C-BOUNDS",
        "purchased_at": at.isoformat(),
        "items": [{"item_id": item, "quantity": 1, "unit_price": 9.99, **line}],
    }


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"quantity": 0}, "items.0.quantity"),
        ({"quantity": 1e308}, "items.0.quantity"),
        ({"quantity": -1e308}, "items.0.quantity"),
        ({"quantity": 10**30}, "items.0.quantity"),
        ({"quantity": 100_001}, "items.0.quantity"),
        ({"unit_price": 1e308}, "items.0.unit_price"),
        ({"unit_price": 1_000_001}, "items.0.unit_price"),
        ({"unit_price": -1}, "items.0.unit_price"),
    ],
)
def test_absurd_lines_are_a_422_naming_the_field_and_store_nothing(
    client: TestClient, served: tuple[Engine, Settings], line: dict[str, object], field: str
) -> None:
    engine, _ = served
    before = _store_rows(engine)
    response = client.post("/v1/events/orders", json=_order(_an_item(engine), **line))
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["message"]
    assert _store_rows(engine) == before


def test_bounds_are_configurable(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    tight = settings.model_copy(update={"max_line_quantity": 5.0, "max_unit_price": 10.0})
    item = _an_item(engine)
    with make_client(engine, tight) as client:
        assert client.post("/v1/events/orders", json=_order(item, quantity=6)).status_code == 422
        pricey = client.post("/v1/events/orders", json=_order(item, unit_price=10.5))
        assert pricey.status_code == 422
        assert "items.0.unit_price" in pricey.json()["error"]["message"]
        ok = client.post("/v1/events/orders", json=_order(item, quantity=-5, unit_price=10.0))
        assert ok.status_code == 200 and ok.json()["recorded"] is True


def test_a_purchase_far_in_the_future_is_refused(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    before = _store_rows(engine)
    body = {**_order(_an_item(engine)), "purchased_at": "2999-01-01T00:00:00Z"}
    response = client.post("/v1/events/orders", json=body)
    assert response.status_code == 422 and "purchased_at" in response.json()["error"]["message"]
    assert _store_rows(engine) == before


def _ingested_order(engine: Engine) -> dict[str, object]:
    """An order loaded from the demo file, as the body that would post it again."""
    with engine.connect() as conn:
        order = conn.execute(
            select(orders).where(orders.c.source == "ingest").order_by(orders.c.order_id).limit(1)
        ).one()
        lines = conn.execute(
            select(order_lines).where(order_lines.c.order_id == order.order_id)
        ).all()
    return {
        "order_id": order.order_id,
        "customer_id": order.customer_id,
        "purchased_at": order.purchased_at.isoformat() + "Z",
        "items": [
            {"item_id": line.item_id, "quantity": line.quantity, "unit_price": line.unit_price}
            for line in lines
        ],
    }


def test_an_ingested_order_posted_again_is_not_recorded(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    body = _ingested_order(engine)
    before = _store_rows(engine)
    response = client.post("/v1/events/orders", json=body)
    assert response.status_code == 200 and response.json()["recorded"] is False
    assert _store_rows(engine) == before


def _other_item(engine: Engine, not_these: set[str]) -> str:
    with engine.connect() as conn:
        items = conn.execute(select(order_lines.c.item_id).distinct()).scalars()
        return next(i for i in items if i not in not_these)


@pytest.mark.parametrize("change", ["customer", "item", "quantity", "time"])
def test_other_content_under_an_ingested_order_id_is_a_409(
    client: TestClient, served: tuple[Engine, Settings], change: str
) -> None:
    engine, _ = served
    body = _ingested_order(engine)
    lines: list[dict[str, Any]] = body["items"]  # type: ignore[assignment]
    if change == "customer":
        body["customer_id"] = "someone-else"
    elif change == "item":
        lines[0]["item_id"] = _other_item(engine, {line["item_id"] for line in lines})
    elif change == "quantity":
        lines[0]["quantity"] = lines[0]["quantity"] + 1
    else:
        body["purchased_at"] = "2020-01-01T00:00:00Z"
    before = _store_rows(engine)
    response = client.post("/v1/events/orders", json=body)
    assert response.status_code == 409, response.text
    assert "someone-else" not in response.text
    assert _store_rows(engine) == before
