"""knowledge base postings: on PostgreSQL, each token's articles with how often each holds
it and their lengths, so that BM25 reads only the question's tokens; the tsvectors' GIN
index, which nothing searches any more, goes

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-23 10:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

# As `storage.fulltext.write_postings` makes them, so that an index made before is searched
# without being made again.
POSTINGS = (
    "INSERT INTO kb_postings (term, articles, frequencies, lengths) "
    "SELECT l.lexeme, array_agg(a.id), array_agg(cardinality(l.positions)), "
    "array_agg(a.length) FROM kb_articles a CROSS JOIN LATERAL unnest(a.terms) AS l "
    "WHERE a.terms IS NOT NULL GROUP BY l.lexeme"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_table(
        "kb_postings",
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("articles", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("frequencies", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("lengths", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_kb_postings")),
    )
    op.execute(POSTINGS)
    op.drop_index("ix_kb_articles_terms", table_name="kb_articles")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index("ix_kb_articles_terms", "kb_articles", ["terms"], postgresql_using="gin")
    op.drop_table("kb_postings")
