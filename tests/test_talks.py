"""Talk selection: `orsync talks suggest` through the CLI against the emulator's BGPT venue,
and the ranking itself (orsync.talks) on papers built in the test."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup, write_config
from helpers import SELECTION, accepted
from orsync.emulator import Emulator


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
