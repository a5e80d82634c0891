"""`explain=true` on the recommendation endpoints, and the product block as email HTML."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select, update

from api.email_blocks import email_from_api
from recsys.settings import Settings
from recsys.store.tables import customers, items, orders
from tests.api.conftest import make_client

PLACEMENTS = ("order_confirmation", "anniversary", "newsletter", "birthday")


def _buyers(engine: Engine, n: int) -> list[str]:
    with engine.connect() as conn:
        query = (
            select(orders.c.customer_id)
            .join(customers, customers.c.customer_id == orders.c.customer_id)
            .where(customers.c.marketing_opt_in.is_(True))
            .group_by(orders.c.customer_id)
            .order_by(func.count().desc(), orders.c.customer_id)
            .limit(n)
        )
        return [str(c) for c in conn.execute(query).scalars()]


def test_explain_adds_removals_and_changes_nothing_else(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    seen_rules: set[str] = set()
    for customer_id in _buyers(engine, 5):
        for placement in PLACEMENTS:
            url = f"/v1/customers/{customer_id}/recommendations?placement={placement}"
            plain = client.get(url).json()
            explained = client.get(url + "&explain=true").json()
            assert "removed" not in plain
            removed = explained.pop("removed")
            # Each answer is its own exposure; everything else is the same.
            assert plain.pop("exposure_id") != explained.pop("exposure_id") or not plain["items"]
            assert explained == plain
            served_ids = {i["item_id"] for i in plain["items"]}
            for entry in removed:
                assert set(entry) == {
                    "item_id", "rule", "reason", "detail", "until", "score", "source"
                }
                assert entry["detail"]
                if entry["reason"] != "duplicate":
                    assert entry["item_id"] not in served_ids
                seen_rules.add(entry["rule"])
    # The demo's buyers have bought items the model likes, and the demo has stock-outs.
    assert {"already_bought", "eligibility"} <= seen_rules


def test_a_bought_item_is_explained_as_already_bought(client: TestClient) -> None:
    customer_id = "explain-buyer"
    top = client.get(f"/v1/customers/{customer_id}/recommendations?limit=1").json()["items"][0]
    order = {
        "order_id": "explain-o1",
        "customer_id": customer_id,
        "purchased_at": datetime.now(UTC).isoformat(),
        "items": [{"item_id": top["item_id"], "quantity": 1, "unit_price": 5.0}],
    }
    assert client.post("/v1/events/orders", json=order).status_code in (200, 201)
    body = client.get(
        f"/v1/customers/{customer_id}/recommendations?placement=order_confirmation&explain=true"
    ).json()
    why = {e["item_id"]: e for e in body["removed"]}
    assert top["item_id"] not in {i["item_id"] for i in body["items"]}
    assert why[top["item_id"]]["rule"] in {"already_bought", "basket_exclusion"}


def test_an_opted_out_customer_is_explained_by_the_contact_policy(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    customer_id = _buyers(engine, 1)[0]
    with engine.begin() as conn:
        conn.execute(
            update(customers)
            .where(customers.c.customer_id == customer_id)
            .values(marketing_opt_in=False)
        )
    body = client.get(
        f"/v1/customers/{customer_id}/recommendations?placement=newsletter&explain=true"
    ).json()
    assert body["items"] == [] and body["suppressed"] == "opted_out"
    policy = [e for e in body["removed"] if e["rule"] == "contact_policy"]
    assert policy and {e["reason"] for e in policy} == {"opted_out"}


def test_explain_on_cross_sell_and_complements(client: TestClient) -> None:
    some = client.get("/v1/customers/x/recommendations?limit=2").json()["items"]
    basket = [i["item_id"] for i in some]
    body = client.post(
        "/v1/recommendations/cross-sell?explain=true", json={"items": basket, "limit": 3}
    ).json()
    assert isinstance(body["removed"], list)
    assert "removed" in client.get(f"/v1/items/{basket[0]}/complements?explain=true").json()
    assert client.get("/v1/customers/x/recommendations?explain=maybe").status_code == 422


def test_email_block_is_escaped_html(client: TestClient, served: tuple[Engine, Settings]) -> None:
    engine, _ = served
    customer_id = _buyers(engine, 1)[0]
    json_items = client.get(
        f"/v1/customers/{customer_id}/recommendations?placement=newsletter"
    ).json()["items"]
    # A hostile product name must arrive as text.
    with engine.begin() as conn:
        conn.execute(
            update(items)
            .where(items.c.item_id == json_items[0]["item_id"])
            .values(name="<script>alert(1)</script>", revision=items.c.revision + 10**15)
        )
    client.app.state.catalog.refresh()  # type: ignore[attr-defined]
    response = client.get(f"/v1/customers/{customer_id}/email-block?placement=newsletter")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count('class="recsys-item"') == len(json_items)
    for item in json_items:
        assert f'data-item-id="{item["item_id"]}"' in html
    assert client.get("/v1/customers/x/email-block?limit=0").status_code == 422


def test_email_block_needs_the_key_when_keys_are_set(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    keyed = settings.model_copy(update={"api_keys": [SecretStr("k-one")]})
    with make_client(engine, keyed) as client:
        assert client.get("/v1/customers/x/email-block").status_code == 401
        ok = client.get("/v1/customers/x/email-block", headers={"X-API-Key": "k-one"})
        assert ok.status_code == 200


def test_example_emails_call_the_endpoint(served: tuple[Engine, Settings]) -> None:
    engine, settings = served
    keyed = settings.model_copy(update={"api_keys": [SecretStr("k-one")]})
    customer_id = _buyers(engine, 1)[0]
    with make_client(engine, keyed) as client:
        expected = client.get(
            f"/v1/customers/{customer_id}/recommendations",
            params={"placement": "order_confirmation"},
            headers={"X-API-Key": "k-one"},
        ).json()["items"]
        mail = email_from_api(
            client, "order_confirmation", customer_id, api_key="k-one", order_id="O-1"
        )
        assert "Order <strong>O-1</strong> is confirmed" in mail
        assert [f'data-item-id="{i["item_id"]}"' in mail for i in expected] == [True] * len(
            expected
        )
        anniversary = email_from_api(
            client, "anniversary", customer_id, api_key="k-one", years=2, tier="Gold",
            voucher={"code": "ANNIV-X", "percent": 10, "valid_until": "2026-12-31"},
        )
        assert "Happy 2 years with us" in anniversary and "10% off" in anniversary
        try:
            email_from_api(client, "anniversary", customer_id, years=1, tier="", voucher=None)
        except httpx.HTTPStatusError as exc:
            assert exc.response.status_code == 401
        else:
            raise AssertionError("a missing key must be refused")
