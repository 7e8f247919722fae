"""The read views of SPEC §5: a stable contract for the website build and notebooks.

Plain SQL that SQLite and PostgreSQL both accept, created by the migrations.
"""

ACCEPTED_PAPERS = """
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
