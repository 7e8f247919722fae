"""Talk selection: `orsync talks suggest` through the CLI against the emulator's BGPT venue,
and the ranking itself (orsync.talks) on papers built in the test."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup, write_config
from helpers import SELECTION, accepted, day_config
from orsync.config import TalkSelectionConfig
from orsync.emulator import Emulator
from orsync.rules import DayFacts, exclusions, validate
from orsync.schedule import Schedule
from orsync.store.pool import TalkPool
from orsync.store.queries import ReviewScores
from orsync.talks import build_shortlist, describe


def suggest(s: Setup, *args: str) -> dict[str, Any]:
    r = s.cli("talks", "suggest", "--json", *args)
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


@pytest.fixture
def chairs(tmp_path: Path, emulator: Emulator) -> Setup:
    config = write_config(tmp_path, emulator, extra=SELECTION)
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def test_shortlist_is_deterministic_and_explains_itself(chairs: Setup) -> None:
    assert chairs.cli("pull", "--no-push").returncode == 0
    first = suggest(chairs)
    assert first == suggest(chairs)  # the same store, the same shortlist
    assert first["pool"] == "accepted" and first["count"] == 5 and len(first["shortlist"]) == 5
    assert first["advice_only"] and first["confidential"]
    truth = accepted(chairs.emu)
    by_number = {s["number"]: s for s in truth.values()}
    for pick in first["shortlist"]:
        assert pick["number"] in by_number  # accepted papers only
        assert len(pick["ratings"]) >= 3 and pick["topic"]
        assert pick["rating_mean"] == pytest.approx(
            sum(pick["ratings"]) / len(pick["ratings"]), abs=1e-3
        )
    # Ranked by mean rating, ties by the confidence-weighted mean, then fewer low scores.
    keys = [
        (-p["rating_mean"], -p["confidence_weighted_mean"], p["low_scores"])
        for p in first["shortlist"]
        if not p["displaced"]
    ]
    assert keys == sorted(keys)
    text = chairs.cli("talks", "suggest")
    assert text.returncode == 0 and "Advice only" in text.stdout and "confidential" in text.stdout
    assert chairs.cli("talks", "suggest", "--count", "2", "--json").returncode == 0
    assert len(suggest(chairs, "--count", "2")["shortlist"]) == 2


def test_a_new_topic_displaces_a_higher_score_and_says_so(chairs: Setup) -> None:
    assert chairs.cli("pull", "--no-push").returncode == 0
    plain = suggest(chairs, "--count", "3")
    top, second = plain["shortlist"][0], plain["shortlist"][1]
    # The runner-up now writes about exactly what the top paper does: same keywords, same words.
    chairs.emu.edit_content(
        second["forum_id"],
        keywords=top["keywords"] or ["attention"],
        title=top["title"],
        abstract="Same study.",
    )
    chairs.emu.edit_content(top["forum_id"], keywords=top["keywords"] or ["attention"])
    assert chairs.cli("pull", "--no-push").returncode == 0
    after = suggest(chairs, "--count", "3")
    numbers = [p["number"] for p in after["shortlist"]]
    assert top["number"] in numbers and second["number"] not in numbers
    newcomer = next(p for p in after["shortlist"] if p["displaced"])
    assert newcomer["score_rank"] > 3  # below the displaced paper by scores
    assert newcomer["displaced"][0]["number"] == second["number"]
    assert newcomer["displaced"][0]["same_topic_as"] == top["number"]
    passed = {p["number"]: p for p in after["passed_over"]}
    assert passed[second["number"]]["rating_mean"] > newcomer["rating_mean"]
    text = chairs.cli("talks", "suggest", "--count", "3").stdout
    assert f"displaced #{second['number']} (same topic as #{top['number']}" in text


def test_a_previously_published_paper_is_never_shortlisted(chairs: Setup) -> None:
    emu = chairs.emu
    assert chairs.cli("pull", "--no-push").returncode == 0
    before = suggest(chairs)
    star = before["shortlist"][0]
    for _ in range(3):
        emu.add_review(star["forum_id"], rating=10)  # the best-rated paper by far...
    emu.edit_content(star["forum_id"], previously_published="Yes")  # ...published before
    assert chairs.cli("pull", "--no-push").returncode == 0
    for count in ("1", "5", "200"):
        data = suggest(chairs, "--count", count)
        assert star["forum_id"] not in {p["forum_id"] for p in data["shortlist"]}
        assert star["forum_id"] not in {p["forum_id"] for p in data["passed_over"]}
        out = [lo for lo in data["left_out"] if lo["forum_id"] == star["forum_id"]]
        assert (
            out
            and out[0]["why"] == "previously_published"
            and "previously_published" in out[0]["detail"]
        )
    # The emulator's own answers are honoured too: every paper marked Yes is left out.
    marked = {
        f
        for f, n in emu.venue.notes.items()
        if n.get("content", {}).get("previously_published", {}).get("value") == "Yes"
    }
    data = suggest(chairs, "--count", "200")
    assert marked & set(accepted(emu)), "the venue should have accepted papers marked as published"
    assert not marked & {p["forum_id"] for p in data["shortlist"]}
    assert "previously published" in chairs.cli("talks", "suggest").stdout


def test_papers_with_too_few_reviews_are_left_out(chairs: Setup) -> None:
    assert chairs.cli("pull", "--no-push").returncode == 0
    truth = chairs.emu.truth("chair")
    counts: dict[str, int] = {}
    for r in truth["replies"].values():
        if r["kind"] == "review" and r["rating"] is not None:
            counts[r["forum"]] = counts.get(r["forum"], 0) + 1
    few = {f for f in accepted(chairs.emu) if counts.get(f, 0) < 3}
    assert few, "the BGPT venue has accepted papers with missing reviews"
    data = suggest(chairs, "--count", "200")
    assert not few & {p["forum_id"] for p in data["shortlist"]}
    left = {lo["forum_id"]: lo for lo in data["left_out"] if lo["why"] == "too_few_reviews"}
    published = {lo["forum_id"] for lo in data["left_out"] if lo["why"] == "previously_published"}
    assert few - published == set(left)
    assert all("talk_selection.min_reviews = 3" in lo["detail"] for lo in left.values())


def test_exclude_field_needs_its_values(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(
        tmp_path, emulator, extra='[talk_selection]\nexclude_field = "previously_published"\n'
    )
    r = Setup(emulator, tmp_path, config, tmp_path / "orsync.db").cli("talks", "suggest")
    assert r.returncode == 2 and "talk_selection" in r.stderr and "exclude_values" in r.stderr


# -- the ranking itself, on papers built here ------------------------------------------------------

# Titles that share no word, so only keywords or a deliberate copy make two papers one topic.
TOPICS = [
    "graph neural networks",
    "protein folding",
    "speech recognition",
    "robot locomotion",
    "causal inference",
    "quantum chemistry",
    "image segmentation",
    "weather forecasting",
]


def paper(
    number: int,
    *,
    topic: int | None = None,
    keywords: tuple[str, ...] | None = None,
    status: str = "accepted",
    content: dict[str, Any] | None = None,
    decision_accepts: bool | None = None,
) -> dict[str, Any]:
    """A submission as ``pool.talk_pool`` returns it."""
    words = TOPICS[number % len(TOPICS) if topic is None else topic]
    return {
        "id": f"forum{number}",
        "number": number,
        "title": words.title(),
        "abstract": "",
        "keywords": list(keywords if keywords is not None else (words,)),
        "status": status,
        "decision": None,
        "decision_accepts": decision_accepts,
        "raw": json.dumps({"content": content or {}}),
    }


def talk_pool(
    *papers: tuple[dict[str, Any], list[float | None], list[float | None] | None],
) -> TalkPool:
    """Papers with their reviews' ratings (and confidences, None: none given); ratings 1-10."""
    return TalkPool(
        submissions=[p for p, _, _ in papers],
        scores={
            p["id"]: [
                ReviewScores(r, c)
                for r, c in zip(ratings, confidences or [None] * len(ratings), strict=True)
            ]
            for p, ratings, confidences in papers
        },
        rating_range=(1.0, 10.0),
    )


