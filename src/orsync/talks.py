"""``orsync talks suggest``: the contributed-talk shortlist by the workshop's rule (docs/workshop.md).

"Selected based on review scores while maintaining a diversity of covered topics", and
"previously published papers will NOT be selected as orals":

1. The pool: accepted submissions and those the chairs decided to accept but OpenReview has
   not released yet (marked "decided, not released"); before any decision, the active ones.
2. Left out, each with why: papers the submission form marks as previously published
   (``talk_selection.exclude_field`` / ``exclude_values``), whatever their scores, and papers
   with fewer than ``talk_selection.min_reviews`` rated reviews.
3. Ranked by mean rating; ties by the confidence-weighted mean, then by fewer low scores (a
   rating in the lower half of the scale the venue's reviews use), then by number.
4. Chosen greedily down the ranking, skipping a paper on a topic already chosen: two papers share
   a topic when their keywords mostly agree (Jaccard >= ``KEYWORD_OVERLAP``), else when their
   titles and abstracts are alike (TF-IDF cosine >= ``TEXT_SIMILARITY``, scikit-learn). A
   lower-ranked paper on a new topic so displaces a higher-ranked one, and the shortlist says
   which and why. If too few topics remain, the best skipped papers fill the list, marked so.

Deterministic: the same store gives the same shortlist. Advice only: chairs confirm a talk by
setting ``[[talks]] paper``; what is wrong with the talks already set (``orsync.rules``: a
previously published paper, one paper in two slots, an exclusion rule that matches nothing) is
said first. The ratings are confidential: this is printed for the chairs and never published.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orsync import rules
from orsync.config import Config, TalkSelectionConfig
from orsync.store.binding import read_for
from orsync.store.pool import TalkPool, talk_pool
from orsync.terminal import safe

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

__all__ = ["KEYWORD_OVERLAP", "TEXT_SIMILARITY", "Shortlist", "build_shortlist", "suggest"]

# Two papers share a topic when at least half of their keywords (together) are common...
KEYWORD_OVERLAP = 0.5
# ... or when their titles and abstracts are this alike (cosine of TF-IDF vectors).
TEXT_SIMILARITY = 0.5
DEFAULT_COUNT = 5


@dataclass(frozen=True)
class Candidate:
    """One paper that may become a talk, with its reviews' scores."""

    forum_id: str
    number: int | None
    title: str
    abstract: str
    keywords: tuple[str, ...]
    ratings: tuple[float, ...]
    confidences: tuple[float | None, ...]
    low_scores: int
    released: bool = True  # False: decided accept, not released by OpenReview yet

    @property
    def label(self) -> str:
        return f"#{self.number}" if self.number is not None else self.forum_id

    @property
    def shown(self) -> str:
        """The label as the chairs' terminal shows it, marked when the decision is unreleased."""
        return self.label if self.released else f"{self.label} (decided, not released)"

    @property
    def mean(self) -> float:
        return sum(self.ratings) / len(self.ratings)

    @property
    def weighted_mean(self) -> float:
        """The confidence-weighted mean rating (reviews without a confidence weigh 1)."""
        weights = [c if c is not None and c > 0 else 1.0 for c in self.confidences]
        return sum(r * w for r, w in zip(self.ratings, weights, strict=True)) / sum(weights)

    def rank_key(self) -> tuple[float, float, int, int, str]:
        return (-self.mean, -self.weighted_mean, self.low_scores, self.number or 0, self.forum_id)

    def scores_dict(self) -> dict[str, Any]:
        return {
            "rating_mean": round(self.mean, 3),
            "confidence_weighted_mean": round(self.weighted_mean, 3),
            "low_scores": self.low_scores,
            "ratings": [_num(r) for r in self.ratings],
            "confidences": [None if c is None else _num(c) for c in self.confidences],
        }


