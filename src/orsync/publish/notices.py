"""The notice to each accepted paper's authors: where and when it presents, sent once per content
through OpenReview's messages (docs/workshop.md#telling-the-authors).

Built from the public records (``site.build_records`` over the ``accepted_papers`` view) and the
day, never from anything else: the template sees only :func:`variables`. Each paper has one row
in the ledger (``author_notice``); a send writes and commits ``sending`` before its request and
``sent`` after, so a run killed or cut off between the two leaves a row that the next run checks
against OpenReview before it sends anything again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy import Connection, insert, inspect, select, update

from orsync import schedule
from orsync.config import Config
from orsync.errors import ConfigError, OrsyncError, UnreachableError
from orsync.lock import store_writer
from orsync.site import PaperRecord, build_records, with_talks
from orsync.source import MaybeSent, OpenReviewSource
from orsync.store import Store, hosted_files, models
from orsync.store.binding import open_for, read_for
from orsync.store.tables import AUTHOR_NOTICE

SUBJECT = "{{ venue }}: where and when paper {{ number }} presents"
BODY = """Dear authors of "{{ title }}" (paper {{ number }}),
{% if changes %}
This updates our last message: {{ changes | join("; ") }}.
{% endif %}{% if session %}
Your poster is in {{ session }} on {{ day }}, {{ session_start }}-{{ session_end }} \
({{ timezone }}), at board {{ board if board is not none else "(to be assigned)" }}.
{% endif %}{% if talk %}
Your contributed talk is on {{ talk.day }}, {{ talk.start }}-{{ talk.end }} \
({{ talk.minutes }} minutes, {{ timezone }}){% if talk.speaker %}, presented by \
{{ talk.speaker }}{% endif %}.
{% endif %}{% if missing_files %}
Still missing: {{ missing_files | join(", ") }}\
{% if files_due %}; please upload by {{ files_due }}{% endif %}.
{% endif %}{% if page_url %}
The program: {{ page_url }}
{% endif %}
The organisers of {{ venue }}
"""


# Every name a template may use; :func:`variables` gives exactly these.
VARIABLES = (
    "venue",
    "title",
    "number",
    "session",
    "session_id",
    "day",
    "session_start",
    "session_end",
    "timezone",
    "board",
    "talk",
    "paper_url",
    "page_url",
    "missing_files",
    "files_due",
    "changes",
)


def recipients_of(config: Config, number: int) -> str:
    return f"{config.openreview.venue_id}/Submission{number}/Authors"


def facts_of(record: PaperRecord) -> dict[str, Any]:
    """Where and when the paper presents: what a notice is sent again for when it changes."""
    session = record.session
    return {
        "session_id": session.id if session else None,
        "session": session.name if session else None,
        "session_start": session.start if session else None,
        "session_end": session.end if session else None,
        "board": record.board,
        "talk_start": record.talk.start if record.talk else None,
        "talk_end": record.talk.end if record.talk else None,
    }


def content_hash(facts: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]


def _hm(iso: str | None, zone: tzinfo) -> str | None:
    return None if iso is None else datetime.fromisoformat(iso).astimezone(zone).strftime("%H:%M")


def _date(iso: str | None, zone: tzinfo) -> str | None:
    if iso is None:
        return None
    return datetime.fromisoformat(iso).astimezone(zone).strftime("%A %d %B %Y")


def changes_between(old: Mapping[str, Any], new: Mapping[str, Any], zone: tzinfo) -> list[str]:
    """What changed since the last notice, in words, in the venue's zone."""
    out: list[str] = []

    def when(prefix: str, facts: Mapping[str, Any]) -> str:
        start = facts.get(f"{prefix}_start")
        end = facts.get(f"{prefix}_end")
        return f"{_date(start, zone)} {_hm(start, zone)}-{_hm(end, zone)}"

    if old.get("session_id") != new.get("session_id"):
        out.append(
            f"poster session {old.get('session') or 'none'} -> {new.get('session') or 'none'}"
        )
    elif (old.get("session_start"), old.get("session_end")) != (
        new.get("session_start"),
        new.get("session_end"),
    ):
        out.append(f"session time {when('session', old)} -> {when('session', new)}")
    if old.get("board") != new.get("board"):
        out.append(f"board {old.get('board') or 'none'} -> {new.get('board') or 'none'}")
    if (old.get("talk_start"), old.get("talk_end")) != (new.get("talk_start"), new.get("talk_end")):
        if old.get("talk_start") is None:
            out.append(f"a contributed talk added, {when('talk', new)}")
        elif new.get("talk_start") is None:
            out.append("the contributed talk removed")
        else:
            out.append(f"talk {when('talk', old)} -> {when('talk', new)}")
    return out


