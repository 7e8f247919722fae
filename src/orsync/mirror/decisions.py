"""The decision each submission shows: the latest one the account can read, and the latest one
everyone can read, from which its status and presentation are derived."""

from __future__ import annotations

import json
from typing import Any

from orsync.venue import (
    VenueSettings,
    presentation,
)

# The columns ``refresh_forums`` derives for a submission; a reply's stay null.
NO_DERIVED = {
    "status": None,
    "public_decision": None,
    "decision_accepts": None,
    "presentation": None,
}


class DecisionTally:
    """The latest decision per forum that the account can read, and that everyone can."""

    def __init__(self, field: str) -> None:
        self.field = field
        self.latest: dict[str, tuple[int, str]] = {}
        self.public: dict[str, tuple[int, str]] = {}

    def add(
        self, forum: str, tmdate: int | None, decision: str | None, public_fields: str | None
    ) -> None:
        if decision is None:
            return
        stamp = tmdate or 0
        if forum not in self.latest or stamp >= self.latest[forum][0]:
            self.latest[forum] = (stamp, decision)
        if self.field in _names(public_fields) and (
            forum not in self.public or stamp >= self.public[forum][0]
        ):
            self.public[forum] = (stamp, decision)

    def derived(
        self,
        settings: VenueSettings,
        forum: str,
        venueid: str | None,
        venue: str | None,
        public_fields: str | None,
    ) -> dict[str, Any]:
        """Status is what OpenReview released (``venueid``); ``decision`` is the latest decision
        the account can read, ``public_decision`` the latest everyone can read."""
        decision = self.latest.get(forum, (0, None))[1]
        published = self.public.get(forum, (0, None))[1]
        status = settings.status(venueid)
        # Published, so only from what everyone can read: the public decision, else the venue
        # text when that field is public.
        shown_venue = venue if "venue" in _names(public_fields) else None
        return {
            "status": status,
            "decision": decision,
            "public_decision": published,
            "decision_accepts": None if decision is None else settings.is_accepting(decision),
            "presentation": presentation(published, shown_venue) if status == "accepted" else None,
        }


def _names(public_fields: str | None) -> list[str]:
    """The content field names of a ``public_fields`` column (JSON list; null = none)."""
    try:
        names = json.loads(public_fields) if public_fields else []
    except ValueError:
        return []
    return [str(n) for n in names] if isinstance(names, list) else []
