"""The Mini-Conf bundle (format ``miniconf``) and exact identifiers in every file orsync writes:
the emulator over HTTP, a real push, and the files read back the way Mini-Conf's main.py reads
them (csv.DictReader, json.load, "|"-split lists, pages named by UID)."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import Setup, write_config
from orsync.emulator import Emulator
from orsync.site import miniconf
from site_helpers import record

pytestmark = pytest.mark.xdist_group("miniconf")

DASH_ID = "-k9xQ2Lm_A"  # an API-v1 migrated OpenReview id: begins with "-"
FORMULA_TITLE = '=HYPERLINK("http://evil.example","click") revisited'
MARKUP_TITLE = "<img src=x onerror=alert(1)> for $x<y$ and a < b"
ATTRIBUTE_KEYWORD = 'x" onmouseover="alert(1)'
CALENDAR_KEYS = ["title", "start", "end", "location", "link", "category", "calendarId"]


def _t(hhmm: str) -> str:
    return f"2024-05-11T{hhmm}:00+02:00"


def _config(folder: Path, emu: Emulator, talk: int, dash_talk: int) -> Path:
    lines = [
        "[website]",
        'output_dir = "site"',
        'formats = ["json", "yaml", "csv", "ics", "html", "miniconf"]',
        "",
        "[posters]",
        "boards_per_session = 40",
    ]
    for sid, start, end in (("P1", "10:10", "11:00"), ("P2", "12:00", "14:00")):
        lines += [
            "[[posters.sessions]]",
            f'id = "{sid}"',
            f'name = "Session {sid}"',
            f'start = "{_t(start)}"',
            f'end = "{_t(end)}"',
        ]
    for paper, (start, end) in ((talk, ("11:30", "11:45")), (dash_talk, ("11:45", "12:00"))):
        lines += ["[[talks]]", f"paper = {paper}", f'start = "{_t(start)}"', f'end = "{_t(end)}"']
    lines += [
        "[[program.slots]]",
        'id = "keynote"',
        'kind = "invited"',
        'title = "-1 reasons <script>alert(1)</script>"',
        'speaker = "Grace Hopper"',
        'affiliation = "@Navy"',
        f'start = "{_t("09:00")}"',
        f'end = "{_t("10:00")}"',
        "[[program.slots]]",
        'kind = "break"',
        'title = "Coffee"',
        f'start = "{_t("10:00")}"',
        f'end = "{_t("10:10")}"',
    ]
    return write_config(folder, emu, extra="\n".join(lines))


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Setup, dict[str, str]]]:
    """One venue: a paper whose id begins with "-" (a contributed talk), one whose title is a
    formula, one whose title is markup; pulled and pushed once."""
    folder = tmp_path_factory.mktemp("miniconf")
    with Emulator(dataset="bgpt", seed=7) as emu:
        dash = emu.add_submission(note_id=DASH_ID)
        emu.set_decision(dash, "Accept (Poster)")
        subs = emu.truth("chair")["submissions"]
        accepted = sorted((s["number"], f) for f, s in subs.items() if s["status"] == "accepted")
        formula, markup = accepted[0][1], accepted[1][1]
        emu.edit_content(formula, title=FORMULA_TITLE)
        emu.edit_content(markup, title=MARKUP_TITLE, keywords=[ATTRIBUTE_KEYWORD, "plain"])
        numbers = {f: s["number"] for f, s in emu.truth("chair")["submissions"].items()}
        config = _config(folder, emu, numbers[accepted[2][1]], numbers[dash])
        site = Setup(emu, folder, config, folder / "orsync.db")
        result = site.cli("pull")
        assert result.returncode == 0, result.stderr
        yield site, {"dash": dash, "formula": formula, "markup": markup}


def _csv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def _folder(site: Setup) -> Path:
    return site.dir / "site" / "miniconf"


def test_bundle_has_mini_confs_shapes(bundle: tuple[Setup, dict[str, str]]) -> None:
    site, _ = bundle
    folder = _folder(site)
    assert sorted(p.name for p in folder.iterdir()) == sorted(miniconf.FILES)
    papers = _csv(folder / "papers.csv")
    with (folder / "papers.csv").open(encoding="utf-8") as f:
        assert next(csv.reader(f)) == list(miniconf.PAPER_COLUMNS)
    site_json = json.loads((site.dir / "site" / "papers.json").read_text())
    assert [p["UID"] for p in papers] == [p["id"] for p in site_json]
    by_uid = {p["UID"]: p for p in papers}
    for paper in site_json:
        row = by_uid[paper["id"]]
        assert row["authors"].split("|") == (paper["authors"] or [""])
        assert row["pdf_url"] == (paper["pdf_url"] or "")
        assert row["sessions"] == paper["session"]["name"]

    # highlighted.csv: the contributed talks' papers, each a paper (else a 500 on calendar.html).
    highlighted = _csv(folder / "highlighted.csv")
    assert highlighted and {h["UID"] for h in highlighted} <= set(by_uid)
    program = json.loads((site.dir / "site" / "program.json").read_text())
    talks = [s["papers"][0] for s in program["slots"] if s["kind"] == "contributed"]
    assert [h["UID"] for h in highlighted] == talks

    # main_calendar.json: parse_calendar.py's keys, one event per slot, the kind as calendarId.
    events = json.loads((folder / "main_calendar.json").read_text())
    assert [list(e) for e in events] == [CALENDAR_KEYS] * len(program["slots"])
    assert [e["calendarId"] for e in events] == [s["kind"] for s in program["slots"]]
    assert [(e["start"], e["end"]) for e in events] == [
        (s["start"], s["end"]) for s in program["slots"]
    ]
    links = {e["calendarId"]: e["link"] for e in events}
    assert links["invited"] == "speaker_slot-keynote.html"
    assert links["break"] == ""
    assert links["poster"].startswith("papers.html?session=Session+P")
    assert all(e["location"] == e["link"] and e["category"] == "time" for e in events)
    assert {e["link"] for e in events if e["calendarId"] == "contributed"} == {
        f"poster_{uid}.html" for uid in talks
    }

    # speakers.csv: the invited talks, by the UID their page is named after.
    speakers = _csv(folder / "speakers.csv")
    assert [s["UID"] for s in speakers] == ["slot-keynote"]
    assert list(speakers[0]) == list(miniconf.SPEAKER_COLUMNS)
    assert speakers[0]["speaker"] == "Grace Hopper"
    assert _csv(folder / "workshops.csv") == []

    # papers_projection.json: every paper once, two numbers each.
    projection = json.loads((folder / "papers_projection.json").read_text())
    assert [p["id"] for p in projection] == [p["UID"] for p in papers]
    assert all(list(p) == ["id", "pos"] and len(p["pos"]) == 2 for p in projection)
    assert all(isinstance(x, float) for p in projection for x in p["pos"])
    assert len({tuple(p["pos"]) for p in projection}) > len(projection) // 2


def test_ids_are_exact_in_every_file_while_text_is_guarded(
    bundle: tuple[Setup, dict[str, str]],
) -> None:
    site, ids = bundle
    out = site.dir / "site"
    dash, formula = ids["dash"], ids["formula"]
    assert dash == DASH_ID
    for path in (out / "papers.csv", _folder(site) / "papers.csv"):
        rows = {r["UID"]: r for r in _csv(path)}
        assert DASH_ID in rows, path
        assert not any(uid.startswith("'") for uid in rows), path
        assert rows[formula]["title"] == "'" + FORMULA_TITLE, path
    assert DASH_ID in {p["id"] for p in json.loads((out / "papers.json").read_text())}
    assert DASH_ID in {p["id"] for p in yaml.safe_load((out / "papers.yml").read_text())}
    boards = json.loads((out / "posters.json").read_text())
    assert DASH_ID in {p["id"] for s in boards for p in s["papers"]}
    assert DASH_ID in {h["UID"] for h in _csv(_folder(site) / "highlighted.csv")}
    projection = json.loads((_folder(site) / "papers_projection.json").read_text())
    assert DASH_ID in {p["id"] for p in projection}
    events = json.loads((_folder(site) / "main_calendar.json").read_text())
    assert f"poster_{DASH_ID}.html" in {e["link"] for e in events}
    speakers = _csv(_folder(site) / "speakers.csv")
    assert speakers[0]["title"].startswith("'-1 reasons")  # free text: still guarded
    assert speakers[0]["institution"] == "'@Navy"

    exported = site.cli("export", "--what", "papers", "--format", "csv")
    assert exported.returncode == 0, exported.stderr
    rows = {r["forum_id"]: r for r in csv.DictReader(io.StringIO(exported.stdout))}
    assert DASH_ID in rows
    assert rows[formula]["title"] == "'" + FORMULA_TITLE
    assert not rows[DASH_ID]["pdf_url"].startswith("'")
    overview = site.cli("export", "--what", "submissions", "--format", "csv")
    assert DASH_ID in {r["forum_id"] for r in csv.DictReader(io.StringIO(overview.stdout))}


def test_hostile_text_stays_text_in_mini_confs_pages(
    bundle: tuple[Setup, dict[str, str]],
) -> None:
    """Mini-Conf's paper cards and speaker pages put titles and abstracts into the page as
    HTML: no "<" in the bundle may open a tag, and the characters a reader sees are kept."""
    site, ids = bundle
    folder = _folder(site)
    rows = {r["UID"]: r for r in _csv(folder / "papers.csv")}
    title = rows[ids["markup"]]["title"]
    assert title.replace("\u2060", "") == MARKUP_TITLE
    assert "<img" not in title and "<y" not in title and "a < b" in title
    keywords = rows[ids["markup"]]["keywords"].split("|")
    assert keywords == ["x' onmouseover='alert(1)", "plain"]  # no '"' to end the card's href
    speaker = _csv(folder / "speakers.csv")[0]["title"]
    assert "<script" not in speaker and "</script" not in speaker
    for name in ("main_calendar.json", "papers_projection.json"):
        text = (folder / name).read_text()
        assert "<" not in text and ">" not in text, name  # JSON escapes, as papers.json
    events = json.loads((folder / "main_calendar.json").read_text())
    assert all("<script" not in e["title"] for e in events)
    # The data files outside the bundle keep the venue's text as it is.
    papers = {p["id"]: p for p in json.loads((site.dir / "site" / "papers.json").read_text())}
    assert papers[ids["markup"]]["title"] == MARKUP_TITLE


def test_a_second_push_leaves_every_byte(bundle: tuple[Setup, dict[str, str]]) -> None:
    site, _ = bundle
    folder = _folder(site)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    result = site.cli("push", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["changed"] == []
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_miniconf_dir_is_anchored_and_checked(tmp_path: Path, emulator: Emulator) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    extra = (
        '[website]\noutput_dir = "site"\nformats = ["json", "miniconf"]\n'
        'miniconf_dir = "blocker/sitedata"\n'
    )
    config = write_config(tmp_path, emulator, extra=extra)
    site = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    checked = site.cli("check")
    assert checked.returncode != 0
    assert "website.miniconf_dir" in checked.stdout + checked.stderr
    config.write_text(config.read_text().replace("blocker/sitedata", "mc/sitedata"))
    result = site.cli("pull")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mc" / "sitedata" / "papers.csv").is_file()
    assert not (tmp_path / "site" / "miniconf").exists()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 12])
def test_projection_covers_every_paper_and_is_stable(count: int) -> None:
    topics = ("graph networks", "protein folding", "language models", "graph kernels")
    records = [
        record(n, title=f"{topics[n % 4]} study", abstract=f"On {topics[(n * 7) % 4]}.")
        for n in range(1, count + 1)
    ]
    first = miniconf.projection(records)
    assert [p["id"] for p in first] == [r.id for r in records]
    assert all(len(p["pos"]) == 2 for p in first)
    assert miniconf.projection(records) == first
    if count >= 2:
        assert len({tuple(p["pos"]) for p in first}) > 1


@pytest.mark.parametrize("text", ["", "Same title"])
def test_projection_of_texts_without_words_or_all_alike(text: str) -> None:
    records = [record(n, title=text, abstract=text) for n in range(1, 5)]
    points = miniconf.projection(records)
    assert [p["id"] for p in points] == [r.id for r in records]
    assert len({tuple(p["pos"]) for p in points}) == len(records)


def test_miniconf_dir_may_not_be_the_output_dir(tmp_path: Path, emulator: Emulator) -> None:
    """Mini-Conf reads every file of its folder: papers.json there would replace papers.csv."""
    extra = (
        '[website]\noutput_dir = "site"\nformats = ["json", "miniconf"]\nminiconf_dir = "site"\n'
    )
    config = write_config(tmp_path, emulator, extra=extra)
    result = Setup(emulator, tmp_path, config, tmp_path / "orsync.db").cli("check")
    assert result.returncode != 0
    assert (
        "miniconf_dir must be a folder of its own, not website.output_dir"
        in result.stdout + result.stderr
    )
