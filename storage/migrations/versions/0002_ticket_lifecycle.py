"""ticket lifecycle: tier, reopen count, status time, follow-ups, internal messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 11:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tier", sa.String(length=2), nullable=False, server_default="L1")
        )
        batch_op.add_column(
            sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "status_changed_at",
                sa.DateTime(timezone=True),
                nullable=False,
                server_default=sa.func.current_timestamp(),
            )
        )
        batch_op.add_column(sa.Column("follow_up_of", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tickets_follow_up_of_tickets"), "tickets", ["follow_up_of"], ["id"]
        )
        batch_op.create_index(
            "ix_tickets_status_changed", ["status", "status_changed_at"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("internal", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("internal")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_status_changed")
        batch_op.drop_constraint(batch_op.f("fk_tickets_follow_up_of_tickets"), type_="foreignkey")
        batch_op.drop_column("follow_up_of")
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("reopen_count")
        batch_op.drop_column("tier")
