"""The store's read queries: one plain function per question, each on an open ``Connection``.

Every command that reads the store (``status``, ``changes``, ``export``, ``report``,
``posters show``, the push's view of the accepted papers) asks here, so each question has one
answer and the JSON kept as text is decoded in one place (``json_list``). Nothing here writes;
nothing here opens, locks or migrates a store (that is the caller's business), and importing
this module loads neither alembic nor OpenReview's client nor the poster solver.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, func, insert, select, text, update

from orsync.store.tables import (
    ASSIGNMENT,
    AUTHOR_NOTICE,
    CHANGE,
    CYCLE,
    NOTE,
    PIN,
    PUSH,
    STATE,
)

# What a cycle row left "running" by a process that died says (``status`` tells it so too).
INTERRUPTED_ERROR = "the process running this cycle stopped before it finished; rolled back"
# sync_state key: until when (ISO 8601, UTC) OpenReview's rate limit holds the cycles back.
RATE_LIMITED_UNTIL = "rate_limited_until"
# sync_state key: the venue id the store mirrors, recorded by its first cycle.
VENUE_ID = "venue_id"
# sync_state key: a website.on_change that has not succeeded since files changed (JSON:
# since, attempts, error); each push runs it again until it does.
ON_CHANGE_PENDING = "on_change_pending"
# sync_state key: the attachments quota as the hosted-files stage last saw it (JSON).
FILES_QUOTA = "files_quota"
# sync_state keys of the poster places (docs/workshop.md#moves-of-published-posters), JSON:
# what the site files show ({forum id: [session, board]}), each paper's home (the place the
# chairs consented to), when the places were announced (ISO 8601), the last push's moves.
POSTERS_PUBLISHED = "posters_published"
POSTERS_HOMES = "posters_homes"
POSTERS_ANNOUNCED = "posters_announced"
POSTERS_MOVES = "posters_moves"
# sync_state key: the last push's warnings (JSON list: the day's problems, where the talks and
# OpenReview's orals disagree, hosted files unlinked, author clashes), for ``orsync status`` on
# the day; the next push says only the ones not in it.
PUSH_WARNINGS = "push_warnings"
# sync_state key: what the last push published from and the files it wrote (JSON: inputs, a
# digest; files, {name: [size, mtime_ns, inode]}); a push finding both the same renders nothing.
PUSH_DIGEST = "push_digest"

# The columns of a paper that hold JSON arrays as text (docs/site-files.md#the-read-views).
LIST_COLUMNS = ("authors", "authorids", "keywords")
EXPORTS = ("papers", "submissions", "reviews")


# ------------------------------------------------------------------ decoding


def as_dict(row: Row[*tuple[Any, ...]]) -> dict[str, Any]:
    """A result row as a plain dict. Core names its columns with ``quoted_name`` (a ``str``
    subclass that YAML refuses to dump): the keys are made plain strings."""
    return {str(key): value for key, value in row._mapping.items()}


def json_list(value: str | list[Any] | None) -> list[Any] | None:
    """A JSON array kept as text, decoded (a jsonb column of a PostgreSQL view comes decoded
    already); None when the column is null (absent, unreadable)."""
    if not value:
        return None
    if isinstance(value, list):
        return value
    decoded: list[Any] = json.loads(value)
    return decoded


def decode_lists(row: dict[str, Any], *, null_as_empty: bool) -> dict[str, Any]:
    """The paper's list columns (``LIST_COLUMNS``) decoded in place; ``row`` is returned.

    A null column becomes ``[]`` with ``null_as_empty`` (what the website and the poster model
    take), else stays None (what ``export`` shows: the field is not public).
    """
    for key in LIST_COLUMNS:
        if key in row:
            decoded = json_list(row[key])
            row[key] = [] if decoded is None and null_as_empty else decoded
    return row


# ------------------------------------------------------------------ sync state


def get_state(conn: Connection, key: str) -> str | None:
    """One of the small facts the sync keeps between cycles (``sync_state``)."""
    row = conn.execute(select(STATE.c.value).where(STATE.c.key == key)).first()
    return None if row is None else str(row.value)


def set_state(conn: Connection, key: str, value: str) -> None:
    """Keep one ``sync_state`` fact (an update, else an insert: portable to every backend)."""
    done = conn.execute(update(STATE).where(STATE.c.key == key).values(value=value))
    if done.rowcount == 0:
        conn.execute(insert(STATE).values(key=key, value=value))


def push_warnings(conn: Connection) -> list[str]:
    """The last push's warnings (``PUSH_WARNINGS``); none before the first push."""
    try:
        found = json.loads(get_state(conn, PUSH_WARNINGS) or "[]")
    except ValueError:
        return []
    return [str(w) for w in found] if isinstance(found, list) else []


