"""A page of notes as the store will take it: the rows to insert in batches, the rows to update,
the forums to recompute. Pure (no store, no HTTP, no SQLAlchemy).

``Mirror.apply`` builds a page here knowing the store (``build_page``) and writes what comes
back. What a page needs from the store is what the walk knows of it (``Known``): each stored
note's digest, the deleted ones, and, on a first pull, the forums earlier pages touched.

A first pull's page is built *alone*, knowing nothing (``build_parts``): anywhere, in any order,
in the row builders' child processes (``mirror/child.py``). Into an empty store that gives the
same rows unless an earlier page holds one of its notes or touched a forum it derived, which
``BuiltPage.conflicts`` tells when the page is written, in order (``mirror/walk.py``); such a page
is built again knowing the store. A walk by submission never does that; nothing relies on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from orsync.batches import LeftOut, insert_batches
from orsync.mirror.decisions import NO_DERIVED, DecisionTally
from orsync.mirror.rows import canonical_json, digest_bytes, no_nul, note_row, strip_details
from orsync.venue import VenueSettings, well_formed

# One inserted note as the walk's index keeps it: id, digest, kind, deleted, forum, tmdate.
Created = tuple[str, bytes, str, bool, str, int | None]


@dataclass
class Known:
    """What the walk knows of the store: a note's digest (raw bytes, the column's hex decoded:
    a large venue's index is most of a full cycle's memory), the deleted notes, and on a first
    pull the forums earlier pages touched."""

    digests: dict[str, bytes] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    touched_forums: set[str] = field(default_factory=set)

    def remember(self, page: BuiltPage) -> None:
        """The page's new notes and touched forums, as written (its changed rows are known
        by ``Mirror._update_rows``, which writes them)."""
        digests, deleted = self.digests, self.deleted
        for note_id, digest, _kind, is_deleted, _forum, _tmdate in page.created:
            digests[note_id] = digest
            if is_deleted:
                deleted.add(note_id)
            else:
                deleted.discard(note_id)
        self.touched_forums.update(page.touched)


@dataclass
class BuiltPage:
    """One page, built: what ``Mirror.apply_built`` writes."""

    # New notes: per batch, the columns it fills and each row's values in that order.
    inserts: list[tuple[tuple[str, ...], list[tuple[Any, ...]]]]
    created: list[Created]
    # Notes the store holds with another digest: whole rows, for an update by id.
    changed: list[dict[str, Any]]
    # Forums whose submission's derived columns are to be recomputed from the store, and per
    # forum OpenReview's time of the newest note of this page that changed in it.
    refresh: set[str]
    forum_times: dict[str, int]
    # On a first pull: the forums this page touched (``Known.touched_forums``), and the
    # submissions whose derived columns were set from the page alone.
    touched: list[str]
    derived: list[str]
    seen_ids: list[str]
    malformed: int
    max_tmdate: int

    def conflicts(self, known: Known) -> bool:
        """Whether building this page alone gave another page than building it knowing
        ``known`` would: a note of it is known, or a forum it derived was touched."""
        digests, touched = known.digests, known.touched_forums
        return any(i in digests for i in self.seen_ids) or any(f in touched for f in self.derived)


@dataclass(frozen=True)
class PageRules:
    """What building a page needs besides the page: the venue's rules, the site that serves
    its forums, the cycle, the note table's columns in the order its insert binds them, and
    those an insert may leave out."""

    settings: VenueSettings
    site: str
    cycle_id: int
    columns: tuple[str, ...]
    left_out: LeftOut
    # A first pull: the derived columns of a forum the page brings whole are set here.
    fresh: bool = False

    def kind_of(self, note: dict[str, Any]) -> str:
        return kind_of(self.settings, note)


def kind_of(settings: VenueSettings, note: dict[str, Any]) -> str:
    """``submission``, or the kind of reply (``VenueSettings.reply_kind``)."""
    if settings.is_submission(note):
        return "submission"
    return settings.reply_kind(note)


def page_notes(page: Sequence[Any]) -> list[Any]:
    """A page of submissions as notes: each submission, then its replies."""
    notes = []
    for submission in page:
        notes.append(submission)  # malformed notes are set aside and counted when built
        details = submission.get("details") if isinstance(submission, dict) else None
        replies = details.get("replies") if isinstance(details, dict) else None
        if isinstance(replies, list):
            notes.extend(replies)
    return notes


def build_page(notes: Sequence[Any], rules: PageRules, known: Known) -> BuiltPage:
    """Each note serialised once (``canonical_json``): an unchanged note (same digest, same
    deletion) costs that and a dictionary look-up, and its row is never built. Malformed
    notes are set aside and counted. ``known`` is read, not changed."""
    new_rows: list[dict[str, Any]] = []
    created: list[Created] = []
    changed: list[dict[str, Any]] = []
    seen_ids: list[str] = []
    forums: set[str] = set()
    forum_times: dict[str, int] = {}
    digests, deleted_ids = known.digests, known.deleted
    # Names bound locally: this loop runs once a note, a hundred thousand times at ICLR scale.
    serialise, hash_of, build_row, kind_of = canonical_json, digest_bytes, note_row, rules.kind_of
    settings, site, cycle_id = rules.settings, rules.site, rules.cycle_id
    malformed = 0
    max_tmdate = 0
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
        seen_ids.append(note_id)
        stored = digests.get(note_id)
        if stored == digest and (note_id in deleted_ids) == bool(note.get("ddate")):
            forum = str(note.get("forum") or note_id)
            forums.add(no_nul(forum) if nul else forum)
            continue
        kind = kind_of(note)
        row = build_row(note, kind, settings, site, canonical, digest.hex())
        forum = row["forum"]
        forums.add(forum)
        if isinstance(tmdate, int) and tmdate > forum_times.get(forum, 0):
            forum_times[forum] = tmdate
        if stored is None:
            row["first_cycle"] = row["last_cycle"] = cycle_id
            new_rows.append(row)
            created.append((note_id, digest, kind, row["deleted"], forum, row["tmdate"]))
        else:
            row["last_cycle"] = cycle_id
            changed.append(row)
    touched: list[str] = []
    derived: list[str] = []
    if new_rows and rules.fresh:
        touched, derived = _derive_new_forums(
            new_rows, forums, rules.settings, known.touched_forums
        )
    return BuiltPage(
        inserts=list(insert_batches(new_rows, "kind", rules.left_out, rules.columns)),
        created=created,
        changed=changed,
        refresh=forums,
        forum_times=forum_times,
        touched=touched,
        derived=derived,
        seen_ids=seen_ids,
        malformed=malformed,
        max_tmdate=max_tmdate,
    )


# Submissions (with their replies) built at a time: a part's rows, and in the child its
# pickle, stay a few megabytes, while a page of 1,000 ICLR submissions makes some thirty.
SUBMISSIONS_PER_PART = 250


def build_parts(submissions: Sequence[Any], rules: PageRules) -> Iterator[BuiltPage]:
    """A first pull's page built alone (``build_alone``), a part of ``SUBMISSIONS_PER_PART``
    submissions at a time: each submission comes with its replies, so a part is a page."""
    for start in range(0, len(submissions), SUBMISSIONS_PER_PART):
        yield build_alone(page_notes(submissions[start : start + SUBMISSIONS_PER_PART]), rules)


def build_alone(notes: Sequence[Any], rules: PageRules) -> BuiltPage:
    """A first pull's page built knowing nothing of the store or of other pages: a pure
    function of the page, so pages can be built in any order and in another process; the walk
    checks ``BuiltPage.conflicts`` when it writes one (``mirror/walk.py``)."""
    return build_page(notes, rules, Known())


def _derive_new_forums(
    rows: list[dict[str, Any]], forums: set[str], settings: VenueSettings, earlier: set[str]
) -> tuple[list[str], list[str]]:
    """On a store that was empty, the derived columns of the submissions in ``rows``, set
    before they are written, and their forums taken out of ``forums``: what
    ``Mirror.refresh_forums`` would read back and update, saved a round trip per forum.

    Only for a forum whose notes all arrive in this page (a full walk brings each submission
    with its replies): one touched by an ``earlier`` page is refreshed from the store as
    always. Every row gets the derived keys, so the rows of a kind share their keys and are one
    insert batch. Gives the forums this page touched, and the submissions it derived.
    """
    tally = DecisionTally(settings.decision_field_name)
    for row in rows:
        if row["kind"] == "decision" and not row["deleted"]:
            tally.add(row["forum"], row["tmdate"], row["decision"], row["public_fields"])
    derived = []
    for row in rows:
        if row["kind"] == "submission" and row["id"] not in earlier:
            row.update(
                tally.derived(
                    settings, row["id"], row["venueid"], row["venue"], row["public_fields"]
                )
            )
            forums.discard(row["id"])
            derived.append(row["id"])
        else:
            row.update(NO_DERIVED)
    return list(forums | {row["forum"] for row in rows}), derived
