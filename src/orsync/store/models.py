"""Typed read models over the store's views, for orsync's own renderers and for anyone else's.

``AcceptedPaper`` reads ``accepted_papers`` and ``SubmissionOverview`` reads
``submissions_overview`` (``store/views.py``), column for column. They are SQLModel classes
mapped onto the views, never tables: they live in their own ``MetaData``, so neither
``SQLModel.metadata.create_all`` nor the migrations ever see them. Any store URL works::

    from sqlmodel import Session, create_engine, select
    from orsync.models import AcceptedPaper

    with Session(create_engine("sqlite:///orsync.db")) as s:
        for paper in s.exec(select(AcceptedPaper)):
            print(paper.number, paper.title, paper.authors)

The list columns, JSON arrays kept as text, read as lists (``[]`` where the field is not
public); session times are the ISO 8601 text the store keeps.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, Dialect, Text
from sqlalchemy.orm import registry
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, select

__all__ = ["VIEWS_METADATA", "AcceptedPaper", "JSONList", "SubmissionOverview", "accepted_papers"]


class JSONList(TypeDecorator[list[str]]):
    """A JSON array (text declared JSON on SQLite, jsonb on PostgreSQL), read as a list; null
    reads as ``[]``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: list[str] | None, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str]:
        if not value:
            return []
        # PostgreSQL's view declares the column jsonb, which the driver decodes already.
        decoded = json.loads(value) if isinstance(value, str | bytes) else value
        return list(decoded) if isinstance(decoded, list) else [decoded]


_views = registry()
VIEWS_METADATA = _views.metadata


class _View(SQLModel, registry=_views):
    """A read model over a view: its own registry keeps it out of every table's metadata."""


class AcceptedPaper(_View, table=True):
    """One row of ``accepted_papers``: an accepted paper's public fields (null where not public)."""

    __tablename__ = "accepted_papers"

    forum_id: str = Field(primary_key=True)
    number: int | None = None
    title: str | None = None
    authors: list[str] = Field(default_factory=list, sa_type=JSONList)
    authorids: list[str] = Field(default_factory=list, sa_type=JSONList)
    keywords: list[str] = Field(default_factory=list, sa_type=JSONList)
    abstract: str | None = None
    tldr: str | None = None
    pdf_url: str | None = None
    forum_url: str | None = None
    decision: str | None = None
    presentation: str | None = None
    session_id: str | None = None
    session_name: str | None = None
    session_start: str | None = None
    session_end: str | None = None
    board: int | None = None


class SubmissionOverview(_View, table=True):
    """One row of ``submissions_overview``: every submission with its review figures."""

    __tablename__ = "submissions_overview"

    forum_id: str = Field(primary_key=True)
    number: int | None = None
    title: str | None = None
    status: str | None = None
    decision: str | None = None
    review_count: int = 0
    rating_mean: float | None = None
    rating_min: float | None = None
    rating_max: float | None = None
    confidence_mean: float | None = None
    deleted: bool = False


def accepted_papers(conn: Connection) -> list[AcceptedPaper]:
    """The ``accepted_papers`` view by number, read on ``conn`` (its transaction, if any)."""
    query = select(AcceptedPaper).order_by(
        AcceptedPaper.number,  # type: ignore[arg-type]
        AcceptedPaper.forum_id,
    )
    with Session(conn) as session:
        return list(session.exec(query))
