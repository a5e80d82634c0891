"""The contact log (what was sent to whom) and issued vouchers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select

from recsys.store.engine import sqlite_driver, sqlite_text
from recsys.store.tables import contact_log

# Held-out rows (control group, campaign holdouts) were never sent: they are not contacts.
_SENT = contact_log.c.held_out.is_(False)

# Built once: the API reads one customer's contacts per request.
_CONTACT_HISTORY = (
    select(contact_log.c.sent_at)
    .where(contact_log.c.customer_id == bindparam("customer_id"), _SENT)
    .order_by(contact_log.c.sent_at)
)


_SQLITE_CONTACT_HISTORY = sqlite_text(_CONTACT_HISTORY)


def contact_history(conn: Connection, customer_id: str) -> list[datetime]:
    """UTC instants of the customer's marketing contacts (held-out rows are not), oldest first."""
    driver = sqlite_driver(conn)
    if driver is not None:
        parse = datetime.fromisoformat
        return [parse(sent_at) for (sent_at,) in driver.execute(_SQLITE_CONTACT_HISTORY,
                                                                (customer_id,))]
    return list(conn.execute(_CONTACT_HISTORY, {"customer_id": customer_id}).scalars())


def contact_histories(conn: Connection, customer_ids: Sequence[str]) -> dict[str, list[datetime]]:
    history: dict[str, list[datetime]] = {c: [] for c in customer_ids}
    for start in range(0, len(customer_ids), 5000):
        chunk = list(customer_ids[start : start + 5000])
        query = (
            select(contact_log.c.customer_id, contact_log.c.sent_at)
            .where(contact_log.c.customer_id.in_(chunk), _SENT)
            .order_by(contact_log.c.sent_at)
        )
        for row in conn.execute(query):
            history[row.customer_id].append(row.sent_at)
    return history
