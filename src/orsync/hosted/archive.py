"""What came back, checked before anything is kept: the type of a file, the members of a batch
answer (a zip archive) one by one.

Untrusted answers: the size limit (``website.file_max_mb``) is enforced while a zip member
inflates (``source.download`` enforces it while the bytes stream); the type is checked from the
bytes (a PDF starts with ``%PDF-``; an HTML page is never a file); archive members are read one
by one (never ``extractall``) and kept only when their name is a plain name mapping to exactly
one paper asked for (``<note id>.<ext>``, or openreview-py's ``<number>_<field>.<ext>``):
absolute paths, ``..``, backslashes, duplicates, members nobody asked for, encrypted members and
archive bombs (declared size over the limit, an inflation ratio over ``MAX_RATIO``, more bytes
than declared) are refused. Only stored and deflate members are opened: Python's bzip2 and LZMA
readers inflate a whole block whatever size was asked for (a few KB became GiBs), so those are
refused by their method before a byte is read; any error reading one member refuses that member
only. The archive's directory is sized from its end record (and the zip64 one) before
``zipfile`` parses anything: an entry count or directory size that no batch of the files asked
for needs makes the whole answer unusable. Files are written to temporary files inside ``files/`` and renamed
into place later: a partial download is never published, and no name from the server ever
becomes a path.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from orsync.files import TEMP_PREFIX
from orsync.hosted.plan import Wanted

MAX_RATIO = 100  # inflated/compressed beyond this (for members over RATIO_FLOOR): a bomb
RATIO_FLOOR = 1 << 20
MAX_MEMBERS_EXTRA = 10  # an archive may carry this many members beyond those asked for
# A directory entry: 46 fixed bytes, then its name, extra field and comment; a real batch
# answer's names are short, so more than this per entry is not a batch answer.
DIR_BYTES_PER_ENTRY = 46 + 1024
READABLE = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
METHODS = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA", 9: "deflate64", 93: "zstandard"}

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_TAIL = _EOCD.size + 0xFFFF  # the record and the longest comment it may carry

# What a file of each extension starts with (offset, bytes): checked on the bytes received.
_MAGIC: dict[str, tuple[tuple[int, bytes], ...]] = {
    "pdf": ((0, b"%PDF-"),),
    "png": ((0, b"\x89PNG\r\n\x1a\n"),),
    "jpg": ((0, b"\xff\xd8\xff"),),
    "jpeg": ((0, b"\xff\xd8\xff"),),
    "gif": ((0, b"GIF87a"), (0, b"GIF89a")),
    "webp": ((8, b"WEBP"),),
    "zip": ((0, b"PK\x03\x04"), (0, b"PK\x05\x06")),
    "pptx": ((0, b"PK\x03\x04"),),
    "docx": ((0, b"PK\x03\x04"),),
    "odp": ((0, b"PK\x03\x04"),),
    "gz": ((0, b"\x1f\x8b"),),
    "tgz": ((0, b"\x1f\x8b"),),
    "mp4": ((4, b"ftyp"),),
    "mov": ((4, b"ftyp"),),
}


class Refused(Exception):
    """An answer that failed a check: never kept, the row is ``refused``."""


def check_type(ext: str, head: bytes) -> None:
    """Raise ``Refused`` unless ``head`` (the first bytes) is a file of type ``ext``."""
    start = head.lstrip()[:15].lower()
    if start.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise Refused(f"an HTML page, not a .{ext} file")
    magic = _MAGIC.get(ext)
    if magic is None:
        raise Refused(f"files of type .{ext} are not hosted (unknown type)")
    if not any(head[off : off + len(sig)] == sig for off, sig in magic):
        what = "a PDF (it does not start with %PDF-)" if ext == "pdf" else f"a .{ext} file"
        raise Refused(f"not {what}")


def safe_member_name(name: str) -> str | None:
    """The member's plain name, or None when it is a path that could leave ``files/``."""
    if not name or "\\" in name or "\x00" in name or ":" in name:
        return None
    parts = name.split("/")
    # An absolute name ("/x") or a doubled slash leaves an empty part.
    if any(p in ("", ".", "..") for p in parts):
        return None
    return parts[-1] if len(parts) <= 2 else None


@contextlib.contextmanager
def temp_in(folder: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A new temporary file in ``folder`` (a name site builders skip), removed if the block
    fails; kept otherwise, for the caller to rename or remove."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=".tmp")
    path = Path(name)
    try:
        with os.fdopen(fd, "w+b") as handle:
            yield handle, path
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def directory_size(archive_path: Path) -> tuple[int, int]:
    """(entries, central directory bytes) as the archive's end records declare them, read from
    its tail alone. Raises ``zipfile.BadZipFile`` when there is no end record."""
    with archive_path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - _TAIL)
        handle.seek(start)
        tail = handle.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _EOCD.size > len(tail):
            raise zipfile.BadZipFile("not a zip archive (no end of central directory record)")
        _, _, _, _, entries, dir_bytes, _, _ = _EOCD.unpack_from(tail, at)
        locator_at = start + at - _ZIP64_LOCATOR.size
        if locator_at < 0:
            return entries, dir_bytes
        handle.seek(locator_at)
        locator = handle.read(_ZIP64_LOCATOR.size)
        if locator[:4] != b"PK\x06\x07":
            return entries, dir_bytes
        _, _, record_at, _ = _ZIP64_LOCATOR.unpack(locator)
        if record_at > size - _ZIP64_EOCD.size:
            raise zipfile.BadZipFile("the zip64 end record points outside the archive")
        handle.seek(record_at)
        record = handle.read(_ZIP64_EOCD.size)
        if record[:4] != b"PK\x06\x06":
            raise zipfile.BadZipFile("the zip64 end record is missing")
        fields = _ZIP64_EOCD.unpack(record)
        # Whichever record declares more is the one a reader could be made to believe.
        return max(entries, fields[7]), max(dir_bytes, fields[8])


