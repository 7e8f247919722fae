"""The website's files, rendered from public records: pure functions, no I/O, no store.

``records`` (one ``PaperRecord`` per accepted paper), ``day`` (the program), ``formats``
(papers.json/.yml/.csv, posters.json), ``calendar`` (schedule.ics), ``page`` (index.html),
``miniconf`` (the Mini-Conf folder). ``render`` gives every file of the configured formats for
``website.output_dir`` as deterministic bytes; ``miniconf.render`` those of its own folder.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from orsync.schedule import Schedule, Session
from orsync.site import calendar, formats, miniconf, page
from orsync.site.calendar import EventState
from orsync.site.day import (
    Day,
    DaySlot,
    assemble,
    describe,
    presentation_mismatches,
    talk_paper,
    with_talks,
)
from orsync.site.records import PaperRecord, SessionRef, TalkRef, build_records

__all__ = [
    "FORMATS",
    "Day",
    "DaySlot",
    "PaperRecord",
    "SessionRef",
    "TalkRef",
    "assemble",
    "build_records",
    "describe",
    "miniconf",
    "presentation_mismatches",
    "render",
    "talk_paper",
    "with_talks",
]

FORMATS = ("json", "yaml", "csv", "ics", "html", "miniconf")


def render(
    records: Sequence[PaperRecord],
    sessions: Sequence[Session],
    wanted: Collection[str],
    *,
    day: Day | None = None,
    venue_id: str = "",
    calendar_state: Mapping[str, EventState] | None = None,
) -> dict[str, bytes]:
    """The website files for the ``wanted`` formats, deterministic bytes.

    "json" gives papers.json, posters.json and, when the day has slots, program.json; "ics"
    schedule.ics; "html" index.html; "miniconf" nothing here (its folder: ``miniconf.render``). ``day`` is the program (``assemble``; without it, the
    poster sessions alone); ``calendar_state`` the events' stored sequences
    (``calendar.next_state``; without it every event is at sequence 0).
    """
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown website format {unknown[0]!r}; use {', '.join(FORMATS)}")
    ordered = formats.site_order(records)
    files: dict[str, bytes] = {}
    if day is None and ("ics" in wanted or "html" in wanted):
        day = assemble(Schedule(sessions=tuple(sessions)), records)
    if "json" in wanted:
        files["papers.json"] = formats.json_bytes([r.as_dict() for r in ordered])
        files["posters.json"] = formats.json_bytes(formats.posters(ordered, sessions))
        if day is not None and day.slots:
            files["program.json"] = formats.json_bytes(day.as_dict(details=False))
    if "ics" in wanted and day is not None:
        state = calendar_state
        if state is None or any(s.key not in state for s in day.slots):
            first = min((s.start for s in day.slots), default=datetime(2000, 1, 1, tzinfo=UTC))
            state = calendar.next_state(day, venue_id, state or {}, first)
        files["schedule.ics"] = calendar.render(day, venue_id, state)
    if "html" in wanted and day is not None:
        files["index.html"] = page.render(day, ordered)
    if "yaml" in wanted:
        files["papers.yml"] = formats.yaml_bytes([r.as_dict() for r in ordered])
    if "csv" in wanted:
        files["papers.csv"] = formats.csv_bytes(ordered)
    return dict(sorted(files.items()))
