"""Due-customer selection in SQL (recsys.store.campaigns), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import Engine, insert

from recsys.store.campaigns import due_customers
from recsys.store.purchases import OrderIn, OrderLineIn, record_order
from recsys.store.tables import customers, items


def _add(engine: Engine, rows: list[dict[str, object]]) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            [{"email": None, "joined_at": None, "birthday": None, "marketing_opt_in": True, **r}
             for r in rows],
        )


def _ids(engine: Engine, occasion: str, day: date) -> list[str]:
    with engine.connect() as conn:
        return [d.customer.customer_id for d in due_customers(conn, occasion, day)]  # type: ignore[arg-type]


@pytest.fixture
def people(engine: Engine) -> Engine:
    _add(engine, [
        {"customer_id": "leap", "joined_at": date(2024, 2, 29), "birthday": date(2000, 2, 29)},
        {"customer_id": "feb28", "joined_at": date(2025, 2, 28), "birthday": date(1990, 2, 28)},
        {"customer_id": "mar1", "joined_at": date(2025, 3, 1)},
        {"customer_id": "nov22", "joined_at": date(2024, 11, 22), "birthday": date(1980, 11, 22)},
        {"customer_id": "today", "joined_at": date(2026, 11, 22), "birthday": date(2026, 11, 22)},
        {"customer_id": "future", "joined_at": date(2027, 11, 22)},
        {"customer_id": "nov21", "joined_at": date(2024, 11, 21)},
        {"customer_id": "no-join", "joined_at": None},
        {"customer_id": "no-join-today", "joined_at": None},
    ])
    with engine.begin() as conn:
        conn.execute(insert(items).values(item_id="I1", name="thing"))
        # First purchases decide the membership date when joined_at is missing.
        line = (OrderLineIn("I1", 1, 5.0),)
        record_order(conn, OrderIn("o1", "no-join", datetime(2023, 11, 22, 23, 59), line))
        record_order(conn, OrderIn("o2", "no-join", datetime(2024, 1, 5), line))
        record_order(conn, OrderIn("o3", "no-join-today", datetime(2026, 11, 22, 8), line))
        # A member with a join date is not re-dated by an order on the day.
        record_order(conn, OrderIn("o4", "nov21", datetime(2025, 11, 22, 8), line))
    return engine


def test_anniversary_on_the_day_in_customer_order(people: Engine) -> None:
    assert _ids(people, "anniversary", date(2026, 11, 22)) == ["no-join", "nov22"]


def test_joined_today_or_later_is_not_due(people: Engine) -> None:
    due = _ids(people, "anniversary", date(2026, 11, 22))
    assert "today" not in due and "future" not in due and "no-join-today" not in due


def test_feb29_falls_on_feb28_in_a_common_year(people: Engine) -> None:
    assert _ids(people, "anniversary", date(2027, 2, 28)) == ["feb28", "leap"]
    assert _ids(people, "anniversary", date(2027, 3, 1)) == ["mar1"]
    assert _ids(people, "birthday", date(2027, 2, 28)) == ["feb28", "leap"]


def test_feb29_is_its_own_day_in_a_leap_year(people: Engine) -> None:
    assert _ids(people, "anniversary", date(2028, 2, 28)) == ["feb28"]
    assert _ids(people, "anniversary", date(2028, 2, 29)) == ["leap"]
    assert _ids(people, "birthday", date(2028, 2, 29)) == ["leap"]


def test_birthday_uses_the_birth_date(people: Engine) -> None:
    with people.connect() as conn:
        due = due_customers(conn, "birthday", date(2026, 11, 22))
    assert [(d.customer.customer_id, d.since) for d in due] == [("nov22", date(1980, 11, 22))]


def test_first_purchase_date_is_the_membership_date(people: Engine) -> None:
    with people.connect() as conn:
        due = due_customers(conn, "anniversary", date(2026, 11, 22))
    assert {d.customer.customer_id: d.since for d in due}["no-join"] == date(2023, 11, 22)


def test_an_order_of_returns_only_does_not_start_a_membership(people: Engine) -> None:
    """The first order with a bought line dates an undated member, not an earlier return."""
    _add(people, [{"customer_id": "returned-first", "joined_at": None}])
    with people.begin() as conn:
        record_order(conn, OrderIn("r1", "returned-first", datetime(2022, 11, 22, 10),
                                   (OrderLineIn("I1", -1, 5.0),)))
        record_order(conn, OrderIn("r2", "returned-first", datetime(2023, 3, 3, 10),
                                   (OrderLineIn("I1", 2, 5.0),)))
    assert "returned-first" not in _ids(people, "anniversary", date(2026, 11, 22))
    with people.connect() as conn:
        due = due_customers(conn, "anniversary", date(2026, 3, 3))
    assert {d.customer.customer_id: d.since for d in due}["returned-first"] == date(2023, 3, 3)