def on_change_pending(conn: Connection) -> dict[str, Any] | None:
    """The website.on_change still owed to the site (``ON_CHANGE_PENDING``), or None."""
    value = get_state(conn, ON_CHANGE_PENDING)
    if not value:
        return None
    try:
        found = json.loads(value)
    except ValueError:
        found = None
    return found if isinstance(found, dict) else {"since": None, "attempts": 0, "error": None}


def watermark_ms(conn: Connection) -> int | None:
    """The newest ``tmdate`` the sync has seen, None before the first cycle."""
    value = get_state(conn, "watermark_ms")
    return int(value) if value else None


# ------------------------------------------------------------------ status


def submissions_by_status(conn: Connection) -> dict[str, int]:
    """How many live submissions the store holds in each status."""
    rows = conn.execute(
        select(NOTE.c.status, func.count())
        .where(NOTE.c.kind == "submission", ~NOTE.c.deleted)
        .group_by(NOTE.c.status)
    )
    return {str(r[0]): int(r[1]) for r in rows}


def unreleased_decisions(conn: Connection) -> dict[str, int]:
    """Live submissions decided but not released (still ``active``), by accept / reject: the
    chairs' knowledge, never a status (docs/security.md#what-is-public)."""
    rows = conn.execute(
        select(NOTE.c.decision_accepts, func.count())
        .where(
            NOTE.c.kind == "submission",
            ~NOTE.c.deleted,
            NOTE.c.status == "active",
            NOTE.c.decision.is_not(None),
        )
        .group_by(NOTE.c.decision_accepts)
    )
    out = {"accept": 0, "reject": 0}
    for accepts, count in rows:
        # None: the store was migrated and the next cycle has not judged the decision yet.
        key = "unjudged" if accepts is None else ("accept" if accepts else "reject")
        out[key] = out.get(key, 0) + int(count)
    return out


def notes_by_kind(conn: Connection) -> dict[str, int]:
    """How many live notes the store holds of each kind (submission, review, ...)."""
    rows = conn.execute(
        select(NOTE.c.kind, func.count()).where(~NOTE.c.deleted).group_by(NOTE.c.kind)
    )
    return {str(r[0]): int(r[1]) for r in rows}


def tombstones(conn: Connection) -> int:
    """How many notes are kept as deleted."""
    return int(conn.execute(select(func.count()).where(NOTE.c.deleted)).scalar() or 0)


def recent_cycles(conn: Connection, limit: int = 10) -> list[dict[str, Any]]:
    """The last ``limit`` cycles, newest first, as stored (a cycle still ``running`` may be one
    whose process died: only the lock says which)."""
    query = select(CYCLE).order_by(CYCLE.c.id.desc()).limit(limit)
    return [as_dict(r) for r in conn.execute(query)]


def last_success(conn: Connection) -> datetime | None:
    """When the last successful cycle finished."""
    when: datetime | None = conn.execute(
        select(func.max(CYCLE.c.finished_at)).where(CYCLE.c.outcome == "ok")
    ).scalar()
    return when


def cycle_since(conn: Connection, first_id: int) -> dict[str, Any] | None:
    """The newest cycle whose id is at least ``first_id``, as stored; None when there is none.

    The service predicts a cycle's id before running it and reads back what was recorded.
    """
    row = conn.execute(
        select(CYCLE).where(CYCLE.c.id >= first_id).order_by(CYCLE.c.id.desc())
    ).first()
    return as_dict(row) if row is not None else None


def last_push(conn: Connection) -> dict[str, Any] | None:
    """The newest website push as stored, its ``changed`` files decoded; None before any."""
    row = conn.execute(select(PUSH).order_by(PUSH.c.id.desc()).limit(1)).first()
    if row is None:
        return None
    out = as_dict(row)
    out["changed"] = json_list(out["changed"]) or []
    return out


@dataclass
class StoreStatus:
    """What ``orsync status`` reports from the store itself (the lock is asked separately)."""

    submissions: dict[str, int]
    decided_unreleased: dict[str, int]
    notes: dict[str, int]
    tombstones: int
    cycles: list[dict[str, Any]]
    last_success: datetime | None
    watermark_ms: int | None
    last_push: dict[str, Any] | None


def status(conn: Connection, *, cycles: int = 10) -> StoreStatus:
    """The store's figures, read on one connection (docs/cli.md ``status``)."""
    return StoreStatus(
        submissions=submissions_by_status(conn),
        decided_unreleased=unreleased_decisions(conn),
        notes=notes_by_kind(conn),
        tombstones=tombstones(conn),
        cycles=recent_cycles(conn, cycles),
        last_success=last_success(conn),
        watermark_ms=watermark_ms(conn),
        last_push=last_push(conn),
    )


# ------------------------------------------------------------------ changes


