"""The Mini-Conf bundle (format ``miniconf``, docs/site-files.md#mini-conf-bundle): a folder a
Mini-Conf checkout reads as its ``sitedata/``.

Mini-Conf's ``main.py`` loads every ``name.ext`` of the folder by its name: ``papers``,
``speakers`` and ``workshops`` by ``UID`` (the three must exist), ``highlighted`` by the papers'
``UID`` (one that is not a paper is a 500 on ``calendar.html``), ``main_calendar`` for the
calendar page, ``papers_projection`` for the paper map. Its ``config``, ``committee`` and
``faq`` are the chairs' own and never written here. Same records and day as every other
format; deterministic bytes.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.parse
import warnings
from collections.abc import Sequence
from typing import Any

from orsync.site.day import Day, DaySlot
from orsync.site.formats import json_bytes, site_order
from orsync.site.records import PaperRecord
from orsync.text import LIST_SEPARATOR, neutralise_cell, web_link

__all__ = [
    "FILES",
    "OWN_FOLDER",
    "PAPER_COLUMNS",
    "SPEAKER_COLUMNS",
    "WORKSHOP_COLUMNS",
    "as_data",
    "projection",
    "render",
]

# The columns Mini-Conf's format_paper reads, in its sample's order.
PAPER_COLUMNS = ("UID", "title", "authors", "abstract", "keywords", "sessions", "pdf_url")
SPEAKER_COLUMNS = ("UID", "image", "title", "institution", "speaker", "abstract", "bio", "session")
HIGHLIGHTED_COLUMNS = ("UID", "session")
# A workshop has no workshops of its own, but main.py indexes the file: present and empty.
WORKSHOP_COLUMNS = ("UID", "title", "authors", "abstract")
FILES = (
    "highlighted.csv",
    "main_calendar.json",
    "papers.csv",
    "papers_projection.json",
    "speakers.csv",
    "workshops.csv",
)

# Mini-Conf loads every file of its folder: papers.json there would replace its papers.csv.
OWN_FOLDER = "website.miniconf_dir must be a folder of its own, not website.output_dir"

# Mini-Conf's paper cards, paper map and speaker pages put titles, authors, keywords and
# abstracts into the page as HTML (template literals, ``|safe``). A "<" opens a tag only before
# a letter, "/", "!" or "?"; a word joiner after it keeps it a character there, shows nothing,
# and leaves "a < b" and the escaped poster pages as they were.
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def as_data(text: str) -> str:
    """Free text that Mini-Conf's pages show as text even where they insert it as HTML."""
    return _TAG_OPEN.sub("<\u2060", text)


def _keyword(text: str) -> str:
    # Mini-Conf's cards put each keyword into a double-quoted href: a '"' would end it.
    return as_data(text).replace('"', "'")


def _text_cell(text: str) -> str:
    return neutralise_cell(as_data(text))


