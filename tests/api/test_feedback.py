"""Exposures, clicks, order touches and the control group through the API (both stores)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select

from recsys.experiments import in_control_group
from recsys.rules.config import load_rules
from recsys.settings import Settings
from recsys.store.tables import (
    clicks,
    contact_log,
    customers,
    exposures,
    order_lines,
    order_touches,
    orders,
    vouchers,
)

CONTROL = load_rules(None).control


def _opted_in(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        query = (
            select(customers.c.customer_id)
            .where(customers.c.marketing_opt_in.is_(True))
            .where(customers.c.customer_id.in_(select(orders.c.customer_id)))
            .order_by(customers.c.customer_id)
        )
        return list(conn.execute(query).scalars())


def _treated(engine: Engine) -> str:
    return next(c for c in _opted_in(engine) if not in_control_group(c, CONTROL))


def _controlled(engine: Engine) -> str:
    return next(c for c in _opted_in(engine) if in_control_group(c, CONTROL))


def _flush(client: TestClient) -> None:
    client.app.state.exposures.flush()  # type: ignore[attr-defined]


def _exposure(engine: Engine, exposure_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(exposures).where(exposures.c.exposure_id == exposure_id)).one()
    return dict(row._mapping)


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (orders, order_lines, order_touches, clicks, exposures, vouchers)
        )


def _order(order_id: str, customer: str, item: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order_id, "customer_id": customer, "purchased_at": at.isoformat(),
        "items": [{"item_id": item, "quantity": 1, "unit_price": 10.0}], **extra,
    }


def test_every_served_list_carries_an_exposure_that_the_store_records(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    customer = _treated(engine)
    body = client.get(f"/v1/customers/{customer}/recommendations?placement=newsletter").json()
    assert body["exposure_id"].startswith("ex_") and body["variant"] is None
    _flush(client)
    row = _exposure(engine, body["exposure_id"])
    assert row["customer_id"] == customer and row["placement"] == "newsletter"
    assert row["model_version"] == body["model_version"] and row["held_out"] is False
    # The item ids in served order: position = index + 1.
    assert json.loads(row["items"]) == [i["item_id"] for i in body["items"]]
    other = client.get(f"/v1/customers/{customer}/recommendations?placement=newsletter").json()
    assert other["exposure_id"] != body["exposure_id"]
    basket = {"items": [body["items"][0]["item_id"]]}
    cross = client.post("/v1/recommendations/cross-sell", json=basket)
    assert cross.json()["exposure_id"]


def test_a_click_is_recorded_once_and_unknown_exposures_are_404(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    body = client.get(f"/v1/customers/{_treated(engine)}/recommendations").json()
    exposure_id, item = body["exposure_id"], body["items"][0]["item_id"]
    # The exposure is shown now (the server's clock); the click comes a few minutes later.
    at = datetime.now(UTC).replace(tzinfo=None, microsecond=0) + timedelta(minutes=5)
    # Not flushed yet: the worker writes its queue before answering 404.
    click = {"exposure_id": exposure_id, "item_id": item, "clicked_at": f"{at.isoformat()}Z"}
    first = client.post("/v1/events/clicks", json=click)
    assert first.status_code == 200 and first.json()["recorded"] is True
    later = f"{(at + timedelta(hours=1)).isoformat()}Z"
    again = client.post("/v1/events/clicks", json={**click, "clicked_at": later})
    assert again.status_code == 200 and again.json()["recorded"] is False
    before = _counts(engine)
    unknown = client.post("/v1/events/clicks", json={**click, "exposure_id": "ex_nope"})
    assert unknown.status_code == 404 and "ex_nope" in unknown.json()["error"]["message"]
    foreign = client.post("/v1/events/clicks", json={**click, "item_id": "NOT-SHOWN"})
    assert foreign.status_code == 422 and "NOT-SHOWN" in foreign.json()["error"]["message"]
    missing = client.post("/v1/events/clicks", json={"exposure_id": exposure_id})
    assert missing.status_code == 422
    # A click dated before its exposure was shown, or far in the future, is refused.
    other = body["items"][1]["item_id"]
    for when, fragment in ((at - timedelta(days=1), "before exposure"),
                           (at + timedelta(days=2), "in the future")):
        dated = {**click, "item_id": other, "clicked_at": f"{when.isoformat()}Z"}
        refused = client.post("/v1/events/clicks", json=dated)
        assert refused.status_code == 422, refused.json()
        assert fragment in refused.json()["error"]["message"]
        assert "clicked_at" in refused.json()["error"]["message"]
    assert _counts(engine) == before
    with engine.connect() as conn:
        clicked = conn.execute(select(clicks.c.clicked_at)).scalars().all()
    assert clicked == [at]


def test_control_group_gets_no_marketing_but_order_confirmation_and_is_logged(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    held = _controlled(engine)
    body = client.get(f"/v1/customers/{held}/recommendations?placement=newsletter").json()
    assert body["items"] == [] and body["suppressed"] == "held_out" and body["exposure_id"]
    transactional = client.get(
        f"/v1/customers/{held}/recommendations?placement=order_confirmation"
    ).json()
    assert transactional["items"] and transactional["suppressed"] is None
    _flush(client)
    assert _exposure(engine, body["exposure_id"])["held_out"] is True
    with engine.connect() as conn:
        logged = conn.execute(
            select(contact_log.c.occasion, contact_log.c.held_out, contact_log.c.exposure_id)
            .where(contact_log.c.customer_id == held)
        ).all()
    assert [tuple(r) for r in logged] == [("newsletter", True, body["exposure_id"])]
    # A held-out row is no contact: it does not count toward the cap.
    from recsys.store.contacts import contact_history

    with engine.connect() as conn:
        assert contact_history(conn, held) == []


def _issue_voucher(engine: Engine, code: str, customer: str, day: date, valid_days: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(vouchers).values(
                code=code, customer_id=customer, occasion="anniversary", date=day,
                percent=10.0, valid_until=day + timedelta(days=valid_days),
                issued_at=datetime(day.year, day.month, day.day, 9),
            )
        )


def test_orders_name_an_exposure_and_a_voucher_and_bad_ones_change_nothing(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    customer = _treated(engine)
    someone_else = next(c for c in _opted_in(engine) if c != customer)
    body = client.get(f"/v1/customers/{customer}/recommendations").json()
    _flush(client)
    shown = _exposure(engine, body["exposure_id"])["shown_at"]
    item = body["items"][0]["item_id"]
    _issue_voucher(engine, "ANNIV-TEST-0001", customer, shown.date(), 30)
    _issue_voucher(engine, "ANNIV-OLD-0001", customer, date(2025, 1, 1), 30)
    at = shown + timedelta(hours=2)

    before = _counts(engine)
    rejected = [
        (_order("W1", customer, item, at, exposure_id="ex_missing"), 422, "ex_missing"),
        (_order("W1", someone_else, item, at, exposure_id=body["exposure_id"]), 422, "another"),
        (_order("W1", customer, item, shown - timedelta(days=1), exposure_id=body["exposure_id"]),
         422, "after the order"),
        (_order("W1", customer, item, at, voucher_code="NOPE-CODE"), 422, "NOPE-CODE"),
        (_order("W1", customer, item, at, voucher_code="ANNIV-OLD-0001"), 422, "expired"),
        (_order("W1", someone_else, item, at, voucher_code="ANNIV-TEST-0001"), 422, "another"),
    ]
    for payload, status, fragment in rejected:
        response = client.post("/v1/events/orders", json=payload)
        assert response.status_code == status, response.json()
        assert fragment in response.json()["error"]["message"]
    assert _counts(engine) == before

    good = _order("W1", customer, item, at, exposure_id=body["exposure_id"],
                  voucher_code="ANNIV-TEST-0001")
    assert client.post("/v1/events/orders", json=good).json()["recorded"] is True
    assert client.post("/v1/events/orders", json=good).json()["recorded"] is False
    after_first = _counts(engine)
    twice = client.post(
        "/v1/events/orders", json=_order("W2", customer, item, at, voucher_code="ANNIV-TEST-0001")
    )
    assert twice.status_code == 409 and "already redeemed" in twice.json()["error"]["message"]
    changed = client.post("/v1/events/orders", json={**good, "voucher_code": None})
    assert changed.status_code == 409
    assert _counts(engine) == after_first
    with engine.connect() as conn:
        touch = conn.execute(select(order_touches)).one()
    assert (touch.order_id, touch.exposure_id, touch.voucher_code) == (
        "W1", body["exposure_id"], "ANNIV-TEST-0001"
    )


def test_exposures_older_than_the_retention_are_pruned(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    engine, _ = served
    body = client.get(f"/v1/customers/{_treated(engine)}/recommendations").json()
    writer = client.app.state.exposures  # type: ignore[attr-defined]
    writer.flush()
    shown = _exposure(engine, body["exposure_id"])["shown_at"]
    assert writer.prune(shown + timedelta(days=364)) == 0
    assert writer.prune(shown + timedelta(days=366)) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(exposures)).scalar_one() == 0


def test_the_retention_setting_prunes_the_service_s_old_exposures_and_their_clicks(
    served: tuple[Engine, Settings],
) -> None:
    """RECSYS_EXPOSURE_RETENTION_DAYS: a started service deletes what is older, keeps the rest."""
    import time

    from recsys.feedback.writer import ExposureWriter
    from recsys.store.feedback import Exposure, record_click
    from tests.api.conftest import make_client

    engine, settings = served
    now = datetime.now(UTC).replace(tzinfo=None)
    customer = _treated(engine)
    old = Exposure("ex_old", customer, "newsletter", "v", ("I1",), now - timedelta(days=31))
    kept = Exposure("ex_kept", customer, "newsletter", "v", ("I1",), now - timedelta(days=29))
    seeding = ExposureWriter(engine, background=False)
    seeding.record(old)
    seeding.record(kept)
    assert seeding.flush() == 2
    seeding.close()
    with engine.begin() as conn:
        record_click(conn, "ex_old", "I1", old.shown_at + timedelta(hours=1))
        record_click(conn, "ex_kept", "I1", kept.shown_at + timedelta(hours=1))

    def stored() -> tuple[list[str], list[str]]:
        with engine.connect() as conn:
            shown = conn.execute(select(exposures.c.exposure_id)).scalars().all()
            clicked = conn.execute(select(clicks.c.exposure_id)).scalars().all()
        return sorted(shown), sorted(clicked)

    update = {"exposure_retention_days": 30, "exposure_flush_seconds": 0.05}
    with make_client(engine, settings.model_copy(update=update)):
        deadline = time.monotonic() + 10
        while stored()[0] != ["ex_kept"] and time.monotonic() < deadline:
            time.sleep(0.05)
    assert stored() == (["ex_kept"], ["ex_kept"])


def test_the_log_can_be_turned_off(served: tuple[Engine, Settings]) -> None:
    from tests.api.conftest import make_client

    engine, settings = served
    with make_client(engine, settings.model_copy(update={"exposure_log": False})) as client:
        body = client.get(f"/v1/customers/{_treated(engine)}/recommendations").json()
    assert body["items"] and body["exposure_id"] is None
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(exposures)).scalar_one() == 0


def test_an_opted_out_control_customer_is_opted_out_not_held_out(
    client: TestClient, served: tuple[Engine, Settings]
) -> None:
    """Only customers the contact policy would serve are held out: both groups alike."""
    from sqlalchemy import update

    engine, _ = served
    held = _controlled(engine)
    with engine.begin() as conn:
        conn.execute(
            update(customers).where(customers.c.customer_id == held).values(marketing_opt_in=False)
        )
    body = client.get(f"/v1/customers/{held}/recommendations?placement=newsletter").json()
    assert body["suppressed"] == "opted_out" and body["exposure_id"] is None
    _flush(client)
    with engine.connect() as conn:
        logged = conn.execute(select(contact_log).where(contact_log.c.customer_id == held)).all()
    assert logged == []
