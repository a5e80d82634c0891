"""Catalog revision: each catalog load stamps the rows it writes, so readers refresh only those.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A constant default keeps this a plain ADD COLUMN on SQLite (no table rebuild).
    op.add_column(
        "items",
        sa.Column("revision", sa.BigInteger, nullable=False, server_default=sa.text("0")),
    )
    op.create_index("ix_items_revision", "items", ["revision"])


def downgrade() -> None:
    op.drop_index("ix_items_revision", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("revision")