def first_pull(conn: Connection) -> tuple[int, datetime | None, dict[str, int]] | None:
    """The store's first good cycle, when it recorded changes: its id, its start, and how many
    notes of each kind it created (everything the venue held then, all "created now")."""
    first = conn.execute(select(func.min(CYCLE.c.id)).where(CYCLE.c.outcome == "ok")).scalar()
    kinds = select(CHANGE.c.kind, func.count()).where(CHANGE.c.cycle_id == first)
    counts = {str(k): int(n) for k, n in conn.execute(kinds.group_by(CHANGE.c.kind))}
    if first is None or not counts:
        return None
    started = conn.execute(select(CYCLE.c.started_at).where(CYCLE.c.id == first)).scalar()
    return int(first), started, counts


def changes(
    conn: Connection,
    *,
    since: datetime | None = None,
    limit: int | None = None,
    after_cycle: int | None = None,
) -> list[dict[str, Any]]:
    """What changed in the venue, newest first: each change with its paper's number and title,
    the list of fields that changed, when OpenReview made it (``at``, the note's ``tmdate``)
    and when orsync saw it (``seen_at``, its cycle's start) (docs/cli.md ``changes``); only
    those of cycles after ``after_cycle`` when it is given."""
    # The paper a reply belongs to is its forum's submission: chairs know papers by number.
    paper = NOTE.alias("paper")
    query = (
        select(
            CHANGE,
            paper.c.number,
            func.coalesce(NOTE.c.title, paper.c.title).label("title"),
            CYCLE.c.started_at.label("seen_at"),
        )
        .join(NOTE, NOTE.c.id == CHANGE.c.note_id, isouter=True)
        .join(paper, paper.c.id == CHANGE.c.forum, isouter=True)
        .join(CYCLE, CYCLE.c.id == CHANGE.c.cycle_id, isouter=True)
        .order_by(CHANGE.c.id.desc())
    )
    if since is not None:
        query = query.where(CHANGE.c.at >= since)
    if after_cycle is not None:
        query = query.where(CHANGE.c.cycle_id > after_cycle)
    if limit is not None:
        query = query.limit(limit)
    out = []
    for r in conn.execute(query):
        m = r._mapping
        out.append(
            {
                "at": m["at"],
                "seen_at": m["seen_at"],
                "cycle": m["cycle_id"],
                "op": m["op"],
                "kind": m["kind"],
                "note_id": m["note_id"],
                "forum": m["forum"],
                "number": m["number"],
                "title": m["title"],
                "fields": json_list(m["fields"]) or [],
            }
        )
    return out


# ------------------------------------------------------------------ papers and submissions


def _accepted_papers(conn: Connection, *, null_as_empty: bool) -> list[dict[str, Any]]:
    result = conn.execute(text("SELECT * FROM accepted_papers ORDER BY number, forum_id"))
    return [decode_lists(as_dict(r), null_as_empty=null_as_empty) for r in result]


def submissions_overview(conn: Connection, *, live_only: bool = False) -> list[dict[str, Any]]:
    """The ``submissions_overview`` view by number, ``deleted`` as a bool; only the live
    submissions with ``live_only``."""
    query = "SELECT * FROM submissions_overview"
    if live_only:
        query += " WHERE NOT deleted"
    rows = [as_dict(r) for r in conn.execute(text(query + " ORDER BY number, forum_id"))]
    for row in rows:
        row["deleted"] = bool(row["deleted"])
    return rows


def reviews(conn: Connection) -> list[dict[str, Any]]:
    """Every live review: its paper's number, its scores, numbers and text as the form gave
    them, its times (epoch ms, as stored), by paper."""
    paper = NOTE.alias("paper")
    query = (
        select(
            NOTE.c.id,
            NOTE.c.forum,
            paper.c.number,
            NOTE.c.signature,
            NOTE.c.rating,
            NOTE.c.rating_text,
            NOTE.c.confidence,
            NOTE.c.confidence_text,
            NOTE.c.title,
            NOTE.c.cdate,
            NOTE.c.tmdate,
        )
        .join(paper, paper.c.id == NOTE.c.forum, isouter=True)
        .where(NOTE.c.kind == "review", ~NOTE.c.deleted)
        .order_by(paper.c.number, NOTE.c.forum, NOTE.c.id)
    )
    return [as_dict(r) for r in conn.execute(query)]


def export_rows(conn: Connection, what: str) -> list[dict[str, Any]]:
    """One of ``orsync export``'s datasets (``EXPORTS``). Papers keep a non-public list column
    as null: the dump says what is not published rather than showing it empty."""
    if what == "papers":
        return _accepted_papers(conn, null_as_empty=False)
    if what == "submissions":
        return submissions_overview(conn)
    if what == "reviews":
        return reviews(conn)
    raise ValueError(f"unknown export {what!r} (one of {', '.join(EXPORTS)})")