def shortlist(
    pool: TalkPool, count: int, min_reviews: int = 2, exclude: bool = False
) -> dict[str, Any]:
    selection = TalkSelectionConfig(
        min_reviews=min_reviews,
        exclude_field="previously_published" if exclude else None,
        exclude_values=("Yes",) if exclude else (),
    )
    data: dict[str, Any] = build_shortlist(pool, selection, count).as_dict()
    return data


def numbers(picks: list[dict[str, Any]]) -> list[int]:
    return [p["number"] for p in picks]


def test_papers_are_ranked_by_mean_rating() -> None:
    pool = talk_pool(
        (paper(1), [6, 6, 6], None),
        (paper(2), [9, 7, 8], None),
        (paper(3), [10, 4, 7], None),
        (paper(4), [5, 6, 4], None),
    )
    data = shortlist(pool, 3)
    assert numbers(data["shortlist"]) == [2, 3, 1]
    assert [p["rating_mean"] for p in data["shortlist"]] == [8.0, 7.0, 6.0]
    assert [(p["rank"], p["score_rank"]) for p in data["shortlist"]] == [(1, 1), (2, 2), (3, 3)]
    assert data["candidates"] == 4 and data["passed_over"] == [] and data["left_out"] == []
    # The plain mean decides, not the confidence-weighted one (5 here against 6).
    doubted = talk_pool((paper(1), [6, 6], [5, 5]), (paper(2), [10, 4], [1, 5]))
    assert numbers(shortlist(doubted, 2)["shortlist"]) == [2, 1]


