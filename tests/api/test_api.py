"""The HTTP API end to end on a real store and a trained model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from recsys.settings import Settings
from recsys.store.tables import customers, items, order_lines, orders
from tests.api.conftest import make_client

ITEM_FIELDS = {"item_id", "name", "category", "price", "url", "image_url", "score", "reason"}


def _items_in(engine: Engine, category: str, in_stock: bool = True) -> list[str]:
    """Items in `category` or under it ("" = every item)."""
    with engine.connect() as conn:
        query = select(items.c.item_id).where(items.c.in_stock == in_stock)
        if category:
            query = query.where(
                (items.c.category == category) | items.c.category.like(f"{category}/%")
            )
        return sorted(conn.execute(query).scalars())


def _category(engine: Engine, item_id: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(select(items.c.category).where(items.c.item_id == item_id)).scalar()
        )


def _a_customer(engine: Engine) -> str:
    with engine.connect() as conn:
        query = (
            select(orders.c.customer_id)
            .join(customers, customers.c.customer_id == orders.c.customer_id)
            .where(customers.c.marketing_opt_in.is_(True))
            .group_by(orders.c.customer_id)
            .order_by(func.count().desc(), orders.c.customer_id)
            .limit(1)
        )
        return str(conn.execute(query).scalar())


def test_health_ready_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["model_version"].endswith("-als")
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/customers/{customer_id}/recommendations",
        "/v1/recommendations/cross-sell",
        "/v1/items/{item_id}/complements",
        "/v1/customers/{customer_id}/loyalty",
        "/v1/events/orders",
    ):
        assert path in paths
    assert client.get("/docs").status_code == 200


def test_unknown_customer_gets_popular_in_stock_items(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    body = client.get("/v1/customers/stranger-42/recommendations", params={"limit": 5}).json()
    assert body["fallback"] is True and body["customer_id"] == "stranger-42"
    assert len(body["items"]) == 5
    out_of_stock = set(_items_in(engine, "", in_stock=False))
    assert out_of_stock, "the demo catalog should have out-of-stock items"
    assert not {i["item_id"] for i in body["items"]} & out_of_stock
    assert all(set(i) == ITEM_FIELDS for i in body["items"])


def test_known_customer_gets_personalized_items(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    customer = _a_customer(engine)
    body = client.get(f"/v1/customers/{customer}/recommendations?placement=newsletter").json()
    assert body["fallback"] is False
    assert body["placement"] == "newsletter"
    assert body["model_version"].endswith("-als")
    assert 1 <= len(body["items"]) <= 4
    assert all(item["reason"] for item in body["items"])


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("/v1/customers/C1/recommendations?limit=0", "limit"),
        ("/v1/customers/C1/recommendations?limit=abc", "limit"),
        ("/v1/customers/C1/recommendations?limit=1000", "limit"),
        ("/v1/customers/C1/recommendations?placement=spam", "placement"),
        ("/v1/customers/C%01X/recommendations", "customer_id"),
        ("/v1/items/I1/complements?limit=-1", "limit"),
    ],
)
def test_invalid_input_is_a_4xx_with_a_message(client: TestClient, url: str, fragment: str) -> None:
    response = client.get(url)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and fragment in error["message"]


def test_unknown_item_and_customer_are_404(client: TestClient) -> None:
    missing_item = client.get("/v1/items/NOPE/complements")
    assert missing_item.status_code == 404 and "NOPE" in missing_item.json()["error"]["message"]
    missing_customer = client.get("/v1/customers/NOPE/loyalty")
    assert missing_customer.status_code == 404
    assert missing_customer.json()["error"]["code"] == "not_found"


def test_loyalty_fields(client: TestClient, served: tuple[Engine, Settings]) -> None:
    engine, _ = served
    body = client.get(f"/v1/customers/{_a_customer(engine)}/loyalty").json()
    for field in (
        "tier",
        "spend",
        "orders",
        "window_days",
        "next_tier",
        "spend_to_next_tier",
        "member_since",
        "next_anniversary",
        "benefits",
    ):
        assert field in body
    assert body["window_days"] == 365


def test_cross_sell_complements_a_tv_and_never_offers_another(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    tv = _items_in(engine, "electronics/tv")[0]
    tv_category = _category(engine, tv)
    body = client.post(
        "/v1/recommendations/cross-sell", json={"items": [tv, "GHOST"], "limit": 4}
    ).json()
    assert body["warnings"] == ["unknown item 'GHOST' ignored"]
    categories = [i["category"] for i in body["items"]]
    assert tv_category not in categories
    assert any(c in ("electronics/tv-mounts", "electronics/hdmi-cables") for c in categories)
    assert any("TV" in i["reason"] or "goes with" in i["reason"] for i in body["items"])


def test_cross_sell_rejects_malformed_bodies(client: TestClient) -> None:
    for body in ({"items": []}, {"items": "I1"}, {"items": ["I1"], "limit": 0}, {"x": 1}):
        response = client.post("/v1/recommendations/cross-sell", json=body)
        assert response.status_code == 422, body
    broken = client.post(
        "/v1/recommendations/cross-sell",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 422


def test_order_event_is_recorded_once_and_reflected_at_once(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    tv = _items_in(engine, "electronics/tv")[0]
    tv_category = _category(engine, tv)
    now = datetime.now(UTC).replace(microsecond=0)
    order = {
        "order_id": "EV-1",
        "customer_id": "new-customer-1",
        "purchased_at": (now - timedelta(hours=1)).isoformat(),
        "items": [{"item_id": tv, "quantity": 1, "unit_price": 1500.0}],
    }
    first = client.post("/v1/events/orders", json=order)
    assert first.status_code == 200 and first.json()["recorded"] is True
    again = client.post("/v1/events/orders", json=order)
    assert again.status_code == 200 and again.json()["recorded"] is False
    changed = client.post(
        "/v1/events/orders", json={**order, "items": [{"item_id": tv, "quantity": 2}]}
    )
    assert changed.status_code == 409

    loyalty = client.get("/v1/customers/new-customer-1/loyalty").json()
    assert loyalty["spend"] == pytest.approx(1500.0) and loyalty["orders"] == 1
    recs = client.get(
        "/v1/customers/new-customer-1/recommendations",
        params={"limit": 8, "placement": "order_confirmation"},
    ).json()
    assert recs["fallback"] is False
    served_categories = {i["category"] for i in recs["items"]}
    assert tv_category not in served_categories
    assert tv not in {i["item_id"] for i in recs["items"]}


def test_order_with_unknown_item_changes_nothing(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(order_lines)).scalar()
    response = client.post(
        "/v1/events/orders",
        json={
            "order_id": "EV-2",
            "customer_id": "c",
            "purchased_at": "2026-01-01T00:00:00",
            "items": [{"item_id": "GHOST", "quantity": 1}],
        },
    )
    assert response.status_code == 422 and "GHOST" in response.json()["error"]["message"]
    bad_types = client.post(
        "/v1/events/orders",
        json={
            "order_id": "EV-3",
            "customer_id": "c",
            "purchased_at": "soon",
            "items": [{"item_id": "x", "quantity": "many"}],
        },
    )
    assert bad_types.status_code == 422
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(order_lines)).scalar() == before


def test_huge_body_is_refused(client: TestClient) -> None:
    response = client.post(
        "/v1/recommendations/cross-sell",
        content=b'{"items": ["' + b"x" * 200_000 + b'"]}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413


def test_huge_chunked_body_is_refused(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"items": ["'
        for _ in range(100):
            yield b"x" * 10_000
        yield b'"]}'

    response = client.post(
        "/v1/recommendations/cross-sell",
        content=chunks(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_api_keys_guard_v1_but_not_health(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    keyed = settings.model_copy(update={"api_keys": [*map(_secret, ["k-one", "k-two"])]})
    with make_client(engine, keyed) as client:
        assert client.get("/healthz").status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = client.get("/v1/customers/anyone/loyalty", headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "error": {"code": "unauthorized", "message": "missing or invalid API key"}
            }
        ok = client.get("/v1/customers/anyone/recommendations", headers={"X-API-Key": "k-two"})
        assert ok.status_code == 200


def _secret(value: str):  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    return SecretStr(value)


def test_metrics_count_requests_by_route(client: TestClient) -> None:
    client.get("/v1/customers/x/recommendations")
    text = client.get("/metrics").text
    assert 'route="/v1/customers/{customer_id}/recommendations"' in text
    assert "recsys_http_request_seconds_bucket" in text
    assert "recsys_fallbacks_total" in text
    assert "recsys_model_info" in text
