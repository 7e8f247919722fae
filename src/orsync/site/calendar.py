"""``schedule.ics`` (docs/workshop.md): the day as an RFC 5545 calendar, built with the ``icalendar`` library.

- One VEVENT per slot, its times in the venue's zone with that zone's VTIMEZONE (an IANA
  ``program.timezone``; without one the times are written in UTC).
- Stable UIDs from the slot's key (``invited-2``, ``poster-P1``: see ``site.day.DaySlot``) and the
  venue: a calendar that imported the file updates its events instead of adding copies when a
  title, a time or a paper changes.
- SEQUENCE and DTSTAMP come from per-event state kept in the store (``sync_state`` key
  ``calendar_events``): each event's content hash, its sequence and when it last changed. A push
  whose event differs from the stored hash bumps the sequence and the stamp; an unchanged event
  keeps both, so the file's bytes stay the same when nothing changed.
- A talk's description holds its paper's title, authors and abstract; a poster session's its
  papers by board; talks carry the live-stream link where ``program.stream_url`` is set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from orsync.site.day import Day, DaySlot

__all__ = ["STATE_KEY", "EventState", "dump_state", "load_state", "next_state", "render", "uid"]

STATE_KEY = "calendar_events"
PRODID = "-//orsync//workshop day//EN"


@dataclass(frozen=True)
class EventState:
    """What the store remembers of one published event."""

    digest: str
    sequence: int
    stamp: str  # UTC, "YYYYMMDDTHHMMSSZ": when the event last changed

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "sequence": self.sequence, "stamp": self.stamp}


def load_state(text: str | None) -> dict[str, EventState]:
    """The stored state (``sync_state``'s JSON text); an unreadable value counts as none."""
    if not text:
        return {}
    try:
        data = json.loads(text)
        return {
            str(uid): EventState(str(v["digest"]), int(v["sequence"]), str(v["stamp"]))
            for uid, v in data.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def dump_state(state: Mapping[str, EventState]) -> str:
    return json.dumps({k: state[k].as_json() for k in sorted(state)}, sort_keys=True)


def uid(day: Day, slot: DaySlot, venue_id: str) -> str:
    venue = hashlib.sha256(venue_id.encode()).hexdigest()[:12]
    return f"{slot.key}.{venue}@orsync"


def _description(day: Day, slot: DaySlot) -> str:
    parts: list[str] = []
    paper = slot.paper
    if slot.kind == "contributed":
        if paper is None:
            parts.append("Contributed talk (paper to be announced).")
        else:
            parts += [f"Contributed talk: {paper.title}", ", ".join(paper.authors)]
            if paper.public_abstract:
                parts += ["", paper.public_abstract]
            if paper.forum_link:
                parts += ["", f"OpenReview: {paper.forum_link}"]
    elif slot.kind == "poster":
        parts.append(f"{len(slot.papers)} posters:")
        for p in slot.papers:
            who = f" ({', '.join(p.authors)})" if p.authors else ""
            parts.append(f"board {p.board if p.board is not None else '-'}: {p.title}{who}")
    else:
        who = ", ".join(x for x in (slot.speaker, slot.affiliation) if x)
        if who:
            parts.append(who)
        if slot.abstract:
            parts += ["", slot.abstract] if parts else [slot.abstract]
        if slot.url:
            parts += ["", slot.url]
    if day.streamed(slot):
        parts += ["", f"Live stream: {day.stream_url}"]
    return "\n".join(parts).strip()


def _summary(slot: DaySlot) -> str:
    if slot.kind == "contributed" and slot.paper is not None:
        return f"Contributed talk: {slot.title}"
    if slot.kind == "invited" and slot.speaker:
        return f"{slot.title} ({slot.speaker})"
    return slot.title


def _fields(day: Day, slot: DaySlot) -> dict[str, Any]:
    """The event's content: what its digest covers and what the file shows."""
    return {
        "summary": _summary(slot),
        "start": slot.start.astimezone(UTC).isoformat(),
        "end": slot.end.astimezone(UTC).isoformat(),
        "zone": day.timezone,
        "description": _description(day, slot),
        "location": slot.location or day.location,
        "url": slot.url or (day.stream_url if day.streamed(slot) else None),
        "kind": slot.kind,
    }


def _digest(fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def next_state(
    day: Day, venue_id: str, stored: Mapping[str, EventState], now: datetime
) -> dict[str, EventState]:
    """The state after publishing ``day``: changed events get the next sequence and ``now``.

    Events no longer in the day stay in the state, so a slot that comes back continues its
    sequence instead of restarting below what calendars already hold.
    """
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = dict(stored)
    for slot in day.slots:
        key = uid(day, slot, venue_id)
        digest = _digest(_fields(day, slot))
        old = stored.get(key)
        if old is None:
            out[key] = EventState(digest, 0, stamp)
        elif old.digest != digest:
            out[key] = EventState(digest, old.sequence + 1, stamp)
    return out


def render(day: Day, venue_id: str, state: Mapping[str, EventState]) -> bytes:
    """The calendar's bytes; ``state`` must hold every slot (see ``next_state``)."""
    import icalendar  # heavy; loaded only when a calendar is written

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    if day.name:
        cal.add("name", day.name)
        cal.add("x-wr-calname", day.name)
    zoned = day.timezone[:1] not in ("+", "-")  # an IANA name, not a bare offset
    if zoned:
        cal.add("x-wr-timezone", day.timezone)
    if zoned and day.slots:
        first = min(s.start for s in day.slots).date()
        last = max(s.end for s in day.slots).date()
        cal.add_component(
            icalendar.Timezone.from_tzinfo(
                day.zone,
                tzid=day.timezone,
                first_date=date(first.year - 1, 1, 1),
                last_date=date(last.year + 1, 12, 31) + timedelta(days=1),
            )
        )
    for slot in day.slots:
        key = uid(day, slot, venue_id)
        st = state[key]
        fields = _fields(day, slot)
        ev = icalendar.Event()
        ev.add("uid", key)
        ev.add("dtstamp", datetime.strptime(st.stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC))
        ev.add("sequence", st.sequence)
        start, end = (
            (slot.start, slot.end) if not zoned else (day.local(slot.start), day.local(slot.end))
        )
        if not zoned:
            start, end = start.astimezone(UTC), end.astimezone(UTC)
        ev.add("dtstart", start)
        ev.add("dtend", end)
        ev.add("summary", fields["summary"])
        if fields["description"]:
            ev.add("description", fields["description"])
        if fields["location"]:
            ev.add("location", fields["location"])
        if fields["url"]:
            ev.add("url", fields["url"])
        ev.add("categories", [slot.kind])
        ev.add("transp", "TRANSPARENT" if slot.kind == "break" else "OPAQUE")
        cal.add_component(ev)
    data: bytes = cal.to_ical()
    return data
