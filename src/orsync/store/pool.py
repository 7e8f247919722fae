"""The papers chairs choose contributed talks from, as the store knows them: released accepts
(or, before the release, active submissions) with their reviews' scores, the decisions not
released yet, and the submissions' answers to the exclusion field (docs/workshop.md)."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select

from orsync.store.queries import ReviewScores, as_dict, decode_lists, json_list
from orsync.store.tables import NOTE


@dataclass
class TalkPool:
    """What ``orsync talks suggest`` ranks: the live submissions that may become talks, their
    reviews' scores, and the range of ratings the venue's reviews use. Confidential (ratings):
    for the chairs' terminal, never for the website."""

    submissions: list[dict[str, Any]]  # id, number, title, abstract, keywords, status, raw, ...
    scores: dict[str, list[ReviewScores]]  # forum id -> its live reviews' scores, by review id
    rating_range: tuple[float, float] | None  # lowest and highest rating of any live review


def talk_pool(conn: Connection, statuses: tuple[str, ...] = ("accepted", "active")) -> TalkPool:
    """The live submissions in ``statuses`` with their reviews' ratings and confidences.

    ``keywords`` is decoded (``[]`` when absent); ``raw`` stays the note's JSON text, from
    which a form field nobody planned for (``talk_selection.exclude_field``) is read.
    """
    subs = conn.execute(
        select(
            NOTE.c.id,
            NOTE.c.number,
            NOTE.c.title,
            NOTE.c.abstract,
            NOTE.c.keywords,
            NOTE.c.status,
            NOTE.c.decision,
            NOTE.c.decision_accepts,
            NOTE.c.raw,
        )
        .where(NOTE.c.kind == "submission", ~NOTE.c.deleted, NOTE.c.status.in_(statuses))
        .order_by(NOTE.c.number, NOTE.c.id)
    )
    submissions = [decode_lists(as_dict(r), null_as_empty=True) for r in subs]
    wanted = {s["id"] for s in submissions}
    scores: dict[str, list[ReviewScores]] = {}
    reviews = conn.execute(
        select(NOTE.c.forum, NOTE.c.rating, NOTE.c.confidence)
        .where(NOTE.c.kind == "review", ~NOTE.c.deleted)
        .order_by(NOTE.c.forum, NOTE.c.id)
    )
    low: float | None = None
    high: float | None = None
    for r in reviews:
        if r.rating is not None:
            low = r.rating if low is None else min(low, r.rating)
            high = r.rating if high is None else max(high, r.rating)
        if r.forum in wanted:
            scores.setdefault(str(r.forum), []).append(ReviewScores(r.rating, r.confidence))
    return TalkPool(
        submissions=submissions,
        scores=scores,
        rating_range=None if low is None or high is None else (float(low), float(high)),
    )


class DecidedPaper(NamedTuple):
    """A live submission decided but not released (still ``active``): for the chairs only."""

    forum_id: str
    number: int | None
    title: str | None
    decision: str
    accepts: bool | None  # None: judged by the next cycle (a store migrated since)


def decided_unreleased(conn: Connection) -> list[DecidedPaper]:
    """The live submissions with a decision that is not released yet, by number."""
    rows = conn.execute(
        select(NOTE.c.id, NOTE.c.number, NOTE.c.title, NOTE.c.decision, NOTE.c.decision_accepts)
        .where(
            NOTE.c.kind == "submission",
            ~NOTE.c.deleted,
            NOTE.c.status == "active",
            NOTE.c.decision.is_not(None),
        )
        .order_by(NOTE.c.number, NOTE.c.id)
    )
    return [DecidedPaper(*r) for r in rows]


def field_answers(conn: Connection, field: str) -> tuple[int, list[tuple[str, str]]]:
    """How many live submissions there are, and (forum id, raw JSON) of those whose raw JSON
    names ``field``: the answers to one form field nobody planned a column for. Filtered in
    the database by the quoted name, so a push does not decode every submission."""
    live = (NOTE.c.kind == "submission") & ~NOTE.c.deleted
    total = int(conn.execute(select(func.count()).where(live)).scalar() or 0)
    rows = conn.execute(
        select(NOTE.c.id, NOTE.c.raw)
        .where(live, NOTE.c.raw.contains(json.dumps(field), autoescape=True))
        .order_by(NOTE.c.number, NOTE.c.id)
    )
    return total, [(str(r.id), str(r.raw)) for r in rows]


def author_names(conn: Connection, forum_ids: Collection[str]) -> dict[str, list[str]]:
    """The authors the store holds for these submissions (public or not: the chairs' check of
    each talk's speaker), by forum id; a submission with no readable authors is left out."""
    if not forum_ids:
        return {}
    rows = conn.execute(
        select(NOTE.c.id, NOTE.c.authors).where(
            NOTE.c.kind == "submission", NOTE.c.id.in_(sorted(forum_ids))
        )
    )
    out = {}
    for r in rows:
        names = json_list(r.authors)
        if names:
            out[str(r.id)] = [str(n) for n in names]
    return out
