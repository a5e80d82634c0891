"""Initial schema: catalog, customers, orders, order lines, contact log, vouchers.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "items",
        sa.Column("item_id", sa.String, primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("category", sa.String),
        sa.Column("price", sa.Float),
        sa.Column("in_stock", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("url", sa.String),
        sa.Column("image_url", sa.String),
        sa.Column("brand", sa.String),
        sa.Column("cost", sa.Float),
    )
    op.create_index("ix_items_category", "items", ["category"])
    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String, primary_key=True),
        sa.Column("email", sa.String),
        sa.Column("joined_at", sa.Date),
        sa.Column("birthday", sa.Date),
        sa.Column("marketing_opt_in", sa.Boolean, nullable=False, server_default=sa.text("true")),
    )
    op.create_table(
        "orders",
        sa.Column("order_id", sa.String, primary_key=True),
        sa.Column("customer_id", sa.String, nullable=False),
        sa.Column("purchased_at", sa.DateTime, nullable=False),
        sa.Column("source", sa.String, nullable=False, server_default=sa.text("'ingest'")),
        sa.Column("body_hash", sa.String),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String, nullable=False),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("quantity", sa.Float, nullable=False),
        sa.Column("unit_price", sa.Float),
        sa.Column("load_id", sa.String, nullable=False),
        sa.PrimaryKeyConstraint("order_id", "item_id", name="pk_order_lines"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "contact_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("customer_id", sa.String, nullable=False),
        sa.Column("occasion", sa.String, nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("placement", sa.String, nullable=False),
        sa.Column("sent_at", sa.DateTime, nullable=False),
        sa.Column("voucher_code", sa.String),
        sa.UniqueConstraint("customer_id", "occasion", "date", name="uq_contact_log_once"),
    )
    op.create_index("ix_contact_log_customer_sent", "contact_log", ["customer_id", "sent_at"])
    op.create_table(
        "vouchers",
        sa.Column("code", sa.String, primary_key=True),
        sa.Column("customer_id", sa.String, nullable=False),
        sa.Column("occasion", sa.String, nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("percent", sa.Float, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=False),
        sa.Column("issued_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_vouchers_customer_id", "vouchers", ["customer_id"])


def downgrade() -> None:
    for table in ("vouchers", "contact_log", "order_lines", "orders", "customers", "items"):
        op.drop_table(table)