def test_equal_means_go_by_confidence_then_fewer_low_scores_then_number() -> None:
    # Every mean is 7. A rating below 5.5 (the middle of the 1-10 scale used) is a low score.
    pool = talk_pool(
        (paper(1), [6, 8], [5, 1]),  # confidence-weighted 6.33
        (paper(2), [9, 5], [1, 1]),  # weighted 7, one low score
        (paper(3), [7, 7], None),  # weighted 7, no low score
        (paper(4), [7, 7], [2, 2]),  # weighted 7, no low score: after #3 by number
        (paper(5), [8, 6], [5, 1]),  # confidence-weighted 7.67
    )
    data = shortlist(pool, 5)
    assert numbers(data["shortlist"]) == [5, 3, 4, 2, 1]
    by_number = {p["number"]: p for p in data["shortlist"]}
    assert by_number[5]["confidence_weighted_mean"] == pytest.approx(7.667, abs=1e-3)
    assert by_number[1]["confidence_weighted_mean"] == pytest.approx(6.333, abs=1e-3)
    assert by_number[2]["low_scores"] == 1 and by_number[3]["low_scores"] == 0
    assert data["low_score_below"] == 5.5


def test_a_lower_scored_paper_on_a_new_topic_displaces_a_higher_one() -> None:
    pool = talk_pool(
        (paper(1, keywords=("graphs", "message passing")), [9, 9], None),
        (paper(2, keywords=("graphs", "message passing", "pooling")), [8, 8], None),
        (paper(3), [6, 6], None),
        (paper(4), [5, 5], None),
    )
    data = shortlist(pool, 2)
    assert numbers(data["shortlist"]) == [1, 3]
    newcomer = data["shortlist"][1]
    assert newcomer["score_rank"] == 3 and newcomer["rank"] == 2
    assert newcomer["displaced"] == [
        {
            "number": 2,
            "forum_id": "forum2",
            "same_topic_as": 1,
            "reason": "keywords graphs, message passing",
        }
    ]
    assert [(p["number"], p["same_topic_as"]) for p in data["passed_over"]] == [(2, 1)]
    assert data["passed_over"][0]["rating_mean"] > newcomer["rating_mean"]
    text = "\n".join(describe(build_shortlist(pool, TalkSelectionConfig(min_reviews=2), 2)))
    assert "displaced #2 (same topic as #1: keywords graphs, message passing)" in text
    assert "#3 by scores" in text
    # Keywords that mostly differ are different topics: nobody is displaced.
    apart = talk_pool(
        (paper(1, keywords=("graphs", "message passing", "a", "b")), [9, 9], None),
        (paper(2, keywords=("graphs", "c", "d", "e")), [8, 8], None),
        (paper(3), [6, 6], None),
    )
    assert numbers(shortlist(apart, 2)["shortlist"]) == [1, 2]


def test_alike_titles_and_abstracts_are_one_topic_without_keywords() -> None:
    first = paper(1, keywords=())
    copy = paper(2, keywords=())
    first["abstract"] = copy["abstract"] = "Message passing on sparse molecular graphs at scale."
    copy["title"] = first["title"]
    pool = talk_pool((first, [9, 9], None), (copy, [8, 8], None), (paper(3), [5, 5], None))
    data = shortlist(pool, 2)
    assert numbers(data["shortlist"]) == [1, 3]
    assert data["passed_over"][0]["reason"].startswith("similar title and abstract, ")


def test_too_few_topics_fill_the_list_with_the_best_passed_over() -> None:
    same = ("graphs", "message passing")
    pool = talk_pool(
        (paper(1, keywords=same), [9, 9], None),
        (paper(2, keywords=same), [8, 8], None),
        (paper(3, keywords=same), [7, 7], None),
        (paper(4), [6, 6], None),
    )
    data = shortlist(pool, 3)
    assert numbers(data["shortlist"]) == [1, 2, 4]
    filler = data["shortlist"][1]
    assert filler["repeats_topic_of"] == {"number": 1, "reason": "keywords graphs, message passing"}
    assert data["shortlist"][0]["repeats_topic_of"] is None
    assert data["warnings"] == []
    assert shortlist(pool, 5)["warnings"] == ["only 4 candidates for 5 talks"]


