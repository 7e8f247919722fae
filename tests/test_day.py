"""The workshop day: `orsync talks suggest` and `orsync program`, through the CLI against the
emulator's BGPT venue (SPEC §2, §9)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup, write_config
from orsync.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent
SELECTION = '[talk_selection]\nexclude_field = "previously_published"\nexclude_values = ["Yes"]\n'


def example_day(talk_papers: list[int]) -> str:
    """config.example.toml's posters, talks and program (BGPT's day), the first talks filled."""
    text = (ROOT / "config.example.toml").read_text(encoding="utf-8")
    day = text[text.index("[posters]") : text.index("[talk_selection]")]
    for number in talk_papers:
        day = re.sub(
            r"^\[\[talks\]\]\n(# paper = \d+\n)?",
            f"[[talks#]]\npaper = {number}\n",
            day,
            count=1,
            flags=re.M,
        )
    return day.replace("[[talks#]]", "[[talks]]")


def hook(folder: Path) -> list[str]:
    script = folder / "hook.py"
    script.write_text("import sys\nopen(sys.argv[1], 'a').write('ran\\n')\n")
    return [sys.executable, str(script), str(folder / "hook.log")]


def day_config(
    folder: Path,
    emu: Emulator,
    talk_papers: list[int],
    formats: str = '["json", "yaml", "csv", "ics", "html"]',
    extra: str = "",
) -> Path:
    website = f'[website]\noutput_dir = "site"\nformats = {formats}\non_change = {json.dumps(hook(folder))}\n\n'
    return write_config(
        folder, emu, extra=website + SELECTION + "\n" + extra + "\n" + example_day(talk_papers)
    )


def suggest(s: Setup, *args: str) -> dict[str, Any]:
    r = s.cli("talks", "suggest", "--json", *args)
    assert r.returncode == 0, r.stderr
    data: dict[str, Any] = json.loads(r.stdout)
    return data


def accepted(emu: Emulator) -> dict[str, dict[str, Any]]:
    return {f: s for f, s in emu.truth("chair")["submissions"].items() if s["status"] == "accepted"}


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


def test_program_lists_the_day_and_what_is_missing(tmp_path: Path, emulator: Emulator) -> None:
    truth = accepted(emulator)
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")[:2]
    s = Setup(emulator, tmp_path, day_config(tmp_path, emulator, orals), tmp_path / "orsync.db")
    assert s.cli("pull").returncode in (0, 2)  # 2: the posters may report author clashes
    r = s.cli("program", "--json")
    assert r.returncode == 0, r.stderr
    day = json.loads(r.stdout)
    assert day["timezone"] == "Europe/Vienna"
    starts = [(x["start"], x["end"]) for x in day["slots"]]
    assert starts == sorted(starts) and all(x.endswith("+02:00") for pair in starts for x in pair)
    kinds = [x["kind"] for x in day["slots"]]
    assert (
        kinds.count("invited") == 6
        and kinds.count("contributed") == 5
        and kinds.count("poster") == 4
    )
    assert kinds[0] == "opening" and kinds[-1] == "closing" and "break" in kinds
    posters = [x for x in day["slots"] if x["kind"] == "poster"]
    assert sum(len(x["papers"]) for x in posters) == len(truth)  # every accepted paper, once
    talks = [x for x in day["slots"] if x["kind"] == "contributed"]
    assert [t["papers"][0]["number"] for t in talks[:2]] == orals
    assert talks[0]["title"] == next(p["title"] for p in truth.values() if p["number"] == orals[0])
    assert all("papers" not in t for t in talks[2:])
    missing = day["missing"]
    assert sum("has no paper yet" in m for m in missing) == 3
    assert not any("overlaps" in m for m in missing)  # BGPT's breaks sit beside poster sessions
    text = s.cli("program")
    assert text.returncode == 0
    lines = text.stdout.splitlines()
    assert lines[0].startswith("Bridging the Gap") and "08:50-09:00  opening" in text.stdout
    assert "missing (3):" in text.stdout and "(no paper yet)" in text.stdout


def test_program_says_what_clashes(tmp_path: Path, emulator: Emulator) -> None:
    extra = (
        '[[program.slots]]\nkind = "invited"\ntitle = "A keynote during lunch"\n'
        'start = "2024-05-11T12:30:00+02:00"\nend = "2024-05-11T13:00:00+02:00"\n'
    )
    s = Setup(
        emulator, tmp_path, day_config(tmp_path, emulator, [], extra=""), tmp_path / "orsync.db"
    )
    s.config.write_text(s.config.read_text() + "\n" + extra)
    assert s.cli("pull", "--no-push").returncode == 0
    missing = json.loads(s.cli("program", "--json").stdout)["missing"]
    clashes = [m for m in missing if "overlaps" in m]
    # The keynote clashes with the lunch break and poster session 2; lunch beside P2 is fine.
    assert len(clashes) == 2 and all("A keynote during lunch" in m for m in clashes)
    assert any("no poster session yet" in m for m in missing)  # --no-push: nothing assigned
