"""``schedule.xml`` and ``schedule.json`` (docs/site-files.md): the day in the frab / c3voc
schedule format that conference apps (Giggity, EventFahrplan, ConfClerk), info screens and
recording pipelines read.

- Made from the same ``Day`` as ``program.json``, ``schedule.ics`` and ``index.html``: one event
  per slot, in its room (the slot's ``location``, else ``program.location``), grouped by local
  date.
- Each event's ``guid`` is a UUID 5 of the slot's key (``schedule.identity``) and the venue, and
  its numeric ``id`` is taken from the guid: apps key favourites and alarms by them, so a slot
  inserted or removed changes no other event, and an edited one is updated, not duplicated.
- Valid against the c3voc XML schema and JSON schema (vendored in tests/data/frab/). Both files
  are built as data and serialised by ``xml.etree.ElementTree`` and ``json``: the venue's text is
  escaped by the serialisers, never by hand.
- Byte-stable: no time of generation; ``version`` is a digest of the content, so it changes
  exactly when the schedule does.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orsync.site.day import KIND_NAMES, Day, DaySlot
from orsync.site.formats import json_bytes
from orsync.text import web_link

__all__ = ["FILES", "render"]

FILES = ("schedule.json", "schedule.xml")

DEFAULT_ROOM = "Main room"
# Every UUID orsync derives for this format hangs off this one (uuid5 of orsync's name).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/orsync/orsync/frab")
# What XML 1.0 can hold: a title with U+FFFE or a stray C0 control would make every parser
# refuse the whole file (clean_text removes the controls; the noncharacters are left to here).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# The JSON schema's acronym: no hyphen after the first character.
_NOT_ACRONYM = re.compile("[^a-z0-9_]+")
_NOT_SLUG = re.compile("[^a-z0-9_-]+")
# The JSON schema checks time_zone_name against this (Europe/Vienna, UTC); a zone it would
# refuse is left out: every time in the files carries its offset anyway.
_ZONE_NAME = re.compile(r"^([A-Z][a-z]+/[A-Z][a-z]+)|UTC$")


@dataclass(frozen=True)
class _Link:
    url: str
    title: str
    type: str  # one of the JSON schema's Reference types


@dataclass
class _Event:
    guid: str
    id: int
    slug: str
    slot: DaySlot
    room: str
    date: str
    end: str
    start: str
    duration: str
    title: str
    type: str
    abstract: str | None
    description: str | None
    url: str
    persons: list[str] = field(default_factory=list)
    links: list[_Link] = field(default_factory=list)
    recording: str | None = None


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def acronym(venue_id: str) -> str:
    """A short lowercase name for the event (``bgpt`` for ``ICLR.cc/2024/Workshop/BGPT``), as
    both schemas want it: at least four of ``a-z0-9_``."""
    parts = [p for p in venue_id.split("/") if p.strip()]
    base = _NOT_ACRONYM.sub("_", (parts[-1] if parts else "workshop").lower()).strip("_")
    if len(base) < 4:
        year = next((p for p in parts if re.fullmatch(r"(19|20)\d\d", p)), "")
        base = f"{base}_{year}".strip("_") if year else base
    return base.ljust(4, "_")


def guid(venue_id: str, key: str) -> str:
    """The event's guid: from the venue and the slot's key only, never its place in the day."""
    return str(uuid.uuid5(_NAMESPACE, f"{venue_id}#{key}"))


def _hm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _duration(slot: DaySlot) -> str:
    return _hm(max(0, int((slot.end - slot.start).total_seconds() // 60)))


def _links(day: Day, slot: DaySlot) -> list[_Link]:
    out: list[_Link] = []
    paper = slot.paper
    if slot.kind == "contributed" and paper is not None:
        if paper.forum_link:
            out.append(_Link(paper.forum_link, "OpenReview", "web"))
        pdf = web_link(paper.pdf_url)
        if pdf:
            out.append(_Link(pdf, "PDF", "paper"))
    elif slot.kind == "poster":
        for p in slot.papers:
            if p.forum_link:
                board = f"Board {p.board}: " if p.board is not None else ""
                out.append(_Link(p.forum_link, f"{board}{p.title}", "paper"))
    else:
        link = web_link(slot.url)
        if link:
            out.append(_Link(link, "Website", "web"))
    if day.streamed(slot) and day.stream_url:
        out.append(_Link(day.stream_url, "Live stream", "media"))
    recording = web_link(slot.recording_url)
    if recording:
        out.append(_Link(recording, "Recording", "media"))
    return out


def _persons(slot: DaySlot) -> list[str]:
    paper = slot.paper
    if slot.kind == "contributed":
        # Only names OpenReview has made public: hidden authors stay an empty list.
        return list(paper.authors) if paper is not None else []
    return [slot.speaker] if slot.speaker else []


def _description(slot: DaySlot) -> str | None:
    if slot.kind == "poster":
        if not slot.papers:
            return None
        lines = [f"{len(slot.papers)} posters:"]
        for p in slot.papers:
            who = f" ({', '.join(p.authors)})" if p.authors else ""
            lines.append(f"Board {p.board if p.board is not None else '-'}: {p.title}{who}")
        return "\n".join(lines)
    if slot.kind != "contributed" and slot.affiliation:
        return ", ".join(x for x in (slot.speaker, slot.affiliation) if x)
    return None


def _slug(base: str, key: str) -> str:
    text = _NOT_SLUG.sub("_", key.lower()).strip("_-")
    return f"{base}-{text}" if text else base


def _events(day: Day, venue_id: str, venue_page: str) -> list[_Event]:
    short = acronym(venue_id)
    events: list[_Event] = []
    for slot in day.slots:
        links = _links(day, slot)
        g = guid(venue_id, slot.key)
        recording = web_link(slot.recording_url)
        own = web_link(slot.url) if slot.kind != "poster" else None
        stream = day.stream_url if day.streamed(slot) else None
        abstract = slot.abstract if slot.abstract and slot.abstract.strip() else None
        events.append(
            _xml_safe(
                _Event(
                    guid=g,
                    id=int(g.replace("-", "")[:8], 16) % 0x7FFFFFFF + 1,
                    slug=_slug(short, slot.key),
                    slot=slot,
                    room=slot.location or day.location or DEFAULT_ROOM,
                    date=day.local(slot.start).isoformat(),
                    end=day.local(slot.end).isoformat(),
                    start=day.local(slot.start).strftime("%H:%M"),
                    duration=_duration(slot),
                    title=slot.title,
                    type=KIND_NAMES.get(slot.kind, KIND_NAMES["other"]),
                    abstract=abstract,
                    description=_description(slot),
                    url=own or recording or stream or venue_page,
                    persons=_persons(slot),
                    links=links,
                    recording=recording,
                )
            )
        )
    _unique(events)
    return events


def _xml_safe(e: _Event) -> _Event:
    """The event's text as XML can hold it, in both files alike: the two must not disagree."""
    e.room, e.title = _xml_text(e.room), _xml_text(e.title)
    e.abstract = None if e.abstract is None else _xml_text(e.abstract)
    e.description = None if e.description is None else _xml_text(e.description)
    e.persons = [_xml_text(p) for p in e.persons]
    e.links = [_Link(x.url, _xml_text(x.title), x.type) for x in e.links]
    return e