def _num(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class SameTopic:
    """Why a paper was passed over: it shares its topic with a paper already chosen."""

    paper: Candidate
    chosen: Candidate
    reason: str


@dataclass
class Pick:
    """A shortlisted paper: its place, its place by scores alone, its topic, whom it displaced."""

    paper: Candidate
    rank: int
    score_rank: int
    topic: str
    displaced: list[SameTopic] = field(default_factory=list)
    # Set when the list had to be filled from papers on topics already chosen.
    repeats: SameTopic | None = None

    def as_dict(self) -> dict[str, Any]:
        p = self.paper
        return {
            "rank": self.rank,
            "score_rank": self.score_rank,
            "number": p.number,
            "forum_id": p.forum_id,
            "title": p.title,
            "decided_not_released": not p.released,
            "keywords": list(p.keywords),
            "topic": self.topic,
            **p.scores_dict(),
            "displaced": [
                {
                    "number": d.paper.number,
                    "forum_id": d.paper.forum_id,
                    "same_topic_as": d.chosen.number,
                    "reason": d.reason,
                }
                for d in self.displaced
            ],
            "repeats_topic_of": None
            if self.repeats is None
            else {"number": self.repeats.chosen.number, "reason": self.repeats.reason},
        }


@dataclass(frozen=True)
class LeftOut:
    """A paper of the pool that cannot be a talk, and why."""

    forum_id: str
    number: int | None
    title: str
    why: str  # "previously_published", "too_few_reviews" or "decision"
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "forum_id": self.forum_id,
            "title": self.title,
            "why": self.why,
            "detail": self.detail,
        }


@dataclass
class Shortlist:
    # "accepted"; "decided" when some accepts are not released yet; "active" before decisions
    pool: str
    count: int
    min_reviews: int
    candidates: int  # papers ranked (the pool less those left out)
    picks: list[Pick]
    passed_over: list[SameTopic]  # ranked above the last pick but skipped for their topic
    left_out: list[LeftOut]
    low_below: float | None  # a rating below this is a low score
    warnings: list[str] = field(default_factory=list)
    # What is wrong with the [[talks]] already set and the exclusion rule (orsync.rules).
    problems: list[rules.Problem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "advice_only": True,
            "confidential": True,
            "pool": self.pool,
            "decided_not_released": sum(1 for p in self.picks if not p.paper.released),
            "problems": [p.as_dict() for p in self.problems],
            "count": self.count,
            "min_reviews": self.min_reviews,
            "candidates": self.candidates,
            "low_score_below": self.low_below,
            "shortlist": [p.as_dict() for p in self.picks],
            "passed_over": [
                {
                    "number": s.paper.number,
                    "forum_id": s.paper.forum_id,
                    "title": s.paper.title,
                    **s.paper.scores_dict(),
                    "same_topic_as": s.chosen.number,
                    "reason": s.reason,
                }
                for s in self.passed_over
            ],
            "left_out": [lo.as_dict() for lo in self.left_out],
            "warnings": self.warnings,
        }


# --------------------------------------------------------------------------- reading the store


def _normalise_keyword(keyword: object) -> str:
    return " ".join(str(keyword).casefold().split())


def build_shortlist(pool: TalkPool, selection: TalkSelectionConfig, count: int) -> Shortlist:
    """The shortlist from what the store holds (pure: no store, no config file)."""
    # Chairs pick talks before OpenReview releases the decisions: an accept they know counts.
    members = [
        s
        for s in pool.submissions
        if s["status"] == "accepted" or (s["status"] == "active" and s["decision_accepts"])
    ]
    decided = any(s["status"] == "active" for s in members)
    pool_name = "decided" if decided else "accepted" if members else "active"
    left_out: list[LeftOut] = []
    no_decision = not members
    for s in pool.submissions:
        if s["status"] == "active" and s["decision_accepts"] is False:
            left_out.append(
                LeftOut(
                    s["id"],
                    s["number"],
                    s["title"] or "",
                    "decision",
                    f"decided {s['decision']!r} (not released)",
                )
            )
        elif no_decision and s["status"] == "active":
            members.append(s)  # no decision yet: every active submission may become a talk
    low_below = None
    if pool.rating_range is not None:
        low_below = (pool.rating_range[0] + pool.rating_range[1]) / 2
    candidates: list[Candidate] = []
    for s in members:
        title = s["title"] or ""
        if selection.exclude_field is not None:
            values = rules.field_values(s["raw"], selection.exclude_field)
            hit = rules.excluded_value(values, selection)
            if hit is not None:
                left_out.append(
                    LeftOut(
                        s["id"],
                        s["number"],
                        title,
                        "previously_published",
                        f"{selection.exclude_field} = {hit!r}",
                    )
                )
                continue
        scores = [r for r in pool.scores.get(s["id"], []) if r.rating is not None]
        if len(scores) < selection.min_reviews:
            left_out.append(
                LeftOut(
                    s["id"],
                    s["number"],
                    title,
                    "too_few_reviews",
                    f"{len(scores)} rated review{'s' if len(scores) != 1 else ''} "
                    f"(talk_selection.min_reviews = {selection.min_reviews})",
                )
            )
            continue
        ratings = tuple(float(r.rating) for r in scores if r.rating is not None)
        candidates.append(
            Candidate(
                forum_id=str(s["id"]),
                number=s["number"],
                title=title,
                abstract=s["abstract"] or "",
                keywords=tuple(dict.fromkeys(_normalise_keyword(k) for k in s["keywords"] if k)),
                ratings=ratings,
                confidences=tuple(r.confidence for r in scores),
                low_scores=sum(1 for r in ratings if low_below is not None and r < low_below),
                released=s["status"] == "accepted",
            )
        )
    warnings = []
    left_out.sort(key=lambda lo: (lo.why, lo.number or 0, lo.forum_id))
    ranked = sorted(candidates, key=Candidate.rank_key)
    picks, passed_over = _choose(ranked, count)
    if len(picks) < count:
        warnings.append(f"only {len(picks)} candidates for {count} talks")
    return Shortlist(
        pool=pool_name,
        count=count,
        min_reviews=selection.min_reviews,
        candidates=len(ranked),
        picks=picks,
        passed_over=passed_over,
        left_out=left_out,
        low_below=low_below,
        warnings=warnings,
    )


