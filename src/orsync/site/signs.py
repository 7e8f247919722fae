"""``orsync posters signs`` (docs/workshop.md#board-signs): one printed page per board in use per
poster session, from the day as the site shows it and public records only.

Each page: the session's name, day and time, the board number large enough to read across the
room, the paper's title and authors. Jinja2 with autoescaping renders it (a title is the
authors' text, shown as text); print CSS sets the paper size and a page break after each sign;
no script, nothing fetched. Byte-stable like the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orsync.site import jinja
from orsync.site.day import Day
from orsync.site.records import PaperRecord
from orsync.text import authors_text

__all__ = ["PAPER_SIZES", "Sign", "render", "signs"]

PaperSize = Literal["a4", "letter"]
# The CSS `@page size` of each paper.
PAPER_SIZES: dict[str, str] = {"a4": "A4 portrait", "letter": "letter portrait"}


@dataclass(frozen=True)
class Sign:
    """One board of one session: what its page shows."""

    session_id: str
    session: str
    when: str
    board: int
    paper: PaperRecord

    @property
    def authors(self) -> str:
        return authors_text(self.paper.authors)


def signs(day: Day) -> list[Sign]:
    """A sign per placed paper (a board in use), sessions in time order, boards in order.
    A paper without a board has no sign: it has no board to stand at yet."""
    out = []
    for slot in day.slots:
        if slot.kind != "poster":
            continue
        start, end = day.local(slot.start), day.local(slot.end)
        when = f"{start:%A %d %B %Y}, {start:%H:%M}\u2013{end:%H:%M}"
        for paper in slot.papers:
            if paper.board is not None:
                sign = Sign(slot.session_id or "", slot.title, when, paper.board, paper)
                out.append(sign)
    return out


def render(day: Day, paper: PaperSize = "a4") -> bytes:
    """The signs' page: one printed page per board in use per session."""
    html = (
        jinja.environment()
        .get_template("signs.html.j2")
        .render(day=day, signs=signs(day), size=PAPER_SIZES[paper])
    )
    return html.encode("utf-8")
