"""The ``Mirror``: built pages of notes written into the store, every change recorded.

Handed pages of raw notes (or pages already built, ``pages.BuiltPage``) inside one open
transaction; knows nothing of HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    case,
    func,
    insert,
    literal,
    literal_column,
    select,
    update,
)
from sqlalchemy.sql.expression import ColumnElement

from orsync.mirror.decisions import DecisionTally
from orsync.mirror.pages import (
    BuiltPage,
    Known,
    PageRules,
    build_page,
    kind_of,
)
from orsync.mirror.rows import RawNote, changed_fields
from orsync.store.bulk import (
    Prepared,
    column_order,
    left_out_values,
    prepared_insert,
    prepared_update,
)
from orsync.store.tables import CHANGE, NOTE
from orsync.venue import VenueSettings, well_formed

__all__ = ["CHANGE_KEYS", "Counts", "Mirror"]

CHUNK = 500  # bound on IN (...) lists: SQLite's variable limit, PostgreSQL's plan size


@dataclass
class Counts:
    """The cycle's figures; created / updated / deleted are exactly the change records written."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    deleted_submissions: int = 0
    seen: int = 0
    malformed: int = 0


@dataclass
class Mirror:
    """Applies notes to the store within the caller's transaction, recording every change."""

    conn: Connection
    cycle_id: int
    settings: VenueSettings
    site: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    counts: Counts = field(default_factory=Counts)
    # What the store holds, as far as this cycle knows it: each note's digest, the deleted
    # ones (``pages.Known``, which building a page reads), the submissions.
    index: Known = field(default_factory=Known)
    submission_ids: set[str] = field(default_factory=set)
    # A full cycle: live notes stored at its start that the source has not returned yet.
    _unseen: set[str] = field(default_factory=set)
    max_tmdate: int = 0
    _created: set[str] = field(default_factory=set)
    _pending: dict[str, list[Any]] = field(default_factory=dict)
    _complete: bool = False
    _looked_up: set[str] = field(default_factory=set)
    # A full cycle into an empty store (``load_index``), and whether its ``created`` records
    # are then made by the database once the walk is stored (``record_created``).
    _fresh: bool = False
    _records_later: bool = False
    _prepared: dict[tuple[str, tuple[str, ...], str | None], Prepared] = field(default_factory=dict)
    _page_rules: PageRules | None = None
    live_at_start: int = 0

    @property
    def known(self) -> dict[str, bytes]:
        return self.index.digests

    @property
    def deleted_ids(self) -> set[str]:
        return self.index.deleted

    @property
    def fresh(self) -> bool:
        """Whether the store held no note when the cycle began (a first full pull)."""
        return self._fresh

    def __post_init__(self) -> None:
        # The max-delete guard compares against what the store held before this cycle.
        self.live_at_start = self.live_submissions()

    def load_index(self) -> None:
        """Know every stored note: a full cycle must find the ones the source no longer has."""
        for r in self.conn.execute(select(NOTE.c.id, NOTE.c.digest, NOTE.c.deleted, NOTE.c.kind)):
            self._know(r.id, r.digest, bool(r.deleted), r.kind)
        self._unseen = {i for i in self.known if i not in self.deleted_ids}
        self._complete = True
        self._fresh = not self.known
        self._records_later = self._fresh and _at_of_tmdate(self.conn.dialect.name) is not None

    def _know(self, note_id: str, digest: str, deleted: bool, kind: str) -> None:
        try:
            self.known[note_id] = bytes.fromhex(digest)
        except ValueError:  # not a digest orsync wrote: never equal to one, so rewritten
            self.known[note_id] = digest.encode()
        if deleted:
            self.deleted_ids.add(note_id)
        else:
            self.deleted_ids.discard(note_id)
        if kind == "submission":
            self.submission_ids.add(note_id)
        else:
            self.submission_ids.discard(note_id)

    def prefetch(self, ids: Iterable[str]) -> None:
        """Know these notes (if stored): an incremental cycle looks up only what it touches."""
        if self._complete:
            return
        wanted = sorted({i for i in ids if i not in self._looked_up})
        self._looked_up.update(wanted)
        for chunk in _chunks(wanted):
            for r in self.conn.execute(
                select(NOTE.c.id, NOTE.c.digest, NOTE.c.deleted, NOTE.c.kind).where(
                    NOTE.c.id.in_(chunk)
                )
            ):
                self._know(r.id, r.digest, bool(r.deleted), r.kind)

    def knows_submission(self, forum: str) -> bool:
        return forum in self.submission_ids

    def live_submissions(self) -> int:
        return int(
            self.conn.execute(
                select(func.count()).where(NOTE.c.kind == "submission", ~NOTE.c.deleted)
            ).scalar()
            or 0
        )

    def kind_of(self, note: RawNote) -> str:
        return kind_of(self.settings, note)

    def _statement(self, table: Table, keys: Sequence[str], by: str | None = None) -> Prepared:
        """An insert of ``keys`` (or an update of them by ``by``), compiled once per cycle."""
        name = (table.name, tuple(keys), by)
        prepared = self._prepared.get(name)
        if prepared is None:
            prepared = self._prepared[name] = (
                prepared_insert(self.conn, table, keys)
                if by is None
                else prepared_update(self.conn, table, by, keys)
            )
        return prepared

    def rules(self) -> PageRules:
        """What building this cycle's pages needs besides the pages (``pages.build_page``)."""
        if self._page_rules is None:
            self._page_rules = PageRules(
                self.settings,
                self.site,
                self.cycle_id,
                tuple(column_order(NOTE)),
                left_out_values(NOTE),
                fresh=self._fresh,
            )
        return self._page_rules

    def apply(self, notes: Sequence[Any]) -> None:
        """Insert new notes, update changed ones, and refresh the forums they touch
        (``pages.build_page``, then ``apply_built``)."""
        if not self._complete:
            self.prefetch(str(n["id"]) for n in notes if well_formed(n))
        self.apply_built(build_page(notes, self.rules(), self.index))

    def apply_built(self, page: BuiltPage) -> None:
        """Write one built page: its new rows in batches, its changed rows by id, their change
        records, and the forums it touched recomputed. Pages are written in the walk's order."""
        self.max_tmdate = max(self.max_tmdate, page.max_tmdate)
        self.counts.seen += len(page.seen_ids)
        self.counts.malformed += page.malformed
        if self._unseen:
            self._unseen.difference_update(page.seen_ids)
        for keys, values in page.inserts:
            self._statement(NOTE, keys).run_ordered(self.conn, keys, values)
        self.index.remember(page)
        self._know_created(page)
        if page.changed:
            self._update_rows(page.changed)
        self.refresh_forums(page.refresh, page.forum_times)
        self.flush()

    def _know_created(self, page: BuiltPage) -> None:
        """The submissions among the page's new notes, and a ``created`` record for each live
        one, queued for ``flush``; on a first pull the database writes them all once the walk
        is stored (``record_created``)."""
        submission_ids, created, pending, cycle_id = (
            self.submission_ids,
            self._created,
            self._pending,
            self.cycle_id,
        )
        later = self._records_later
        live = 0
        for note_id, _digest, kind, deleted, forum, tmdate in page.created:
            if kind == "submission":
                submission_ids.add(note_id)
                created.add(note_id)  # what refresh_forums asks about
            else:
                submission_ids.discard(note_id)
            if deleted or later or note_id in pending:
                continue
            # In CHANGE_KEYS order, as ``_record`` writes it.
            pending[note_id] = [cycle_id, tmdate, note_id, forum, kind, "created", "[]"]
            live += 1
        self.counts.created += live

    def record_created(self) -> int:
        """A first pull's ``created`` records, one for each live note it inserted, made by one
        statement once the walk is stored: building a hundred thousand records in Python (each
        time converted for the driver) was a tenth of a first pull. Each record's time is the
        note's ``tmdate`` as the column stores it (``_at_of_tmdate``), or the cycle's."""
        at = _at_of_tmdate(self.conn.dialect.name)
        if not self._records_later or at is None:
            return 0  # queued page by page (``_know_created``)
        chosen = select(
            literal(self.cycle_id),
            func.coalesce(at, literal(self.now, CHANGE.c.at.type)),
            NOTE.c.id,
            NOTE.c.forum,
            NOTE.c.kind,
            literal("created"),
            literal("[]"),
        ).where(NOTE.c.first_cycle == self.cycle_id, ~NOTE.c.deleted)
        done = int(
            self.conn.execute(insert(CHANGE).from_select(list(CHANGE_KEYS), chosen)).rowcount
        )
        self.counts.created += done
        return done

    def _update_rows(self, rows: list[dict[str, Any]]) -> None:
        old_raw: dict[str, RawNote] = {}
        old_decision: dict[str, str | None] = {}
        ids = [row["id"] for row in rows]
        for chunk in _chunks(ids):
            for r in self.conn.execute(
                select(NOTE.c.id, NOTE.c.raw, NOTE.c.kind, NOTE.c.decision).where(
                    NOTE.c.id.in_(chunk)
                )
            ):
                old_raw[r.id] = json.loads(r.raw)
                if r.kind == "submission":
                    old_decision[r.id] = r.decision
        for row in rows:
            # A submission's decision is derived from its forum (``refresh_forums``), not from
            # its own note: kept, so that recomputing it to the same value is no change.
            if row["kind"] == "submission" and row["id"] in old_decision:
                row["decision"] = old_decision[row["id"]]
        keys = [key for key in rows[0] if key != "id"]
        updates = [{**row, "b_id": row["id"]} for row in rows]
        self._statement(NOTE, keys, by="id").run(self.conn, updates)
        for row in rows:
            was_deleted = row["id"] in self.deleted_ids
            self._know(row["id"], row["digest"], row["deleted"], row["kind"])
            tmdate = row["tmdate"]
            if row["deleted"] and not was_deleted:
                self._record(row["id"], row["forum"], row["kind"], "deleted", [], tmdate)
                continue
            fields = changed_fields(old_raw.get(row["id"], {}), json.loads(row["raw"]))
            if was_deleted and not row["deleted"]:
                fields = sorted({*fields, "deleted"})
            if fields:
                self._record(row["id"], row["forum"], row["kind"], "updated", fields, tmdate)

    def tombstone(self, ids: Iterable[str]) -> int:
        """Mark notes deleted that the source no longer returns (the rows stay)."""
        targets = [i for i in ids if i in self.known and i not in self.deleted_ids]
        forums: set[str] = set()
        for chunk in _chunks(targets):
            self.conn.execute(
                update(NOTE)
                .where(NOTE.c.id.in_(chunk))
                .values(deleted=True, deleted_at=self.now, last_cycle=self.cycle_id)
            )
            for r in self.conn.execute(
                select(NOTE.c.id, NOTE.c.forum, NOTE.c.kind).where(NOTE.c.id.in_(chunk))
            ):
                self.deleted_ids.add(r.id)
                forums.add(r.forum)
                # OpenReview gives no time for a note it stopped returning: when orsync saw it.
                self._record(r.id, r.forum, r.kind, "deleted", [], None)
        self.refresh_forums(forums)
        self.flush()
        return len(targets)

    def unseen(self) -> list[str]:
        assert self._complete, "only a full cycle knows what the source no longer returns"
        return sorted(self._unseen)

    def refresh_forums(self, forums: set[str], times: dict[str, int] | None = None) -> None:
        """Recompute each submission's status, decisions and presentation from the store;
        ``times`` gives, per forum, OpenReview's time of the change that caused it."""
        for chunk in _chunks(sorted(forums)):
            tally = DecisionTally(self.settings.decision_field_name)
            for r in self.conn.execute(
                select(NOTE.c.forum, NOTE.c.decision, NOTE.c.tmdate, NOTE.c.public_fields).where(
                    NOTE.c.forum.in_(chunk), NOTE.c.kind == "decision", ~NOTE.c.deleted
                )
            ):
                tally.add(r.forum, r.tmdate, r.decision, r.public_fields)
            subs = self.conn.execute(
                select(
                    NOTE.c.id,
                    NOTE.c.venueid,
                    NOTE.c.venue,
                    NOTE.c.public_fields,
                    NOTE.c.status,
                    NOTE.c.decision,
                    NOTE.c.public_decision,
                    NOTE.c.decision_accepts,
                    NOTE.c.presentation,
                ).where(NOTE.c.id.in_(chunk), NOTE.c.kind == "submission")
            ).all()
            updates = []
            for s in subs:
                new = tally.derived(self.settings, s.id, s.venueid, s.venue, s.public_fields)
                old = {key: getattr(s, key) for key in new}
                if old["decision_accepts"] is not None:
                    old["decision_accepts"] = bool(old["decision_accepts"])
                if new == old:
                    continue
                updates.append({"b_id": s.id, **new})
                if s.id not in self._created:
                    fields = [
                        key
                        for key in ("status", "decision", "public_decision", "presentation")
                        if old[key] != new[key]
                    ]
                    if fields:
                        when = (times or {}).get(s.id)
                        self._record(s.id, s.id, "submission", "updated", fields, when)
            if updates:
                keys = [key for key in updates[0] if key != "b_id"]
                self._statement(NOTE, keys, by="id").run(self.conn, updates)

    def _record(
        self,
        note_id: str,
        forum: str,
        kind: str,
        op: str,
        fields: list[str],
        tmdate: int | None,
    ) -> None:
        """Queue one change record per note and cycle page; the counts follow the records.

        A record's ``at`` is OpenReview's time of the change (``tmdate``, epoch ms; None when
        OpenReview gives none, and the cycle's time is used); when orsync saw it is its cycle's.
        """
        pending = self._pending.get(note_id)
        if pending is not None:
            if pending[_OP] == "updated" and op == "updated":
                merged = sorted(set(json.loads(pending[_FIELDS])) | set(fields))
                pending[_FIELDS] = json.dumps(merged)
                if tmdate is not None and (pending[_AT] is None or tmdate > pending[_AT]):
                    pending[_AT] = tmdate
            # A created or deleted note needs no further record in the same page.
            return
        # In CHANGE_KEYS order; ``at`` goes in as the driver takes it (``flush``).
        self._pending[note_id] = [
            self.cycle_id,
            tmdate if isinstance(tmdate, int) else None,
            note_id,
            forum,
            kind,
            op,
            json.dumps(fields) if fields else "[]",
        ]
        setattr(self.counts, op, getattr(self.counts, op) + 1)
        if op == "deleted" and kind == "submission":
            self.counts.deleted_submissions += 1

    def flush(self) -> None:
        if self._pending:
            statement = self._statement(CHANGE, CHANGE_KEYS)
            # Each time converted once: the cycle's (for records OpenReview gave no time),
            # and each tmdate, which the notes of one edit often share.
            seen_at = statement.bind_value("at", self.now)
            bound: dict[int, Any] = {}
            records = list(self._pending.values())
            for record in records:
                ms = record[_AT]
                if ms is None or not 0 <= ms <= _MAX_MS:
                    record[_AT] = seen_at
                    continue
                at = bound.get(ms)
                if at is None:
                    at = bound[ms] = statement.bind_value(
                        "at", datetime.fromtimestamp(ms / 1000, UTC)
                    )
                record[_AT] = at
            statement.run_values(self.conn, CHANGE_KEYS, records)
            self._pending.clear()


CHANGE_KEYS = ("cycle_id", "at", "note_id", "forum", "kind", "op", "fields")
_AT, _OP, _FIELDS = CHANGE_KEYS.index("at"), CHANGE_KEYS.index("op"), CHANGE_KEYS.index("fields")


# The time a ``tmdate`` (epoch milliseconds) stands for, as ``UTCDateTime`` stores it: exact
# integer arithmetic, one expression per database; NULL out of the years 1970-9999.
_MAX_MS = 253402300799999


def _at_of_tmdate(dialect: str) -> ColumnElement[Any] | None:
    ms = NOTE.c.tmdate
    if dialect == "sqlite":
        # SQLAlchemy's SQLite DATETIME text: "YYYY-MM-DD HH:MM:SS.ffffff".
        text = func.strftime("%Y-%m-%d %H:%M:%S", ms / 1000, "unixepoch").op("||")(
            func.printf(".%06d", (ms % 1000) * 1000)
        )
    elif dialect == "postgresql":
        text = func.to_timestamp(0).op("+")(ms * literal_column("INTERVAL '1 millisecond'"))
    else:
        return None
    return case((ms.between(0, _MAX_MS), text), else_=None)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