def _speaker(config: Config, record: PaperRecord, start: datetime) -> str | None:
    """Who presents the paper's talk starting at ``start`` (``[[talks]] speaker``): the
    notice goes to the paper's own authors, so naming one of them reveals nothing."""
    for talk in config.talks:
        if talk.start == start and str(talk.paper) in (str(record.number), record.id):
            return talk.speaker
    return None


def variables(
    record: PaperRecord, config: Config, zone: tzinfo, changes: Sequence[str] = ()
) -> dict[str, Any]:
    """The template's variables: the record's public fields and the day, nothing else."""
    session = record.session
    talk = None
    if record.talk is not None:
        start = datetime.fromisoformat(record.talk.start)
        end = datetime.fromisoformat(record.talk.end)
        talk = {
            "day": _date(record.talk.start, zone),
            "start": _hm(record.talk.start, zone),
            "end": _hm(record.talk.end, zone),
            "minutes": round((end - start).total_seconds() / 60),
            "speaker": _speaker(config, record, start),
        }
    notice = config.authors_notice
    due = notice.files_due
    offset = datetime.now(UTC).astimezone(zone).strftime("UTC%z")
    return {
        "venue": config.program.name or config.openreview.venue_id,
        "title": record.title,
        "number": record.number,
        "session": session.name if session else None,
        "session_id": session.id if session else None,
        "day": _date(session.start if session else None, zone),
        "session_start": _hm(session.start if session else None, zone),
        "session_end": _hm(session.end if session else None, zone),
        "timezone": config.program.timezone or offset,
        "board": record.board,
        "talk": talk,
        "paper_url": record.forum_link,
        "page_url": notice.page_url,
        "missing_files": [name for name, link in (record.files or ()) if link is None],
        "files_due": None if due is None else due.astimezone(zone).strftime("%A %d %B %Y, %H:%M"),
        "changes": list(changes),
    }


def render(template: str, values: Mapping[str, Any], key: str) -> str:
    """One template, sandboxed (no attribute of Python's reaches it), plain text, strict."""
    import jinja2
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        autoescape=False, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )
    try:
        return env.from_string(template).render(**values)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"authors_notice.{key}: {type(exc).__name__}: {exc}") from None


def check_templates(config: Config) -> None:
    """Render the configured subject and body with a sample of every variable, with and
    without a talk: an unknown name or a syntax error is found before a run (``check``)."""
    notice = config.authors_notice
    sample: dict[str, Any] = {
        "venue": config.program.name or config.openreview.venue_id,
        "title": "A paper",
        "number": 1,
        "session": "Session 1",
        "session_id": "P1",
        "day": "Saturday 11 May 2024",
        "session_start": "10:00",
        "session_end": "11:00",
        "timezone": config.program.timezone or "UTC",
        "board": 1,
        "talk": {
            "day": "Saturday 11 May 2024",
            "start": "11:30",
            "end": "11:45",
            "minutes": 15,
            "speaker": "Ada Lovelace",
        },
        "paper_url": "https://openreview.net/forum?id=x",
        "page_url": notice.page_url,
        "missing_files": ["poster"],
        "files_due": "Saturday 04 May 2024, 23:59",
        "changes": ["board 1 -> 2"],
    }
    for values in (sample, {**sample, "talk": None, "changes": [], "board": None}):
        render(notice.subject or SUBJECT, values, "subject")
        render(notice.body or BODY, values, "body")


