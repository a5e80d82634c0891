"""Orders by customer with their time: a customer's orders are read from the index alone.

The campaign reads the order ids and times of each batch's customers, and its due
selection the first purchase of every customer without a join date; with the old
index on `customer_id` alone every order row was a second lookup into the table.
The new index starts with the same column, so it replaces the old one.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_orders_customer_time", "orders", ["customer_id", "purchased_at", "order_id"]
    )
    op.drop_index("ix_orders_customer_id", table_name="orders")


def downgrade() -> None:
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
    op.drop_index("ix_orders_customer_time", table_name="orders")
