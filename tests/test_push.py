"""`orsync push` and the poster commands end to end: the CLI, emulator, real files."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from conftest import Setup, run_cli
from helpers import SESSIONS, TALKS, at, day_config, website_config
from orsync.emulator import Emulator
from orsync.files import no_space


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


def site_files(site: Setup) -> dict[str, tuple[bytes, int, int]]:
    """Each file's bytes, inode and modification time: a file written again changes the last two."""
    out = {}
    for f in sorted((site.dir / "site").iterdir()):
        st = f.stat()
        out[f.name] = (f.read_bytes(), st.st_ino, st.st_mtime_ns)
    return out


def pulled_push(site: Setup) -> dict[str, object]:
    result = site.cli("pull", "--json")
    assert result.returncode == 0, result.stderr
    push: dict[str, object] = json.loads(result.stdout)["push"]
    return push


def test_a_pass_with_nothing_changed_renders_nothing(site: Setup) -> None:
    first = pulled_push(site)
    assert first["rendered"] is True
    before = site_files(site)
    again = pulled_push(site)
    assert again["rendered"] is False, "nothing changed: the pass's push renders nothing"
    assert again["changed"] == [] and again["papers"] == first["papers"]
    assert site_files(site) == before, "byte-identical, not written again (inode, mtime)"
    assert len(hook_runs(site)) == 1
    # `orsync push` by hand always renders (the chairs' way to see every clash again).
    assert site.cli("push").returncode == 0
    assert site_files(site) == before


def test_a_pass_renders_again_when_any_input_changed(site: Setup) -> None:
    assert pulled_push(site)["rendered"] is True
    out = site.dir / "site"
    papers = papers_json(site)
    # A public field of an accepted paper.
    site.emu.edit_content(str(papers[0]["id"]), title="A title edited on OpenReview")
    push = pulled_push(site)
    assert push["rendered"] is True and "papers.json" in push["changed"]  # type: ignore[operator]
    assert papers_json(site)[0]["title"] == "A title edited on OpenReview"
    assert pulled_push(site)["rendered"] is False
    # A pin (its command pushes at once; the next pass has nothing left to render).
    place = placements(site)
    target = next(p for p in papers if p["presentation"] == "poster")
    other = next(sid for sid, _, _ in SESSIONS if sid != place[str(target["id"])][0])
    assert site.cli("posters", "pin", str(target["number"]), other).returncode == 0
    assert placements(site)[str(target["id"])][0] == other
    assert pulled_push(site)["rendered"] is False
    # A late accept: a new paper placed and published.
    truth = site.emu.truth("chair")["submissions"]
    late = min((s["number"], f) for f, s in truth.items() if s["status"] == "rejected")[1]
    site.emu.set_decision(late, "Accept (Poster)")
    assert pulled_push(site)["rendered"] is True
    assert late in placements(site)
    assert pulled_push(site)["rendered"] is False
    # The config: a session's name.
    text = site.config.read_text()
    site.config.write_text(text.replace('name = "Session P1"', 'name = "Morning posters"'))
    assert pulled_push(site)["rendered"] is True
    assert "Morning posters" in (out / "posters.json").read_text()
    assert pulled_push(site)["rendered"] is False
    # A published file deleted, or edited, by hand is written again.
    before = (out / "papers.csv").read_bytes()
    (out / "papers.csv").unlink()
    assert pulled_push(site)["rendered"] is True
    assert (out / "papers.csv").read_bytes() == before
    (out / "papers.json").write_text("[]")
    assert pulled_push(site)["rendered"] is True
    assert len(papers_json(site)) == len(papers) + 1
    assert pulled_push(site)["rendered"] is False
    # A review changes nothing the site shows: nothing is rendered.
    site.emu.add_review(str(papers[1]["id"]))
    assert pulled_push(site)["rendered"] is False


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


# -- moves of published posters (docs/workshop.md#moves-of-published-posters) --------------------


