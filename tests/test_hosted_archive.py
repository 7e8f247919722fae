"""The checks on a batch answer, called directly on zip archives built here.

Each test puts one kind of hostile member into a real zip file and shows that ``members`` keeps
nothing of it, and why; the good member beside it shows the checks do not refuse everything.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from orsync.files import TEMP_PREFIX
from orsync.hosted.archive import (
    MAX_MEMBERS_EXTRA,
    RATIO_FLOOR,
    Refused,
    check_type,
    members,
    safe_member_name,
)
from orsync.hosted.plan import Wanted

PDF = b"%PDF-1.7\n" + b"x" * 2000 + b"\n%%EOF\n"
LIMIT = 1 << 16


def wanted(forum_id: str, number: int) -> Wanted:
    return Wanted(forum_id, number, "pdf", f"/pdf/{'a' * 40}.pdf", "a" * 40, "pdf")


ONE = wanted("Forum1", 1)
TWO = wanted("Forum2", 2)


def archive(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def read_members(
    tmp_path: Path, entries: list[tuple[str, bytes]], max_bytes: int = LIMIT
) -> tuple[dict[str, Path], dict[str, str], list[str]]:
    folder = tmp_path / "files"
    folder.mkdir(exist_ok=True)
    return members(archive(tmp_path / "answer.zip", entries), [ONE, TWO], folder, max_bytes)


def test_a_good_pdf_member_is_kept_as_a_temporary_file_in_the_folder(tmp_path: Path) -> None:
    got, refused, strays = read_members(tmp_path, [("Forum1.pdf", PDF), ("2_pdf.pdf", PDF)])
    assert set(got) == {"Forum1", "Forum2"}
    assert refused == {} and strays == []
    for path in got.values():
        assert path.parent == tmp_path / "files"
        assert path.name.startswith(TEMP_PREFIX)
        assert path.read_bytes() == PDF


@pytest.mark.parametrize(
    "name",
    ["../Forum1.pdf", "a/../Forum1.pdf", "a/b/Forum1.pdf", "./Forum1.pdf"],
)
def test_a_member_that_is_a_path_is_refused(tmp_path: Path, name: str) -> None:
    got, refused, _ = read_members(tmp_path, [(name, PDF), ("Forum2.pdf", PDF)])
    assert "Forum1" not in got
    assert "a path, not a plain file name" in refused["Forum1"]
    assert "Forum2" in got


def test_an_absolute_member_name_is_refused(tmp_path: Path) -> None:
    got, refused, _ = read_members(tmp_path, [("/Forum1.pdf", PDF)])
    assert "Forum1" not in got
    assert "a path" in refused["Forum1"]
    assert safe_member_name("/Forum1.pdf") is None
    assert safe_member_name("C:Forum1.pdf") is None  # a drive letter on Windows
    assert safe_member_name("Forum1.pdf\x00.txt") is None  # zipfile cuts at NUL; others may not


def test_a_member_name_with_backslashes_is_refused(tmp_path: Path) -> None:
    got, refused, strays = read_members(tmp_path, [("sub\\Forum1.pdf", PDF)])
    assert "Forum1" not in got
    assert "a path" in refused["Forum1"]
    assert strays == []


def test_a_folder_of_one_level_is_allowed_as_openreview_py_writes_it() -> None:
    assert safe_member_name("pdfs/Forum1.pdf") == "Forum1.pdf"
    assert safe_member_name("Forum1.pdf") == "Forum1.pdf"


def test_too_many_members_make_the_whole_archive_unusable(tmp_path: Path) -> None:
    allowed = 2 + MAX_MEMBERS_EXTRA  # two files asked for
    extra = [(f"stray{i}.pdf", PDF) for i in range(allowed - 1)]
    got, _, strays = read_members(tmp_path, [("Forum1.pdf", PDF), *extra])
    assert "Forum1" in got and len(strays) == allowed - 1
    (tmp_path / "answer.zip").unlink()
    with pytest.raises(zipfile.BadZipFile, match="members for 2 files asked"):
        read_members(tmp_path, [("Forum1.pdf", PDF), *extra, ("one-more.pdf", PDF)])


def test_a_member_declaring_more_than_the_limit_is_refused(tmp_path: Path) -> None:
    big = PDF + b"y" * LIMIT
    got, refused, _ = read_members(tmp_path, [("Forum1.pdf", big), ("Forum2.pdf", PDF)])
    assert "Forum1" not in got
    assert "over website.file_max_mb" in refused["Forum1"]
    assert "Forum2" in got


def test_an_archive_bomb_is_refused_by_its_ratio(tmp_path: Path) -> None:
    bomb = PDF + b"\0" * (2 * RATIO_FLOOR)  # deflates about a thousandfold
    got, refused, _ = read_members(tmp_path, [("Forum1.pdf", bomb)], max_bytes=4 * RATIO_FLOOR)
    assert "Forum1" not in got
    assert "an archive bomb" in refused["Forum1"]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"<!DOCTYPE html><html><body>Verifying your browser</body></html>", "an HTML page"),
        (b"PK\x03\x04 a zip, not a pdf", "not a PDF"),
    ],
)
def test_a_member_of_the_wrong_type_is_refused(tmp_path: Path, data: bytes, why: str) -> None:
    got, refused, _ = read_members(tmp_path, [("Forum1.pdf", data), ("Forum2.pdf", PDF)])
    assert "Forum1" not in got
    assert why in refused["Forum1"]
    assert "Forum2" in got
    assert [p.name for p in (tmp_path / "files").iterdir()] == [got["Forum2"].name]


def test_two_members_for_one_paper_keep_neither(tmp_path: Path) -> None:
    got, refused, _ = read_members(tmp_path, [("Forum1.pdf", PDF), ("1_pdf.pdf", PDF)])
    assert "Forum1" not in got
    assert "more than one file for this paper" in refused["Forum1"]


def test_an_encrypted_member_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    path = archive(tmp_path / "answer.zip", [("Forum1.pdf", PDF)])
    # zipfile cannot write an encrypted member: set the flag in both headers by hand.
    raw = bytearray(path.read_bytes())
    for signature, at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = raw.find(signature)
        raw[start + at] |= 0x1
    path.write_bytes(bytes(raw))
    got, refused, _ = members(path, [ONE], folder, LIMIT)
    assert "Forum1" not in got
    assert refused["Forum1"].endswith("encrypted")


def test_a_member_nobody_asked_for_is_a_stray(tmp_path: Path) -> None:
    got, refused, strays = read_members(tmp_path, [("Other.pdf", PDF)])
    assert got == {} and refused == {}
    assert strays == ["member 'Other.pdf': nobody asked for it"]


def test_check_type_reads_the_bytes_not_the_name() -> None:
    check_type("pdf", PDF[:64])
    check_type("png", b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    with pytest.raises(Refused, match="not a PDF"):
        check_type("pdf", b"GIF89a")
    with pytest.raises(Refused, match="an HTML page"):
        check_type("png", b"  <html><head>")
    with pytest.raises(Refused, match="unknown type"):
        check_type("exe", b"MZ")