# ------------------------------------------------------------------ report


class ReviewScores(NamedTuple):
    rating: float | None
    confidence: float | None


@dataclass
class ReportData:
    """What ``orsync report`` is computed from."""

    submissions: list[dict[str, Any]]  # live rows of ``submissions_overview``
    decided_unreleased: dict[str, int]
    reviews: list[ReviewScores]  # one per live review


def report_data(conn: Connection) -> ReportData:
    scores = conn.execute(
        select(NOTE.c.rating, NOTE.c.confidence).where(NOTE.c.kind == "review", ~NOTE.c.deleted)
    )
    return ReportData(
        submissions=submissions_overview(conn, live_only=True),
        decided_unreleased=unreleased_decisions(conn),
        reviews=[ReviewScores(r.rating, r.confidence) for r in scores],
    )


# ------------------------------------------------------------------ posters


def accepted_numbers(conn: Connection) -> dict[str, int | None]:
    """Each accepted paper's number by forum id, without the typed models (every pass asks)."""
    rows = conn.execute(text("SELECT forum_id, number FROM accepted_papers"))
    return {str(r.forum_id): r.number for r in rows}


def poster_listing(conn: Connection) -> list[Row[Any]]:
    """Each accepted paper's place (``posters show``): public columns of the read view only,
    read without the typed models so that a reading command does not load SQLModel."""
    return list(
        conn.execute(
            text(
                "SELECT forum_id, number, title, authors, presentation, session_id, board "
                "FROM accepted_papers ORDER BY number, forum_id"
            )
        )
    )


def pins(conn: Connection) -> dict[str, str]:
    """The chairs' pins: forum id → poster session id."""
    return {str(r.forum_id): str(r.session_id) for r in conn.execute(select(PIN))}


def pin_of(conn: Connection, forum_id: str) -> str | None:
    """The session one paper is pinned to, None when it is not pinned."""
    value = conn.execute(select(PIN.c.session_id).where(PIN.c.forum_id == forum_id)).scalar()
    return None if value is None else str(value)


def poster_places(conn: Connection) -> dict[str, tuple[str, int]]:
    """The stored poster assignment: forum id → (session id, board)."""
    return {
        str(r.forum_id): (str(r.session_id), int(r.board)) for r in conn.execute(select(ASSIGNMENT))
    }


# What a push publishes from besides the config, each in a fixed order (``push_inputs``).
_PUSH_INPUTS = (
    "SELECT * FROM accepted_papers ORDER BY number, forum_id",
    "SELECT forum_id, session_id FROM poster_pin ORDER BY forum_id",
    "SELECT forum_id, session_id, board FROM poster_assignment ORDER BY forum_id",
    "SELECT forum_id, field, file FROM hosted_file ORDER BY forum_id, field",
    # The decided but unreleased papers the day's rules read.
    "SELECT id, number, title, decision, decision_accepts FROM note WHERE kind = 'submission' "
    "AND NOT deleted AND status = 'active' AND decision IS NOT NULL ORDER BY id",
)


def push_inputs(
    conn: Connection, state_keys: Iterable[str], *, any_change: bool
) -> Iterator[tuple[Any, ...]]:
    """Every row a push publishes from (``_PUSH_INPUTS``), raw, for the digest that tells an
    unchanged push (``PUSH_DIGEST``); with ``any_change`` the newest change record too (a form
    field the talk selection reads may be any submission's); the ``state_keys`` facts last."""
    for i, query in enumerate(_PUSH_INPUTS):
        yield (i,)
        yield from conn.execute(text(query))
    if any_change:
        yield ("changes", conn.execute(select(func.max(CHANGE.c.id))).scalar())
    yield ("state",)
    yield from conn.execute(
        select(STATE.c.key, STATE.c.value)
        .where(STATE.c.key.in_(sorted(state_keys)))
        .order_by(STATE.c.key)
    )


def notice_counts(conn: Connection) -> dict[str, int] | None:
    """The authors' notices (docs/workshop.md#telling-the-authors): ``told`` (the last notice
    went through), ``pending_update`` (told, but what is due has changed since), ``failed``
    (the last try was refused or never answered); None when none was ever tried."""
    rows = conn.execute(
        select(AUTHOR_NOTICE.c.status, AUTHOR_NOTICE.c.sent_hash, AUTHOR_NOTICE.c.due_hash)
    ).all()
    if not rows:
        return None
    told = [r for r in rows if r.sent_hash is not None]
    return {
        "told": len(told),
        "pending_update": sum(1 for r in told if r.due_hash not in (None, r.sent_hash)),
        "failed": sum(1 for r in rows if r.status != "sent"),
    }