def check_directory(archive_path: Path, asked: int) -> None:
    """Refuse (``zipfile.BadZipFile``) an archive whose directory is larger than a batch
    answer for ``asked`` files can need, before anything parses it."""
    entries, dir_bytes = directory_size(archive_path)
    most = asked + MAX_MEMBERS_EXTRA
    if entries > most:
        raise zipfile.BadZipFile(
            f"its directory declares {entries} members for {asked} files asked"
        )
    if dir_bytes > most * DIR_BYTES_PER_ENTRY:
        raise zipfile.BadZipFile(
            f"its directory declares {dir_bytes} bytes, more than {most} members can need"
        )


def members(
    archive_path: Path, asked: Sequence[Wanted], folder: Path, max_bytes: int
) -> tuple[dict[str, Path], dict[str, str], list[str]]:
    """The usable members of a batch answer: (forum id → checked temp file, forum id → why its
    member was refused, problems with members nobody asked for). Raises ``zipfile.BadZipFile``
    when the archive itself is unusable."""
    by_key: dict[str, Wanted] = {}
    for w in asked:
        by_key[w.forum_id] = w
        if w.number is not None:
            by_key[f"{w.number}_{w.field}"] = w
    got: dict[str, Path] = {}
    refused: dict[str, str] = {}
    strays: list[str] = []
    check_directory(archive_path, len(asked))
    with zipfile.ZipFile(archive_path) as archive:
        infos = [i for i in archive.infolist() if not i.is_dir()]
        if len(infos) > len(asked) + MAX_MEMBERS_EXTRA:
            raise zipfile.BadZipFile(f"{len(infos)} members for {len(asked)} files asked")
        seen: dict[str, int] = {}
        mapped: list[tuple[zipfile.ZipInfo, Wanted | None, str | None]] = []
        for info in infos:
            plain = safe_member_name(info.filename)
            # A path is refused; its last part still says whose file it claims to be.
            last = plain or re.split(r"[\\/]", info.filename)[-1]
            target = by_key.get(last.rpartition(".")[0] or last)
            reason = None if plain else "a path, not a plain file name"
            if target is not None and plain:
                seen[target.forum_id] = seen.get(target.forum_id, 0) + 1
            mapped.append((info, target, reason))
        for info, target, reason in mapped:
            shown = repr(info.filename[:120])
            if target is None:
                strays.append(f"member {shown}: {reason or 'nobody asked for it'}")
                continue
            if reason is None and seen.get(target.forum_id, 0) > 1:
                reason = "the archive holds more than one file for this paper"
            if reason is None:
                try:
                    got[target.forum_id] = _extract(archive, info, target, folder, max_bytes)
                    continue
                except Refused as exc:
                    reason = str(exc)
                except MemoryError:
                    reason = "unreadable (it took more memory than there is)"
                except Exception as exc:  # one member's failure refuses that member only
                    reason = f"unreadable ({type(exc).__name__}: {str(exc)[:200]})"
            refused.setdefault(target.forum_id, f"archive member {shown}: {reason}")
            old = got.pop(target.forum_id, None)
            if old is not None:
                old.unlink(missing_ok=True)
    return got, refused, strays


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, w: Wanted, folder: Path, max_bytes: int
) -> Path:
    if info.compress_type not in READABLE:
        method = METHODS.get(info.compress_type, f"method {info.compress_type}")
        raise Refused(f"compressed with {method}; only stored and deflate members are read")
    if info.flag_bits & 0x1:
        raise Refused("encrypted")
    if info.file_size > max_bytes:
        raise Refused(f"declares {info.file_size} bytes, over website.file_max_mb")
    if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(1, info.compress_size):
        raise Refused(f"inflates {info.compress_size} bytes to {info.file_size} (an archive bomb)")
    limit = min(max_bytes, info.file_size)
    with temp_in(folder) as (out, path):
        written = 0
        try:
            with archive.open(info) as member:
                while chunk := member.read(1 << 16):
                    written += len(chunk)
                    if written > limit:
                        raise Refused("inflates to more bytes than it declares")
                    out.write(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
            raise Refused(f"unreadable ({exc})") from None
        except Refused:
            raise
        out.flush()
        out.seek(0)
        check_type(w.ext, out.read(64))
        os.fsync(out.fileno())
    return path
