"""What a venue's notes mean: settings from the venue group, note kinds, statuses, scores.

Everything here is pure: it turns OpenReview JSON into orsync's typed values (docs/architecture.md#sync-semantics) and is
shared by the sync core and the tests' expectations of it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

Note = dict[str, Any]

STATUSES = ("active", "accepted", "rejected", "withdrawn", "desk_rejected")

# Reply kinds orsync names, keyed by the default invitation suffix. The venue group may rename
# reviews, meta-reviews and decisions; the others have fixed names in API v2 venues.
_FIXED_KINDS = {
    "Official_Comment": "comment",
    "Public_Comment": "comment",
    "Withdrawal": "withdrawal",
    "Desk_Rejection": "desk_rejection",
    "Camera_Ready_Revision": "camera_ready",
    "Rebuttal": "comment",
}


@dataclass(frozen=True)
class VenueSettings:
    """The venue group's settings, read defensively with OpenReview's defaults."""

    venue_id: str
    submission_name: str = "Submission"
    submission_venue_id: str = ""
    withdrawn_venue_id: str = ""
    desk_rejected_venue_id: str = ""
    rejected_venue_id: str = ""
    review_name: str = "Official_Review"
    review_rating: str = "rating"
    review_confidence: str = "confidence"
    meta_review_name: str = "Meta_Review"
    decision_name: str = "Decision"
    decision_field_name: str = "decision"
    accept_decision_options: tuple[str, ...] | None = None

    @classmethod
    def from_group(cls, group: Mapping[str, Any]) -> VenueSettings:
        venue_id = str(group["id"])
        content = group.get("content") or {}

        def value(key: str, default: str) -> str:
            entry = content.get(key)
            raw = entry.get("value") if isinstance(entry, Mapping) else None
            return raw if isinstance(raw, str) and raw else default

        options_entry = content.get("accept_decision_options")
        options_raw = options_entry.get("value") if isinstance(options_entry, Mapping) else None
        # Absent, "" (seen live) or an empty list all mean: no options, judge by the text.
        listed = (
            tuple(str(o) for o in options_raw if isinstance(o, str) and o.strip())
            if isinstance(options_raw, list)
            else ()
        )
        options = listed or None
        return cls(
            venue_id=venue_id,
            submission_name=value("submission_name", "Submission"),
            submission_venue_id=value("submission_venue_id", f"{venue_id}/Submission"),
            withdrawn_venue_id=value("withdrawn_venue_id", f"{venue_id}/Withdrawn_Submission"),
            desk_rejected_venue_id=value(
                "desk_rejected_venue_id", f"{venue_id}/Desk_Rejected_Submission"
            ),
            rejected_venue_id=value("rejected_venue_id", f"{venue_id}/Rejected_Submission"),
            review_name=value("review_name", "Official_Review"),
            review_rating=value("review_rating", "rating"),
            review_confidence=value("review_confidence", "confidence"),
            meta_review_name=value("meta_review_name", "Meta_Review"),
            decision_name=value("decision_name", "Decision"),
            decision_field_name=value("decision_field_name", "decision"),
            accept_decision_options=options,
        )

    @property
    def submission_invitation(self) -> str:
        return f"{self.venue_id}/-/{self.submission_name}"

    def is_submission(self, note: Note) -> bool:
        return not note.get("replyto") and note.get("forum", note.get("id")) == note.get("id")

    @cached_property
    def _kinds(self) -> dict[str, str]:
        # The venue's own names first: a venue may call its reviews what another calls comments.
        return {
            **_FIXED_KINDS,
            self.review_name: "review",
            self.meta_review_name: "meta_review",
            self.decision_name: "decision",
        }

    def reply_kind(self, note: Note) -> str:
        """The kind of a reply from its invitations (``.../-/<name>``), or ``other``."""
        kinds = self._kinds
        invitations = note.get("invitations")
        for invitation in invitations if isinstance(invitations, list) else []:
            kind = kinds.get(str(invitation).rsplit("/-/", 1)[-1])
            if kind is not None:
                return kind
        return "other"

    def is_accepting(self, decision: str) -> bool:
        """Whether a decision accepts: one of ``accept_decision_options`` when the venue lists
        them, else a decision that begins with "Accept" ("Not Accepted" does not)."""
        if self.accept_decision_options is not None:
            return decision.strip() in {o.strip() for o in self.accept_decision_options}
        return decision.strip().lower().startswith("accept")

    def status(self, venueid: str | None) -> str:
        """Submission status from ``content.venueid`` alone: what OpenReview has released.

        A decision posted but not yet released leaves the paper ``active``: it is the chairs'
        knowledge (kept in the decision column), never a status, never published.
        """
        if venueid == self.venue_id:
            return "accepted"
        if venueid == self.withdrawn_venue_id:
            return "withdrawn"
        if venueid == self.desk_rejected_venue_id:
            return "desk_rejected"
        if venueid == self.rejected_venue_id:
            return "rejected"
        return "active"


def presentation(decision: str | None, venue_text: str | None) -> str:
    """``oral`` or ``poster`` from the decision text; the free-text venue only as a fallback."""
    text = decision or venue_text or ""
    return "oral" if "oral" in text.lower() else "poster"


_LEADING_NUMBER = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)")


def parse_score(value: Any) -> float | None:
    """A rating or confidence as a number: ``6``, ``6.5`` or ``"6: marginally above ..."``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _LEADING_NUMBER.match(value)
        if match:
            return float(match.group(1))
    return None