def _unique(events: list[_Event]) -> None:
    """Both schemas want ids and slugs unique. A slug that two keys share once lowercased
    (poster sessions ``P1`` and ``p1``) gets its guid's start; an id two guids share (one in two
    billion) the next free number, in time order."""
    slugs: dict[str, int] = {}
    for e in events:
        slugs[e.slug] = slugs.get(e.slug, 0) + 1
    ids: set[int] = set()
    for e in events:
        if slugs[e.slug] > 1:
            e.slug = f"{e.slug}-{e.guid[:8]}"
        while e.id in ids:
            e.id = e.id % 0x7FFFFFFF + 1
        ids.add(e.id)


def _days(day: Day, events: list[_Event]) -> list[tuple[date, list[_Event]]]:
    out: list[tuple[date, list[_Event]]] = []
    for e in events:
        when = day.local(e.slot.start).date()
        if not out or out[-1][0] != when:
            out.append((when, []))
        out[-1][1].append(e)
    return out


def _bound(day: Day, group: list[_Event], *, first: bool) -> str:
    """When a day's first event starts, or its last one ends."""
    when = min(e.slot.start for e in group) if first else max(e.slot.end for e in group)
    return day.local(when).isoformat()


def _rooms(events: list[_Event]) -> dict[str, list[_Event]]:
    rooms: dict[str, list[_Event]] = {}
    for e in events:
        rooms.setdefault(e.room, []).append(e)
    return rooms


