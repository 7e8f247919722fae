"""view column types: the list columns of accepted_papers are declared JSON (jsonb on PostgreSQL)

Revision ID: 0006
Revises: 0005

Tools that read the views (datasette, SQLAlchemy's reflection, notebooks) show a column by its
declared type. On SQLite a view's column has a declared type only when it names a table column:
``CASE WHEN authors_public THEN authors END`` has none, and ``CAST(... AS JSON)`` gives NUMERIC
affinity, which turns a JSON array into 0. So the public rule of the three list columns moves
into generated columns of ``note`` (``public_authors``, ``public_authorids``, ``public_keywords``;
virtual on SQLite, declared JSON, no storage; stored on PostgreSQL), which the view names. On
PostgreSQL the view casts them to ``jsonb``. The view's other columns and its rows are unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

LISTS = ("authors", "authorids", "keywords")

# {lists}: the three list columns as the dialect names them.
ACCEPTED_PAPERS = """
CREATE VIEW accepted_papers AS
SELECT n.id AS forum_id, n.number,
       CASE WHEN n.title_public THEN n.title END AS title,
       {authors} AS authors,
       {authorids} AS authorids,
       {keywords} AS keywords,
       CASE WHEN n.abstract_public THEN n.abstract END AS abstract,
       CASE WHEN n.tldr_public THEN n.tldr END AS tldr,
       CASE WHEN n.pdf_public THEN n.pdf_url END AS pdf_url,
       n.forum_url, n.public_decision AS decision, n.presentation,
       pa.session_id, ps.name AS session_name, ps.start AS session_start,
       ps."end" AS session_end, pa.board
FROM note n
LEFT JOIN poster_assignment pa ON pa.forum_id = n.id
LEFT JOIN poster_session ps ON ps.id = pa.session_id
WHERE n.kind = 'submission' AND n.status = 'accepted' AND NOT n.deleted AND n.public
"""

# Revision 0002's view, restored by the downgrade.
OLD_ACCEPTED_PAPERS = ACCEPTED_PAPERS.format(
    **{name: f"CASE WHEN n.{name}_public THEN n.{name} END" for name in LISTS}
)


def accepted_papers(dialect: str) -> str:
    if dialect == "postgresql":
        return ACCEPTED_PAPERS.format(**{name: f"CAST(n.public_{name} AS jsonb)" for name in LISTS})
    return ACCEPTED_PAPERS.format(**{name: f"n.public_{name}" for name in LISTS})


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute("DROP VIEW IF EXISTS accepted_papers")
    for name in LISTS:
        rule = f"CASE WHEN {name}_public THEN {name} END"
        if dialect == "sqlite":
            # ADD COLUMN takes a virtual generated column without rebuilding the table. The
            # line break stays in the table's SQL and ends the expression for SQLAlchemy's
            # reflection, which otherwise reads it up to the last ")" of the table.
            column = f"public_{name} JSON GENERATED ALWAYS AS ({rule})\n    VIRTUAL"
        else:
            column = f"public_{name} TEXT GENERATED ALWAYS AS ({rule}) STORED"
        op.execute(f"ALTER TABLE note ADD COLUMN {column}")
    op.execute(accepted_papers(dialect))


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS accepted_papers")
    for name in LISTS:
        op.execute(f"ALTER TABLE note DROP COLUMN public_{name}")
    op.execute(OLD_ACCEPTED_PAPERS)
