"""Every table of the store, in one place: typed columns for what orsync and its readers query,
raw JSON for the rest.

Plain SQLAlchemy Core: orsync reads and writes these with Core statements only (bulk inserts,
updates by key), so nothing here needs an ORM. The migrations create the schema (they never
import this module); these declarations match what revisions 0001-0007 create, column for
column, and ``tests/test_store.py`` holds them to it.

Internal to orsync; other programs read the views of docs/site-files.md#the-read-views (see ``views.py``) instead.
Writers (``mirror``, ``sync``, ``publish``) import the tables from here; readers call the
functions of ``queries.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import Interval, TypeEngine, UserDefinedType

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware times, stored in UTC and read back as aware UTC on every database.

    SQLite keeps no offset: what it returns is UTC, and is marked so. A naive time is refused
    rather than guessed at. TIMESTAMP WITH TIME ZONE on PostgreSQL, as the migrations create it.
    """

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def coerce_compared_value(self, op: OperatorType | None, value: Any) -> TypeEngine[Any]:
        # ``at >= :since`` binds ``since`` through this type, so it is compared in UTC too.
        return Interval() if isinstance(value, timedelta) else self

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"a naive time cannot be stored (give it a timezone): {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _ms(name: str) -> Column[int]:
    # Epoch milliseconds overflow a 32-bit INTEGER on PostgreSQL.
    return Column(name, BigInteger, nullable=True)


def _when(name: str, *, nullable: bool) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


class JSONText(TypeDecorator[str]):
    """JSON kept as text and written as text, declared ``JSON`` on SQLite.

    SQLite gives a view's column the declared type of the table column it names, and tools that
    read the views (datasette, SQLAlchemy's reflection) show a ``JSON`` column as JSON. No JSON
    processing here: orsync writes and reads the text itself.
    """

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return _JSONDeclared() if dialect.name == "sqlite" else Text()


