"""digests of quarantined messages mailed to the operators

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine_digests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("covers_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine_digests")),
        sa.UniqueConstraint("number", name=op.f("uq_quarantine_digests_number")),
    )


def downgrade() -> None:
    op.drop_table("quarantine_digests")
