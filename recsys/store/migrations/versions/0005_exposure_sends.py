"""Exposures declared as sent (`send=true`): marketing contacts that count toward the cap.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default keeps this a plain ADD COLUMN on SQLite (no table rebuild).
    op.add_column(
        "exposures",
        sa.Column("sent", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_index(
        "ix_exposures_customer_sent",
        "exposures",
        ["customer_id", "shown_at"],
        sqlite_where=sa.text("sent = 1"),
        postgresql_where=sa.text("sent"),
    )


def downgrade() -> None:
    op.drop_index("ix_exposures_customer_sent", table_name="exposures")
    with op.batch_alter_table("exposures") as batch:
        batch.drop_column("sent")
