"""``orsync report``: the chairs' overview of the review process, from the store alone.

A terminal summary and a self-contained HTML page (inline SVG charts, no scripts, no external
assets) rendered by Jinja2 with autoescaping: titles come from authors and may be hostile.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orsync.config import Config
from orsync.store.binding import read_for
from orsync.store.queries import report_data
from orsync.terminal import safe

EXPECTED_REVIEWS = 3


@dataclass
class Report:
    venue_id: str
    generated_at: str
    by_status: dict[str, int]
    decisions: dict[str, int]
    review_counts: dict[int, int]
    missing_reviews: list[dict[str, Any]]
    rating_histogram: dict[str, int]
    confidence_histogram: dict[str, int]
    rating_by_status: dict[str, float | None]
    reviews: int
    completion: float | None
    # Every paper under review by number: its review count next to its mean rating.
    papers: list[dict[str, Any]] = field(default_factory=list)
    # What "missing" counts against: reviews per paper (OpenReview's reviewer assignments are
    # not mirrored, so the chairs say it: `report --expected-reviews`, default 3).
    expected_reviews: int = EXPECTED_REVIEWS
    # The review deadline the chairs gave (`report --due`), and the papers still missing
    # reviews after it; the venue's own due date is not mirrored.
    due: str | None = None
    overdue: list[dict[str, Any]] = field(default_factory=list)
    # Decided but not released, by accept / reject: for chairs only (docs/security.md#what-is-public).
    decided_unreleased: dict[str, int] = field(default_factory=dict)
    # Where the HTML page was written (``orsync report --html``, default beside the store).
    html: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _histogram(values: list[float]) -> dict[str, int]:
    counts = Counter(round(v) for v in values)
    if not counts:
        return {}
    return {str(k): counts.get(k, 0) for k in range(min(counts), max(counts) + 1)}


def build(
    config: Config, *, expected_reviews: int = EXPECTED_REVIEWS, due: datetime | None = None
) -> Report:
    with read_for(config) as store, store.connect() as conn:
        data = report_data(conn)
    subs, ratings = data.submissions, data.reviews
    by_status = Counter(str(s["status"]) for s in subs)
    decisions = Counter(str(s["decision"]) for s in subs if s["decision"])
    # Withdrawn and desk-rejected papers are not expected to be reviewed.
    in_review = [s for s in subs if s["status"] in ("active", "accepted", "rejected")]
    review_counts = Counter(int(s["review_count"]) for s in in_review)
    missing = sorted(
        (
            {
                "number": s["number"],
                "title": s["title"],
                "reviews": int(s["review_count"]),
                "missing": expected_reviews - int(s["review_count"]),
            }
            for s in in_review
            if int(s["review_count"]) < expected_reviews
        ),
        key=lambda m: (m["reviews"], m["number"] or 0),
    )
    complete = sum(1 for s in in_review if int(s["review_count"]) >= expected_reviews)
    by_status_rating: dict[str, list[float]] = {}
    for s in in_review:
        if s["rating_mean"] is not None:
            by_status_rating.setdefault(str(s["status"]), []).append(float(s["rating_mean"]))
    now = datetime.now(UTC)
    return Report(
        venue_id=config.openreview.venue_id,
        generated_at=now.isoformat(timespec="seconds"),
        by_status=dict(sorted(by_status.items())),
        decisions=dict(sorted(decisions.items())),
        review_counts=dict(sorted(review_counts.items())),
        missing_reviews=missing,
        rating_histogram=_histogram([r.rating for r in ratings if r.rating is not None]),
        confidence_histogram=_histogram(
            [r.confidence for r in ratings if r.confidence is not None]
        ),
        rating_by_status={
            k: round(sum(v) / len(v), 2) for k, v in sorted(by_status_rating.items())
        },
        reviews=len(ratings),
        completion=round(complete / len(in_review), 3) if in_review else None,
        papers=[
            {
                "number": s["number"],
                "title": s["title"],
                "reviews": int(s["review_count"]),
                "rating_mean": None
                if s["rating_mean"] is None
                else round(float(s["rating_mean"]), 2),
                "status": s["status"],
                "decision": s["decision"],
            }
            for s in sorted(in_review, key=lambda s: s["number"] or 0)
        ],
        decided_unreleased=data.decided_unreleased,
        expected_reviews=expected_reviews,
        due=due.isoformat(timespec="minutes") if due else None,
        overdue=missing if due is not None and now > due else [],
    )


def _visible(value: Any) -> Any:
    """Every text printed in the page shows its control and bidi characters as escapes (a
    title's U+202E would otherwise reverse what the chairs read), like the terminal summary."""
    from markupsafe import Markup

    if isinstance(value, str) and not isinstance(value, Markup):  # Markup: the charts' macros
        return safe(value, newlines=True)
    return value


def render_html(report: Report) -> str:
    # Jinja2 loads here, for the page: the terminal summary does without it.
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("orsync", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=_visible,
    )
    page: str = env.get_template("report.html.j2").render(
        r=report, expected=report.expected_reviews
    )
    return page
