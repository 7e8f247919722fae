"""record the rate-limit quota each cycle saw

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
    with op.batch_alter_table("cycle") as batch:
        batch.add_column(sa.Column("quota_remaining", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("quota_reset_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cycle") as batch:
        batch.drop_column("quota_reset_at")
        batch.drop_column("quota_remaining")