def test_a_paper_marked_previously_published_is_left_out_whatever_its_scores() -> None:
    pool = talk_pool(
        (paper(1, content={"previously_published": {"value": " yes "}}), [10, 10], None),
        (paper(2, content={"previously_published": {"value": ["No", "YES"]}}), [10, 9], None),
        (paper(3, content={"previously_published": {"value": "No"}}), [6, 6], None),
        (paper(4), [5, 5], None),
    )
    data = shortlist(pool, 5, exclude=True)
    assert numbers(data["shortlist"]) == [3, 4]
    assert [(lo["number"], lo["why"], lo["detail"]) for lo in data["left_out"]] == [
        (1, "previously_published", "previously_published = 'Yes'"),
        (2, "previously_published", "previously_published = 'Yes'"),
    ]
    assert data["candidates"] == 2
    # Without the rule the same papers lead the list.
    assert numbers(shortlist(pool, 2)["shortlist"]) == [1, 2]


def test_an_exclude_field_no_submission_has_is_an_error_of_the_rules() -> None:
    pool = talk_pool((paper(1), [8, 8], None), (paper(2), [7, 7], None))
    data = shortlist(pool, 2, exclude=True)
    assert numbers(data["shortlist"]) == [1, 2]
    selection = TalkSelectionConfig(exclude_field="previously_published", exclude_values=("Yes",))
    found = exclusions(selection, 2, [(p["id"], p["raw"]) for p in pool.submissions])
    facts = DayFacts(day=Schedule(), talk_refs=(), papers=(), exclusions=found)
    [problem] = validate(facts)
    assert problem.kind == "talk.exclude_field" and problem.severity == "error"
    assert "previously_published" in problem.message and "submission form" in problem.message


def test_papers_with_fewer_rated_reviews_than_min_reviews_are_left_out() -> None:
    pool = talk_pool(
        (paper(1), [10, 10, None], None),  # a review without a rating does not count
        (paper(2), [9], None),
        (paper(3), [6, 6, 6], None),
        (paper(4), [5, 5, 5, 5], None),
    )
    data = shortlist(pool, 5, min_reviews=3)
    assert numbers(data["shortlist"]) == [3, 4]
    assert [(lo["number"], lo["why"], lo["detail"]) for lo in data["left_out"]] == [
        (1, "too_few_reviews", "2 rated reviews (talk_selection.min_reviews = 3)"),
        (2, "too_few_reviews", "1 rated review (talk_selection.min_reviews = 3)"),
    ]
    assert numbers(shortlist(pool, 5, min_reviews=1)["shortlist"]) == [1, 2, 3, 4]


def test_before_decisions_the_active_papers_are_the_pool_less_those_decided_against() -> None:
    pool = talk_pool(
        (paper(1, status="active", decision_accepts=False), [10, 10], None),
        (paper(2, status="active"), [8, 8], None),
        (paper(3, status="withdrawn"), [9, 9], None),
    )
    data = shortlist(pool, 3)
    assert data["pool"] == "active" and numbers(data["shortlist"]) == [2]
    assert [(lo["number"], lo["why"]) for lo in data["left_out"]] == [(1, "decision")]
    # Once any paper is accepted, only accepted papers are candidates.
    accepted_pool = talk_pool((paper(1), [5, 5], None), (paper(2, status="active"), [9, 9], None))
    assert numbers(shortlist(accepted_pool, 3)["shortlist"]) == [1]


def test_the_same_papers_in_any_order_give_the_same_shortlist() -> None:
    entries = [
        (paper(n, keywords=("graphs",) if n % 3 == 0 else None), [float(n % 4 + 5)] * 2, None)
        for n in range(1, 13)
    ]
    first = shortlist(talk_pool(*entries), 5)
    for seed in range(5):
        shuffled = entries[:]
        random.Random(seed).shuffle(shuffled)
        assert shortlist(talk_pool(*shuffled), 5) == first
    assert len(first["shortlist"]) == 5 and first["passed_over"]


# -- the talks already set, and the pool before the release -----------------------------------------


def published(emu: Emulator) -> set[str]:
    return {
        f
        for f, n in emu.venue.notes.items()
        if n.get("content", {}).get("previously_published", {}).get("value") == "Yes"
    }


