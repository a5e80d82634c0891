"""The store's reads return what plain SQLAlchemy Core queries return, on either database.

On SQLite they run through the driver (times parsed by polars or `fromisoformat`, rows
sorted by polars); these tests compare them with SQLAlchemy's own typed rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Engine, insert

from recsys.records import Customer, Purchase
from recsys.store.campaigns import sent_marks
from recsys.store.contacts import contact_histories, contact_history
from recsys.store.customers import get_customer
from recsys.store.feedback import Exposure, insert_exposures
from recsys.store.purchases import (
    PurchaseRead,
    customer_purchases,
    purchase_frame,
    purchase_schema,
    purchases_for,
)
from recsys.store.tables import contact_log, customers, order_lines, orders
from tests.store._queried import queried_purchases

ORDERS = [
    # same instant, two orders: the order id breaks the tie; one time has no microseconds
    ("o2", "c1", datetime(2026, 3, 1, 10, 0, 0)),
    ("o1", "c1", datetime(2026, 3, 1, 10, 0, 0)),
    ("o3", "c2", datetime(2026, 1, 5, 23, 59, 59, 999_999)),
    ("o4", "c1", datetime(2025, 12, 31, 8, 30, 0, 250)),
]
LINES = [
    ("o1", "b", 2.0, 3.5), ("o1", "a", 1.0, None), ("o2", "d", -1.0, 4.0),
    ("o3", "z", 1.5, 0.0), ("o4", "c", 3.0, 12.25),
]


def _fill(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(customers), [
            {"customer_id": "c1", "email": "a@example.com", "joined_at": date(2024, 2, 29),
             "birthday": None, "marketing_opt_in": False},
            {"customer_id": "c2", "email": None, "joined_at": None,
             "birthday": date(1990, 7, 1), "marketing_opt_in": True},
        ])
        conn.execute(insert(orders), [
            {"order_id": o, "customer_id": c, "purchased_at": at} for o, c, at in ORDERS
        ])
        conn.execute(insert(order_lines), [
            {"order_id": o, "item_id": i, "quantity": q, "unit_price": p, "load_id": "t"}
            for o, i, q, p in LINES
        ])
        conn.execute(insert(contact_log), [
            {"customer_id": "c1", "occasion": "newsletter", "date": date(2026, 3, 2),
             "placement": "newsletter", "sent_at": datetime(2026, 3, 2, 9, 0, 0, 1),
             "held_out": False},
            {"customer_id": "c1", "occasion": "anniversary", "date": date(2026, 2, 1),
             "placement": "anniversary", "sent_at": datetime(2026, 2, 1, 9, 0), "held_out": False},
            {"customer_id": "c1", "occasion": "birthday", "date": date(2026, 2, 3),
             "placement": "birthday", "sent_at": datetime(2026, 2, 3, 9, 0), "held_out": True},
        ])


def test_purchase_frame_is_the_joined_lines_in_time_order(engine: Engine) -> None:
    with engine.connect() as conn:
        assert purchase_frame(conn).schema == purchase_schema()
        assert purchase_frame(conn).is_empty()
    _fill(engine)
    with engine.connect() as conn:
        frame = purchase_frame(conn, batch_rows=2)  # several batches
        expected = queried_purchases(conn)
    assert frame.schema == expected.schema
    assert frame.equals(expected)
    assert frame["order_id"].to_list() == ["o4", "o3", "o1", "o1", "o2"]


def test_purchase_frame_reads_prices_missing_for_thousands_of_lines(engine: Engine) -> None:
    """The Arrow reader infers a column's type from its first rows: 3,000 lines without
    a price before the first priced one still read as a float column, in the query's order
    (ids outside ASCII and orders sharing an instant included)."""
    at = datetime(2026, 5, 1, 12, 0, 0)
    with engine.begin() as conn:
        conn.execute(insert(orders), [
            {"order_id": f"o{n:05d}", "customer_id": f"c{n % 7}", "purchased_at": at}
            for n in range(1200)
        ])
        conn.execute(insert(order_lines), [
            {"order_id": f"o{n:05d}", "item_id": item, "quantity": 1.0 + n % 3,
             "unit_price": None if n < 1000 else 0.1 * n, "load_id": "t"}
            for n in range(1200) for item in ("Zeta", "äpfel", "apple")
        ])
    with engine.connect() as conn:
        frame = purchase_frame(conn)
        expected = queried_purchases(conn)
    assert frame.equals(expected)
    assert frame["item_id"].head(3).to_list() == ["Zeta", "apple", "äpfel"]  # bytewise
    assert frame["unit_price"].null_count() == 3000


def test_a_read_begun_early_is_the_same_frame(engine: Engine) -> None:
    """`PurchaseRead` (started before the connection, as `recsys train` does) gives what
    `purchase_frame` gives, and on a connection with uncommitted writes drops its early
    read for one that sees them."""
    _fill(engine)
    reading = PurchaseRead(engine)
    with engine.connect() as conn:
        assert reading.frame(conn).equals(purchase_frame(conn))
    reading = PurchaseRead(engine)
    with engine.begin() as conn:
        conn.execute(insert(orders).values(order_id="o9", customer_id="c2",
                                           purchased_at=datetime(2026, 4, 1)))
        conn.execute(insert(order_lines).values(order_id="o9", item_id="y", quantity=1.0,
                                                unit_price=None, load_id="t"))
        frame = reading.frame(conn)
        assert frame["order_id"].to_list()[-1] == "o9"
        conn.rollback()


def test_one_customers_reads(engine: Engine) -> None:
    _fill(engine)
    with engine.connect() as conn:
        assert get_customer(conn, "c1") == Customer("c1", "a@example.com", date(2024, 2, 29),
                                                    None, False)
        assert get_customer(conn, "c2") == Customer("c2", None, None, date(1990, 7, 1), True)
        assert get_customer(conn, "nobody") is None
        assert customer_purchases(conn, "c1") == [
            Purchase("o4", "c", 3.0, 12.25, datetime(2025, 12, 31, 8, 30, 0, 250)),
            Purchase("o1", "a", 1.0, None, datetime(2026, 3, 1, 10, 0)),
            Purchase("o1", "b", 2.0, 3.5, datetime(2026, 3, 1, 10, 0)),
            Purchase("o2", "d", -1.0, 4.0, datetime(2026, 3, 1, 10, 0)),
        ]
        assert customer_purchases(conn, "nobody") == []
        assert contact_history(conn, "c1") == [datetime(2026, 2, 1, 9, 0),
                                               datetime(2026, 3, 2, 9, 0, 0, 1)]


def test_a_batchs_reads_are_each_customers_reads(engine: Engine) -> None:
    """The campaign's batch reads (PostgreSQL: array parameters, a lateral join through the
    driver) give what the one-customer reads give, customer by customer."""
    _fill(engine)
    with engine.begin() as conn:
        insert_exposures(conn, [
            Exposure("ex_sent", "c2", "newsletter", "v1", ("z",), datetime(2026, 4, 1, 7, 11),
                     sent=True),
            Exposure("ex_shown", "c2", "newsletter", "v1", ("z",), datetime(2026, 4, 2, 7, 0)),
        ])
        conn.execute(insert(contact_log).values(
            customer_id="c2", occasion="anniversary", date=date(2026, 2, 1),
            placement="anniversary", sent_at=datetime(2026, 2, 1, 9, 0), voucher_code="ANNIV-X",
            exposure_id="ex_a",
        ))
    ids = ["c2", "nobody", "c1"]
    with engine.connect() as conn:
        assert purchases_for(conn, ids) == {c: customer_purchases(conn, c) for c in ids}
        assert contact_histories(conn, ids) == {c: contact_history(conn, c) for c in ids}
        assert contact_histories(conn, ids)["c2"] == [datetime(2026, 2, 1, 9, 0),
                                                      datetime(2026, 4, 1, 7, 11)]
        assert sent_marks(conn, "anniversary", date(2026, 2, 1), ids) == {
            "c1": (None, None), "c2": ("ANNIV-X", "ex_a"),
        }
        assert sent_marks(conn, "anniversary", date(2026, 2, 2), ids) == {}
        assert purchases_for(conn, []) == {}
        assert contact_histories(conn, []) == {}
        assert sent_marks(conn, "anniversary", date(2026, 2, 1), []) == {}
