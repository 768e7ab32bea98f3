"""service levels: where the priority came from, the customer's zone, the clocks' state, the
new tickets that wait for a shift, and the ticket a merged event happened on

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-14 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

MOMENTS = ("response_due", "responded_at", "resolution_due")


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority_reason", sa.Text(), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("customer_utc_offset", sa.Integer(), nullable=True))
        for name in MOMENTS:
            batch_op.add_column(sa.Column(name, sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("resolution_paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("service_check_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("awaiting_shift_since", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_tickets_service_check_at"), ["service_check_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_tickets_awaiting_shift_since"), ["awaiting_shift_since"], unique=False
        )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moved_from", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("moved_from")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_awaiting_shift_since"))
        batch_op.drop_index(batch_op.f("ix_tickets_service_check_at"))
        for name in ("awaiting_shift_since", "service_check_at", "resolution_paused", *MOMENTS):
            batch_op.drop_column(name)
        batch_op.drop_column("customer_utc_offset")
        batch_op.drop_column("priority_reason")