@dataclass(frozen=True)
class Notice:
    """One message: to whom, what, and why (``new``, ``update``)."""

    forum_id: str
    number: int
    recipients: str
    subject: str
    message: str
    kind: str
    changes: list[str]
    facts: dict[str, Any]
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "forum_id": self.forum_id,
            "number": self.number,
            "recipients": self.recipients,
            "kind": self.kind,
            "changes": self.changes,
            "subject": self.subject,
            "message": self.message,
        }


@dataclass
class NoticeRun:
    """What ``orsync authors notify`` did, or with ``send`` False would do."""

    send: bool
    papers: int = 0
    notices: list[Notice] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    told: int = 0
    waiting: list[int] = field(default_factory=list)
    deferred: int = 0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "send": self.send,
            "papers": self.papers,
            "notices": [n.as_dict() for n in self.notices],
            "sent": self.sent,
            "confirmed": self.confirmed,
            "told": self.told,
            "waiting": self.waiting,
            "deferred": self.deferred,
            "error": self.error,
        }


def _records(conn: Connection, config: Config) -> tuple[list[PaperRecord], tzinfo]:
    papers = [p for p in models.accepted_papers(conn) if p.title is not None]
    files = None
    if config.website is not None and config.website.files:
        links = hosted_files.hosted_links(conn)
        files = {
            p.forum_id: {name: links.get(p.forum_id, {}).get(name) for name in config.website.files}
            for p in papers
        }
    day = schedule.Schedule.from_config(config)
    records, _ = with_talks(
        day, build_records(papers, list(day.sessions), files), config.program.presentation_from
    )
    return records, day.zone()


def _ledger(conn: Connection) -> dict[str, Any]:
    if not inspect(conn).has_table("author_notice"):  # a store not yet migrated (dry run)
        return {}
    return {r.forum_id: r for r in conn.execute(select(AUTHOR_NOTICE))}


def mark_due(conn: Connection, records: Sequence[PaperRecord]) -> None:
    """Record what each told paper's notice would say now, for ``orsync status``."""
    ledger = _ledger(conn)
    for record in records:
        row = ledger.get(record.id)
        due = content_hash(facts_of(record))
        if row is not None and row.due_hash != due:
            conn.execute(
                update(AUTHOR_NOTICE)
                .where(AUTHOR_NOTICE.c.forum_id == record.id)
                .values(due_hash=due)
            )


def plan(
    config: Config, conn: Connection, run: NoticeRun
) -> tuple[list[Notice], list[PaperRecord]]:
    """Every notice due, in paper order (new papers, papers whose place or time changed), and
    the records they come from."""
    records, zone = _records(conn, config)
    ledger = _ledger(conn)
    notice = config.authors_notice
    due: list[Notice] = []
    for record in sorted(records, key=lambda r: (r.number or 0, r.id)):
        if record.number is None:
            continue
        run.papers += 1
        facts = facts_of(record)
        if facts["session_id"] is None and facts["talk_start"] is None:
            run.waiting.append(record.number)  # nowhere to present yet: nothing to tell
            continue
        digest = content_hash(facts)
        row = ledger.get(record.id)
        if row is not None and row.sent_hash == digest:
            run.told += 1
            continue
        old = json.loads(row.sent_facts) if row is not None and row.sent_facts else None
        changes = changes_between(old, facts, zone) if old is not None else []
        values = variables(record, config, zone, changes)
        due.append(
            Notice(
                forum_id=record.id,
                number=record.number,
                recipients=recipients_of(config, record.number),
                subject=" ".join(render(notice.subject or SUBJECT, values, "subject").split()),
                message=render(notice.body or BODY, values, "body"),
                kind="new" if old is None else "update",
                changes=changes,
                facts=facts,
                hash=digest,
            )
        )
    return due, records


