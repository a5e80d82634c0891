"""Read customers."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, func, or_, select

from recsys.records import Customer
from recsys.store.tables import customers

# Built once: the API reads one customer per request.
_CUSTOMER = select(customers).where(customers.c.customer_id == bindparam("customer_id"))


def get_customer(conn: Connection, customer_id: str) -> Customer | None:
    row = conn.execute(_CUSTOMER, {"customer_id": customer_id}).first()
    return Customer(**row._mapping) if row is not None else None


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
