"""knowledge base: the indexed articles, their tokens' document frequencies, and the full
text index (FTS5 on SQLite, a tsvector with a GIN index on PostgreSQL)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-22 09:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Tokens arrive made (`gateway.knowledge.words`), separated by spaces; these characters
# stay inside them.
FTS5_TABLE = (
    "CREATE VIRTUAL TABLE kb_fts USING fts5("
    "terms, tokenize = \"unicode61 remove_diacritics 0 tokenchars '._-'\")"
)


def upgrade() -> None:
    op.create_table(
        "kb_articles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("stem", sa.String(length=200), nullable=False),
        sa.Column("lang", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("platforms", sa.Text(), nullable=False),
        sa.Column("sdk_versions", sa.String(length=200), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("synonyms", sa.String(length=64), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("key_terms", sa.Text(), nullable=False),
        sa.Column("outdated", sa.Text(), nullable=False),
        sa.Column("outdated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("indexed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_articles")),
        sa.UniqueConstraint("slug", name=op.f("uq_kb_articles_slug")),
    )
    op.create_index(op.f("ix_kb_articles_stem"), "kb_articles", ["stem"])
    op.create_table(
        "kb_terms",
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("articles", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_kb_terms")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.add_column("kb_articles", sa.Column("terms", postgresql.TSVECTOR(), nullable=True))
        op.create_index("ix_kb_articles_terms", "kb_articles", ["terms"], postgresql_using="gin")
    else:
        op.execute(FTS5_TABLE)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE kb_fts")
    op.drop_table("kb_terms")
    op.drop_index(op.f("ix_kb_articles_stem"), table_name="kb_articles")
    op.drop_table("kb_articles")
