"""The contact cap holds across the campaign job and the API's marketing calls.

A campaign contact is stamped with the real send time, and a marketing list fetched with
`send=true` is a contact; renders without it never are. The property test plays
sequences of campaign runs and API calls on one store and checks what was delivered.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, select, update

import api.routes.recommendations as recommendations_route
from api.app import create_app
from recsys.campaign import default_now, run_campaign
from recsys.rules.config import RulesConfig
from recsys.store.contacts import contact_history
from recsys.store.tables import contact_log, customers, exposures, vouchers
from tests.campaign.conftest import DAY, Shop, read_lines, setup_shop

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.fixture
def shop(engine: Engine, demo_dir: Path, tmp_path: Path) -> Shop:
    return setup_shop(engine, demo_dir, tmp_path)


def _client(shop: Shop, rules: RulesConfig | None = None) -> TestClient:
    return TestClient(create_app(shop.settings, engine=shop.engine, rules=rules or shop.rules))


def _newsletter(client: TestClient, customer_id: str, **params: str) -> dict[str, object]:
    response = client.get(f"/v1/customers/{customer_id}/recommendations", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def _campaign(shop: Shop, rules: RulesConfig | None = None, **options: object) -> list[str]:
    out = io.StringIO()
    run_campaign(
        shop.engine, shop.model, rules or shop.rules, shop.catalog, out=out,
        **{"occasion": "anniversary", "day": DAY, "journal_dir": None, **options},  # type: ignore[arg-type]
    )
    return [line["customer_id"] for line in read_lines(out.getvalue())]


def _due_today(shop: Shop, customer: str) -> date:
    """Make `customer` due today, as the scheduler's daily run finds them; returns today."""
    today = _utcnow().date()
    with shop.engine.begin() as conn:
        conn.execute(
            update(customers).where(customers.c.customer_id == customer)
            .values(joined_at=date(2024, today.month, today.day))
        )
    return today


def test_the_campaign_stamps_the_real_send_time_and_the_api_then_holds_the_cap(
    shop: Shop,
) -> None:
    customer = shop.cast.regular[0]
    today = _due_today(shop, customer)
    before = _utcnow()
    assert customer in _campaign(shop, day=today)
    after = _utcnow()
    with shop.engine.connect() as conn:
        stamped = conn.execute(
            select(contact_log.c.sent_at).where(contact_log.c.customer_id == customer)
        ).scalar_one()
    assert before <= stamped <= after
    with _client(shop) as client:
        # The same morning (indeed the same minute) the newsletter is held back.
        body = _newsletter(client, customer)
    assert body["suppressed"] == "cap_reached" and body["items"] == []


def test_send_true_records_a_contact_and_renders_never_do(shop: Shop) -> None:
    customer = shop.cast.regular[1]
    with _client(shop) as client:
        for _ in range(3):  # previews: never a contact
            assert _newsletter(client, customer)["items"]
        transactional = _newsletter(client, customer, placement="order_confirmation", send="true")
        assert transactional["items"]
        with shop.engine.connect() as conn:
            assert contact_history(conn, customer) == []
        sent = _newsletter(client, customer, send="true")
        assert sent["items"] and sent["exposure_id"]
        with shop.engine.connect() as conn:
            history = contact_history(conn, customer)
            row = conn.execute(
                select(exposures).where(exposures.c.exposure_id == sent["exposure_id"])
            ).one()
        assert len(history) == 1 and row.sent and row.placement == "newsletter"
        # The cap now holds for every marketing placement, sends and renders alike.
        assert _newsletter(client, customer, send="true")["suppressed"] == "cap_reached"
        assert _newsletter(client, customer, placement="birthday")["suppressed"] == "cap_reached"
        # Transactional mail is never capped.
        assert _newsletter(client, customer, placement="order_confirmation")["items"]
        replay = client.get(
            f"/v1/customers/{customer}/recommendations",
            params={"send": "true", "as_of": "2026-11-01T00:00:00"},
        )
        assert replay.status_code == 422 and "as_of" in replay.json()["error"]["message"]
        block = client.get(f"/v1/customers/{shop.cast.regular[2]}/email-block",
                           params={"send": "true"})
        assert block.status_code == 200 and block.headers["X-Exposure-Id"]
        again = client.get(f"/v1/customers/{shop.cast.regular[2]}/email-block",
                           params={"send": "true"})
        assert again.headers["X-Recsys-Suppressed"] == "cap_reached"
        assert "X-Exposure-Id" not in again.headers
    with shop.engine.connect() as conn:
        assert len(contact_history(conn, customer)) == 1


