"""Table definitions. Every timestamp column holds naive UTC; money is a float in shop currency."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)

metadata = MetaData()

items = Table(
    "items",
    metadata,
    Column("item_id", String, primary_key=True),
    Column("name", String),
    Column("category", String, index=True),
    Column("price", Float),
    Column("in_stock", Boolean, nullable=False, server_default=text("true")),
    Column("url", String),
    Column("image_url", String),
    Column("brand", String),
    Column("cost", Float),
    # Set by each catalog load to its own revision (microseconds since the epoch); the
    # API's catalog cache re-reads only rows newer than what it holds.
    Column("revision", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_items_revision", "revision"),
)

customers = Table(
    "customers",
    metadata,
    Column("customer_id", String, primary_key=True),
    Column("email", String),
    Column("joined_at", Date),
    Column("birthday", Date),
    Column("marketing_opt_in", Boolean, nullable=False, server_default=text("true")),
)

orders = Table(
    "orders",
    metadata,
    Column("order_id", String, primary_key=True),
    Column("customer_id", String, nullable=False),
    Column("purchased_at", DateTime, nullable=False),
    # `event` orders arrive through the API; their body hash makes re-posts idempotent.
    Column("source", String, nullable=False, server_default=text("'ingest'")),
    Column("body_hash", String),
    # Covering for "a customer's orders and their times" (migration 0003).
    Index("ix_orders_customer_time", "customer_id", "purchased_at", "order_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String, nullable=False),
    Column("item_id", String, nullable=False),
    Column("quantity", Float, nullable=False),
    Column("unit_price", Float),
    # Which load wrote the line: lines of one file sharing a key are summed, a
    # later load of the same key replaces it (so loading twice changes nothing).
    Column("load_id", String, nullable=False),
    PrimaryKeyConstraint("order_id", "item_id", name="pk_order_lines"),
    # SQLite: the primary key is the table (no separate rowid tree to maintain on load).
    sqlite_with_rowid=False,
)

contact_log = Table(
    "contact_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", String, nullable=False),
    Column("occasion", String, nullable=False),
    Column("date", Date, nullable=False),
    Column("placement", String, nullable=False),
    Column("sent_at", DateTime, nullable=False),
    Column("voucher_code", String),
    # A held-out row records that the customer was due but kept out as a control
    # (migration 0004); it does not count toward the contact cap.
    Column("held_out", Boolean, nullable=False, server_default=text("false")),
    Column("exposure_id", String),
    UniqueConstraint("customer_id", "occasion", "date", name="uq_contact_log_once"),
    Index("ix_contact_log_customer_sent", "customer_id", "sent_at"),
)

vouchers = Table(
    "vouchers",
    metadata,
    Column("code", String, primary_key=True),
    Column("customer_id", String, nullable=False, index=True),
    Column("occasion", String, nullable=False),
    Column("date", Date, nullable=False),
    Column("percent", Float, nullable=False),
    Column("valid_until", Date, nullable=False),
    Column("issued_at", DateTime, nullable=False),
)

# --- the closed loop (migration 0004): what was shown, what was clicked, what was bought after ---

exposures = Table(
    "exposures",
    metadata,
    Column("exposure_id", String, primary_key=True),
    Column("customer_id", String),
    Column("placement", String, nullable=False),
    Column("experiment", String),
    Column("variant", String),
    Column("model_version", String, nullable=False),
    # The served item ids as a JSON array; an item's position is its index + 1.
    Column("items", String, nullable=False),
    # A control-group or campaign-holdout customer: nothing was shown, the moment is recorded.
    Column("held_out", Boolean, nullable=False, server_default=text("false")),
    Column("voucher_code", String),
    Column("voucher_percent", Float),
    Column("voucher_reason", String),
    Column("shown_at", DateTime, nullable=False),
    # A list the caller declared as sent (`send=true`, migration 0005): it is a marketing
    # contact and counts toward the contact cap like a campaign's contact-log row.
    Column("sent", Boolean, nullable=False, server_default=text("false")),
    Index("ix_exposures_customer_shown", "customer_id", "shown_at"),
    Index("ix_exposures_shown", "shown_at"),
    # Every request reads the customer's sends; renders (most exposures) stay out of it.
    Index(
        "ix_exposures_customer_sent",
        "customer_id",
        "shown_at",
        sqlite_where=text("sent = 1"),
        postgresql_where=text("sent"),
    ),
)

clicks = Table(
    "clicks",
    metadata,
    Column("exposure_id", String, nullable=False),
    Column("item_id", String, nullable=False),
    Column("clicked_at", DateTime, nullable=False),
    PrimaryKeyConstraint("exposure_id", "item_id", name="pk_clicks"),
)

order_touches = Table(
    "order_touches",
    metadata,
    # The exposure and voucher an order event named. A voucher code is redeemed once.
    Column("order_id", String, primary_key=True),
    Column("customer_id", String, nullable=False),
    Column("purchased_at", DateTime, nullable=False),
    Column("exposure_id", String),
    Column("voucher_code", String),
    UniqueConstraint("voucher_code", name="uq_order_touches_voucher"),
)
