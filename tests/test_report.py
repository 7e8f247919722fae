"""`orsync report`: figures from the store that agree with the venue, and a safe HTML page."""

from __future__ import annotations

import json
from collections import Counter

from conftest import Setup


def test_report_figures_and_html(setup: Setup) -> None:
    truth = setup.emu.truth("chair")
    counts = Counter(r["forum"] for r in truth["replies"].values() if r["kind"] == "review")
    # A paper the report lists (fewer than 3 reviews), so its title reaches the page.
    hostile_forum = next(
        f for f, s in truth["submissions"].items() if s["status"] == "rejected" and counts[f] < 3
    )
    setup.emu.edit_content(hostile_forum, title="<script>alert('owned')</script>")
    assert setup.cli("pull").returncode == 0
    truth = setup.emu.truth("chair")
    html = setup.dir / "report.html"
    result = setup.cli("report", "--html", str(html), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["by_status"] == dict(
        sorted(Counter(s["status"] for s in truth["submissions"].values()).items())
    )
    reviews = [r for r in truth["replies"].values() if r["kind"] == "review"]
    assert data["reviews"] == len(reviews)
    assert sum(data["rating_histogram"].values()) == sum(
        1 for r in reviews if r["rating"] is not None
    )
    assert data["decisions"] == dict(
        sorted(
            Counter(s["decision"] for s in truth["submissions"].values() if s["decision"]).items()
        )
    )
    per_paper = Counter(r["forum"] for r in reviews)
    under_review = [
        f
        for f, s in truth["submissions"].items()
        if s["status"] in ("active", "accepted", "rejected")
    ]
    assert len(data["missing_reviews"]) == sum(1 for f in under_review if per_paper[f] < 3)
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "<script>" not in page, "titles are escaped"
    assert any(m["title"].startswith("<script>") for m in data["missing_reviews"])
    assert "&lt;script&gt;alert(&#39;owned&#39;)&lt;/script&gt;" in page
    human = setup.cli("report", "--html", str(html))
    assert human.returncode == 0 and "review completion" in human.stdout


def test_report_lists_every_paper_what_is_missing_and_what_is_overdue(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    truth = setup.emu.truth("chair")
    reviews = [r for r in truth["replies"].values() if r["kind"] == "review"]
    per_paper = Counter(r["forum"] for r in reviews)
    under_review = {
        s["number"]: per_paper[f]
        for f, s in truth["submissions"].items()
        if s["status"] in ("active", "accepted", "rejected")
    }
    html = setup.dir / "report.html"
    past = setup.cli(
        "report", "--html", str(html), "--json", "--expected-reviews", "4", "--due", "2000-01-01"
    )
    assert past.returncode == 0, past.stderr
    data = json.loads(past.stdout)
    # Every paper under review, not a top 10, its review count beside its mean.
    assert {p["number"]: p["reviews"] for p in data["papers"]} == under_review
    assert len(data["papers"]) > 10 and all("rating_mean" in p for p in data["papers"])
    # Missing: against the expected count given, with how many.
    short = {n: 4 - c for n, c in under_review.items() if c < 4}
    assert {m["number"]: m["missing"] for m in data["missing_reviews"]} == short
    assert data["expected_reviews"] == 4
    # The deadline has passed: every missing review is overdue.
    assert {m["number"] for m in data["overdue"]} == set(short)
    future = json.loads(
        setup.cli("report", "--html", str(html), "--json", "--due", "2999-01-01").stdout
    )
    assert future["overdue"] == [] and future["due"].startswith("2999-01-01")
    human = setup.cli("report", "--html", str(html), "--due", "2000-01-01", env={"COLUMNS": "200"})
    assert human.returncode == 0, human.stderr
    # The default expectation (3): how many of them each paper lacks, and what is overdue.
    owed = sum(3 - c for c in under_review.values() if c < 3)
    assert f"overdue: {owed} reviews" in human.stdout
    first = min(under_review)
    assert any(
        line.split()[:2] == [f"#{first}", str(under_review[first])]
        for line in human.stdout.splitlines()
    )
    page = html.read_text()
    assert "Every paper under review" in page and "Overdue reviews" in page