def _csv(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def render(records: Sequence[PaperRecord], day: Day) -> dict[str, bytes]:
    """Every file of the bundle, by name."""
    ordered = site_order(records)
    known = {r.id for r in ordered}
    papers = [
        (
            r.id,  # ids, URLs and times are written as they are: only free text is guarded
            _text_cell(r.title),
            _text_cell(LIST_SEPARATOR.join(as_data(a) for a in r.authors)),
            _text_cell(r.abstract or ""),
            _text_cell(LIST_SEPARATOR.join(_keyword(k) for k in r.keywords)),
            _text_cell(r.session.name) if r.session else "",
            web_link(r.pdf_url) or "",
        )
        for r in ordered
    ]
    highlighted = [
        (s.paper.id, _hhmm(day, s))
        for s in day.slots
        if s.kind == "contributed" and s.paper is not None and s.paper.id in known
    ]
    speakers = [
        (
            s.key,
            "",
            _text_cell(s.title),
            _text_cell(s.affiliation or ""),
            _text_cell(s.speaker or ""),
            _text_cell(s.abstract or ""),
            "",
            _hhmm(day, s),
        )
        for s in day.slots
        if s.kind == "invited"
    ]
    return {
        "highlighted.csv": _csv(HIGHLIGHTED_COLUMNS, _unique(highlighted)),
        "main_calendar.json": json_bytes(calendar(day, known)),
        "papers.csv": _csv(PAPER_COLUMNS, papers),
        "papers_projection.json": json_bytes(projection(ordered)),
        "speakers.csv": _csv(SPEAKER_COLUMNS, speakers),
        "workshops.csv": _csv(WORKSHOP_COLUMNS, []),
    }


def _unique(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[str] = set()
    out = []
    for row in rows:
        if row[0] not in seen:
            seen.add(row[0])
            out.append(row)
    return out


def _hhmm(day: Day, slot: DaySlot) -> str:
    return day.local(slot.start).strftime("%H:%M")


def calendar(day: Day, known: set[str]) -> list[dict[str, Any]]:
    """main_calendar.json as Mini-Conf's scripts/parse_calendar.py writes it: one event per
    slot, the slot's kind as ``calendarId`` (the hashtag its script reads from a title), the
    Mini-Conf page it opens as ``location`` and ``link`` ("" for none: its click handler reads
    the length)."""
    events = []
    for s in day.slots:
        link = _slot_link(s, known)
        events.append(
            {
                "title": as_data(s.title),
                "start": day.local(s.start).isoformat(),
                "end": day.local(s.end).isoformat(),
                "location": link,
                "link": link,
                "category": "time",
                "calendarId": s.kind,
            }
        )
    return events


def _slot_link(slot: DaySlot, known: set[str]) -> str:
    if slot.kind == "contributed" and slot.paper is not None and slot.paper.id in known:
        return f"poster_{slot.paper.id}.html"
    if slot.kind == "invited":
        return f"speaker_{slot.key}.html"
    if slot.kind == "poster":
        name = slot.papers[0].session.name if slot.papers and slot.papers[0].session else None
        query = urllib.parse.urlencode({"session": name or slot.title, "filter": "keywords"})
        return f"papers.html?{query}"
    return web_link(slot.url) or ""


def projection(records: Sequence[PaperRecord]) -> list[dict[str, Any]]:
    """papers_projection.json, the paper map: ``[{"id": UID, "pos": [x, y]}]`` for every paper,
    from TF-IDF of title and abstract reduced to two dimensions (fixed seed, rounded, so the
    file's bytes change only when the papers do)."""
    points = _points([f"{r.title}\n{r.abstract or ''}" for r in records])
    return [{"id": r.id, "pos": [x, y]} for r, (x, y) in zip(records, points, strict=True)]


def _points(texts: list[str]) -> list[tuple[float, float]]:
    n = len(texts)
    if n < 3:  # nothing to reduce: one point in the middle, two apart
        return [(0.0, 0.0)] if n == 1 else [(-1.0, 0.0), (1.0, 0.0)][:n]
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    try:
        matrix = TfidfVectorizer(sublinear_tf=True).fit_transform(texts)
    except ValueError:  # no word in any text
        return [(float(i), 0.0) for i in range(n)]
    dims = min(2, matrix.shape[1] - 1)
    if dims < 1:
        return [(float(i), 0.0) for i in range(n)]
    with warnings.catch_warnings():  # texts that are all alike explain no variance
        warnings.simplefilter("ignore", RuntimeWarning)
        reduced = TruncatedSVD(n_components=dims, random_state=0).fit_transform(matrix)
    out = []
    for row in reduced:
        x = round(float(row[0]), 4) + 0.0  # + 0.0: no "-0.0" in the file
        y = round(float(row[1]), 4) + 0.0 if dims > 1 else 0.0
        out.append((x, y))
    if len(set(out)) == 1:  # one spot: the map's scales would have no extent
        return [(float(i), 0.0) for i in range(n)]
    return out
