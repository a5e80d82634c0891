"""Load one customer's data from the store as plain values for the rules."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from recsys.offers import CustomerData
from recsys.rules.config import RulesConfig
from recsys.rules.tiers import LoyaltyStatus, loyalty_status
from recsys.store.contacts import contact_history
from recsys.store.customers import get_customer
from recsys.store.purchases import customer_purchases


def load_customer_data(conn: Connection, customer_id: str) -> CustomerData:
    customer = get_customer(conn, customer_id)
    if customer is None:
        return CustomerData(customer_id)
    return CustomerData(
        customer_id,
        customer,
        customer_purchases(conn, customer_id),
        contact_history(conn, customer_id),
    )


def loyalty_for(
    conn: Connection, customer_id: str, rules: RulesConfig, now: datetime
) -> LoyaltyStatus | None:
    """The customer's loyalty status at `now`, or None for an unknown customer."""
    customer = get_customer(conn, customer_id)
    if customer is None:
        return None
    purchases = customer_purchases(conn, customer_id)
    return loyalty_status(purchases, customer.joined_at, rules.loyalty, now)
