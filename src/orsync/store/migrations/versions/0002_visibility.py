"""visibility: who may read each note and field; released status; public decisions

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 10:00:00

Adds the columns that say what the public may read (``public``, ``public_fields``, one
``*_public`` flag per published column), ``public_decision`` and ``decision_accepts``, and
recreates the read views so that ``accepted_papers`` publishes only public data (docs/security.md#what-is-public, docs/site-files.md#the-read-views).

Existing rows are backfilled here from their stored raw JSON: visibility needs nothing but the
note itself. A submission that the old rule called accepted from a decision alone (its
``venueid`` is not the venue id) goes back to ``active`` here, so nothing unreleased stays in
the view even if the website is pushed before the next pull. What needs the venue group's
settings (the decision field's name, ``accept_decision_options``) is recomputed by the next
cycle, which this revision makes a full one (``sync_state.full_required``): a full cycle
refreshes every forum it reads. The rules are copied into this file, frozen, like the views.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BATCH = 2000
FLAGS = (
    "title_public",
    "authors_public",
    "authorids_public",
    "keywords_public",
    "abstract_public",
    "tldr_public",
    "pdf_public",
)

ACCEPTED_PAPERS = """
CREATE VIEW accepted_papers AS
SELECT n.id AS forum_id, n.number,
       CASE WHEN n.title_public THEN n.title END AS title,
       CASE WHEN n.authors_public THEN n.authors END AS authors,
       CASE WHEN n.authorids_public THEN n.authorids END AS authorids,
       CASE WHEN n.keywords_public THEN n.keywords END AS keywords,
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

SUBMISSIONS_OVERVIEW = """
CREATE VIEW submissions_overview AS
SELECT n.id AS forum_id, n.number, n.title, n.status, n.decision,
       COUNT(r.id) AS review_count, AVG(r.rating) AS rating_mean, MIN(r.rating) AS rating_min,
       MAX(r.rating) AS rating_max, AVG(r.confidence) AS confidence_mean, n.deleted
FROM note n
LEFT JOIN note r ON r.forum = n.id AND r.kind = 'review' AND NOT r.deleted
WHERE n.kind = 'submission'
GROUP BY n.id, n.number, n.title, n.status, n.decision, n.deleted
"""

# The views of revision 0001, for downgrade.
OLD_ACCEPTED_PAPERS = """
CREATE VIEW accepted_papers AS
SELECT n.id AS forum_id, n.number, n.title, n.authors, n.authorids, n.keywords, n.abstract,
       n.tldr, n.pdf_url, n.forum_url, n.decision, n.presentation,
       pa.session_id, ps.name AS session_name, ps.start AS session_start,
       ps."end" AS session_end, pa.board
FROM note n
LEFT JOIN poster_assignment pa ON pa.forum_id = n.id
LEFT JOIN poster_session ps ON ps.id = pa.session_id
WHERE n.kind = 'submission' AND n.status = 'accepted' AND NOT n.deleted
"""

NEW_COLUMNS: list[tuple[str, Any, bool]] = [
    ("public", sa.Boolean(), False),
    ("public_fields", sa.Text(), True),
    *((flag, sa.Boolean(), False) for flag in FLAGS),
    ("public_decision", sa.String(), True),
    ("decision_accepts", sa.Boolean(), True),
]


# ------------------------------------------------------------------ frozen visibility rules


def _is_public(readers: Any, nonreaders: Any = None) -> bool:
    if not isinstance(readers, list) or not all(isinstance(r, str) for r in readers):
        return False
    if nonreaders is not None and (
        not isinstance(nonreaders, list) or not all(isinstance(r, str) for r in nonreaders)
    ):
        return False
    return "everyone" in readers and "everyone" not in (nonreaders or [])


def _public_fields(note: Mapping[str, Any]) -> list[str]:
    content = note.get("content")
    if not _is_public(note.get("readers"), note.get("nonreaders")):
        return []
    if not isinstance(content, Mapping):
        return []
    out = []
    for name, entry in content.items():
        if not isinstance(entry, Mapping):
            continue
        readers = entry["readers"] if "readers" in entry else note.get("readers")
        if _is_public(readers, entry.get("nonreaders")):
            out.append(str(name))
    return sorted(out)


def _value(note: Mapping[str, Any], field: str) -> Any:
    content = note.get("content")
    entry = content.get(field) if isinstance(content, Mapping) else None
    return entry.get("value") if isinstance(entry, Mapping) else None


def _sources(note: Mapping[str, Any], kind: str) -> dict[str, str | None]:
    """The content field each flagged column came from (as orsync 0002 fills them)."""
    sources: dict[str, str | None] = {"title_public": "title"}
    if kind != "submission":
        return sources
    ids_field: str | None = None
    if _value(note, "authorids") is not None:
        ids_field = "authorids"
    else:
        authors = _value(note, "authors")
        if isinstance(authors, list) and authors and all(isinstance(a, Mapping) for a in authors):
            ids_field = "authors"
    sources.update(
        authors_public="authors",
        authorids_public=ids_field,
        keywords_public="keywords",
        abstract_public="abstract",
        tldr_public="TLDR" if _value(note, "TLDR") is not None else "tldr",
        pdf_public="pdf",
    )
    return sources


