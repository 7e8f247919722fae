"""Files with confidential content, readable by their owner only whatever the umask (docs/security.md#confidential-files).

Reviews, reviewer scores and decisions end up in the store, in ``export --out`` files and in the
report page; a umask of 022 (the usual default) or 027 (a service's) would let other accounts,
or a whole group, read them. These helpers create such files 0600 from the start and never
follow a link planted where the file is to be written. Published files (the website's) are
replaced whole with ``write_atomically``, keeping their mode.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "PRIVATE_MODE",
    "STALE_TEMP_S",
    "TEMP_PREFIX",
    "create_private",
    "loose_mode",
    "write_atomically",
    "write_private",
]

PRIVATE_MODE = 0o600

# orsync's own temporary files in a folder it publishes into (website files, hosted files): a
# name a site builder skips (leading dot), and an age after which one left by a killed process
# is removed, long past any write in progress.
TEMP_PREFIX = ".orsync-"
STALE_TEMP_S = 3600.0


def write_private(path: Path, data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Replace *path* atomically by a 0600 file holding *data*.

    The bytes go to a fresh temporary file beside *path* (``mkstemp``: 0600, ``O_EXCL``), are
    flushed to disk, and the file is renamed over *path*: readers see the old file or the new
    one, never half of one, and a symlink at *path* is replaced rather than followed.
    Raises ``OSError`` like ``Path.write_text``.
    """
    raw = data.encode(encoding) if isinstance(data, str) else data
    if path.exists() and not path.is_file():
        # A device or a pipe (``--out /dev/stdout``): nothing to keep private, nothing to rename.
        with path.open("wb") as handle:
            handle.write(raw)
        return
    folder = path.parent if str(path.parent) else Path()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), PRIVATE_MODE)
            handle.write(raw)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def create_private(path: Path) -> bool:
    """Create *path* empty and 0600 unless it exists; True if this call created it.

    ``O_EXCL`` and ``O_NOFOLLOW``: a file or link someone else put there first is left alone
    (the caller checks what it found).
    """
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, PRIVATE_MODE
        )
    except FileExistsError:
        return False
    try:
        # The umask can only take bits away from 0600, but a default ACL could add some.
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    return True


def loose_mode(st: os.stat_result) -> tuple[bool, bool]:
    """(group may read or write it, others may read or write it) for a file's stat."""
    mode = stat.S_IMODE(st.st_mode)
    return bool(mode & 0o060), bool(mode & 0o006)


def fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ replacing files


def _check_name(name: str) -> None:
    if not name or name != Path(name).name or name.startswith(".") or name in ("..",):
        raise ValueError(f"website file name {name!r} must be a plain file name")


def _same_content(path: Path, data: bytes) -> bool:
    try:
        if not path.is_file() or path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def _replace(directory: Path, name: str, data: bytes) -> None:
    target = directory / name
    try:
        mode = target.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644  # mkstemp's 0600 would hide the file from the web server
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f"{TEMP_PREFIX}{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())  # data on disk before the rename makes it visible
        Path(tmp).replace(target)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def _remove_stale_temps(directory: Path) -> None:
    # A writer killed between mkstemp and rename leaves its temp file behind; an hour-old one
    # cannot belong to a live writer.
    cutoff = time.time() - STALE_TEMP_S
    for path in directory.glob(f"{TEMP_PREFIX}*.tmp"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def write_atomically(output_dir: Path, files: Mapping[str, bytes]) -> list[str]:
    """Replace the files whose bytes differ; return their names. Readers see old or new, whole."""
    for name in files:
        _check_name(name)
    output_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(output_dir)
    changed = [name for name in sorted(files) if not _same_content(output_dir / name, files[name])]
    for name in changed:
        _replace(output_dir, name, files[name])
    if changed:
        fsync_dir(output_dir)  # the renames themselves survive a power cut
    return changed
