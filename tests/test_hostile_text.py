"""Hostile text from the venue: never markup, never a control sequence in the chair's terminal,
never a bidi override or a closing </script> in the public files. The CLI against the
emulator, stdout not a terminal (as when piped into less or tee)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator

import pytest
import yaml

from conftest import Setup, write_config
from orsync.emulator import Emulator
from orsync.terminal import json_text, safe

# One worker runs this module, so its module-scoped fixture is built once.
pytestmark = pytest.mark.xdist_group("hostile_text")

MARKUP_CLOSE = "[/] closing tag first"
MARKUP_LINK = "[link=https://evil.example]click[/link] me [bold]loud"
OSC8 = "\x1b]8;;http://evil.example\x1b\\Innocent title\x1b]8;;\x1b\\ with a hidden link"
CLEAR = "\x1b[2J\x1b[31mScreen cleared\x07 and \rline overwritten"
C1 = "CSI \x9b2J and NEL \x85 and DEL \x7f"
BIDI = "Proof that \u202eexe.txt\u202c and \u2066isolated\u2069 text \u202d\u202a\u202b\u2067\u2068"
SCRIPT = "</script><script>alert(1)</script> & <!-- done -->"
NEWLINE = "First line\norsync: all good"
HOSTILE = [MARKUP_CLOSE, MARKUP_LINK, OSC8, CLEAR, C1, BIDI, SCRIPT, NEWLINE]

# No ESC, no other C0 but newline, no DEL, no C1, no bidi control.
FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
BIDI_CHARS = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _t(hhmm: str) -> str:
    return f"2024-05-11T{hhmm}:00+02:00"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Setup, dict[str, str]]]:
    """One venue for the module (the commands below only read it or rewrite the same files)."""
    folder = tmp_path_factory.mktemp("hostile")
    extra = [
        "[website]",
        'output_dir = "site"',
        "",
        "[posters]",
        "boards_per_session = 40",
    ]
    for sid, start, end in (
        ("P1", "10:00", "11:00"),
        ("P2", "12:00", "13:00"),
        ("P3", "15:00", "16:00"),
    ):
        extra += [
            "[[posters.sessions]]",
            f'id = "{sid}"',
            f'name = "Session {sid}"',
            f'start = "{_t(start)}"',
            f'end = "{_t(end)}"',
        ]
    with Emulator(dataset="bgpt", seed=7) as emu:
        site = Setup(
            emu, folder, write_config(folder, emu, extra="\n".join(extra)), folder / "orsync.db"
        )
        assert site.cli("pull").returncode == 0
        accepted = _accepted(emu)
        titles = dict(zip(accepted, HOSTILE, strict=False))
        for forum, title in titles.items():
            emu.edit_content(forum, title=title)
        emu.set_decision(accepted[-1], "Accept (Poster) \x1b[2J [/] \u202eevil")
        result = site.cli("pull")
        assert result.returncode == 0, result.stderr
        _assert_clean(result.stdout + result.stderr, "pull")
        yield site, titles


def _accepted(emu: Emulator) -> list[str]:
    truth = emu.truth("chair")["submissions"]
    return [
        f
        for _, f in sorted((s["number"], f) for f, s in truth.items() if s["status"] == "accepted")
    ]


def _assert_clean(stream: str, what: str) -> None:
    bad = FORBIDDEN.search(stream)
    assert bad is None, (
        f"{what}: raw {bad.group()!r} at {bad.start()}: {stream[max(0, bad.start() - 40) : bad.start() + 40]!r}"
    )
    assert "MarkupError" not in stream and "Traceback" not in stream, what


def test_terminal_commands_show_hostile_titles_as_inert_text(
    hostile: tuple[Setup, dict[str, str]],
) -> None:
    site, _ = hostile
    outputs: dict[str, str] = {}
    for args in (
        ("changes",),
        ("changes", "--limit", "200"),
        ("posters", "show"),
        ("posters", "assign"),
        ("status",),
        ("report", "--html", str(site.dir / "report.html")),
        ("push",),
        ("pull", "--no-push"),
    ):
        result = site.cli(*args, env={"COLUMNS": "400"})  # wide, so that table cells do not wrap
        name = " ".join(args)
        assert result.returncode == 0, (name, result.stdout, result.stderr)
        _assert_clean(result.stdout, name)
        _assert_clean(result.stderr, name)
        outputs[name] = result.stdout
    for name in ("changes", "posters show", "posters assign"):
        shown = outputs[name]
        # Markup is text: the literal brackets are there, nothing was swallowed or turned into a link.
        assert "[/] closing" in shown, name
        assert "[link=https://evil.example]click[/link]" in shown, name
        # Controls and bidi controls are visible escapes, in the style of Python's repr.
        assert "\\x1b]8;;http://evil.example\\x1b\\Innocent" in shown, name
        assert "\\x1b[2J\\x1b[31mScreen" in shown, name
        assert "\\x9b2J" in shown and "\\x85" in shown and "\\x7f" in shown, name
        assert "\\u202eexe.txt\\u202c" in shown, name
        assert "First line\\norsync: all good" in shown, name
        assert "\norsync: all good" not in shown, f"{name}: a newline in a title forges a line"
    assert "\\x1b[2J [/] \\u202eevil" in outputs["report --html " + str(site.dir / "report.html")]
    page = (site.dir / "report.html").read_text(encoding="utf-8")
    assert not FORBIDDEN.search(page.replace("\n", "")), "the chairs' HTML page shows escapes too"
    assert "\\x1b[2J [/] \\u202eevil" in page and "<svg" in page


def test_json_output_is_data_with_every_control_escaped(
    hostile: tuple[Setup, dict[str, str]],
) -> None:
    site, titles = hostile
    for args in (
        ("changes", "--json"),
        ("posters", "show", "--json"),
        ("status", "--json"),
        ("report", "--json", "--html", str(site.dir / "r.html")),
    ):
        result = site.cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        _assert_clean(result.stdout, " ".join(args))
        json.loads(result.stdout)
    shown = {
        r["forum_id"]: r["title"] for r in json.loads(site.cli("posters", "show", "--json").stdout)
    }
    for forum, title in titles.items():
        assert shown[forum] == title, "--json keeps the text exactly, escaped only in the encoding"
    raw = site.cli("posters", "show", "--json").stdout
    assert "\\u202e" in raw and "\\u009b" in raw and "\\u001b" in raw


def test_export_to_a_pipe_escapes_or_drops_controls(hostile: tuple[Setup, dict[str, str]]) -> None:
    site, titles = hostile
    by_format = {}
    for fmt in ("json", "yaml", "csv"):
        result = site.cli("export", "--what", "papers", "--format", fmt)
        assert result.returncode == 0, result.stderr
        _assert_clean(result.stdout.replace("\t", ""), f"export {fmt}")
        by_format[fmt] = result.stdout
    exported = {p["forum_id"]: p["title"] for p in json.loads(by_format["json"])}
    as_yaml = {p["forum_id"]: p["title"] for p in yaml.safe_load(by_format["yaml"])}
    for forum, title in titles.items():
        assert exported[forum] == title and as_yaml[forum] == title, "JSON and YAML are lossless"
    rows = {
        r["forum_id"]: r["title"] for r in csv.DictReader(io.StringIO(by_format["csv"], newline=""))
    }
    assert rows[next(f for f, t in titles.items() if t == MARKUP_CLOSE)] == MARKUP_CLOSE


def test_website_files_have_no_bidi_controls_and_inline_safely(
    hostile: tuple[Setup, dict[str, str]],
) -> None:
    site, titles = hostile
    out = site.dir / "site"
    files = {
        name: (out / name).read_text(encoding="utf-8")
        for name in ("papers.json", "posters.json", "papers.yml", "papers.csv")
    }
    for name, text in files.items():
        assert not BIDI_CHARS.search(text), name
        assert "\u202e" not in text and "\x1b" not in text and "\x9b" not in text, name
    for name in ("papers.json", "posters.json"):
        assert (
            "</" not in files[name]
            and "<" not in files[name]
            and ">" not in files[name]
            and "&" not in files[name]
        ), name
        assert "\\u003c/script\\u003e" in files[name], name
    papers = {p["id"]: p for p in json.loads(files["papers.json"])}
    in_yaml = {p["id"]: p for p in yaml.safe_load(files["papers.yml"])}
    assert in_yaml == papers
    controls = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
    for forum, title in titles.items():
        expected = controls.sub("", title.replace("\r", "\n"))
        assert papers[forum]["title"] == expected, forum
    assert papers[next(f for f, t in titles.items() if t == SCRIPT)]["title"] == SCRIPT
    assert (
        papers[next(f for f, t in titles.items() if t == BIDI)]["title"]
        == "Proof that exe.txt and isolated text "
    )
    posters = json.loads(files["posters.json"])
    listed = {p["id"]: p["title"] for s in posters for p in s["papers"]}
    assert all(listed[f] == papers[f]["title"] for f in titles)


def test_errors_stay_one_inert_line(hostile: tuple[Setup, dict[str, str]]) -> None:
    site, _ = hostile
    result = site.cli("posters", "pin", "\x1b[2J\u202e[/]", "P1")
    assert result.returncode == 2
    _assert_clean(result.stdout + result.stderr, "posters pin")
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("orsync: error:")
    assert "[/]" in result.stderr


def test_safe_and_json_text() -> None:
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("x\u202ey\u2069") == "x\\u202ey\\u2069"
    assert safe("one\ntwo\rthree\tfour") == "one\\ntwo\\rthree\tfour"
    assert safe("one\ntwo", newlines=True) == "one\ntwo"
    assert safe("\x9b\x85\x7f\x00") == "\\x9b\\x85\\x7f\\x00"
    assert safe("[/] [bold]Ünïcödé עברית \u200f ✓") == "[/] [bold]Ünïcödé עברית \u200f ✓"
    assert safe(None) == "" and safe(3) == "3"
    data = {"t": "a\x1b\x9b\u202e\u2066 é <"}
    text = json_text(data)
    assert json.loads(text) == data
    assert not FORBIDDEN.search(text) and "é <" in text


def test_website_render_neutralises_bidi_and_escapes_markup_characters() -> None:
    from site_helpers import render

    row = {
        "forum_id": "f1",
        "number": 1,
        "title": "a\u202eb\u2066c\u2069 </script> & <!--",
        "authors": ["X\u202eY"],
        "keywords": [],
        "session_id": None,
        "board": None,
    }
    files = render([row], [], ("json", "yaml", "csv"))
    for name, data in files.items():
        text = data.decode()
        assert not BIDI_CHARS.search(text), name
    assert b"<" not in files["papers.json"] and b"&" not in files["papers.json"]
    (paper,) = json.loads(files["papers.json"])
    assert paper["title"] == "abc </script> & <!--" and paper["authors"] == ["XY"]
    assert yaml.safe_load(files["papers.yml"])[0]["title"] == paper["title"]
