"""`orsync export`: the store's papers, submissions and reviews as files a spreadsheet opens
safely."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta

from conftest import Setup


def test_export_csv_neutralises_formulas(setup: Setup) -> None:
    forum = next(iter(setup.emu.truth("chair")["submissions"]))
    setup.emu.edit_content(forum, title='=HYPERLINK("http://evil","x")')
    pulled = setup.cli("pull", "--json")
    assert pulled.returncode == 0, pulled.stderr
    result = setup.cli("export", "--what", "submissions", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = {r["forum_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows[forum]["title"] == '\'=HYPERLINK("http://evil","x")'
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows.values() for v in r.values())


def test_export_csv_writes_ids_exactly(setup: Setup) -> None:
    """An OpenReview id may begin with "-": guarded like text it would name no note."""
    dash = setup.emu.add_submission(note_id="-k9xQ2Lm_A")
    setup.emu.edit_content(dash, title="-1 is a formula to a spreadsheet")
    review = setup.emu.add_review(dash)
    pulled = setup.cli("pull", "--json")
    assert pulled.returncode == 0, pulled.stderr
    result = setup.cli("export", "--what", "submissions", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = {r["forum_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["-k9xQ2Lm_A"]["title"] == "'-1 is a formula to a spreadsheet"
    reviews = setup.cli("export", "--what", "reviews", "--format", "csv")
    assert reviews.returncode == 0, reviews.stderr
    found = [r for r in csv.DictReader(io.StringIO(reviews.stdout)) if r["id"] == review]
    assert [r["forum"] for r in found] == ["-k9xQ2Lm_A"]


def test_export_reviews_carry_the_paper_number_and_iso_times(setup: Setup) -> None:
    assert setup.cli("pull").returncode == 0
    truth = setup.emu.truth("chair")
    numbers = {f: s["number"] for f, s in truth["submissions"].items()}
    result = setup.cli("export", "--what", "reviews")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows and all(r["number"] == numbers[r["forum"]] for r in rows)
    for row in rows:
        for key in ("cdate", "tmdate"):
            when = datetime.fromisoformat(row[key])  # ISO 8601, not epoch milliseconds
            assert when.utcoffset() == timedelta(0), row[key]
    table = setup.cli("export", "--what", "reviews", "--format", "csv")
    first = next(csv.DictReader(io.StringIO(table.stdout)))
    assert first["number"].isdigit() and datetime.fromisoformat(first["tmdate"])