_COLUMN_OF = {
    "title_public": "title",
    "authors_public": "authors",
    "authorids_public": "authorids",
    "keywords_public": "keywords",
    "abstract_public": "abstract",
    "tldr_public": "tldr",
    "pdf_public": "pdf_url",
}


def _venue_of(note: Mapping[str, Any]) -> str | None:
    domain = note.get("domain")
    if isinstance(domain, str) and domain:
        return domain
    invitations = note.get("invitations")
    if isinstance(invitations, list) and invitations and "/-/" in str(invitations[0]):
        return str(invitations[0]).split("/-/", 1)[0]
    return None


# ------------------------------------------------------------------ upgrade / downgrade


def upgrade() -> None:
    for name in ("accepted_papers", "submissions_overview"):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    for name, type_, nullable in NEW_COLUMNS:
        op.add_column(
            "note",
            sa.Column(
                name, type_, nullable=nullable, server_default=None if nullable else sa.false()
            ),
        )
    _backfill(op.get_bind())
    op.execute(ACCEPTED_PAPERS)
    op.execute(SUBMISSIONS_OVERVIEW)


def _backfill(conn: sa.Connection) -> None:
    meta = sa.MetaData()
    note = sa.Table("note", meta, autoload_with=conn)
    state = sa.Table("sync_state", meta, autoload_with=conn)
    columns = [
        note.c.id, note.c.forum, note.c.kind, note.c.raw, note.c.status, note.c.venueid,
        note.c.decision, note.c.tmdate, note.c.deleted,
        *(note.c[c] for c in _COLUMN_OF.values()),
    ]  # fmt: skip
    updates: list[dict[str, Any]] = []
    public_decision: dict[str, tuple[int, str]] = {}
    last = ""
    any_rows = False
    while True:
        rows = conn.execute(
            sa.select(*columns).where(note.c.id > last).order_by(note.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        any_rows = True
        last = rows[-1].id
        for r in rows:
            try:
                raw = json.loads(r.raw)
            except ValueError:
                raw = {}
            raw = raw if isinstance(raw, dict) else {}
            fields = _public_fields(raw)
            sources = _sources(raw, r.kind)
            update: dict[str, Any] = {
                "b_id": r.id,
                "public": _is_public(raw.get("readers"), raw.get("nonreaders")),
                "public_fields": json.dumps(fields, ensure_ascii=False),
            }
            for flag, column in _COLUMN_OF.items():
                source = sources.get(flag)
                update[flag] = (
                    getattr(r, column) is not None and source is not None and source in fields
                )
            if r.kind == "submission" and r.status == "accepted":
                # Accepted only when OpenReview released it: venueid is the venue id.
                venue = _venue_of(raw)
                if venue is None or r.venueid != venue:
                    update["status_fix"] = r.id
            if r.kind == "decision" and not r.deleted and r.decision is not None:
                # The decision came from the venue's decision field: the one holding that text.
                holders = [
                    name
                    for name, entry in (raw.get("content") or {}).items()
                    if isinstance(entry, Mapping) and str(entry.get("value")) == r.decision
                ]
                name = "decision" if "decision" in holders else (holders[0] if holders else None)
                stamp = r.tmdate or 0
                if name in fields and (
                    r.forum not in public_decision or stamp >= public_decision[r.forum][0]
                ):
                    public_decision[r.forum] = (stamp, r.decision)
            updates.append(update)
        _flush(conn, note, updates)
    if public_decision:
        conn.execute(
            sa.update(note)
            .where(note.c.id == sa.bindparam("b_id"), note.c.kind == "submission")
            .values(public_decision=sa.bindparam("b_decision")),
            [{"b_id": forum, "b_decision": d} for forum, (_, d) in public_decision.items()],
        )
    if any_rows:
        # Status, decision_accepts and presentation need the venue group's settings: the next
        # cycle is a full one, and a full cycle refreshes every forum it reads.
        conn.execute(sa.delete(state).where(state.c.key == "full_required"))
        conn.execute(sa.insert(state).values(key="full_required", value="0002"))


def _flush(conn: sa.Connection, note: sa.Table, updates: list[dict[str, Any]]) -> None:
    if not updates:
        return
    values: dict[str, Any] = {
        "public": sa.bindparam("public"),
        "public_fields": sa.bindparam("public_fields"),
    }
    values.update({flag: sa.bindparam(flag) for flag in FLAGS})
    fixes = [{"b_id": u.pop("status_fix")} for u in updates if "status_fix" in u]
    conn.execute(sa.update(note).where(note.c.id == sa.bindparam("b_id")).values(values), updates)
    if fixes:
        conn.execute(
            sa.update(note)
            .where(note.c.id == sa.bindparam("b_id"))
            .values(status="active", presentation=None),
            fixes,
        )
    updates.clear()


def downgrade() -> None:
    for name in ("accepted_papers", "submissions_overview"):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("note", schema=None) as batch_op:
        for name, _, _ in reversed(NEW_COLUMNS):
            batch_op.drop_column(name)
    op.execute(OLD_ACCEPTED_PAPERS)
    op.execute(SUBMISSIONS_OVERVIEW)
