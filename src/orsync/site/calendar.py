"""``schedule.ics`` (docs/workshop.md): the day as an RFC 5545 calendar, built with the ``icalendar`` library.

- One VEVENT per slot, its times in the venue's zone with that zone's VTIMEZONE (an IANA
  ``program.timezone``; without one the times are written in UTC).
- Stable UIDs from the slot's key (``poster-P1``, ``slot-keynote``, ``break-20240511T0930Z``:
  see ``schedule.identity``) and the venue: a calendar that imported the file updates its events
  instead of adding copies when a title, a time or a paper changes, and inserting or removing a
  slot adds or removes that slot's event only.
- SEQUENCE, DTSTAMP and the UID come from per-event state kept in the store (``sync_state`` key
  ``calendar_events``), by slot key: each event's UID, content hash, sequence and when it last
  changed. A push whose event differs from the stored hash bumps the sequence and the stamp; an
  unchanged event keeps both, so the file's bytes stay the same when nothing changed.
- State written before keys were identities (keyed by UIDs made from a position, ``break-2``)
  is adopted on the first push: each event keeps its UID and sequence (``_adopt``), so an
  upgrade neither restarts sequences at 0 nor makes calendars hold every event twice.
- A talk's description holds its paper's title, authors and abstract; a poster session's its
  papers by board; talks carry the live-stream link where ``program.stream_url`` is set.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from orsync.site.day import Day, DaySlot
from orsync.text import authors_text

__all__ = ["STATE_KEY", "EventState", "dump_state", "load_state", "next_state", "render", "uid"]

STATE_KEY = "calendar_events"
PRODID = "-//orsync//workshop day//EN"


@dataclass(frozen=True)
class EventState:
    """What the store remembers of one published event. ``legacy``: read from state written
    by an orsync that keyed it by a UID made from the slot's position, not yet adopted."""

    uid: str
    digest: str
    sequence: int
    stamp: str  # UTC, "YYYYMMDDTHHMMSSZ": when the event last changed
    legacy: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "digest": self.digest,
            "sequence": self.sequence,
            "stamp": self.stamp,
        }


def load_state(text: str | None) -> dict[str, EventState]:
    """The stored state (``sync_state``'s JSON text) by slot key; an unreadable value counts as
    none. Entries of the old layout (keyed by UID, no ``uid`` field) come back as ``legacy``."""
    if not text:
        return {}
    try:
        data = json.loads(text)
        return {
            str(key): EventState(
                str(v.get("uid", key)),
                str(v["digest"]),
                int(v["sequence"]),
                str(v["stamp"]),
                legacy="uid" not in v,
            )
            for key, v in data.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def dump_state(state: Mapping[str, EventState]) -> str:
    return json.dumps({k: state[k].as_json() for k in sorted(state)}, sort_keys=True)


def _venue_tag(venue_id: str) -> str:
    return hashlib.sha256(venue_id.encode()).hexdigest()[:12]


def uid(day: Day, slot: DaySlot, venue_id: str) -> str:
    """The UID a slot's event gets when it is first published (adopted events keep theirs)."""
    return f"{slot.key}.{_venue_tag(venue_id)}@orsync"


def _description(day: Day, slot: DaySlot) -> str:
    parts: list[str] = []
    paper = slot.paper
    if slot.kind == "contributed":
        if paper is None:
            parts.append("Contributed talk (paper to be announced).")
        else:
            parts += [f"Contributed talk: {paper.title}", authors_text(paper.authors)]
            if slot.speaker:
                parts.append(f"Speaker: {slot.speaker}")
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
    if slot.recording_url:
        parts += ["", f"Recording: {slot.recording_url}"]
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
    sequence (and UID) instead of restarting below what calendars already hold.
    """
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = {k: v for k, v in stored.items() if not v.legacy}
    legacy = {k: v for k, v in stored.items() if v.legacy}
    adopted = _adopt(day, venue_id, legacy, out) if legacy else {}
    known = {v.uid for v in stored.values()}
    for slot in day.slots:
        digest = _digest(_fields(day, slot))
        old = out.get(slot.key) or adopted.get(slot.key)
        if old is None:
            out[slot.key] = EventState(_fresh_uid(day, slot, venue_id, known), digest, 0, stamp)
            known.add(out[slot.key].uid)
        elif old.digest != digest:
            out[slot.key] = EventState(old.uid, digest, old.sequence + 1, stamp)
        else:
            out[slot.key] = replace(old, legacy=False)
    # Old events nobody adopted keep their place under their UID, which no slot key can equal
    # (a key has no "@"), so they are kept as a record and never matched again.
    taken = {v.uid for v in adopted.values()}
    for key, v in legacy.items():
        if v.uid not in taken:
            out[key] = replace(v, legacy=False)
    return out


def _fresh_uid(day: Day, slot: DaySlot, venue_id: str, known: set[str]) -> str:
    """A new event's UID, never one the state already holds: after an upgrade an adopted event
    may carry the UID this key would make (``contributed-1`` was the first talk, now it is
    paper 1's), and two events with one UID would be one event to a calendar."""
    fresh = uid(day, slot, venue_id)
    n = 1
    while fresh in known:
        n += 1
        fresh = f"{slot.key}.{n}.{_venue_tag(venue_id)}@orsync"
    return fresh


def _position_keys(day: Day) -> dict[str, str]:
    """Each slot's key as orsync made it before keys were identities: the kind and the slot's
    place among that kind's slots in time order (``invited-2``), a poster session by its id."""
    out: dict[str, str] = {}
    counts: dict[str, int] = {}
    for slot in day.slots:
        if slot.kind == "poster":
            out[slot.key] = slot.key
            continue
        counts[slot.kind] = counts.get(slot.kind, 0) + 1
        out[slot.key] = f"{slot.kind}-{counts[slot.kind]}"
    return out


def _adopt(
    day: Day, venue_id: str, legacy: Mapping[str, EventState], current: Mapping[str, EventState]
) -> dict[str, EventState]:
    """Old events (keyed by position) matched to this day's slots, by slot key.

    A slot takes the old event at its old position with the same content first, then any old
    event with the same content (the day may have changed with the upgrade: a break inserted
    before the old event renumbered it), then the old event at its old position (what the
    old orsync would have updated on this push).
    """
    tag = f".{_venue_tag(venue_id)}@orsync"
    pool = {k: v for k, v in legacy.items() if k.endswith(tag)}
    slots = [s for s in day.slots if s.key not in current]
    digests = {s.key: _digest(_fields(day, s)) for s in slots}
    positions = {k: f"{p}{tag}" for k, p in _position_keys(day).items()}
    adopted: dict[str, EventState] = {}

    def take(key: str, old_uid: str) -> None:
        adopted[key] = pool.pop(old_uid)

    for s in slots:
        old = pool.get(positions[s.key])
        if old is not None and old.digest == digests[s.key]:
            take(s.key, positions[s.key])
    for s in slots:
        if s.key not in adopted:
            same = next((k for k, v in pool.items() if v.digest == digests[s.key]), None)
            if same is not None:
                take(s.key, same)
    for s in slots:
        if s.key not in adopted and positions[s.key] in pool:
            take(s.key, positions[s.key])
    return adopted


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
        st = state[slot.key]
        fields = _fields(day, slot)
        ev = icalendar.Event()
        ev.add("uid", st.uid)
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
