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
