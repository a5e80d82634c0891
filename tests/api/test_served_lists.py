"""The request path's shortcuts change no answer.

For a fixed set of customers the endpoints' lists (and loyalty answers) equal the pure
pipeline's, `recommend_for_customer` / `cross_sell` / `loyalty_status`, fed with the
customer's rows read here by plain SQLAlchemy Core queries, independent of the store
functions the service uses (which read SQLite through the driver, and may cache).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, select

from api.app import create_app
from recsys.offers import CustomerData, cross_sell, recommend_for_customer
from recsys.records import Customer, Purchase
from recsys.rules.config import load_rules
from recsys.rules.tiers import loyalty_status
from recsys.settings import Settings
from recsys.store.catalog import load_items
from recsys.store.tables import contact_log, customers, order_lines, orders
from training.serving import load_serving_model

from .conftest import TestClient, load_demo, train


def _reference(conn: Connection, customer_id: str) -> CustomerData:
    row = conn.execute(
        select(customers).where(customers.c.customer_id == customer_id)
    ).first()
    if row is None:
        return CustomerData(customer_id)
    lines = conn.execute(
        select(order_lines.c.order_id, order_lines.c.item_id, order_lines.c.quantity,
               order_lines.c.unit_price, orders.c.purchased_at)
        .join(orders, orders.c.order_id == order_lines.c.order_id)
        .where(orders.c.customer_id == customer_id)
        .order_by(orders.c.purchased_at, order_lines.c.item_id)
    ).all()
    sent = conn.execute(
        select(contact_log.c.sent_at)
        .where(contact_log.c.customer_id == customer_id, contact_log.c.held_out.is_(False))
        .order_by(contact_log.c.sent_at)
    ).scalars().all()
    return CustomerData(
        customer_id,
        Customer(**row._mapping),
        [Purchase(o, i, float(q), p, at) for o, i, q, p, at in lines],
        list(sent),
    )


def test_endpoints_serve_what_the_pipeline_computes(engine: Engine, demo_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    load_demo(engine, demo_dir, tmp_path / "rejects")
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(False))
    version = train(engine, settings.models_dir)
    model = load_serving_model(settings.models_dir, version)
    rules = load_rules(None)
    with engine.connect() as conn:
        catalog = load_items(conn)
        known = sorted(conn.execute(select(customers.c.customer_id)).scalars())[:40]
        # recent contacts for some, so the contact cap and its history are compared too
        sent = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=2, microseconds=250)
        conn.execute(contact_log.insert(), [
            {"customer_id": c, "occasion": "newsletter", "date": sent.date(),
             "placement": "newsletter", "sent_at": sent}
            for c in known[:10]
        ])
        conn.commit()
    basket = sorted(catalog)[:2]
    wanted = [*known, "nobody-1", "nobody-2"]
    compared = suppressed = 0
    with TestClient(create_app(settings, engine=engine)) as client:
        for customer_id in wanted:
            for placement in ("newsletter", "order_confirmation"):
                answer = client.get(f"/v1/customers/{customer_id}/recommendations",
                                    params={"placement": placement, "limit": 6})
                assert answer.status_code == 200, answer.text
                now = datetime.now(UTC).replace(tzinfo=None)
                with engine.connect() as conn:
                    data = _reference(conn, customer_id)
                expected = recommend_for_customer(model, rules, catalog, data,
                                                  placement=placement, limit=6, now=now)
                body = answer.json()
                assert body["suppressed"] == expected.suppressed, customer_id
                assert [i["item_id"] for i in body["items"]] == [
                    i.item_id for i in expected.items
                ], (customer_id, placement)
                assert [i["reason"] for i in body["items"]] == [
                    i.reason for i in expected.items
                ]
                compared += bool(expected.items)
                suppressed += expected.suppressed is not None
            answer = client.post("/v1/recommendations/cross-sell",
                                 json={"customer_id": customer_id, "items": basket, "limit": 4})
            assert answer.status_code == 200, answer.text
            expected = cross_sell(model, rules, catalog, data, items=basket, limit=4, now=now)
            assert [i["item_id"] for i in answer.json()["items"]] == [
                i.item_id for i in expected.items
            ], customer_id
            answer = client.get(f"/v1/customers/{customer_id}/loyalty")
            if data.customer is None:
                assert answer.status_code == 404
                continue
            status = loyalty_status(data.purchases, data.customer.joined_at, rules.loyalty, now)
            assert answer.status_code == 200, answer.text
            assert answer.json()["tier"] == status.tier
            assert answer.json()["spend"] == status.to_dict()["spend"]
    assert compared >= 60
    assert suppressed >= 10
