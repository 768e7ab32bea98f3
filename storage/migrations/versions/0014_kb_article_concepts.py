"""knowledge base: each article's concepts, which the relevance score weighs, and the
index's version, which tells each process when its snapshot of the index is stale

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-23 09:00:00
"""

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "kb_articles", sa.Column("concepts", sa.Text(), server_default="", nullable=False)
    )
    # Forget the synonym table each article was indexed with, so the next indexing reads
    # every article again and fills its concepts.
    op.execute("UPDATE kb_articles SET synonyms = ''")
    version = op.create_table(
        "kb_index_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_index_version")),
    )
    op.bulk_insert(version, [{"id": 1, "version": secrets.token_hex(16)}])


def downgrade() -> None:
    op.drop_table("kb_index_version")
    with op.batch_alter_table("kb_articles") as batch:
        batch.drop_column("concepts")