def test_suggest_says_first_what_is_wrong_with_the_talks_set(
    tmp_path: Path, emulator: Emulator
) -> None:
    truth = accepted(emulator)
    marked = min(s["number"] for f, s in truth.items() if f in published(emulator))
    clean = min(s["number"] for f, s in truth.items() if f not in published(emulator))
    config = day_config(tmp_path, emulator, [marked, clean, clean])
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    assert s.cli("pull", "--no-push").returncode == 0
    data = suggest(s)
    assert [p["kind"] for p in data["problems"]] == ["talk.previously_published", "talk.duplicate"]
    lines = s.cli("talks", "suggest").stdout.splitlines()
    assert lines[0].startswith(f"error: talks[1] paper = {marked}: #{marked} is marked previously")
    assert lines[1].startswith(f"error: #{clean} has two contributed talks: talks[2]")
    # A field the form does not have is said at the top too, not on the last line.
    config.write_text(config.read_text().replace('"previously_published"', '"prior_work"'))
    lines = s.cli("talks", "suggest").stdout.splitlines()
    assert lines[0].startswith(
        "error: no submission has the field talk_selection.exclude_field = 'prior_work'"
    )
    assert "prior_work" not in "\n".join(lines[1:])


def test_talks_are_picked_before_the_release_and_the_site_waits(tmp_path: Path) -> None:
    with Emulator(dataset="bgpt", seed=7, phase="review", hold_decisions=True) as emu:
        emu.advance("decision")
        truth = emu.truth("chair")["submissions"]
        decided = sorted(
            t["number"]
            for f, t in truth.items()
            if t["status"] == "active"
            and (t["decision"] or "").startswith("Accept")
            and f not in published(emu)
        )
        assert decided and not accepted(emu), "decisions must be held, not released"
        s = Setup(emu, tmp_path, day_config(tmp_path, emu, []), tmp_path / "orsync.db")
        assert s.cli("pull").returncode == 0
        site = tmp_path / "site"
        before = {p.name: p.read_bytes() for p in site.iterdir() if p.is_file()}
        assert json.loads(before["papers.json"]) == []
        talk = decided[0]
        day_config(tmp_path, emu, [talk])  # the chairs pick the first talk, before the release

        check = json.loads(s.cli("check", "--json").stdout)
        talks = {c["name"]: c for c in check["checks"] if not c.get("warning")}["talks"]
        assert talks["ok"], talks
        assert talks["detail"].startswith("1 talk papers are accepted papers (1 decided, not rel")
        data = suggest(s)
        assert data["pool"] == "decided" and data["shortlist"]
        assert all(p["decided_not_released"] for p in data["shortlist"])
        assert {p["number"] for p in data["shortlist"]} <= set(decided)
        text = s.cli("talks", "suggest").stdout
        assert "(no decisions yet)" not in text and "(decided, not released)" in text
        program = s.cli("program", "--json")
        assert program.returncode == 0, program.stdout
        slot = next(x for x in json.loads(program.stdout)["slots"] if x["kind"] == "contributed")
        assert slot["decided"]["number"] == talk and slot["decided"]["released"] is False
        assert f"#{talk} " in s.cli("program").stdout

        # The public files do not change until OpenReview releases the decisions.
        pushed = s.cli("push")
        assert pushed.returncode == 0, pushed.stderr
        after = {p.name: p.read_bytes() for p in site.iterdir() if p.is_file()}
        assert after == before
        title = next(t["title"] for t in truth.values() if t["number"] == talk)
        assert not any(title.encode() in body for body in after.values())


def test_accepts_decided_but_not_released_are_the_pool_marked_so() -> None:
    pool = talk_pool(
        (paper(1, status="active", decision_accepts=True), [7, 7], None),
        (paper(2, status="active"), [9, 9], None),  # no decision yet: not a candidate now
        (paper(3, status="active", decision_accepts=False), [10, 10], None),
        (paper(4), [6, 6], None),  # released
    )
    data = shortlist(pool, 3)
    assert data["pool"] == "decided" and numbers(data["shortlist"]) == [1, 4]
    assert [p["decided_not_released"] for p in data["shortlist"]] == [True, False]
    assert data["decided_not_released"] == 1
    assert [(lo["number"], lo["why"]) for lo in data["left_out"]] == [(3, "decision")]
    text = "\n".join(describe(build_shortlist(pool, TalkSelectionConfig(min_reviews=2), 3)))
    assert " 1. #1 (decided, not released)  mean 7.00" in text
    assert "(some decided, not released)" in text and "no decisions yet" not in text
