"""Website data files (docs/site-files.md): shapes, hostile text, CSV safety, atomic replacement."""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from orsync.files import write_atomically
from orsync.schedule import Session
from site_helpers import render

TZ = timezone(timedelta(hours=2))
SESSIONS = [
    Session("P2", "Poster session 2", datetime(2024, 5, 11, 12, 0, tzinfo=TZ),
            datetime(2024, 5, 11, 14, 0, tzinfo=TZ)),
    Session("P1", "Poster session 1", datetime(2024, 5, 11, 10, 10, tzinfo=TZ),
            datetime(2024, 5, 11, 11, 0, tzinfo=TZ)),
]  # fmt: skip
HOSTILE = [
    "<script>alert('x')</script> & \"quotes\"",
    "=HYPERLINK(\"http://evil\")",
    "+1", "-2", "@SUM(A1)", "\tTabbed", "line\u2028sep\u2029para",
    "nul\x00bell\x07esc\x1b", "ümlaut 日本語 🎉 $\\alpha$", "no", "2024-05-11", "0o17",
    "a,b;\"c\"\nnew line", "trailing space ", "'already quoted",
]  # fmt: skip


def row(number: int, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "forum_id": f"forum{number}",
        "number": number,
        "title": f"Paper {number}",
        "authors": ["Ada Lovelace", "Alan Turing"],
        "keywords": ["theory", "sgd"],
        "abstract": "We study things.",
        "tldr": None,
        "pdf_url": f"https://openreview.net/pdf?id=forum{number}",
        "forum_url": f"https://openreview.net/forum?id=forum{number}",
        "decision": "Accept (Poster)",
        "presentation": "poster",
        "session_id": "P1",
        "session_name": "Poster session 1",
        "session_start": "2024-05-11T10:10:00+02:00",
        "session_end": "2024-05-11T11:00:00+02:00",
        "board": number,
    }
    base.update(over)
    return base


def papers_json(files: dict[str, bytes]) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(files["papers.json"])
    return data


def read_csv(data: bytes) -> list[dict[str, str]]:
    # Python's csv refuses fields over 128 KiB by default; a 1 MB abstract needs a higher limit.
    csv.field_size_limit(1 << 24)
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


def unneutralise(cell: str) -> str:
    return cell[1:] if cell[:2] in ("'=", "'+", "'-", "'@", "'\t", "'\r") else cell


def test_shapes_and_order() -> None:
    rows = [row(3, session_id=None, board=None), row(1), row(2, session_id="P2",
            session_name="Poster session 2", session_start="2024-05-11T12:00:00+02:00",
            session_end="2024-05-11T14:00:00+02:00", board=1)]  # fmt: skip
    files = render(rows, SESSIONS, ["json", "yaml", "csv"])
    assert sorted(files) == ["papers.csv", "papers.json", "papers.yml", "posters.json"]
    papers = papers_json(files)
    assert [p["number"] for p in papers] == [1, 2, 3]
    assert list(papers[0]) == [
        "id", "number", "title", "authors", "keywords", "abstract", "tldr", "pdf_url",
        "forum_url", "decision", "presentation", "talk", "session", "board",
    ]  # fmt: skip
    assert papers[0]["session"] == {
        "id": "P1", "name": "Poster session 1",
        "start": "2024-05-11T10:10:00+02:00", "end": "2024-05-11T11:00:00+02:00",
    }  # fmt: skip
    assert papers[2]["session"] is None and papers[2]["board"] is None
    posters = json.loads(files["posters.json"])
    assert [s["id"] for s in posters] == ["P1", "P2"]
    assert posters[0]["papers"] == [
        {"board": 1, "id": "forum1", "number": 1, "title": "Paper 1",
         "authors": ["Ada Lovelace", "Alan Turing"], "talk": None},
    ]  # fmt: skip
    assert yaml.safe_load(files["papers.yml"]) == papers
    header = files["papers.csv"].split(b"\n", 1)[0]
    assert header == (
        b"UID,title,authors,abstract,keywords,sessions,pdf_url,presentation,board,"
        b"talk_start,talk_end"
    )
    assert render(rows, SESSIONS, ["csv"]).keys() == {"papers.csv"}
    with pytest.raises(ValueError, match="xml"):
        render(rows, SESSIONS, ["xml"])


def test_allowlist_never_leaks_private_fields() -> None:
    secret = row(1, reviews=[{"rating": 3, "text": "SECRET-REVIEW"}],
                 authorids=["secret@example.org"], emails="secret@example.org",
                 reviewer="~Reviewer_SECRET1")  # fmt: skip
    for name, data in render([secret], SESSIONS, ["json", "yaml", "csv"]).items():
        assert b"SECRET" not in data and b"secret@" not in data, name


def test_hostile_text_round_trips_through_every_reader() -> None:
    big = "x" * (1 << 20)
    rows = [
        row(i + 1, title=t, abstract=t + big if i == 0 else t, tldr=t, authors=[t, "B"],
            keywords=[t], session_name=t)
        for i, t in enumerate(HOSTILE)
    ]  # fmt: skip
    files = render(rows, SESSIONS, ["json", "yaml", "csv"])
    for data in files.values():
        data.decode("utf-8")  # valid UTF-8
        assert b"\r" not in data and b"\x00" not in data
    assert "\u2028" not in files["papers.json"].decode()  # escaped for JavaScript
    papers = papers_json(files)
    cleaned = [t.replace("\x00", "").replace("\x07", "").replace("\x1b", "") for t in HOSTILE]
    assert [p["title"] for p in papers] == cleaned
    assert papers[0]["abstract"] == cleaned[0] + big
    assert yaml.safe_load(files["papers.yml"]) == papers
    json.loads(files["posters.json"])
    for p, r in zip(papers, read_csv(files["papers.csv"]), strict=True):
        assert unneutralise(r["title"]) == p["title"]