# --------------------------------------------------------------------------- topics


class _Topics:
    """Which papers share a topic: keywords first, then title and abstract (TF-IDF cosine)."""

    def __init__(self, papers: Sequence[Candidate]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self._index = {p.forum_id: i for i, p in enumerate(papers)}
        texts = [_text(p) for p in papers]
        self._vectoriser = TfidfVectorizer(stop_words="english", sublinear_tf=True)
        self._matrix: csr_matrix | None = None
        if any(t.strip() for t in texts):
            try:
                self._matrix = self._vectoriser.fit_transform(texts).tocsr()
            except ValueError:  # nothing but stop words
                self._matrix = None

    def text_similarity(self, a: Candidate, b: Candidate) -> float:
        if self._matrix is None:
            return 0.0
        ia, ib = self._index[a.forum_id], self._index[b.forum_id]
        # Rows are L2-normalised by TfidfVectorizer: their dot product is the cosine.
        return float(self._matrix[ia].multiply(self._matrix[ib]).sum())

    def same_topic(self, a: Candidate, b: Candidate) -> str | None:
        """Why ``a`` and ``b`` are on one topic, or None when they are not."""
        ka, kb = set(a.keywords), set(b.keywords)
        if ka and kb:
            common = ka & kb
            if len(common) / len(ka | kb) >= KEYWORD_OVERLAP:
                return "keywords " + ", ".join(sorted(common))
        cos = self.text_similarity(a, b)
        if cos >= TEXT_SIMILARITY:
            return f"similar title and abstract, {cos:.2f}"
        return None

    def label(self, paper: Candidate) -> str:
        """The paper's topic in a few words: its keywords, else its most telling terms."""
        if paper.keywords:
            return ", ".join(paper.keywords[:3])
        if self._matrix is None:
            return "(no keywords)"
        row = self._matrix[self._index[paper.forum_id]]
        terms = self._vectoriser.get_feature_names_out()
        best = sorted(zip(row.data, row.indices, strict=True), key=lambda t: (-t[0], t[1]))[:3]
        return ", ".join(str(terms[i]) for _, i in best) or "(no keywords)"


_SPACE = re.compile(r"\s+")


def _text(paper: Candidate) -> str:
    return _SPACE.sub(" ", f"{paper.title}. {paper.abstract}")


def _choose(ranked: list[Candidate], count: int) -> tuple[list[Pick], list[SameTopic]]:
    if count <= 0 or not ranked:
        return [], []
    topics = _Topics(ranked)
    score_rank = {p.forum_id: i + 1 for i, p in enumerate(ranked)}
    chosen: list[Candidate] = []
    passed: list[SameTopic] = []
    for paper in ranked:
        if len(chosen) == count:
            break
        clash = next(
            (SameTopic(paper, c, why) for c in chosen if (why := topics.same_topic(paper, c))),
            None,
        )
        if clash is None:
            chosen.append(paper)
        else:
            passed.append(clash)
    repeats: dict[str, SameTopic] = {}
    while len(chosen) < count and passed:
        # Fewer distinct topics than talks: the best papers passed over fill the list.
        filler = passed.pop(0)
        repeats[filler.paper.forum_id] = filler
        chosen.append(filler.paper)
    chosen.sort(key=Candidate.rank_key)
    # By scores alone the first `count` papers would be the talks; each one passed over for its
    # topic was displaced by a chosen paper from further down, paired in rank order.
    top = {p.forum_id for p in ranked[:count]}
    mine = {p.forum_id for p in chosen}
    displaced = [s for s in passed if s.paper.forum_id in top and s.paper.forum_id not in mine]
    newcomers = [p for p in chosen if p.forum_id not in top]
    by_newcomer = {p.forum_id: [d] for p, d in zip(newcomers, displaced, strict=False)}
    picks = [
        Pick(
            paper=p,
            rank=i + 1,
            score_rank=score_rank[p.forum_id],
            topic=topics.label(p),
            displaced=by_newcomer.get(p.forum_id, []),
            repeats=repeats.get(p.forum_id),
        )
        for i, p in enumerate(chosen)
    ]
    last = max(score_rank[p.forum_id] for p in chosen)
    shown = [s for s in passed if score_rank[s.paper.forum_id] < last]
    return picks, shown


# --------------------------------------------------------------------------- the command


def suggest(config: Config, count: int | None = None) -> Shortlist:
    """The shortlist for ``count`` talks (default: the ``[[talks]]`` slots, else 5)."""
    if count is None:
        count = len(config.talks) or DEFAULT_COUNT
    with read_for(config) as store, store.connect() as conn:
        pool = talk_pool(conn)
        facts = rules.gather(conn, config)
    shortlist = build_shortlist(pool, config.talk_selection, count)
    shortlist.problems = [p for p in rules.validate(facts) if p.area == "talk"]
    return shortlist


def _scores_line(p: Candidate) -> str:
    ratings = ", ".join(f"{_num(r):g}" for r in p.ratings)
    low = f", {p.low_scores} low" if p.low_scores else ""
    return f"mean {p.mean:.2f} (confidence-weighted {p.weighted_mean:.2f}{low}; ratings {ratings})"


def describe(shortlist: Shortlist) -> list[str]:
    """The shortlist for a terminal, every venue text through ``safe``."""

    s = shortlist
    pool = {
        "accepted": "accepted papers",
        "decided": "accepted papers (some decided, not released)",
    }.get(s.pool, "active submissions (no decisions yet)")
    lines = [f"{p.severity}: {safe(p.message)}" for p in s.problems]
    lines += [""] if lines else []
    lines += [
        f"Contributed-talk shortlist, {len(s.picks)} of {s.count}: {s.candidates} {pool} ranked "
        f"by mean rating with distinct topics, {len(s.left_out)} left out.",
        "Advice only: confirm a talk by setting [[talks]] paper. The ratings are confidential: "
        "do not forward or publish this list.",
        "",
    ]
    for pick in s.picks:
        p = pick.paper
        place = "" if pick.score_rank == pick.rank else f"  [#{pick.score_rank} by scores]"
        lines.append(f"{pick.rank:>2}. {p.shown}  {_scores_line(p)}{place}")
        lines.append(f"    {safe(p.title)}")
        lines.append(f"    topic: {safe(pick.topic)}")
        for d in pick.displaced:
            lines.append(
                f"    displaced {d.paper.label} (same topic as {d.chosen.label}: {safe(d.reason)})"
            )
        if pick.repeats is not None:
            lines.append(
                f"    repeats the topic of {pick.repeats.chosen.label} "
                f"({safe(pick.repeats.reason)}): no candidate on a new topic is left"
            )
    if s.passed_over:
        lines += ["", "Passed over for their topic (ranked above the last pick):"]
        for po in s.passed_over:
            lines.append(
                f"  {po.paper.label}  mean {po.paper.mean:.2f}: same topic as {po.chosen.label} "
                f"({safe(po.reason)})  {safe(po.paper.title)}"
            )
    if s.left_out:
        lines += ["", "Left out:"]
        names = {
            "previously_published": "previously published",
            "too_few_reviews": "too few reviews",
            "decision": "not accepted",
        }
        for lo in s.left_out:
            label = f"#{lo.number}" if lo.number is not None else lo.forum_id
            lines.append(
                f"  {label}  {names.get(lo.why, lo.why)}: {safe(lo.detail)}  {safe(lo.title)}"
            )
    for w in s.warnings:
        lines += ["", f"warning: {safe(w)}"]
    return lines
