"""The store's tables. Typed columns for what orsync and its readers query, raw JSON for the rest.

Internal to orsync; other programs read the views of SPEC §5 (see ``views.py``) instead.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Text
from sqlmodel import Field, SQLModel


def _ms() -> Column[int]:
    # Epoch milliseconds overflow a 32-bit INTEGER on PostgreSQL.
    return Column(BigInteger, nullable=True)


class Note(SQLModel, table=True):
    """One OpenReview note: a submission (``kind='submission'``) or a reply of some kind."""

    __tablename__ = "note"
    __table_args__ = (
        Index("ix_note_forum_kind", "forum", "kind"),
        Index("ix_note_kind_status", "kind", "status"),
    )

    id: str = Field(primary_key=True)
    forum: str
    replyto: str | None = None
    kind: str
    invitation: str | None = None
    number: int | None = None
    signature: str | None = None
    # Submission fields; JSON arrays as text. None means absent (unreadable), never empty.
    title: str | None = Field(default=None, sa_type=Text)
    authors: str | None = Field(default=None, sa_type=Text)
    authorids: str | None = Field(default=None, sa_type=Text)
    keywords: str | None = Field(default=None, sa_type=Text)
    abstract: str | None = Field(default=None, sa_type=Text)
    tldr: str | None = Field(default=None, sa_type=Text)
    pdf_url: str | None = None
    forum_url: str | None = None
    venue: str | None = None
    venueid: str | None = None
    status: str | None = None
    decision: str | None = None
    presentation: str | None = None
    # Review fields: numbers for arithmetic, the form's text for people.
    rating: float | None = None
    rating_text: str | None = None
    confidence: float | None = None
    confidence_text: str | None = None
    readers: str | None = Field(default=None, sa_type=Text)
    # Who may see it (SPEC §4): the note is readable by everyone, and which content fields are
    # (JSON list of names). The ``*_public`` flags say whether the typed column beside them came
    # from a field everyone may read; the read views publish a column only when it did.
    public: bool = False
    public_fields: str | None = Field(default=None, sa_type=Text)
    title_public: bool = False
    authors_public: bool = False
    authorids_public: bool = False
    keywords_public: bool = False
    abstract_public: bool = False
    tldr_public: bool = False
    pdf_public: bool = False
    # Submissions: the latest decision everyone may read (the decision column is the latest the
    # account may read), and whether the decision column accepts by the venue's rule.
    public_decision: str | None = None
    decision_accepts: bool | None = None
    cdate: int | None = Field(default=None, sa_column=_ms())
    tcdate: int | None = Field(default=None, sa_column=_ms())
    mdate: int | None = Field(default=None, sa_column=_ms())
    tmdate: int | None = Field(default=None, sa_column=_ms())
    odate: int | None = Field(default=None, sa_column=_ms())
    pdate: int | None = Field(default=None, sa_column=_ms())
    ddate: int | None = Field(default=None, sa_column=_ms())
    raw: str = Field(sa_type=Text)
    digest: str
    deleted: bool = False
    deleted_at: datetime | None = None
    first_cycle: int | None = None
    last_cycle: int | None = None


class Change(SQLModel, table=True):
    """One created / updated / deleted note, with the fields that changed."""

    __tablename__ = "change"
    __table_args__ = (Index("ix_change_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int = Field(index=True)
    at: datetime
    note_id: str = Field(index=True)
    forum: str
    kind: str
    op: str
    fields: str = Field(sa_type=Text)


class Cycle(SQLModel, table=True):
    """One sync cycle and its figures, for ``orsync status``."""

    __tablename__ = "cycle"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime
    finished_at: datetime | None = None
    mode: str
    outcome: str = "running"
    requests: int = 0
    notes_seen: int = 0
    created: int = 0
    updated: int = 0
    deleted: int = 0
    duration_s: float | None = None
    error: str | None = Field(default=None, sa_type=Text)
    # The rate-limit bucket with the fewest requests left that the cycle saw, and its reset.
    quota_remaining: int | None = None
    quota_reset_at: datetime | None = None


class SyncState(SQLModel, table=True):
    """Small key/value facts the sync keeps between cycles (watermark, cycle counters)."""

    __tablename__ = "sync_state"

    key: str = Field(primary_key=True)
    value: str = Field(sa_type=Text)


class PosterSession(SQLModel, table=True):
    """The configured poster sessions, copied here so the read views can name them."""

    __tablename__ = "poster_session"

    id: str = Field(primary_key=True)
    name: str
    start: str
    end: str
    position: int


class PosterAssignment(SQLModel, table=True):
    __tablename__ = "poster_assignment"

    forum_id: str = Field(primary_key=True)
    session_id: str
    board: int
    assigned_at: datetime


class PosterPin(SQLModel, table=True):
    __tablename__ = "poster_pin"

    forum_id: str = Field(primary_key=True)
    session_id: str
    pinned_at: datetime


class Push(SQLModel, table=True):
    """One website push and how it ended, so a failed push shows in ``orsync status``."""

    __tablename__ = "push"

    id: int | None = Field(default=None, primary_key=True)
    cycle_id: int | None = None
    command: str
    started_at: datetime
    finished_at: datetime | None = None
    outcome: str = "running"
    papers: int | None = None
    changed: str = Field(default="[]", sa_type=Text)
    error: str | None = Field(default=None, sa_type=Text)