def test_csv_cells_are_neutralised() -> None:
    rows = [row(1, title="=1+1", abstract="@cmd", authors=["-x", "y"], keywords=["+k"])]
    (r,) = read_csv(render(rows, SESSIONS, ["csv"])["papers.csv"])
    assert r["title"] == "'=1+1"
    assert r["abstract"] == "'@cmd"
    assert r["authors"] == "'-x|y"
    assert r["keywords"] == "'+k"
    assert r["UID"] == "forum1"


def test_csv_writes_ids_numbers_and_links_exactly() -> None:
    """Only free text is guarded: an id beginning with "-" stays the paper's UID (Mini-Conf
    names its page after it), and so do the links."""
    rows = [
        row(1, forum_id="-k9xQ2Lm_A", title="-k9xQ2Lm_A", pdf_url="https://x.example/-a.pdf"),
        row(2, forum_id="@odd", pdf_url="=HYPERLINK(1)"),
    ]
    files = render(rows, SESSIONS, ["csv"], day=None)
    first, second = read_csv(files["papers.csv"])
    assert first["UID"] == "-k9xQ2Lm_A"
    assert first["title"] == "'-k9xQ2Lm_A"  # the same characters as text: guarded
    assert first["pdf_url"] == "https://x.example/-a.pdf"
    assert first["board"] == "1"
    assert second["UID"] == "@odd"
    assert second["pdf_url"] == ""  # not a link: null in every format, never a formula


def test_csv_agrees_with_json() -> None:
    rows = [row(i, title=t, authors=[t, "Z"], keywords=["k", t]) for i, t in enumerate(HOSTILE)]
    rows.append(row(99, authors=[], keywords=[], session_id=None, board=None, abstract=None))
    files = render(rows, SESSIONS, ["json", "csv"])
    papers = papers_json(files)
    for p, r in zip(papers, read_csv(files["papers.csv"]), strict=True):
        cell = {k: unneutralise(v) for k, v in r.items()}
        split = lambda s: s.split("|") if s else []  # noqa: E731
        assert cell["UID"] == p["id"]
        assert cell["title"] == p["title"]
        assert split(cell["authors"]) == p["authors"]
        assert split(cell["keywords"]) == p["keywords"]
        assert cell["abstract"] == (p["abstract"] or "")
        assert cell["sessions"] == (p["session"]["name"] if p["session"] else "")
        assert cell["pdf_url"] == p["pdf_url"]
        assert cell["presentation"] == p["presentation"]
        assert cell["board"] == ("" if p["board"] is None else str(p["board"]))


def test_pipe_inside_a_list_item_does_not_split_it() -> None:
    files = render([row(1, authors=["A|B", "C"])], SESSIONS, ["json", "csv"])
    assert papers_json(files)[0]["authors"] == ["A¦B", "C"]
    assert read_csv(files["papers.csv"])[0]["authors"] == "A¦B|C"


def test_store_json_text_lists_are_accepted() -> None:
    files = render([row(1, authors='["A", "B"]', keywords='["k"]')], SESSIONS, ["json"])
    assert papers_json(files)[0]["authors"] == ["A", "B"]


def test_deterministic_bytes() -> None:
    rows = [row(i, title=t) for i, t in enumerate(HOSTILE)]
    a = render(rows, SESSIONS, ["json", "yaml", "csv"])
    b = render(list(reversed(rows)), list(reversed(SESSIONS)), ["csv", "yaml", "json"])
    assert a == b
    for data in a.values():
        assert data.endswith(b"\n") and b"\r\n" not in data


def test_unchanged_files_are_not_touched(tmp_path: Path) -> None:
    files = render([row(1)], SESSIONS, ["json", "yaml", "csv"])
    assert write_atomically(tmp_path, files) == sorted(files)
    before = {n: (tmp_path / n).stat().st_mtime_ns for n in files}
    time.sleep(0.02)
    assert write_atomically(tmp_path, files) == []
    assert {n: (tmp_path / n).stat().st_mtime_ns for n in files} == before
    files2 = render([row(1, title="New title")], SESSIONS, ["json", "yaml", "csv"])
    changed = write_atomically(tmp_path, files2)
    assert changed == ["papers.csv", "papers.json", "papers.yml", "posters.json"]
    assert (tmp_path / "papers.json").read_bytes() == files2["papers.json"]
    assert oct((tmp_path / "papers.json").stat().st_mode & 0o777) == oct(0o644)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    with pytest.raises(ValueError):
        write_atomically(tmp_path, {"../evil": b""})


WRITER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from orsync.files import write_atomically
    out = Path(sys.argv[1])
    i = 0
    while True:
        i += 1
        data = json.dumps({"i": i, "pad": "x" * (4 << 20)}).encode()
        write_atomically(out, {"papers.json": data})
        print(i, flush=True)
    """
)


def test_reader_never_sees_a_partial_file_even_if_writer_is_killed(tmp_path: Path) -> None:
    target = tmp_path / "papers.json"
    for trial in range(3):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        writer.stdout.readline()  # the first file is in place
        reads = 0
        deadline = time.monotonic() + 1.0 + 0.3 * trial
        while time.monotonic() < deadline:
            assert json.loads(target.read_bytes())["i"] >= 1
            reads += 1
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert json.loads(target.read_bytes())["i"] >= 1
        assert reads > 5
    leftovers = [p for p in tmp_path.iterdir() if p.name != "papers.json"]
    # A killed writer may leave its temp file; it is hidden and never read as papers.json.
    assert all(p.name.startswith(".orsync-papers.json.") for p in leftovers)