def well_formed(note: Any) -> bool:
    """A note orsync can key and file: an object with a string id (and forum, if any)."""
    if not isinstance(note, dict):
        return False
    note_id, forum, content = note.get("id"), note.get("forum"), note.get("content")
    return (
        isinstance(note_id, str)
        and 0 < len(note_id) <= 128
        and (forum is None or isinstance(forum, str))
        and (content is None or isinstance(content, dict))
    )


def content_value(note: Note, field: str) -> Any:
    """``content[field].value``, or None when the field is absent (unreadable or not filled)."""
    content = note.get("content")
    # ``dict`` first: parsed JSON is always one, and the ``Mapping`` check is an ABC look-up.
    entry = content.get(field) if (type(content) is dict or isinstance(content, Mapping)) else None
    if type(entry) is dict or isinstance(entry, Mapping):
        return entry.get("value")
    return None


def as_list(value: Any) -> list[str] | None:
    """Keywords and authors as a list: some forms send one comma-separated string."""
    if value is None:
        return None
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        out: list[str] = []
        for item in value:
            if isinstance(item, Mapping):
                # Newer forms: authors as {fullname, username, institutions}.
                name = item.get("fullname") or item.get("username")
                if name:
                    out.append(str(name))
            elif item is not None:
                out.append(str(item))
        return out
    return [str(value)]


def author_ids(note: Note) -> list[str] | None:
    return author_ids_from(note)[0]


def author_ids_from(note: Note) -> tuple[list[str] | None, str | None]:
    """Author profile ids and the content field they come from (newer forms: ``authors``)."""
    ids = as_list(content_value(note, "authorids"))
    if ids is not None:
        return ids, "authorids"
    authors = content_value(note, "authors")
    if isinstance(authors, list) and authors and all(isinstance(a, Mapping) for a in authors):
        return [str(a.get("username") or "") for a in authors], "authors"
    return None, None


# --------------------------------------------------------------------------- visibility


def is_public(readers: Any, nonreaders: Any = None) -> bool:
    """Readable by everyone: ``everyone`` in ``readers`` and not in ``nonreaders``.

    An absent or null ``nonreaders`` excludes no one; anything malformed (readers absent or not
    a list of strings, nonreaders not a list of strings) counts as private.
    """
    # Without ``everyone`` the answer is no whatever else the list holds: checked first, as
    # most notes of a venue under review are not public.
    if not isinstance(readers, list) or "everyone" not in readers:
        return False
    if not all(isinstance(r, str) for r in readers):
        return False
    if nonreaders is not None and (
        not isinstance(nonreaders, list) or not all(isinstance(r, str) for r in nonreaders)
    ):
        return False
    return "everyone" not in (nonreaders or [])


def note_is_public(note: Note) -> bool:
    """The note itself is readable by everyone (its content fields may still be narrower)."""
    return is_public(note.get("readers"), note.get("nonreaders"))


def public_content_fields(note: Note, note_public: bool | None = None) -> frozenset[str]:
    """Content fields of a note that everyone may read (``note_public``: the note's own
    ``note_is_public``, when the caller knows it already).

    A field without its own ``readers`` inherits the note's; a field with them is public only
    when they allow everyone. Nothing is public on a note that is not itself public.
    """
    content = note.get("content")
    if note_public is None:
        note_public = note_is_public(note)
    if not note_public or not (type(content) is dict or isinstance(content, Mapping)):
        return frozenset()
    public = set()
    for name, entry in content.items():
        if not (type(entry) is dict or isinstance(entry, Mapping)):
            continue
        if "readers" not in entry and entry.get("nonreaders") is None:
            # The note's own readers, which allow everyone: the common case, decided.
            public.add(str(name))
            continue
        readers = entry["readers"] if "readers" in entry else note.get("readers")
        if is_public(readers, entry.get("nonreaders")):
            public.add(str(name))
    return frozenset(public)
