"""Read customers."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Connection, bindparam, func, or_, select

from recsys.records import Customer
from recsys.store.engine import sqlite_driver, sqlite_text
from recsys.store.tables import customers

# Built once: the API reads one customer per request.
_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("customer_id"))
_SQLITE_CUSTOMER = sqlite_text(_CUSTOMER)


def get_customer(conn: Connection, customer_id: str) -> Customer | None:
    driver = sqlite_driver(conn)
    if driver is not None:
        # SQLite keeps dates as ISO text and booleans as 0/1 (what SQLAlchemy wrote).
        found = driver.execute(_SQLITE_CUSTOMER, (customer_id,)).fetchone()
        if found is None:
            return None
        cid, email, joined_at, birthday, opt_in = found
        return Customer(cid, email, _date(joined_at), _date(birthday), bool(opt_in))
    row = conn.execute(_CUSTOMER, {"customer_id": customer_id}).first()
    return Customer(**row._mapping) if row is not None else None


def _date(text: str | None) -> date | None:
    return date.fromisoformat(text) if text is not None else None


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def find_customers(conn: Connection, query: str, limit: int = 20) -> list[Customer]:
    """Customers matching `query`: the exact id, else the email (any case), else prefixes.

    The exact id is an index lookup; the email and prefix searches scan the table
    (there is no email index), which is fine for a person typing in the console.
    """
    text = query.strip()
    if not text:
        return []
    exact = get_customer(conn, text)
    if exact is not None:
        return [exact]
    by_email = conn.execute(
        select(customers).where(func.lower(customers.c.email) == text.lower()).limit(limit)
    ).all()
    if by_email:
        return [Customer(**row._mapping) for row in by_email]
    pattern = _like_prefix(text.lower())
    rows = conn.execute(
        select(customers)
        .where(
            or_(
                func.lower(customers.c.customer_id).like(pattern, escape="\\"),
                func.lower(customers.c.email).like(pattern, escape="\\"),
            )
        )
        .order_by(customers.c.customer_id)
        .limit(limit)
    ).all()
    return [Customer(**row._mapping) for row in rows]