def notify(config: Config, source: OpenReviewSource | None, *, wait_s: float = 600.0) -> NoticeRun:
    """The notices due; with a ``source``, sent (at most ``authors_notice.max_per_run``)."""
    if source is None:
        run = NoticeRun(send=False)
        with read_for(config) as store, store.connect() as conn:
            due = plan(config, conn, run)[0]
        run.notices = due[: config.authors_notice.max_per_run]
        run.deferred = len(due) - len(run.notices)
        return run
    run = NoticeRun(send=True)
    with open_for(config) as store, store_writer(store, wait_s=wait_s, command="authors notify"):
        _confirm_unanswered(store, config, source, run)
        with store.begin() as conn:
            due, records = plan(config, conn, run)
            mark_due(conn, records)
        run.notices = due[: config.authors_notice.max_per_run]
        run.deferred = len(due) - len(run.notices)
        for item in run.notices:
            _send_one(store, config, source, item, run)
            if run.error is not None:
                break
    return run


def invitation_of(config: Config) -> str:
    # The venue's meta invitation, as openreview-py's venue tools send messages with.
    return f"{config.openreview.venue_id}/-/Edit"


def _confirm_unanswered(
    store: Store, config: Config, source: OpenReviewSource, run: NoticeRun
) -> None:
    """A notice left ``sending`` (killed, or its answer lost) counts as sent only if OpenReview
    holds it; otherwise it is sent again like any notice due."""
    with store.connect() as conn:
        open_rows = [r for r in _ledger(conn).values() if r.status == "sending"]
    if not open_rows:
        return
    held = source.message_requests(invitation_of(config))
    for row in open_rows:
        match = next(
            (
                m
                for m in held
                if m.get("groups") == [row.recipients]
                and m.get("subject") == row.subject
                and m.get("message") == row.message
            ),
            None,
        )
        with store.begin() as conn:
            if match is None:
                _set(conn, row.forum_id, status="failed", last_error="no answer; not sent")
            else:
                run.confirmed.append(row.forum_id)
                _set(conn, row.forum_id, **_sent_values(row.content_hash, row.facts, match))


def _sent_values(digest: str, facts: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "status": "sent",
        "sent_hash": digest,
        "sent_facts": facts,
        "sent_at": datetime.now(UTC),
        "message_id": str(answer.get("id")) if answer.get("id") is not None else None,
        "last_error": None,
    }


def _set(conn: Connection, forum_id: str, **values: Any) -> None:
    values["updated_at"] = datetime.now(UTC)
    conn.execute(update(AUTHOR_NOTICE).where(AUTHOR_NOTICE.c.forum_id == forum_id).values(values))


def _send_one(
    store: Store, config: Config, source: OpenReviewSource, item: Notice, run: NoticeRun
) -> None:
    facts = json.dumps(item.facts, sort_keys=True)
    attempt = {
        "number": item.number,
        "recipients": item.recipients,
        "status": "sending",
        "content_hash": item.hash,
        "subject": item.subject,
        "message": item.message,
        "facts": facts,
        "last_error": None,
    }
    # Committed before the request: a kill from here on leaves a row the next run checks.
    with store.begin() as conn:
        exists = conn.execute(
            select(AUTHOR_NOTICE.c.attempts).where(AUTHOR_NOTICE.c.forum_id == item.forum_id)
        ).first()
        if exists is None:
            conn.execute(
                insert(AUTHOR_NOTICE).values(
                    forum_id=item.forum_id, attempts=1, updated_at=datetime.now(UTC), **attempt
                )
            )
        else:
            _set(conn, item.forum_id, attempts=exists.attempts + 1, **attempt)
    body = {
        "groups": [item.recipients],
        "subject": item.subject,
        "message": item.message,
        "invitation": invitation_of(config),
        "signature": f"{config.openreview.venue_id}/Program_Chairs",
    }
    try:
        answer = source.send_message(body, f"the notice to {item.recipients}")
    except MaybeSent as exc:
        with store.begin() as conn:
            _set(conn, item.forum_id, last_error=exc.message)
        run.error = exc.message
        return
    except UnreachableError as exc:  # refused before it was taken: a rate limit, retries spent
        with store.begin() as conn:
            _set(conn, item.forum_id, status="failed", last_error=exc.message)
        run.error = exc.message
        return
    except OrsyncError as exc:
        with store.begin() as conn:
            _set(conn, item.forum_id, status="failed", last_error=exc.message)
        raise
    with store.begin() as conn:
        _set(conn, item.forum_id, **_sent_values(item.hash, facts, answer))
    run.sent.append(item.forum_id)
