"""`orsync push` and the poster commands end to end: the CLI, emulator, real files."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from conftest import Setup
from helpers import SESSIONS, TALKS, at, website_config
from orsync.emulator import Emulator


@pytest.fixture
def site(tmp_path: Path, emulator: Emulator) -> Setup:
    truth = emulator.truth("chair")["submissions"]
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")
    config = website_config(tmp_path, emulator, orals)
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def papers_json(site: Setup) -> list[dict[str, object]]:
    return json.loads((site.dir / "site" / "papers.json").read_text())


def placements(site: Setup) -> dict[str, tuple[str, int]]:
    return {p["id"]: (p["session"]["id"], p["board"]) for p in papers_json(site)}  # type: ignore[index,misc]


def hook_runs(site: Setup) -> list[list[str]]:
    log = site.dir / "hook.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_files_hold_exactly_the_accepted_papers_and_public_fields(site: Setup) -> None:
    # A real process: what its on_change child inherits from its environment is the point.
    result = site.cli("pull", env={"ORSYNC_OPENREVIEW_PASSWORD": "unused-but-secret"}, process=True)
    assert result.returncode == 0, result.stderr
    truth = site.emu.truth("chair")
    accepted = {f for f, s in truth["submissions"].items() if s["status"] == "accepted"}
    papers = papers_json(site)
    assert {p["id"] for p in papers} == accepted
    assert [p["number"] for p in papers] == sorted(p["number"] for p in papers)  # type: ignore[type-var]
    assert all(
        set(p)
        == {
            "id",
            "number",
            "title",
            "authors",
            "keywords",
            "abstract",
            "tldr",
            "pdf_url",
            "forum_url",
            "decision",
            "presentation",
            "talk",
            "session",
            "board",
        }
        for p in papers
    )
    others = set(truth["submissions"]) - accepted
    everything = "".join(
        (site.dir / "site" / name).read_text()
        for name in ("papers.json", "papers.yml", "papers.csv", "posters.json")
    )
    assert not any(forum in everything for forum in others), (
        "nothing from rejected, withdrawn, hidden papers"
    )
    assert not any(reply in everything for reply in truth["replies"]), "no review or comment ids"
    assert "Reviewer_" not in everything and "@" not in everything.replace("@context", "")
    for raw in (site.dir / "site" / "posters.json",):
        sessions = json.loads(raw.read_text())
        assert [s["id"] for s in sessions] == ["P1", "P2", "P3", "P4"]
        assert sum(len(s["papers"]) for s in sessions) == len(accepted)
        for s in sessions:
            assert len(s["papers"]) <= 25
            boards = [p["board"] for p in s["papers"]]
            assert boards == sorted(boards) and len(set(boards)) == len(boards)
    runs = hook_runs(site)
    assert len(runs) == 1
    assert not any(
        "PASSWORD" in k or k == "CREDENTIALS_DIRECTORY" or k == "NOTIFY_SOCKET" for k in runs[0]
    )


def test_push_with_nothing_changed_rewrites_nothing(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    files = sorted((site.dir / "site").iterdir())
    before = {f.name: (f.stat().st_mtime_ns, f.read_bytes()) for f in files}
    assert len(hook_runs(site)) == 1
    assert site.cli("push").returncode == 0
    assert site.cli("pull").returncode == 0
    after = {
        f.name: (f.stat().st_mtime_ns, f.read_bytes())
        for f in sorted((site.dir / "site").iterdir())
    }
    assert after == before
    assert len(hook_runs(site)) == 1, "on_change runs only when a file changed"


def test_hostile_text_survives_as_data_and_csv_is_neutralised(site: Setup) -> None:
    truth = site.emu.truth("chair")["submissions"]
    accepted = sorted((s["number"], f) for f, s in truth.items() if s["status"] == "accepted")
    hostile = {
        accepted[0][1]: {
            "title": "<script>alert('x')</script> & <b>bold</b>",
            "abstract": '=HYPERLINK("http://evil","x")',
        },
        accepted[1][1]: {
            "title": "+SUM(A1:A2)",
            "abstract": "line one\u2028line two\u2029end " + "long " * 200_000,
        },
        accepted[2][1]: {"title": "-2+3", "abstract": "@cmd|' /C calc'!A0"},
        accepted[3][1]: {"title": "\tTabbed", "abstract": "\rreturn"},
    }
    for forum, fields in hostile.items():
        site.emu.edit_content(forum, **fields)
    result = site.cli("pull")
    assert result.returncode == 0, result.stderr
    out = site.dir / "site"
    papers = {p["id"]: p for p in json.loads((out / "papers.json").read_text())}
    yml = {p["id"]: p for p in yaml.safe_load((out / "papers.yml").read_text())}
    assert yml == papers
    assert papers[accepted[0][1]]["title"] == "<script>alert('x')</script> & <b>bold</b>"
    assert "\u2028" in papers[accepted[1][1]]["abstract"]  # type: ignore[operator]
    assert "\\u2028" in (out / "papers.json").read_text(), "U+2028 escaped for JavaScript readers"
    csv.field_size_limit(sys.maxsize)
    rows = list(csv.DictReader(io.StringIO((out / "papers.csv").read_text(), newline="")))
    assert [r["UID"] for r in rows] == [p for p in papers]
    for row in rows:
        for key in ("title", "abstract", "authors", "keywords", "sessions"):
            assert not row[key].startswith(("=", "+", "-", "@", "\t", "\r")), (key, row[key][:30])
        paper = papers[row["UID"]]
        title = str(paper["title"])
        assert row["title"] == (
            "'" + title if title[:1] in ("=", "+", "-", "@", "\t", "\r") else title
        )
        assert row["authors"].removeprefix("'") == "|".join(paper["authors"])  # type: ignore[arg-type]
        assert row["board"] == str(paper["board"])


def test_late_accepts_and_a_withdrawal_move_no_other_paper(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    before = placements(site)
    truth = site.emu.truth("chair")["submissions"]
    rejected = sorted((s["number"], f) for f, s in truth.items() if s["status"] == "rejected")
    late = [f for _, f in rejected[:3]]
    for forum in late:
        site.emu.set_decision(forum, "Accept (Poster)")
    gone = sorted(before)[5]
    site.emu.withdraw(gone)
    result = site.cli("pull")
    assert result.returncode == 0, result.stderr
    after = placements(site)
    assert set(after) == (set(before) - {gone}) | set(late)
    for forum, place in before.items():
        if forum != gone:
            assert after[forum] == place, "a paper already announced changed session or board"
    # The withdrawn paper's board is not reused by a shift of others.
    counts: dict[str, int] = {}
    for session, _ in after.values():
        counts[session] = counts.get(session, 0) + 1
    assert max(counts.values()) <= 25


def test_talks_never_overlap_their_posters(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    truth = site.emu.truth("chair")["submissions"]
    orals = sorted((s["number"], f) for f, s in truth.items() if s["presentation"] == "oral")
    sessions = {sid: (at(a), at(b)) for sid, a, b in SESSIONS}
    place = placements(site)
    assert orals, "the venue has orals, so the talks constrain something"
    for (number, forum), (start, end) in zip(orals[: len(TALKS)], TALKS[: len(orals)], strict=True):
        s_start, s_end = (datetime.fromisoformat(x) for x in sessions[place[forum][0]])
        t_start, t_end = datetime.fromisoformat(at(start)), datetime.fromisoformat(at(end))
        assert t_end <= s_start or s_end <= t_start, f"paper {number}'s talk overlaps its poster"


def test_pin_holds_across_cycles(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    place = placements(site)
    papers = papers_json(site)
    # A poster-only paper (no talk to collide with), pinned away from where the solver put it,
    # so the pin has to move it.
    target = next(p for p in papers if p["presentation"] == "poster")
    other = next(sid for sid, _, _ in SESSIONS if sid != place[target["id"]][0])  # type: ignore[index]
    result = site.cli("posters", "pin", str(target["number"]), other)
    assert result.returncode == 0, result.stderr
    site.emu.add_review(str(target["id"]))
    assert site.cli("pull").returncode == 0
    assert placements(site)[target["id"]][0] == other  # type: ignore[index]
    shown = json.loads(site.cli("posters", "show", "--json").stdout)
    assert any(
        r["forum_id"] == target["id"] and r["pinned"] and r["session_id"] == other for r in shown
    )
    bad = site.cli("posters", "pin", str(target["number"]), "P9")
    assert bad.returncode == 2 and "unknown poster session" in bad.stderr
    assert site.cli("posters", "unpin", str(target["number"])).returncode == 0


def test_accepted_papers_view_carries_the_assignment(site: Setup) -> None:
    import sqlite3

    assert site.cli("pull").returncode == 0
    con = sqlite3.connect(site.db)
    rows = con.execute(
        "SELECT forum_id, session_id, session_name, session_start, board FROM accepted_papers"
    ).fetchall()
    assert rows and all(r[1] and r[2] and r[3] and r[4] for r in rows)
    assert {r[0]: (r[1], r[4]) for r in rows} == placements(site)
