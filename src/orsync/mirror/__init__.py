"""Saving notes into the store: typed rows, digests, change records, tombstones.

Kept apart from fetching (``orsync.source``) and from the cycle's control flow (``sync.py``): a
``Mirror`` is handed pages of raw notes inside one open transaction and knows nothing of HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select, update

from orsync.mirror.decisions import NO_DERIVED, DecisionTally
from orsync.mirror.rows import (
    PUBLIC_FLAGS,
    RawNote,
    canonical_json,
    changed_fields,
    digest,
    digest_bytes,
    no_nul,
    note_row,
    strip_details,
    web_base,
)
from orsync.store.bulk import Prepared, filled_keys, prepared_insert, prepared_update
from orsync.store.tables import CHANGE, NOTE
from orsync.venue import (
    VenueSettings,
    well_formed,
)

__all__ = [
    "PUBLIC_FLAGS",
    "Counts",
    "Mirror",
    "RawNote",
    "canonical_json",
    "changed_fields",
    "digest",
    "note_row",
    "web_base",
]

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
    # What the store holds, as far as this cycle knows it: each note's digest (raw bytes, the
    # column's hex decoded: a large venue's index is most of a full cycle's memory), the ones
    # deleted, the submissions.
    known: dict[str, bytes] = field(default_factory=dict)
    deleted_ids: set[str] = field(default_factory=set)
    submission_ids: set[str] = field(default_factory=set)
    # A full cycle: live notes stored at its start that the source has not returned yet.
    _unseen: set[str] = field(default_factory=set)
    max_tmdate: int = 0
    _created: set[str] = field(default_factory=set)
    _pending: dict[str, list[Any]] = field(default_factory=dict)
    _complete: bool = False
    _looked_up: set[str] = field(default_factory=set)
    # A full cycle into an empty store, and the forums its pages touched so far.
    _fresh: bool = False
    _touched_forums: set[str] = field(default_factory=set)
    _prepared: dict[tuple[str, tuple[str, ...], str | None], Prepared] = field(default_factory=dict)
    live_at_start: int = 0

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
        if self.settings.is_submission(note):
            return "submission"
        return self.settings.reply_kind(note)

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

    def apply(self, notes: Sequence[Any]) -> None:
        """Insert new notes, update changed ones, and refresh the forums they touch.

        Each note is serialised once (``canonical_json``); an unchanged note (same digest,
        same deletion) costs that and a dictionary look-up, and its row is never built.
        Malformed notes are set aside and counted.
        """
        if not self._complete:
            self.prefetch(str(n["id"]) for n in notes if well_formed(n))
        new_rows = []
        new_digests: list[bytes] = []  # each new row's digest as the index keeps it
        changed_rows = []
        forums: set[str] = set()
        known_notes, deleted_ids, unseen, counts = (
            self.known,
            self.deleted_ids,
            self._unseen,
            self.counts,
        )
        # Names bound locally: this loop runs once a note, a hundred thousand times at ICLR scale.
        serialise, hash_of, build_row, kind_of = (
            canonical_json,
            digest_bytes,
            note_row,
            self.kind_of,
        )
        settings, site, cycle_id = self.settings, self.site, self.cycle_id
        seen = malformed = 0
        max_tmdate = self.max_tmdate
        # Per forum, OpenReview's time of the newest note of this page that changed in it: when
        # the submission's derived columns changed, if they did.
        forum_times: dict[str, int] = {}
        for note in notes:
            if not well_formed(note):
                malformed += 1
                continue
            canonical = serialise(strip_details(note))
            # A NUL shows in the JSON as an escape (or a look-alike): only then strip it.
            nul = "\\u0000" in canonical
            note_id = no_nul(str(note["id"])) if nul else str(note["id"])
            digest = hash_of(canonical)
            tmdate = note.get("tmdate")
            if isinstance(tmdate, int) and tmdate > max_tmdate:
                max_tmdate = tmdate
            unseen.discard(note_id)
            seen += 1
            known = known_notes.get(note_id)
            if known == digest and (note_id in deleted_ids) == bool(note.get("ddate")):
                forum = str(note.get("forum") or note_id)
                forums.add(no_nul(forum) if nul else forum)
                continue
            row = build_row(note, kind_of(note), settings, site, canonical, digest.hex())
            forums.add(row["forum"])
            if isinstance(tmdate, int) and tmdate > forum_times.get(row["forum"], 0):
                forum_times[row["forum"]] = tmdate
            if known is None:
                row["first_cycle"] = row["last_cycle"] = cycle_id
                new_rows.append(row)
                new_digests.append(digest)
            else:
                row["last_cycle"] = cycle_id
                changed_rows.append(row)
        self.max_tmdate = max_tmdate
        counts.seen += seen
        counts.malformed += malformed
        if new_rows:
            if self._fresh:
                self._derive_new_forums(new_rows, forums)
            self._insert_rows(new_rows)
            self._know_created(new_rows, new_digests)
        if changed_rows:
            self._update_rows(changed_rows)
        self.refresh_forums(forums, forum_times)
        self.flush()

    def _know_created(self, rows: list[dict[str, Any]], digests: list[bytes]) -> None:
        """``_know`` and a ``created`` record for each row just inserted, inlined: it runs
        once a note of a first pull. A note id is new to the page here (``_pending`` would
        hold it only had the same id come twice, which the insert refuses)."""
        known, deleted_ids, submission_ids = self.known, self.deleted_ids, self.submission_ids
        created, pending, cycle_id = self._created, self._pending, self.cycle_id
        live = 0
        for row, note_digest in zip(rows, digests, strict=True):
            note_id, kind = row["id"], row["kind"]
            known[note_id] = note_digest
            if kind == "submission":
                submission_ids.add(note_id)
                created.add(note_id)  # what refresh_forums asks about
            else:
                submission_ids.discard(note_id)
            if row["deleted"]:
                deleted_ids.add(note_id)
                continue
            deleted_ids.discard(note_id)
            if note_id in pending:
                continue
            tmdate = row["tmdate"]
            # In CHANGE_KEYS order, as ``_record`` writes it.
            pending[note_id] = [
                cycle_id,
                tmdate if isinstance(tmdate, int) else None,
                note_id,
                row["forum"],
                kind,
                "created",
                "[]",
            ]
            live += 1
        self.counts.created += live

    def _insert_rows(self, rows: list[dict[str, Any]]) -> None:
        """New notes, one statement a kind, each with only the columns its batch fills
        (``filled_keys``): a review leaves the submission's columns empty, a comment the
        scores. Rows are stored in page order within each kind; nothing reads the order.

        A batch's statement takes its first row's keys: rows are grouped by their number of
        keys too, so a row with a key the others lack gets a statement of its own (one lacking
        a key the first has raises ``KeyError`` as its values are read): no value is dropped
        unseen."""
        by_kind: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for row in rows:
            batch = (row["kind"], len(row))
            group = by_kind.get(batch)
            if group is None:
                by_kind[batch] = [row]
            else:
                group.append(row)
        for group in by_kind.values():
            self._statement(NOTE, filled_keys(NOTE, group)).run(self.conn, group)

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

    def _derive_new_forums(self, rows: list[dict[str, Any]], forums: set[str]) -> None:
        """On a store that was empty, the derived columns of the submissions in ``rows``, set
        before they are written, and their forums taken out of ``forums``: what
        ``refresh_forums`` would read back and update, saved a round trip per forum.

        Only for a forum whose notes all arrive in this page (a full walk brings each
        submission with its replies): one touched by an earlier page is refreshed from the store
        as always. Every row gets the derived keys, so the rows of a kind share their keys
        and are one insert statement (``_insert_rows``).
        """
        tally = DecisionTally(self.settings.decision_field_name)
        for row in rows:
            if row["kind"] == "decision" and not row["deleted"]:
                tally.add(row["forum"], row["tmdate"], row["decision"], row["public_fields"])
        earlier = self._touched_forums
        for row in rows:
            if row["kind"] == "submission" and row["id"] not in earlier:
                row.update(
                    tally.derived(
                        self.settings, row["id"], row["venueid"], row["venue"], row["public_fields"]
                    )
                )
                forums.discard(row["id"])
            else:
                row.update(NO_DERIVED)
        earlier.update(forums)
        earlier.update(row["forum"] for row in rows)

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
                if ms is None:
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


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]
