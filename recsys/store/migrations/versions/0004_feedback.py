"""The closed loop: exposures, clicks, the exposure and voucher an order names, held-out contacts.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Constant defaults keep these plain ADD COLUMNs on SQLite (no table rebuild).
    op.add_column(
        "contact_log",
        sa.Column("held_out", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.add_column("contact_log", sa.Column("exposure_id", sa.String))
    op.create_table(
        "exposures",
        sa.Column("exposure_id", sa.String, primary_key=True),
        sa.Column("customer_id", sa.String),
        sa.Column("placement", sa.String, nullable=False),
        sa.Column("experiment", sa.String),
        sa.Column("variant", sa.String),
        sa.Column("model_version", sa.String, nullable=False),
        sa.Column("items", sa.String, nullable=False),
        sa.Column("held_out", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("voucher_code", sa.String),
        sa.Column("voucher_percent", sa.Float),
        sa.Column("voucher_reason", sa.String),
        sa.Column("shown_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_exposures_customer_shown", "exposures", ["customer_id", "shown_at"])
    op.create_index("ix_exposures_shown", "exposures", ["shown_at"])
    op.create_table(
        "clicks",
        sa.Column("exposure_id", sa.String, nullable=False),
        sa.Column("item_id", sa.String, nullable=False),
        sa.Column("clicked_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("exposure_id", "item_id", name="pk_clicks"),
    )
    op.create_table(
        "order_touches",
        sa.Column("order_id", sa.String, primary_key=True),
        sa.Column("customer_id", sa.String, nullable=False),
        sa.Column("purchased_at", sa.DateTime, nullable=False),
        sa.Column("exposure_id", sa.String),
        sa.Column("voucher_code", sa.String),
        sa.UniqueConstraint("voucher_code", name="uq_order_touches_voucher"),
    )


def downgrade() -> None:
    for table in ("order_touches", "clicks", "exposures"):
        op.drop_table(table)
    with op.batch_alter_table("contact_log") as batch:
        batch.drop_column("exposure_id")
        batch.drop_column("held_out")
