"""The public record of one accepted paper: what every website format shows of it.

Built once per push from an ``AcceptedPaper`` (the ``accepted_papers`` view, public data only)
and what the push knows besides (the hosted files' links). Every text is cleaned here, once;
nothing downstream writes into a record. Only the fields named here leave orsync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orsync.schedule import Session
from orsync.store import models
from orsync.text import clean_list, clean_optional, clean_text, iso_text, web_link

__all__ = ["PaperRecord", "SessionRef", "TalkRef", "build_records"]


@dataclass(frozen=True)
class SessionRef:
    """The poster session a paper is in, as papers.json shows it."""

    id: str
    name: str
    start: str | None
    end: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class TalkRef:
    """A paper's contributed talk as the paper files show it: times ISO 8601 in the venue's
    offset, ``slot`` the key the calendar names the talk's event by."""

    start: str
    end: str
    slot: str

    def as_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "slot": self.slot}


@dataclass(frozen=True)
class PaperRecord:
    """One accepted paper as published; ``as_dict()`` is its papers.json object, keys in the
    documented order. ``files`` is None when the site hosts no files (then not in the object).
    ``talk`` and, by default, ``presentation`` come from the configured talks
    (``site.day.with_talks``): built from the store alone they hold OpenReview's word."""

    id: str
    number: int | None
    title: str
    authors: tuple[str, ...]
    keywords: tuple[str, ...]
    abstract: str | None
    tldr: str | None
    pdf_url: str | None
    forum_url: str | None
    decision: str | None
    presentation: str | None
    session: SessionRef | None
    board: int | None
    files: tuple[tuple[str, str | None], ...] | None = None
    talk: TalkRef | None = None

    @classmethod
    def build(
        cls,
        paper: models.AcceptedPaper,
        sessions: Mapping[str, Session],
        files: Mapping[str, str | None] | None = None,
    ) -> PaperRecord:
        """The record of ``paper``; ``sessions`` (configured, by id) fill in a session's name
        and times the store does not hold; ``files``: each hosted field's link, or None."""
        return cls(
            id=clean_text(paper.forum_id),
            number=_int_or_none(paper.number),
            title=clean_text(paper.title),
            authors=tuple(clean_list(paper.authors)),
            keywords=tuple(clean_list(paper.keywords)),
            abstract=clean_optional(paper.abstract),
            tldr=clean_optional(paper.tldr),
            # One link rule for every format: a site builder puts these into an href too.
            pdf_url=web_link(paper.pdf_url),
            forum_url=web_link(paper.forum_url),
            decision=clean_optional(paper.decision),
            presentation=clean_optional(paper.presentation),
            session=_session_of(paper, sessions),
            board=_int_or_none(paper.board),
            files=None
            if files is None
            else tuple((clean_text(k), clean_optional(v)) for k, v in sorted(files.items())),
        )

    @property
    def label(self) -> str:
        """How chairs name the paper: its number, else its forum id."""
        return f"#{self.number}" if self.number is not None else self.id

    @property
    def session_id(self) -> str | None:
        return None if self.session is None else self.session.id

    @property
    def forum_link(self) -> str | None:
        """The forum URL where it may become a link (``text.web_link``)."""
        return web_link(self.forum_url)

    @property
    def public_abstract(self) -> str | None:
        """The abstract where there is one to show (blank counts as none)."""
        return self.abstract if self.abstract is not None and self.abstract.strip() else None

    def files_dict(self) -> dict[str, str | None]:
        return dict(self.files or ())

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "number": self.number,
            "title": self.title,
            "authors": list(self.authors),
            "keywords": list(self.keywords),
            "abstract": self.abstract,
            "tldr": self.tldr,
            "pdf_url": self.pdf_url,
            "forum_url": self.forum_url,
            "decision": self.decision,
            "presentation": self.presentation,
            "talk": None if self.talk is None else self.talk.as_dict(),
            "session": None if self.session is None else self.session.as_dict(),
            "board": self.board,
        }
        if self.files is not None:
            out["files"] = self.files_dict()
        return out


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(str(value)) if not isinstance(value, int) else value


def _session_of(paper: models.AcceptedPaper, known: Mapping[str, Session]) -> SessionRef | None:
    sid = paper.session_id
    if sid is None:
        return None
    s = known.get(str(sid))
    return SessionRef(
        id=clean_text(sid),
        name=clean_text(paper.session_name or (s.name if s else sid)),
        start=iso_text(paper.session_start or (s.start if s else None)),
        end=iso_text(paper.session_end or (s.end if s else None)),
    )


def build_records(
    papers: Sequence[models.AcceptedPaper],
    sessions: Sequence[Session],
    files: Mapping[str, Mapping[str, str | None]] | None = None,
) -> list[PaperRecord]:
    """The records of ``papers``, in their order; ``files``: forum id → hosted links, None
    when the site hosts no files."""
    known = {s.id: s for s in sessions}
    return [
        PaperRecord.build(p, known, None if files is None else files.get(str(p.forum_id), {}))
        for p in papers
    ]
