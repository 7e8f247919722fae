"""``index.html`` (docs/workshop.md): the workshop's page, self-contained, from public data only.

The program (from the config) and every accepted paper (its ``PaperRecord``): authors, abstract, keywords, presentation, contributed talk, poster session
and board, links. Jinja2 with autoescaping renders it: every text is the authors' and is escaped;
the LaTeX in titles and abstracts becomes MathML (``mathml``), rebuilt from an allowlist.
One file that opens offline: inline CSS, no script, no image, no font, nothing fetched from any
host (a Content-Security-Policy says so to the browser too); links are plain anchors to
OpenReview, the live stream and the speakers' pages. Responsive (phone to desktop) and with print
styles. Byte-stable: no time of generation in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from orsync.site import jinja
from orsync.site.day import KIND_NAMES, Day, DaySlot
from orsync.site.records import PaperRecord, SessionRef
from orsync.text import authors_text, web_link

__all__ = ["render"]

# The page labels no slot of another kind: its title says what it is.
PAGE_KIND_NAMES = {**KIND_NAMES, "other": ""}


def _hosted(files: Sequence[tuple[str, str | None]] | None) -> list[tuple[str, str]]:
    """The paper's files the site hosts, as (field, relative path) pairs (docs/site-files.md#hosted-files)."""
    return [
        (field, path)
        for field, path in files or ()
        if path is not None and path.startswith("files/") and ".." not in path
    ]


def _anchor(number: object, forum_id: str) -> str:
    return f"paper-{number}" if number is not None else f"paper-{forum_id}"


def render(day: Day, papers: Sequence[PaperRecord]) -> bytes:
    """The page's bytes from the day and the records of the accepted papers (in site order)."""

    def hm(when: datetime) -> str:
        return day.local(when).strftime("%H:%M")

    def span(slot: DaySlot) -> str:
        return f"{hm(slot.start)}\u2013{hm(slot.end)}"

    talks: dict[str, list[DaySlot]] = {}
    for slot in day.slots:
        if slot.paper is not None:
            talks.setdefault(slot.paper.id, []).append(slot)
    days: list[tuple[str, list[DaySlot]]] = []
    for slot in day.slots:
        label = day.local(slot.start).strftime("%A %d %B %Y")
        if not days or days[-1][0] != label:
            days.append((label, []))
        days[-1][1].append(slot)
    offset = ""
    if day.slots:
        offset = day.local(day.slots[0].start).strftime("%z")
        offset = f"UTC{offset[:3]}:{offset[3:]}" if offset else ""
    entries = []
    for p in papers:
        entries.append(
            {
                **p.as_dict(),
                "anchor": _anchor(p.number, p.id),
                "forum_link": p.forum_link,
                "pdf_link": web_link(p.pdf_url),
                "hosted": _hosted(p.files),
                "talks": [span(s) for s in talks.get(p.id, [])],
                "session_span": _session_span(day, p.session),
            }
        )
    html = (
        jinja.environment()
        .get_template("index.html.j2")
        .render(
            day=day,
            days=days,
            papers=entries,
            kinds=PAGE_KIND_NAMES,
            span=span,
            anchor=_anchor,
            offset=offset,
            stream=web_link(day.stream_url),
            link=web_link,
            authors=authors_text,
        )
    )
    return html.encode("utf-8")


def _session_span(day: Day, session: SessionRef | None) -> str | None:
    if session is None or not session.start or not session.end:
        return None
    try:
        start = datetime.fromisoformat(session.start)
        end = datetime.fromisoformat(session.end)
    except ValueError:
        return None
    return f"{day.local(start).strftime('%H:%M')}\u2013{day.local(end).strftime('%H:%M')}"