def test_the_campaign_skips_a_customer_the_api_just_mailed(shop: Shop) -> None:
    customer = shop.cast.regular[3]
    today = _due_today(shop, customer)
    with _client(shop) as client:
        assert _newsletter(client, customer, send="true")["items"]
    assert customer not in _campaign(shop, day=today)
    with shop.engine.connect() as conn:
        logged = conn.execute(
            select(contact_log.c.customer_id).where(contact_log.c.customer_id == customer)
        ).all()
    assert logged == []


def test_the_default_instant_is_the_clock_unless_the_day_is_past() -> None:
    clock = datetime(2026, 12, 3, 7, 11)
    assert default_now(date(2026, 12, 3), clock) == clock  # the scheduler's morning run
    assert default_now(date(2026, 12, 5), clock) == clock  # an early run sends now too
    # A past day is replayed at 09:00 of that day (a backfill, the demo).
    assert default_now(date(2026, 10, 1), clock) == datetime(2026, 10, 1, 9, 0)


# --- the property: whatever the order of runs and calls, nobody is mailed over the cap ---

START = datetime(2026, 11, 21, 6, 0)
Op = tuple[str, int]
ops = st.lists(
    st.tuples(
        st.sampled_from(["anniversary", "birthday", "send", "render"]),
        st.integers(min_value=0, max_value=60 * 80),  # minutes since the previous operation
    ),
    min_size=1,
    max_size=8,
)


def _over_cap(times: list[datetime], max_offers: int, period: timedelta) -> bool:
    """True when some window (t - period, t] holds more than `max_offers` contacts."""
    times = sorted(times)
    return any(sum(1 for s in times if t - period < s <= t) > max_offers for t in times)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The API's clock, set by the test (the job takes its instant as `now`)."""
    now = [START]
    monkeypatch.setattr(recommendations_route, "_now", lambda: now[0])
    yield now


@settings(
    max_examples=15, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    sequence=ops,
    max_offers=st.integers(min_value=1, max_value=2),
    period_days=st.integers(min_value=1, max_value=4),
)
def test_no_sequence_of_campaigns_and_marketing_calls_exceeds_the_cap(
    shop: Shop, clock: list[datetime], sequence: list[Op], max_offers: int, period_days: int
) -> None:
    customer = shop.cast.regular[0]
    engine = shop.engine
    with engine.begin() as conn:
        for table in (vouchers, contact_log, exposures):
            conn.execute(delete(table))
        # Due for the anniversary on DAY and for the birthday the day after.
        conn.execute(
            update(customers).where(customers.c.customer_id == customer)
            .values(birthday=datetime(1990, DAY.month, DAY.day + 1).date())
        )
    rules = shop.rules.model_copy(
        update={"contact": shop.rules.contact.model_copy(
            update={"max_offers": max_offers, "period_days": period_days}
        )}
    )
    clock[0] = START
    delivered: list[datetime] = []
    with _client(shop, rules) as client:
        for kind, minutes in sequence:
            clock[0] += timedelta(minutes=minutes)
            if kind in ("anniversary", "birthday"):
                day = DAY if kind == "anniversary" else DAY + timedelta(days=1)
                mailed = _campaign(shop, rules, occasion=kind, day=day, now=clock[0])
                delivered += [clock[0]] * mailed.count(customer)
            else:
                params = {"send": "true"} if kind == "send" else {}
                body = _newsletter(client, customer, **params)
                if kind == "send" and body["items"]:
                    delivered.append(clock[0])
    period = timedelta(days=period_days)
    assert not _over_cap(delivered, max_offers, period), (delivered, max_offers, period)
    with engine.connect() as conn:
        assert sorted(contact_history(conn, customer)) == sorted(delivered)
