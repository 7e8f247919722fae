"""The website's files, rendered from public records: pure functions, no I/O, no store.

``records`` (one ``PaperRecord`` per accepted paper), ``day`` (the program), ``formats``
(papers.json/.yml/.csv, posters.json), ``calendar`` (schedule.ics), ``page`` (index.html),
``miniconf`` (the Mini-Conf folder), ``frab`` (schedule.xml/.json for conference apps). ``render`` gives every file of the configured formats for
``website.output_dir`` as deterministic bytes; ``miniconf.render`` those of its own folder.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime

from orsync.schedule import Schedule, Session
from orsync.site import calendar, formats, frab, miniconf, page
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
    "FORMAT_FILES",
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

FORMATS = ("json", "yaml", "csv", "ics", "html", "miniconf", "frab")
# The files each format may write (program.json and frab's only when the day has slots;
# miniconf's in website.miniconf_dir).
FORMAT_FILES = {
    "json": ("papers.json", "posters.json", "program.json"),
    "yaml": ("papers.yml",),
    "csv": ("papers.csv",),
    "ics": ("schedule.ics",),
    "html": ("index.html",),
    "miniconf": tuple(f"miniconf_dir/{name}" for name in miniconf.FILES),
    "frab": frab.FILES,
}


def render(
    records: Sequence[PaperRecord],
    sessions: Sequence[Session],
    wanted: Collection[str],
    *,
    day: Day | None = None,
    venue_id: str = "",
    calendar_state: Mapping[str, EventState] | None = None,
    failures: dict[str, Exception] | None = None,
    openreview_site: str = "https://openreview.net",
) -> dict[str, bytes]:
    """The website files for the ``wanted`` formats, deterministic bytes.

    "json" gives papers.json, posters.json and, when the day has slots, program.json; "ics"
    schedule.ics; "html" index.html; "frab", when the day has slots, schedule.xml and
    schedule.json (events without a link of their own link the venue's page on
    ``openreview_site``); "miniconf" nothing here (its folder: ``miniconf.render``). ``day`` is the program (``assemble``; without it, the poster sessions
    alone); ``calendar_state`` the events' stored sequences
    (``calendar.next_state``; without it every event is at sequence 0). With ``failures``, a
    format whose renderer raises is left out and its exception kept there by format: one
    format's problem must not keep the others off the site.
    """
    unknown = sorted(set(wanted) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown website format {unknown[0]!r}; use {', '.join(FORMATS)}")
    ordered = formats.site_order(records)
    if day is None and ("ics" in wanted or "html" in wanted or "frab" in wanted):
        day = assemble(Schedule(sessions=tuple(sessions)), records)
    files: dict[str, bytes] = {}
    for fmt in FORMATS:
        if fmt not in wanted:
            continue
        try:
            if fmt == "frab":
                files.update(frab.render(day, venue_id, openreview_site) if day else {})
                continue
            files.update(_render_one(fmt, ordered, sessions, day, venue_id, calendar_state))
        except Exception as exc:
            if failures is None:
                raise
            failures[fmt] = exc
    return dict(sorted(files.items()))


def _render_one(
    fmt: str,
    ordered: Sequence[PaperRecord],
    sessions: Sequence[Session],
    day: Day | None,
    venue_id: str,
    calendar_state: Mapping[str, EventState] | None,
) -> dict[str, bytes]:
    if fmt == "json":
        files = {
            "papers.json": formats.json_bytes([r.as_dict() for r in ordered]),
            "posters.json": formats.json_bytes(formats.posters(ordered, sessions)),
        }
        if day is not None and day.slots:
            files["program.json"] = formats.json_bytes(day.as_dict(details=False))
        return files
    if fmt == "ics" and day is not None:
        state = calendar_state
        if state is None or any(s.key not in state for s in day.slots):
            first = min((s.start for s in day.slots), default=datetime(2000, 1, 1, tzinfo=UTC))
            state = calendar.next_state(day, venue_id, state or {}, first)
        return {"schedule.ics": calendar.render(day, venue_id, state)}
    if fmt == "html" and day is not None:
        return {"index.html": page.render(day, ordered)}
    if fmt == "yaml":
        return {"papers.yml": formats.yaml_bytes([r.as_dict() for r in ordered])}
    if fmt == "csv":
        return {"papers.csv": formats.csv_bytes(ordered)}
    return {}