def talk_into_its_session(site: Setup) -> tuple[int, str, str, tuple[str, int]]:
    """Move the first talk into its paper's own poster session, 20 minutes in, as a typo would.

    Returns the paper's number and forum id, the talk's new start (HH:MM) and its published place.
    """
    papers = papers_json(site)
    text = site.config.read_text(encoding="utf-8")
    number = int(text.split("[[talks]]\npaper = ", 1)[1].split("\n", 1)[0])
    paper = next(p for p in papers if p["number"] == number)
    place = placements(site)[str(paper["id"])]
    start = next(s for sid, s, _ in SESSIONS if sid == place[0])
    begins = datetime.strptime(start, "%H:%M")
    new_start, new_end = ((begins + timedelta(minutes=m)).strftime("%H:%M") for m in (20, 30))
    old_talk = f'paper = {number}\nstart = "{at(TALKS[0][0])}"\nend = "{at(TALKS[0][1])}"'
    assert old_talk in text
    site.config.write_text(
        text.replace(
            old_talk, f'paper = {number}\nstart = "{at(new_start)}"\nend = "{at(new_end)}"'
        ),
        encoding="utf-8",
    )
    return number, str(paper["id"]), new_start, place


def test_a_forced_move_is_reported_with_its_reason_and_undone_with_the_change(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    published = placements(site)
    original = site.config.read_text(encoding="utf-8")
    number, forum, when, (session, board) = talk_into_its_session(site)

    moved = site.cli("push")
    assert moved.returncode == 0, moved.stderr
    now = placements(site)
    assert now[forum][0] != session
    target = f"{now[forum][0]}/{now[forum][1]}"
    line = f"#{number} {session}/{board} → {target} because its talk at {when} overlaps {session}"
    assert f"poster moved: {line}" in moved.stdout
    # Every published poster whose place changed is listed, none silently.
    changed = {f for f, place in now.items() if published[f] != place}
    assert moved.stdout.count("poster moved: ") == len(changed)
    logged = [json.loads(x) for x in moved.stderr.splitlines() if '"poster moved"' in x]
    assert {e["forum_id"] for e in logged} == changed
    assert any(e["reason"] == f"its talk at {when} overlaps {session}" for e in logged)
    status = json.loads(site.cli("status", "--json").stdout)
    last = status["posters"]["last_moves"]
    assert line in last["lines"]
    assert {m["forum_id"] for m in last["moves"]} == changed
    assert line in site.cli("status").stdout

    # The typo fixed: every paper goes back where it was published, and that is reported too.
    site.config.write_text(original, encoding="utf-8")
    back = site.cli("push", "--json")
    assert back.returncode == 0, back.stderr
    assert placements(site) == published
    moves = json.loads(back.stdout)["moved"]
    assert {m["forum_id"] for m in moves} == changed
    ours = next(m for m in moves if m["forum_id"] == forum)
    assert ours["paper"] == number
    assert ours["from"] == {"session": now[forum][0], "board": now[forum][1]}
    assert ours["to"] == {"session": session, "board": board}
    assert ours["cause"] == "restored" and ours["reason"]
    again = site.cli("push", "--json")
    assert json.loads(again.stdout)["moved"] == [], "a move is reported once, when it is published"


def test_announced_posters_never_move_by_themselves(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    published = placements(site)
    frozen = site.cli("posters", "freeze", "--json")
    assert frozen.returncode == 0, frozen.stderr
    facts = json.loads(frozen.stdout)
    assert facts["places"] == len(published) and facts["already"] is False
    assert sum(facts["sessions"].values()) == len(published)
    assert "already frozen" in site.cli("posters", "freeze").stdout
    number, forum, when, (session, board) = talk_into_its_session(site)
    # A title edited meanwhile: the metadata must still reach the site.
    site.emu.edit_content(forum, title="A corrected title")

    failed = site.cli("pull")
    assert failed.returncode == 2, failed.stderr
    assert (
        f"#{number} cannot stay at {session}/{board}: its talk at {when} overlaps {session} "
        f"(move the talk, or pin #{number} to another session with orsync posters pin {number} "
    ) in failed.stderr
    assert placements(site) == published, "nothing moved"
    assert next(p for p in papers_json(site) if p["id"] == forum)["title"] == "A corrected title"
    assert "poster moved" not in failed.stdout
    status = json.loads(site.cli("status", "--json").stdout)
    assert status["posters"]["announced_by"] == "freeze"
    assert status["last_push"]["outcome"] == "failed"

    # The chairs decide: a pin still moves the paper, and says so.
    other = next(sid for sid, _, _ in SESSIONS if sid != session)
    pinned = site.cli("posters", "pin", str(number), other)
    assert pinned.returncode == 0, pinned.stderr
    assert f"poster moved: #{number} {session}/{board} → {other}/" in pinned.stdout
    assert f"because it is pinned to {other}" in pinned.stdout
    after = placements(site)
    assert after[forum][0] == other
    assert {f: p for f, p in after.items() if f != forum} == {
        f: p for f, p in published.items() if f != forum
    }
    assert site.cli("push").returncode == 0


def test_announced_in_the_config_fails_the_push_with_the_conflicts(site: Setup) -> None:
    assert site.cli("pull").returncode == 0
    published = placements(site)
    _, forum, _, (session, board) = talk_into_its_session(site)
    text = site.config.read_text(encoding="utf-8")
    site.config.write_text(text.replace("[posters]\n", "[posters]\nannounced = true\n"), "utf-8")
    result = site.cli("push", "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert "posters.announced = true" in data["error"]
    [conflict] = data["conflicts"]
    assert conflict["forum_id"] == forum and conflict["cause"] == "talk"
    assert conflict["from"] == {"session": session, "board": board}
    assert placements(site) == published


def test_warnings_are_said_once_and_quiet_passes_say_nothing(
    tmp_path: Path, emulator: Emulator
) -> None:
    # One poster session: every accepted pair that shares an author clashes, a warning that
    # holds on every pass after it first appears.
    config = website_config(tmp_path, emulator, [], boards=200)
    text = config.read_text()
    first, _, rest = text.partition("[[posters.sessions]]")
    config.write_text(first + "[[posters.sessions]]" + rest.split("[[posters.sessions]]")[0])
    site = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    pulled = site.cli("pull")
    assert pulled.returncode == 0, pulled.stderr
    said = [line for line in pulled.stderr.splitlines() if line.startswith("warning: ")]
    assert any("share" in line for line in said), pulled.stderr
    again = site.cli("pull", "-q")
    assert again.returncode == 0, again.stderr
    assert (again.stdout, again.stderr) == ("", ""), "an unchanged venue: nothing to say"
    pushed = site.cli("push")
    assert pushed.returncode == 0, pushed.stderr
    assert "warning:" not in pushed.stderr and "warnings given before still hold" in pushed.stdout
    # `status` and `posters show` keep every one of them.
    warned = json.loads(site.cli("status", "--json").stdout)["push_warnings"]
    assert [f"warning: {w}" for w in warned] == said
    status = site.cli("status", env={"COLUMNS": "400"})
    shown = site.cli("posters", "show")
    for line in said:
        assert line.removeprefix("warning: ") in status.stdout
        assert line in shown.stdout


def test_hidden_authors_are_said_hidden_and_never_invented(site: Setup) -> None:
    truth = site.emu.truth("chair")["submissions"]
    orals = sorted((s["number"], f) for f, s in truth.items() if s["presentation"] == "oral")
    number, forum = orals[0]  # it has a contributed talk: on the program and in the page
    text = site.config.read_text()
    site.config.write_text(
        text.replace('output_dir = "site"', 'output_dir = "site"\nformats = ["json", "html"]')
    )
    venue = site.emu.venue_id
    site.emu.set_readers(forum, [venue, f"{venue}/Submission{number}/Authors"], field="authors")
    assert site.cli("pull").returncode in (0, 2)
    paper = next(p for p in papers_json(site) if p["id"] == forum)
    assert paper["authors"] == []  # absence stays absence in the data files
    assert "hidden until" not in (site.dir / "site" / "papers.json").read_text()
    page = (site.dir / "site" / "index.html").read_text()
    article = page[page.index(f'id="paper-{number}"') :]
    article = article[: article.index("</article>")]
    assert "authors hidden until the release" in article
    talk = page[: page.index('id="papers"')]
    assert talk.count("authors hidden until the release") == 1  # the talk's line in the program
    program = site.cli("program", env={"COLUMNS": "200"})
    lines = program.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if f"#{number} " in line)
    assert lines[at + 1].strip() == "authors hidden until the release", program.stdout
    shown = site.cli("posters", "show", env={"COLUMNS": "200"}).stdout
    assert "authors hidden until the release" in shown
    assert not any(line.strip(" │|") == "" for line in shown.splitlines()[3:-1])


def test_a_format_that_cannot_be_rendered_keeps_its_file_and_the_others_publish(
    tmp_path: Path, emulator: Emulator
) -> None:
    """A slot in the year 9999 is valid config, but the calendar's time zone block reaches into
    the year after it, which no date can hold: the calendar alone fails. The push says which
    format and why (exit 2), schedule.ics stays as it was, and every other file is published
    with the bytes a push without the calendar writes."""
    config = day_config(tmp_path, emulator, [])
    first = run_cli("--config", str(config), "pull")
    assert first.returncode == 0, first.stderr
    site = tmp_path / "site"
    calendar_before = (site / "schedule.ics").read_bytes()
    far = (
        '\n[[program.slots]]\nkind = "other"\ntitle = "The last talk"\n'
        'start = "9999-12-31T20:00:00+01:00"\nend = "9999-12-31T21:00:00+01:00"\n'
    )
    config.write_text(config.read_text() + far)
    result = run_cli("--config", str(config), "push")
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("orsync: error:")]
    assert errors == [
        "orsync: error: website format ics could not be rendered (ValueError: year 10000 is "
        "out of range); schedule.ics left as it was (the other formats are published)"
    ], result.stderr
    assert (site / "schedule.ics").read_bytes() == calendar_before
    program = json.loads((site / "program.json").read_text())
    assert any(s["title"] == "The last talk" for s in program["slots"])
    assert "The last talk" in (site / "index.html").read_text()
    status = json.loads(run_cli("--config", str(config), "status", "--json").stdout)
    assert status["last_push"]["outcome"] == "failed"
    assert "website format ics" in status["last_push"]["error"]

    # The same store and day without the calendar, into another folder: the same bytes.
    other = tmp_path / "other.toml"
    other.write_text(
        config.read_text()
        .replace('output_dir = "site"', 'output_dir = "site2"')
        .replace('"ics", ', "")
    )
    again = run_cli("--config", str(other), "push")
    assert again.returncode == 0, again.stderr
    written = sorted(p.name for p in (tmp_path / "site2").iterdir())
    assert written == sorted(p.name for p in site.iterdir() if p.name != "schedule.ics")
    for name in written:
        assert (tmp_path / "site2" / name).read_bytes() == (site / name).read_bytes(), name
    hook_log = (tmp_path / "hook.log").read_text().splitlines()
    assert len(hook_log) == 3  # the first push, the one that failed a format, the other site


# -- a full disk ----------------------------------------------------------------------------------


def test_a_full_disk_says_to_free_space_on_that_filesystem(site: Setup) -> None:
    folder = site.dir / "site"
    folder.mkdir()
    # A filesystem of one page: the site's files do not fit (root only, else skipped).
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem: {mounted.stderr.strip()}")
    try:
        done = site.cli("pull")
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert done.returncode == 2, done.stderr
    assert "no space left on device" in done.stderr
    assert f"on the filesystem mounted at {folder}" in done.stderr
    assert "KiB to write" in done.stderr or "MiB to write" in done.stderr
    assert "free space on that filesystem" in done.stderr
    assert "make it a folder this user can write" not in done.stderr


def test_the_full_disk_advice_is_given_for_a_full_disk_only(tmp_path: Path) -> None:
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "papers.json"))
    line = no_space(full, tmp_path / "site", 3 * 2**20)
    assert line is not None
    assert "no space left on device" in line and "about 3.0 MiB to write" in line
    assert "free on the filesystem mounted at /" in line and str(tmp_path / "site") in line
    quota = OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert "disk quota is used up" in (no_space(quota, tmp_path, None) or "")
    denied = OSError(errno.EACCES, os.strerror(errno.EACCES))
    assert no_space(denied, tmp_path, 10) is None
