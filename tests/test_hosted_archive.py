"""The checks on a batch answer, called directly on zip archives built here.

Each test puts one kind of hostile member into a real zip file and shows that ``members`` keeps
nothing of it, and why; the good member beside it shows the checks do not refuse everything.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest

from orsync.files import TEMP_PREFIX
from orsync.hosted.archive import (
    MAX_MEMBERS_EXTRA,
    RATIO_FLOOR,
    Refused,
    check_directory,
    check_type,
    directory_size,
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


def test_a_directory_larger_than_its_entries_need_is_refused_before_parsing(
    tmp_path: Path,
) -> None:
    path = archive(tmp_path / "answer.zip", [("Forum1.pdf", PDF)])
    data = bytearray(path.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    # The end record now says the directory is 50 MB: nothing of it is read.
    data[end + 12 : end + 16] = (50 << 20).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    folder = tmp_path / "files"
    folder.mkdir()
    with pytest.raises(zipfile.BadZipFile, match="directory declares 52428800 bytes"):
        members(path, [ONE, TWO], folder, LIMIT)
    assert directory_size(path) == (1, 50 << 20)


def test_the_zip64_end_record_is_read_for_the_entry_count(tmp_path: Path) -> None:
    path = tmp_path / "answer.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Forum1.pdf", PDF)
    data = path.read_bytes()
    end = data.rfind(b"PK\x05\x06")
    cd_size = int.from_bytes(data[end + 12 : end + 16], "little")
    cd_at = int.from_bytes(data[end + 16 : end + 20], "little")
    many = 4_000_000
    zip64 = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, many, many, cd_size, cd_at)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, end, 1)
    record = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, cd_size, cd_at, 0)
    path.write_bytes(data[:end] + zip64 + locator + record)
    assert directory_size(path) == (many, cd_size)
    with pytest.raises(zipfile.BadZipFile, match="declares 4000000 members for 2 files asked"):
        check_directory(path, 2)


@pytest.mark.parametrize(
    ("method", "name"), [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA")]
)
def test_only_stored_and_deflate_members_are_opened(tmp_path: Path, method: int, name: str) -> None:
    path = tmp_path / "answer.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("Forum1.pdf", PDF, compress_type=method)
        zf.writestr("Forum2.pdf", PDF, compress_type=zipfile.ZIP_STORED)
    folder = tmp_path / "files"
    folder.mkdir()
    got, refused, _ = members(path, [ONE, TWO], folder, LIMIT)
    assert set(got) == {"Forum2"}
    assert f"compressed with {name}; only stored and deflate members are read" in refused["Forum1"]


def test_a_member_that_fails_to_inflate_refuses_that_member_only(tmp_path: Path) -> None:
    path = archive(tmp_path / "answer.zip", [("Forum1.pdf", PDF), ("Forum2.pdf", PDF)])
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("Forum1.pdf")
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start : start + 8] = b"\xff" * 8  # not a deflate stream: zlib raises its own error
    path.write_bytes(bytes(data))
    folder = tmp_path / "files"
    folder.mkdir()
    got, refused, _ = members(path, [ONE, TWO], folder, LIMIT)
    assert set(got) == {"Forum2"}
    assert "unreadable" in refused["Forum1"]
    assert [p.name for p in folder.iterdir()] == [got["Forum2"].name]
