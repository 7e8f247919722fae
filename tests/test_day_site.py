"""The day on the website (docs/workshop.md): program.json, schedule.ics and index.html written by real
pushes, the calendar parsed back with icalendar, the page opened in a headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import struct
import subprocess
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from conftest import Setup
from helpers import accepted, day_config
from orsync.emulator import Emulator

NEW_FILES = ("index.html", "program.json", "schedule.ics")
ALL_FILES = (
    "index.html",
    "papers.csv",
    "papers.json",
    "papers.yml",
    "posters.json",
    "program.json",
    "schedule.ics",
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)",
)
# Requests Chromium makes on its own (updates, accounts, clock), whatever page it shows.
BROWSER_HOSTS = ("googleapis.com", "google.com", "gvt1.com", "gstatic.com")
HOSTILE = '<script>alert("t")</script></div><b>bold</b> & done'


def site_files(s: Setup) -> dict[str, bytes]:
    return {n: (s.dir / "site" / n).read_bytes() for n in ALL_FILES}


def hook_runs(s: Setup) -> int:
    log = s.dir / "hook.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def events(data: bytes) -> dict[str, Any]:
    cal = icalendar.Calendar.from_ical(data)
    return {str(e["UID"]): e for e in cal.walk("VEVENT")}


@pytest.fixture
def day_site(tmp_path: Path, emulator: Emulator) -> Setup:
    truth = accepted(emulator)
    orals = sorted(s["number"] for s in truth.values() if s["presentation"] == "oral")[:2]
    return Setup(emulator, tmp_path, day_config(tmp_path, emulator, orals), tmp_path / "orsync.db")


def test_new_files_are_byte_stable_and_change_only_when_the_day_does(day_site: Setup) -> None:
    s = day_site
    assert s.cli("pull").returncode == 0
    first = site_files(s)
    assert hook_runs(s) == 1
    for _ in range(2):
        r = s.cli("push")
        assert r.returncode == 0 and "already up to date" in r.stdout
        assert s.cli("pull").returncode == 0
    assert site_files(s) == first and hook_runs(s) == 1  # no change: no write, no hook
    # A new title for one invited talk changes the program files, not the papers' files.
    s.config.write_text(
        s.config.read_text().replace('title = "Invited talk 3"', 'title = "Why SGD generalises"')
    )
    r = s.cli("push", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["changed"] == list(NEW_FILES)
    assert hook_runs(s) == 2


def test_program_json(day_site: Setup) -> None:
    s = day_site
    assert s.cli("pull").returncode == 0
    day = json.loads((s.dir / "site" / "program.json").read_text())
    assert day["timezone"] == "Europe/Vienna" and day["name"].startswith("Bridging the Gap")
    slots = day["slots"]
    assert (
        len(slots) == 6 + 5 + 4 + 3 + 1 + 1
    )  # invited, contributed, posters, breaks, opening, closing
    for slot in slots:
        assert {"start", "end", "kind", "title"} <= set(slot)
        assert datetime.fromisoformat(slot["start"]).utcoffset() is not None
        assert all(isinstance(p, str) for p in slot.get("papers", []))  # ids only
    assert [x["start"] for x in slots] == sorted(x["start"] for x in slots)
    papers = [p for x in slots if x["kind"] == "poster" for p in x["papers"]]
    assert sorted(papers) == sorted(accepted(s.emu))
    assert "missing" not in day  # the chairs' to-do list stays off the website
    # Each slot's id: the key of its calendar event and of its anchor on the page.
    ids = [x["id"] for x in slots]
    assert len(set(ids)) == len(ids) and "break-20240511T0810Z" in ids  # the first coffee break
    uids = events((s.dir / "site" / "schedule.ics").read_bytes())
    assert sorted(u.partition(".")[0] for u in uids) == sorted(ids)
    page = (s.dir / "site" / "index.html").read_text()
    assert all(f'id="slot-{i}"' in page for i in ids)


def test_calendar_parses_back_with_stable_uids_and_sequences(day_site: Setup) -> None:
    s = day_site
    assert s.cli("pull").returncode == 0
    path = s.dir / "site" / "schedule.ics"
    raw = path.read_bytes()
    cal = icalendar.Calendar.from_ical(raw)
    zones = cal.walk("VTIMEZONE")
    assert [str(z["TZID"]) for z in zones] == ["Europe/Vienna"]
    program = json.loads((s.dir / "site" / "program.json").read_text())["slots"]
    before = events(raw)
    assert len(before) == len(program)  # one event per slot, UIDs unique
    vienna = ZoneInfo("Europe/Vienna")
    got = sorted((e.decoded("DTSTART"), e.decoded("DTEND")) for e in before.values())
    want = sorted(
        (datetime.fromisoformat(x["start"]), datetime.fromisoformat(x["end"])) for x in program
    )
    assert got == want
    for e in before.values():
        start = e.decoded("DTSTART")
        assert str(start.tzinfo) == "Europe/Vienna" or start.tzinfo.key == "Europe/Vienna"  # type: ignore[union-attr]
        assert start.utcoffset() == datetime(2024, 5, 11, tzinfo=vienna).utcoffset()
        assert int(e["SEQUENCE"]) == 0
    talks = [e for e in before.values() if str(e["SUMMARY"]).startswith("Contributed talk:")]
    assert len(talks) == 2
    truth = accepted(s.emu)
    first_talk = next(
        p for p in truth.values() if "Contributed talk: " + p["title"] == str(talks[0]["SUMMARY"])
    )
    description = str(talks[0]["DESCRIPTION"])
    assert first_talk["title"] in description and all(
        a in description for a in first_talk["authors"]
    )
    assert "We study" in description  # the abstract
    assert all(
        "Live stream" not in str(e.get("DESCRIPTION", "")) for e in before.values()
    )  # no stream_url set
    # One title changes: the same UIDs, that one event's SEQUENCE and DTSTAMP move, no other.
    # DTSTAMP has whole seconds: the change comes in a later second than the first stamps.
    stamped = max(e.decoded("DTSTAMP") for e in before.values())
    while datetime.now(UTC) < stamped + timedelta(seconds=1):
        time.sleep(0.05)
    s.config.write_text(
        s.config.read_text().replace('title = "Invited talk 3"', 'title = "Why SGD generalises"')
    )
    assert s.cli("push").returncode == 0
    after = events(path.read_bytes())
    assert set(after) == set(before)
    changed = {uid for uid in after if str(after[uid]["SUMMARY"]) != str(before[uid]["SUMMARY"])}
    assert len(changed) == 1 and str(after[changed.pop()]["SUMMARY"]) == "Why SGD generalises"
    bumped = {uid: int(e["SEQUENCE"]) for uid, e in after.items() if int(e["SEQUENCE"])}
    assert list(bumped.values()) == [1]
    (uid,) = bumped
    assert after[uid].decoded("DTSTAMP") > before[uid].decoded("DTSTAMP")
    assert all(
        after[u].decoded("DTSTAMP") == before[u].decoded("DTSTAMP") for u in after if u != uid
    )
    # A talk's paper retitled on OpenReview: its event updates, under its UID, at SEQUENCE 1.
    talk_uid = str(talks[0]["UID"])
    s.emu.edit_content(first_talk_id(truth, first_talk), title="A Better Title for the Talk")
    assert s.cli("pull").returncode == 0
    latest = events(path.read_bytes())
    assert set(latest) == set(before)
    assert int(latest[talk_uid]["SEQUENCE"]) == 1 and "A Better Title" in str(
        latest[talk_uid]["SUMMARY"]
    )
    # Unchanged since: the same bytes, the same sequences.
    stable = path.read_bytes()
    assert s.cli("push").returncode == 0 and path.read_bytes() == stable


REGISTRATION = """
[[program.slots]]
kind = "break"
title = "Registration"
start = "2024-05-11T08:20:00+02:00"
end = "2024-05-11T08:50:00+02:00"
"""
COFFEE = """[[program.slots]]
kind = "break"
title = "Coffee break (during poster session 1)"
start = "2024-05-11T10:10:00+02:00"
end = "2024-05-11T10:30:00+02:00"
"""


def event_bytes(path: Path) -> dict[str, bytes]:
    return {uid: e.to_ical() for uid, e in events(path.read_bytes()).items()}


def next_second(path: Path) -> None:
    """Wait until a DTSTAMP written now would differ from every one in ``path``."""
    stamped = max(e.decoded("DTSTAMP") for e in events(path.read_bytes()).values())
    while datetime.now(UTC) < stamped + timedelta(seconds=1):
        time.sleep(0.05)


def test_inserting_or_removing_a_slot_changes_only_its_own_event(day_site: Setup) -> None:
    s = day_site
    assert s.cli("pull").returncode == 0
    path = s.dir / "site" / "schedule.ics"
    before = event_bytes(path)
    next_second(path)
    # A registration desk before everything: one new event, every other one byte for byte.
    s.config.write_text(s.config.read_text() + REGISTRATION)
    assert s.cli("push").returncode == 0
    grown = event_bytes(path)
    assert {u: grown[u] for u in before} == before
    (new,) = set(grown) - set(before)
    assert new.startswith("break-20240511T0620Z.") and b"SUMMARY:Registration" in grown[new]
    # The first coffee break goes: its event goes, no other changes.
    assert COFFEE in s.config.read_text()
    s.config.write_text(s.config.read_text().replace(COFFEE, ""))
    assert s.cli("push").returncode == 0
    shrunk = event_bytes(path)
    (gone,) = set(grown) - set(shrunk)
    assert b"SUMMARY:Coffee break (during poster session 1)" in grown[gone]
    assert {u: grown[u] for u in shrunk} == shrunk


def test_calendar_state_of_an_older_store_is_adopted(day_site: Setup) -> None:
    """A store whose ``calendar_events`` an older orsync wrote (keyed by UIDs made from each
    slot's place among its kind, ``break-2``): after the upgrade every event keeps its UID and
    sequence, even when a slot is inserted in the same push."""
    s = day_site
    assert s.cli("pull").returncode == 0
    program = json.loads((s.dir / "site" / "program.json").read_text())["slots"]
    with sqlite3.connect(s.db) as db:
        (text,) = db.execute(
            "SELECT value FROM sync_state WHERE key = 'calendar_events'"
        ).fetchone()
        state = json.loads(text)
        counts: dict[str, int] = {}
        old: dict[str, Any] = {}
        for slot in program:
            name = slot["id"]
            if slot["kind"] != "poster":
                counts[slot["kind"]] = counts.get(slot["kind"], 0) + 1
                name = f"{slot['kind']}-{counts[slot['kind']]}"
            entry = state.pop(slot["id"])
            tag = entry.pop("uid").partition(".")[2]
            old[f"{name}.{tag}"] = {**entry, "sequence": 3}
        assert not state
        db.execute(
            "UPDATE sync_state SET value = ? WHERE key = 'calendar_events'", [json.dumps(old)]
        )
    path = s.dir / "site" / "schedule.ics"
    next_second(path)
    s.config.write_text(s.config.read_text() + REGISTRATION)
    assert s.cli("push").returncode == 0
    after = events(path.read_bytes())
    assert len(after) == len(program) + 1
    (new,) = set(after) - set(old)
    assert str(after[new]["SUMMARY"]) == "Registration" and int(after[new]["SEQUENCE"]) == 0
    assert all(int(after[u]["SEQUENCE"]) == 3 for u in old)  # no restart, no bump
    breaks = {str(after[u]["SUMMARY"]): u.partition(".")[0] for u in old if u.startswith("break-")}
    assert breaks["Coffee break (during poster session 1)"] == "break-1"  # not the Registration
    stable = path.read_bytes()
    assert s.cli("push").returncode == 0 and path.read_bytes() == stable


def test_slot_ids_must_be_unique(day_site: Setup) -> None:
    s = day_site
    twice = COFFEE.replace("[[program.slots]]\n", '[[program.slots]]\nid = "coffee"\n')
    s.config.write_text(s.config.read_text() + "\n" + twice + "\n" + twice)
    r = s.cli("check")
    said = r.stdout + r.stderr
    assert r.returncode == 2, said
    assert "'program.slots'" in said and "duplicate slot id 'coffee'" in said


def first_talk_id(truth: dict[str, dict[str, Any]], paper: dict[str, Any]) -> str:
    return next(f for f, p in truth.items() if p is paper)


def test_stream_link_goes_with_the_talks(tmp_path: Path, emulator: Emulator) -> None:
    config = day_config(tmp_path, emulator, [], formats='["ics", "json"]')
    config.write_text(config.read_text().replace("# stream_url = ", "stream_url = "))
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    assert s.cli("pull").returncode == 0
    for e in events((tmp_path / "site" / "schedule.ics").read_bytes()).values():
        streamed = "https://example.org/bgpt-live" in str(e.get("DESCRIPTION", ""))
        assert streamed == (
            str(e["CATEGORIES"].cats[0]) in ("invited", "contributed", "opening", "closing")
        )
    assert not (tmp_path / "site" / "index.html").exists()  # html not asked for


# --------------------------------------------------------------------------- the page


class _Page(HTMLParser):
    """Every element's attributes, the text of each paper article, and script or load elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.articles: list[str] = []
        self.h3: list[str] = []
        self._in_h3 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "article":
            self.articles.append(a.get("id") or "")
        if tag == "h3":  # a heading's text includes its math (MathML elements inside it)
            self._in_h3 = True
            self.h3.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "h3":
            self._in_h3 = False

    def handle_data(self, data: str) -> None:
        if self._in_h3:
            self.h3[-1] += data


def chromium(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
    ]  # fmt: skip
    return subprocess.run(
        [CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=timeout
    )


def requested_urls(net_log: Path) -> set[str]:
    log = json.loads(net_log.read_text())
    urls = {str(e["params"]["url"]) for e in log["events"] if "url" in e.get("params", {})}
    return {
        u for u in urls if not (urllib.parse.urlsplit(u).hostname or "").endswith(BROWSER_HOSTS)
    }


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_page_is_static_and_escapes_text(day_site: Setup) -> None:
    s = day_site
    hostile_id = sorted(accepted(s.emu))[0]
    s.emu.edit_content(hostile_id, title=HOSTILE)
    assert s.cli("pull").returncode == 0
    html = (s.dir / "site" / "index.html").read_text()
    page = _Page()
    page.feed(html)
    assert not [
        t
        for t, _ in page.tags
        if t
        in (
            "script",
            "img",
            "iframe",
            "object",
            "embed",
            "link",
            "base",
            "form",
            "video",
            "audio",
            "source",
        )
    ]
    assert not [
        a for _, a in page.tags if "src" in a or "srcset" in a or any(k.startswith("on") for k in a)
    ]
    forum_hosts = {
        urllib.parse.urlsplit(p["forum_url"]).netloc
        for p in json.loads((s.dir / "site" / "papers.json").read_text())
    }
    for tag, attrs in page.tags:
        href = attrs.get("href")
        if href is None:
            continue
        assert tag == "a", tag  # links to other hosts only as plain anchors
        assert href.startswith("#") or urllib.parse.urlsplit(href).netloc in forum_hosts, href
    assert "style" in {t for t, _ in page.tags} and "Content-Security-Policy" in html
    assert (
        '<meta name="viewport"' in html and "@media print" in html and "@media (max-width" in html
    )
    assert (
        "<script>alert" not in html
        and "&lt;script&gt;alert(&#34;t&#34;)&lt;/script&gt;&lt;/div&gt;" in html
    )


@needs_chromium
def test_page_in_chromium(day_site: Setup, tmp_path: Path) -> None:
    s = day_site
    truth = accepted(s.emu)
    hostile_id = sorted(truth)[0]
    s.emu.edit_content(hostile_id, title=HOSTILE)
    assert s.cli("pull").returncode == 0
    index = s.dir / "site" / "index.html"
    net = tmp_path / "net.json"
    r = chromium(f"--log-net-log={net}", "--dump-dom", index.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = _Page()
    dom.feed(r.stdout)
    numbers = sorted(p["number"] for p in truth.values())
    assert sorted(dom.articles) == sorted(f"paper-{n}" for n in numbers)  # each paper exactly once
    assert HOSTILE in dom.h3  # the hostile title is text on the page...
    assert not [t for t, _ in dom.tags if t in ("script", "b")]  # ...and made no element
    for p in truth.values():
        if p["number"] != truth[hostile_id]["number"]:
            # Math shows as MathML: the words around it are text, the TeX is in its annotation.
            words = re.sub(r"\\text\w*\{([^{}]*)\}", r"\1", p["title"])
            for piece in re.split(r"\$[^$]*\$", words):
                assert any(piece in h for h in dom.h3), piece
    assert requested_urls(net) == set(), "the page made a request"
    # The check has teeth: a page that loads an image from another host is caught.
    control = tmp_path / "control.html"
    control.write_text('<p>x</p><img src="https://example.com/pixel.png">')
    chromium(f"--log-net-log={net}", "--dump-dom", control.as_uri())
    assert requested_urls(net) == {"https://example.com/pixel.png"}
    for width in (390, 1280):
        shot = tmp_path / f"index-{width}.png"
        r = chromium(f"--screenshot={shot}", f"--window-size={width},1800", index.as_uri())
        assert r.returncode == 0 and png_size(shot) == (width, 1800)


class _Math(HTMLParser):
    """The text of each paper heading (math included) and of the TeX annotations."""

    def __init__(self) -> None:
        super().__init__()
        self.maths: list[dict[str, str | None]] = []
        self.h3: list[str] = []
        self.annotations: list[str] = []
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open.append(tag)
        if tag == "math":
            self.maths.append(dict(attrs))
        if tag == "h3":
            self.h3.append("")
        if tag == "annotation":
            self.annotations.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data: str) -> None:
        if "h3" in self._open:
            self.h3[-1] += data
        if self._open and self._open[-1] == "annotation":
            self.annotations[-1] += data


MATH_TITLE = r"Counting in $\mathcal{O}(n^2)$ with \textsc{GPT}"
MATH_ABSTRACT = (
    r"We show $\|x\|_2 \le \sqrt{d}$ for $x \in \mathbb{R}^d$, and $$\sum_{i=1}^n x_i^2$$."
)


@needs_chromium
def test_math_renders_as_mathml_in_chromium(day_site: Setup, tmp_path: Path) -> None:
    s = day_site
    paper_id = sorted(accepted(s.emu))[1]
    s.emu.edit_content(paper_id, title=MATH_TITLE, abstract=MATH_ABSTRACT)
    s.emu.edit_content(sorted(accepted(s.emu))[2], title=r"$<script>alert(1)</script>$")
    s.emu.edit_content(sorted(accepted(s.emu))[3], title=r"$\href{javascript:alert(1)}{x}$")
    assert s.cli("pull").returncode == 0
    index = s.dir / "site" / "index.html"
    r = chromium("--dump-dom", index.as_uri())
    assert r.returncode == 0, r.stderr[-2000:]
    dom = _Math()
    dom.feed(r.stdout)
    sources = {m["alttext"] for m in dom.maths}
    assert {r"\mathcal{O}(n^2)", r"\|x\|_2 \le \sqrt{d}", r"\sum_{i=1}^n x_i^2"} <= sources
    assert r"\mathcal{O}(n^2)" in dom.annotations  # the source is in the page, findable
    heading = next(h for h in dom.h3 if h.startswith("Counting in"))
    assert "with GPT" in heading and "\U0001d4aa" in heading  # script O, rendered from MathML
    page = _Page()
    page.feed(r.stdout)
    assert not [t for t, _ in page.tags if t == "script"]
    assert not [a for t, a in page.tags if t != "a" and ("href" in a or "style" in a)]
    # The data files keep the source text.
    papers = json.loads((s.dir / "site" / "papers.json").read_text())
    assert MATH_TITLE in {p["title"] for p in papers}
    shot = tmp_path / "math.png"
    r = chromium(f"--screenshot={shot}", "--window-size=1280,900", f"{index.as_uri()}#papers")
    assert r.returncode == 0 and png_size(shot) == (1280, 900)
