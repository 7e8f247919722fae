"""The read views of docs/site-files.md#the-read-views: a stable contract for the website build and notebooks.

Plain SQL that SQLite and PostgreSQL both accept, created by the migrations. A migration that
changes a view copies the SQL it creates into itself, so an old migration never changes when
this file does.

The list columns (``authors``, ``authorids``, ``keywords``) name generated columns of ``note``
that hold the public rule (``CASE WHEN authors_public THEN authors END``): on SQLite a view's
column has a declared type only when it names a table column, and those are declared ``JSON``.
On PostgreSQL the view casts them, ``CAST(n.public_authors AS jsonb)`` (revision 0006).

``accepted_papers`` holds only what the public can read (docs/security.md#what-is-public): an accepted paper whose note
everyone may read, each column only when the field it came from is public (else null), and the
latest decision everyone may read.
"""

ACCEPTED_PAPERS = """
CREATE VIEW accepted_papers AS
SELECT n.id AS forum_id, n.number,
       CASE WHEN n.title_public THEN n.title END AS title,
       n.public_authors AS authors,
       n.public_authorids AS authorids,
       n.public_keywords AS keywords,
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

VIEWS = {"accepted_papers": ACCEPTED_PAPERS, "submissions_overview": SUBMISSIONS_OVERVIEW}
