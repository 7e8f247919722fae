"""Records and a day built in a test, the way the push builds them (no store, no emulator)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from orsync import site
from orsync.models import AcceptedPaper
from orsync.schedule import ProgramSlot, Schedule, Session, TalkSlot
from orsync.site import PaperRecord

TZ = timezone(timedelta(hours=2))


def at(hhmm: str) -> datetime:
    hour, minute = hhmm.split(":")
    return datetime(2024, 5, 11, int(hour), int(minute), tzinfo=TZ)


P1 = Session("P1", "Poster session 1", at("10:10"), at("11:00"))
P2 = Session("P2", "Poster session 2", at("12:00"), at("14:00"))


def paper(n: int, **over: Any) -> AcceptedPaper:
    """An ``accepted_papers`` row of paper ``n`` (its number unless ``number`` says)."""
    number = n
    fields: dict[str, Any] = {
        "forum_id": f"forum{number}",
        "number": number,
        "title": f"Paper {number}",
        "authors": ["Ada Lovelace", "Alan Turing"],
        "authorids": ["~Ada1", "~Alan1"],
        "keywords": ["theory"],
        "abstract": f"Abstract {number}.",
        "tldr": None,
        "pdf_url": f"https://openreview.net/pdf?id=forum{number}",
        "forum_url": f"https://openreview.net/forum?id=forum{number}",
        "decision": "Accept (Poster)",
        "presentation": "poster",
        "session_id": "P1",
        "session_name": "Poster session 1",
        "session_start": "2024-05-11T10:10:00+02:00",
        "session_end": "2024-05-11T11:00:00+02:00",
        "board": number,
    }
    fields.update(over)
    return AcceptedPaper(**fields)


def record(n: int, files: dict[str, str | None] | None = None, **over: Any) -> PaperRecord:
    return PaperRecord.build(paper(n, **over), {s.id: s for s in (P1, P2)}, files)


def schedule(*talks: tuple[str, str, str | None], **day: Any) -> Schedule:
    """Two poster sessions, the given talks (start, end, paper) and a keynote."""
    keynote = ProgramSlot(at("09:00"), at("10:00"), "invited", "Keynote", speaker="Grace Hopper")
    return Schedule(
        sessions=(P1, P2),
        talks=tuple(
            TalkSlot(at(start), at(end), paper=ref, index=i)
            for i, (start, end, ref) in enumerate(talks)
        ),
        program=(keynote,),
        **day,
    )


def render(
    rows: list[dict[str, Any]], sessions: list[Session], formats: Any, **kwargs: Any
) -> dict[str, bytes]:
    """The site's files from view-shaped rows, as the push renders them: one record each."""
    known = {s.id: s for s in sessions}
    records = [site.PaperRecord.build(AcceptedPaper(**r), known, r.get("files")) for r in rows]
    return site.render(records, sessions, formats, **kwargs)
