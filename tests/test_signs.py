"""The poster boards' signs (docs/workshop.md#board-signs): `orsync posters signs` against the
emulator's BGPT venue, the page checked as HTML and, where Chromium is installed, printed to a PDF
whose pages are counted and one of them rendered to an image."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup
from helpers import accepted, day_config, one_line_error
from orsync.emulator import Emulator

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package `chromium`; .ci/run installs it)",
)
HOSTILE = '<script>alert("t")</script></div><b>bold</b> & done'


@pytest.fixture
def placed(tmp_path: Path, emulator: Emulator) -> Setup:
    """The BGPT day pulled and pushed, one accepted paper titled with markup."""
    hostile = sorted(accepted(emulator))[0]
    emulator.edit_content(hostile, title=HOSTILE)
    s = Setup(emulator, tmp_path, day_config(tmp_path, emulator, []), tmp_path / "orsync.db")
    assert s.cli("pull").returncode in (0, 2)  # 2: the posters may report author clashes
    return s


def boards_in_use(s: Setup) -> list[tuple[str, int, dict[str, Any]]]:
    """(session, board, paper) of every board posters.json shows a paper on."""
    sessions = json.loads((s.dir / "site" / "posters.json").read_text())
    return [
        (x["id"], p["board"], p) for x in sessions for p in x["papers"] if p["board"] is not None
    ]


class Signs(HTMLParser):
    """The text of each sign's parts, and every tag the page has."""

    def __init__(self) -> None:
        super().__init__()
        self.signs: list[dict[str, str]] = []
        self.tags: set[str] = set()
        self._part: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        cls = dict(attrs).get("class") or ""
        if cls == "sign":
            self.signs.append({"id": dict(attrs).get("id") or ""})
        elif (self.signs and cls in ("session", "when", "board", "authors")) or tag == "h1":
            self._part = "title" if tag == "h1" else cls
            self.signs[-1].setdefault(self._part, "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("p", "h1", "div"):
            self._part = None

    def handle_data(self, data: str) -> None:
        if self._part is not None:
            self.signs[-1][self._part] += data


def test_signs_one_per_board_in_use_escaped_and_static(placed: Setup, tmp_path: Path) -> None:
    s = placed
    out = tmp_path / "print" / "signs.html"
    out.parent.mkdir()
    r = s.cli("posters", "signs", "--out", str(out), "--json")
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    used = boards_in_use(s)
    assert done["pages"] == len(used) > 0 and done["pdf"] is None and done["paper"] == "a4"
    assert sum(done["sessions"].values()) == len(used)
    html = out.read_text()
    assert "size: A4 portrait" in html and "break-after: page" in html
    page = Signs()
    page.feed(html)
    assert "script" not in page.tags and "<script>" not in html  # the hostile title is text
    assert [x["id"] for x in page.signs] == [f"sign-{sid}-{board}" for sid, board, _ in used]
    names = {x["id"]: x["name"] for x in json.loads((s.dir / "site" / "posters.json").read_text())}
    for sign, (sid, board, paper) in zip(page.signs, used, strict=True):
        assert sign["session"] == names[sid]
        assert sign["board"].strip() == f"Board{board}"  # "BOARD" in print, by its CSS
        if "$" not in paper["title"]:  # math becomes MathML, as on the page
            assert sign["title"] == paper["title"]
        assert sign["authors"] == (
            ", ".join(paper["authors"]) or "authors hidden until the release"
        )
        assert re.fullmatch(
            r"\w+day \d\d \w+ 2024, \d\d:\d\d\u2013\d\d:\d\d \(Europe/Vienna\)", sign["when"]
        )
    assert HOSTILE in [x["title"] for x in page.signs]

    letter = s.cli("posters", "signs", "--out", str(out), "--paper", "letter")
    assert letter.returncode == 0, letter.stderr
    assert f"{len(used)} signs" in letter.stdout and "size: letter portrait" in out.read_text()
    # The site's folder holds what is published: a sign page never replaces a file there.
    before = (s.dir / "site" / "index.html").read_bytes()
    refused = s.cli("posters", "signs", "--out", str(s.dir / "site" / "index.html"))
    one_line_error(refused, 2, "inside website.output_dir")
    assert (s.dir / "site" / "index.html").read_bytes() == before


def test_pdf_without_chromium_is_one_line_saying_to_install_it(
    placed: Setup, tmp_path: Path
) -> None:
    out = tmp_path / "signs.html"
    empty = tmp_path / "no-browser"
    empty.mkdir()
    r = placed.cli(
        "posters", "signs", "--out", str(out), "--pdf", env={"PATH": str(empty)}, process=True
    )
    one_line_error(r, 2, "--pdf needs Chromium", "install it")
    assert not out.exists() and not out.with_suffix(".pdf").exists()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def pdf_pages(pdf: Path) -> int:
    """The page count: pdfinfo's where poppler is installed, else the page objects counted."""
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
        return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))  # type: ignore[union-attr]
    return len(re.findall(rb"/Type\s*/Page(?![s\w])", pdf.read_bytes()))


@needs_chromium
def test_pdf_has_a_page_per_board_in_use(placed: Setup, tmp_path: Path) -> None:
    s = placed
    out = tmp_path / "signs.html"
    r = s.cli("posters", "signs", "--out", str(out), "--pdf", "--json", timeout=240)
    assert r.returncode == 0, r.stderr
    done = json.loads(r.stdout)
    pdf = Path(done["pdf"])
    assert pdf == out.with_suffix(".pdf") and pdf.read_bytes().startswith(b"%PDF")
    used = boards_in_use(s)
    assert pdf_pages(pdf) == len(used) == done["pages"]
    assert not list(tmp_path.glob(".*printing"))  # no half-written PDF left behind
    if not shutil.which("pdftoppm"):
        pytest.skip("poppler-utils is not installed: the PDF's pages are counted, not rendered")
    # The second page rendered: one A4 page (1:1.414), and its text is the second sign's.
    image = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-f", "2", "-l", "2", "-r", "40", "-png", "-singlefile", str(pdf), str(image)],
        check=True,
    )
    width, height = png_size(image.with_suffix(".png"))
    assert abs(height / width - 297 / 210) < 0.02
    text = subprocess.run(
        ["pdftotext", "-f", "2", "-l", "2", "-layout", str(pdf), "-"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    _, board, paper = used[1]
    assert "BOARD" in text.upper() and str(board) in text
    assert paper["title"].split()[0] in text
