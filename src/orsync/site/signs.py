"""``orsync posters signs`` (docs/workshop.md#board-signs): one printed page per board in use per
poster session, from the day as the site shows it and public records only.

Each page: the session's name, day and time, the board number large enough to read across the
room, the paper's title and authors. Jinja2 with autoescaping renders it (a title is the
authors' text, shown as text); print CSS sets the paper size and a page break after each sign;
no script, nothing fetched. Byte-stable like the page.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from orsync.site import mathml
from orsync.site.day import Day
from orsync.site.records import PaperRecord
from orsync.text import authors_text

if TYPE_CHECKING:
    from jinja2 import Environment

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


@functools.cache
def _environment() -> Environment:
    # Jinja2 loads here, when signs are printed: other commands never pay for it.
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("orsync.site", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # As on the page: `mathml.to_html` escapes the text and rebuilds the converter's output
    # from an allowlist, so its result may be marked safe.
    env.filters["tex"] = lambda text: Markup(mathml.to_html(text))  # noqa: S704
    return env


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
        _environment()
        .get_template("signs.html.j2")
        .render(day=day, signs=signs(day), size=PAPER_SIZES[paper])
    )
    return html.encode("utf-8")