class _JSONDeclared(UserDefinedType[str]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSON"


def _public_list(name: str) -> Column[str]:
    # The list as the public may read it, null otherwise: the rule of the accepted_papers view,
    # kept in a generated column so that the view names a column (and so its declared type).
    return Column(
        f"public_{name}",
        JSONText(),
        Computed(f"CASE WHEN {name}_public THEN {name} END"),
    )


def _flag(name: str) -> Column[bool]:
    # Added by revision 0002 with a server default, so that existing rows got ``false``. No
    # client default beside it: an insert that leaves a flag out gets the same false from the
    # database, and the mirror's inserts leave out the flags a whole batch has false.
    return Column(name, Boolean, nullable=False, server_default=false())


NOTE = Table(
    "note",
    metadata,
    # One OpenReview note: a submission (``kind='submission'``) or a reply of some kind.
    Column("id", String, primary_key=True),
    Column("forum", String, nullable=False),
    Column("replyto", String),
    Column("kind", String, nullable=False),
    Column("invitation", String),
    Column("number", Integer),
    Column("signature", String),
    # Submission fields; JSON arrays as text. None means absent (unreadable), never empty.
    Column("title", Text),
    Column("authors", Text),
    Column("authorids", Text),
    Column("keywords", Text),
    Column("abstract", Text),
    Column("tldr", Text),
    Column("pdf_url", String),
    Column("forum_url", String),
    Column("venue", String),
    Column("venueid", String),
    Column("status", String),
    Column("decision", String),
    Column("presentation", String),
    # Review fields: numbers for arithmetic, the form's text for people.
    Column("rating", Float),
    Column("rating_text", String),
    Column("confidence", Float),
    Column("confidence_text", String),
    Column("readers", Text),
    _ms("cdate"),
    _ms("tcdate"),
    _ms("mdate"),
    _ms("tmdate"),
    _ms("odate"),
    _ms("pdate"),
    _ms("ddate"),
    Column("raw", Text, nullable=False),
    Column("digest", String, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    _when("deleted_at", nullable=True),
    Column("first_cycle", Integer),
    Column("last_cycle", Integer),
    # Who may see it (docs/security.md#what-is-public): the note is readable by everyone, and which content fields are
    # (JSON list of names). The ``*_public`` flags say whether the typed column beside them came
    # from a field everyone may read; the read views publish a column only when it did.
    _flag("public"),
    Column("public_fields", Text),
    _flag("title_public"),
    _flag("authors_public"),
    _flag("authorids_public"),
    _flag("keywords_public"),
    _flag("abstract_public"),
    _flag("tldr_public"),
    _flag("pdf_public"),
    # Submissions: the latest decision everyone may read (the decision column is the latest the
    # account may read), and whether the decision column accepts by the venue's rule.
    Column("public_decision", String),
    Column("decision_accepts", Boolean),
    # Generated (revision 0006): virtual on SQLite, stored on PostgreSQL; never written.
    _public_list("authors"),
    _public_list("authorids"),
    _public_list("keywords"),
    Index("ix_note_forum_kind", "forum", "kind"),
    Index("ix_note_kind_status", "kind", "status"),
)

CHANGE = Table(
    "change",
    metadata,
    # One created / updated / deleted note, with the fields that changed (a JSON list).
    Column("id", Integer, primary_key=True),
    Column("cycle_id", Integer, nullable=False, index=True),
    _when("at", nullable=False),
    Column("note_id", String, nullable=False, index=True),
    Column("forum", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("op", String, nullable=False),
    Column("fields", Text, nullable=False),
    Index("ix_change_at", "at"),
)

CYCLE = Table(
    "cycle",
    metadata,
    # One sync cycle and its figures, for ``orsync status``.
    Column("id", Integer, primary_key=True),
    _when("started_at", nullable=False),
    _when("finished_at", nullable=True),
    Column("mode", String, nullable=False),
    Column("outcome", String, nullable=False, default="running"),
    Column("requests", Integer, nullable=False, default=0),
    Column("notes_seen", Integer, nullable=False, default=0),
    Column("created", Integer, nullable=False, default=0),
    Column("updated", Integer, nullable=False, default=0),
    Column("deleted", Integer, nullable=False, default=0),
    Column("duration_s", Float),
    Column("error", Text),
    # The rate-limit quota the cycle saw last (OpenReview's ratelimit-* headers).
    Column("quota_remaining", Integer),
    _when("quota_reset_at", nullable=True),
)

STATE = Table(
    "sync_state",
    metadata,
    # Small key/value facts the sync keeps between cycles (watermark, cycle counters).
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
)

SESSION = Table(
    "poster_session",
    metadata,
    # The configured poster sessions, copied here so the read views can name them.
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("start", String, nullable=False),
    Column("end", String, nullable=False),
    Column("position", Integer, nullable=False),
)

ASSIGNMENT = Table(
    "poster_assignment",
    metadata,
    # Where each accepted paper's poster stands.
    Column("forum_id", String, primary_key=True),
    Column("session_id", String, nullable=False),
    Column("board", Integer, nullable=False),
    _when("assigned_at", nullable=False),
)

PIN = Table(
    "poster_pin",
    metadata,
    # The chairs' pins: a paper that must be in this session.
    Column("forum_id", String, primary_key=True),
    Column("session_id", String, nullable=False),
    _when("pinned_at", nullable=False),
)

PUSH = Table(
    "push",
    metadata,
    # One website push and how it ended, so a failed push shows in ``orsync status``.
    Column("id", Integer, primary_key=True),
    Column("cycle_id", Integer),
    Column("command", String, nullable=False),
    _when("started_at", nullable=False),
    _when("finished_at", nullable=True),
    Column("outcome", String, nullable=False, default="running"),
    Column("papers", Integer),
    Column("changed", Text, nullable=False, default="[]"),
    Column("error", Text),
)

HOSTED_FILE = Table(
    "hosted_file",
    metadata,
    # A file the website hosts (docs/site-files.md#hosted-files): one accepted paper's content field. ``value``/``hash``
    # are what OpenReview holds now; ``file``/``file_hash`` what ``files/`` holds and the site
    # links (kept until a newer file replaces it). ``status``: current, pending or refused.
    Column("forum_id", String, primary_key=True),
    Column("field", String, primary_key=True),
    Column("number", Integer),
    Column("value", String, nullable=False),
    Column("hash", String, nullable=False),
    Column("ext", String, nullable=False),
    Column("status", String, nullable=False),
    Column("file", String),
    Column("file_hash", String),
    Column("size", BigInteger),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    _when("next_attempt_at", nullable=True),
    _when("updated_at", nullable=False),
)

AUTHOR_NOTICE = Table(
    "author_notice",
    metadata,
    # The notice to one accepted paper's authors (docs/workshop.md#telling-the-authors).
    # ``content_hash``/``subject``/``message``/``facts``: the last notice tried; ``status`` how
    # that went: ``sending`` (written before the request: it may have gone through), ``sent``
    # or ``failed`` (refused). ``sent_*``: the last one OpenReview took, so an update can say
    # what changed. ``due_hash``: what the last look (a run, a push) found due now.
    Column("forum_id", String, primary_key=True),
    Column("number", Integer),
    Column("recipients", String, nullable=False),
    Column("status", String, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("subject", Text, nullable=False),
    Column("message", Text, nullable=False),
    Column("facts", Text, nullable=False),
    Column("sent_hash", String),
    Column("sent_facts", Text),
    _when("sent_at", nullable=True),
    Column("message_id", String),
    Column("due_hash", String),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    _when("updated_at", nullable=False),
)