def _room_guid(venue_id: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{venue_id}#room:{name}"))


def _event_json(e: _Event) -> dict[str, Any]:
    out: dict[str, Any] = {
        "guid": e.guid,
        "id": e.id,
        "date": e.date,
        "start": e.start,
        "end": e.end,
        "duration": e.duration,
        "room": e.room,
        "slug": e.slug,
        "url": e.url,
        "title": e.title,
        "subtitle": None,
        "track": e.type,
        "type": e.type,
        "language": None,
        "abstract": e.abstract,
        "persons": [{"name": name} for name in e.persons],
        "links": [{"url": x.url, "title": x.title, "type": x.type} for x in e.links],
    }
    if e.description is not None:
        out["description"] = e.description
    return out


def _conference(day: Day, venue_id: str, events: list[_Event]) -> dict[str, Any]:
    days = _days(day, events)
    out: dict[str, Any] = {
        "acronym": acronym(venue_id),
        "title": _xml_text(day.name or venue_id or "Workshop"),
        "start": days[0][0].isoformat(),
        "end": day.local(max(e.slot.end for e in events)).date().isoformat(),
        "daysCount": len(days),
        "timeslot_duration": "00:05",
    }
    if _ZONE_NAME.search(day.timezone):
        out["time_zone_name"] = day.timezone
    out["rooms"] = [{"name": name, "guid": _room_guid(venue_id, name)} for name in _rooms(events)]
    out["days"] = [
        {
            "index": i,
            "date": when.isoformat(),
            "day_start": _bound(day, group, first=True),
            "day_end": _bound(day, group, first=False),
            "rooms": {name: [_event_json(e) for e in evs] for name, evs in _rooms(group).items()},
        }
        for i, (when, group) in enumerate(days, start=1)
    ]
    return out


def _version(conference: dict[str, Any]) -> str:
    canonical = json.dumps(conference, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()[:12]


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    node = ET.SubElement(parent, tag, {k: _xml_text(v) for k, v in attrs.items()})
    if text is not None:
        node.text = _xml_text(text)
    return node


def _event_xml(parent: ET.Element, e: _Event) -> None:
    node = _sub(parent, "event", guid=e.guid, id=str(e.id))
    _sub(node, "date", e.date)
    _sub(node, "start", e.start)
    _sub(node, "duration", e.duration)
    _sub(node, "room", e.room)
    _sub(node, "slug", e.slug)
    _sub(node, "url", e.url)
    _sub(node, "title", e.title)
    _sub(node, "track", e.type)
    _sub(node, "type", e.type)
    _sub(node, "abstract", e.abstract or "")
    if e.description is not None:
        _sub(node, "description", e.description)
    persons = _sub(node, "persons")
    for name in e.persons:
        _sub(persons, "person", name)
    links = _sub(node, "links")
    for x in e.links:
        _sub(links, "link", x.title, href=x.url, type=x.type)
    if e.recording is not None:
        recording = _sub(node, "recording")
        _sub(recording, "license", "")
        _sub(recording, "optout", "false")
        _sub(recording, "link", e.recording)


def _xml(day: Day, conference: dict[str, Any], version: str, events: list[_Event]) -> bytes:
    root = ET.Element("schedule")
    _sub(root, "generator", name="orsync")
    _sub(root, "version", version)
    conf = _sub(root, "conference")
    for key in ("acronym", "title", "start", "end"):
        _sub(conf, key, str(conference[key]))
    _sub(conf, "days", str(conference["daysCount"]))
    _sub(conf, "timeslot_duration", conference["timeslot_duration"])
    if "time_zone_name" in conference:
        _sub(conf, "time_zone_name", conference["time_zone_name"])
    for i, (when, group) in enumerate(_days(day, events), start=1):
        node = _sub(
            root,
            "day",
            index=str(i),
            date=when.isoformat(),
            start=_bound(day, group, first=True),
            end=_bound(day, group, first=False),
        )
        for name, evs in _rooms(group).items():
            room = _sub(node, "room", name=name, guid=conference["_rooms"][name])
            for e in evs:
                _event_xml(room, e)
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode("utf-8")


def venue_page(openreview_site: str, venue_id: str) -> str:
    """The venue's page on OpenReview: every event needs a link, and a break has no other."""
    site = openreview_site.rstrip("/")
    if not venue_id:
        return site
    return f"{site}/group?id={urllib.parse.quote(venue_id, safe='/.')}"


def render(
    day: Day, venue_id: str, openreview_site: str = "https://openreview.net"
) -> dict[str, bytes]:
    """``schedule.json`` and ``schedule.xml`` of a day with slots (an empty day has none)."""
    if not day.slots:
        return {}
    events = _events(day, venue_id, venue_page(openreview_site, venue_id))
    conference = _conference(day, venue_id, events)
    version = _version(conference)
    doc = {
        "$schema": "https://c3voc.de/schedule/schema.json",
        "generator": {"name": "orsync"},
        "schedule": {"version": version, "conference": conference},
    }
    rooms = {r["name"]: r["guid"] for r in conference["rooms"]}
    return {
        "schedule.json": json_bytes(doc),
        "schedule.xml": _xml(day, {**conference, "_rooms": rooms}, version, events),
    }
