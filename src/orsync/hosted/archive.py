"""What came back, checked before anything is kept: the type of a file, the members of a batch
answer (a zip archive) one by one.

Untrusted answers: the size limit (``website.file_max_mb``) is enforced while a zip member
inflates (``source.download`` enforces it while the bytes stream); the type is checked from the
bytes (a PDF starts with ``%PDF-``; an HTML page is never a file); archive members are read one
by one (never ``extractall``) and kept only when their name is a plain name mapping to exactly
one paper asked for (``<note id>.<ext>``, or openreview-py's ``<number>_<field>.<ext>``):
absolute paths, ``..``, backslashes, duplicates, members nobody asked for, encrypted members and
archive bombs (declared size over the limit, an inflation ratio over ``MAX_RATIO``, more bytes
than declared) are refused. Files are written to temporary files inside ``files/`` and renamed
into place later: a partial download is never published, and no name from the server ever
becomes a path.
"""

from __future__ import annotations

import contextlib
import os
import re
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
            refused.setdefault(target.forum_id, f"archive member {shown}: {reason}")
            old = got.pop(target.forum_id, None)
            if old is not None:
                old.unlink(missing_ok=True)
    return got, refused, strays


def _extract(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, w: Wanted, folder: Path, max_bytes: int
) -> Path:
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
