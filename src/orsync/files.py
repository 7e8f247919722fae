"""Files with confidential content, readable by their owner only whatever the umask (docs/security.md#confidential-files).

Reviews, reviewer scores and decisions end up in the store, in ``export --out`` files and in the
report page; a umask of 022 (the usual default) or 027 (a service's) would let other accounts,
or a whole group, read them. These helpers create such files 0600 from the start and never
follow a link planted where the file is to be written. Published files (the website's) are
replaced whole with ``write_atomically``, keeping their mode.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = [
    "HOSTED_DIR",
    "PRIVATE_MODE",
    "STALE_TEMP_S",
    "STORE_SIDE_SUFFIXES",
    "TEMP_PREFIX",
    "confidential_files",
    "create_private",
    "ensure_site_dir",
    "holds",
    "inside",
    "loose_mode",
    "no_space",
    "site_dir_mode",
    "site_leak",
    "sqlite_file",
    "write_atomically",
    "write_private",
]

PRIVATE_MODE = 0o600

# orsync's own temporary files in a folder it publishes into (website files, hosted files): a
# name a site builder skips (leading dot), and an age after which one left by a killed process
# is removed, long past any write in progress.
TEMP_PREFIX = ".orsync-"
STALE_TEMP_S = 3600.0

# The folder inside website.output_dir that holds the hosted files (docs/site-files.md#hosted-files).
HOSTED_DIR = "files"


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


def holds(path: Path, size: int | None) -> bool:
    """Whether ``path`` is a plain file (a link is not) of ``size`` bytes (of any, for None)."""
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and (size is None or st.st_size == size)


def fsync_dir(directory: Path) -> None:
    """Make the renames in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the public folder's edge

# What SQLite and the writer lock put beside a store file (``name-wal``, ``name.lock``, ...):
# each holds the store's content or says who writes it, so none may be published either.
STORE_SIDE_SUFFIXES = ("-wal", "-shm", "-journal", ".lock")


def _real(path: Path) -> Path:
    # Links resolved wherever they exist: a site folder reached through a link, or a store
    # linked into it, is judged by where the bytes are.
    return Path(os.path.realpath(path))


def inside(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies in it, by real paths (links resolved)."""
    return _real(path).is_relative_to(_real(folder)) or path.absolute().is_relative_to(
        folder.absolute()
    )


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store URL as written (relative or not); None for other stores."""
    from sqlalchemy.engine import make_url  # the one SQLAlchemy use here: a URL's parts
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else Path(database)


def confidential_files(
    config_file: Path | None, password_file: Path | None, store_url: str
) -> list[tuple[str, Path]]:
    """What must never be in the site folder, each named as the config names it."""
    found: list[tuple[str, Path]] = []
    store = sqlite_file(store_url)
    if store is not None:
        found.append(("the store", store))
        found += [(f"the store's {s} file", Path(f"{store}{s}")) for s in STORE_SIDE_SUFFIXES]
    if password_file is not None:
        found.append(("openreview.password_file", password_file))
    if config_file is not None:
        found.append(("the config file", config_file))
    return found


def site_leak(
    site: Path, private: Sequence[tuple[str, Path | None]], key: str = "website.output_dir"
) -> str | None:
    """Why ``site`` may not be the site folder: it is or contains one of the ``private`` files
    (label, path); None when it holds none. A deploy hook or a web server publishes the folder
    whole, with whatever else is in it (docs/security.md#confidential-files)."""
    for label, path in private:
        if path is None or not inside(path, site):
            continue
        what, thing = (
            ("the password", "the password file")
            if label.startswith("openreview")
            else ("the config", "the config file")
            if label.startswith("the config")
            else ("reviews", "the store")
        )
        verb = "is" if _real(path) == _real(site) else "contains"
        return (
            f"{key} {site} {verb} {label} {path}: {what} would be published; "
            f"put {thing} outside the site folder"
        )
    return None


# ------------------------------------------------------------------ folders in the site


def site_dir_mode(site: Path) -> int:
    """The mode of a folder orsync makes inside the site folder ``site`` (docs/site-files.md#hosted-files).

    The site folder's read and search bits and its setgid bit, so whoever may read the site
    may read the folder whatever the umask (a service's ``UMask=0077`` would make it 0700, and
    the web server's group would get 404 for everything in it). Write stays the owner's: only
    orsync writes there, and no group or world write is ever handed out.
    """
    mode = stat.S_IMODE(site.stat().st_mode)
    return 0o700 | (mode & (0o055 | stat.S_ISGID))


def ensure_site_dir(folder: Path, site: Path) -> bool:
    """Make ``folder`` (inside the site folder ``site``) with :func:`site_dir_mode`, or give
    the one that is there the read and search bits it lacks; True when it made or changed it.

    A folder an older orsync made under a strict umask is widened to what the site folder
    allows, never narrowed: a chair who opened it further keeps that. Another account's
    folder is left alone.
    """
    site.mkdir(parents=True, exist_ok=True)
    want = site_dir_mode(site)
    # Made under a umask that grants exactly ``want``: a chmod afterwards would drop the
    # setgid bit the folder inherits from a setgid site folder whenever this account is not in
    # its group (the deploy's orsync-web), and the web server's group would no longer own what
    # is written inside. The umask is the process's for a moment: nothing orsync writes
    # depends on it (confidential files are made 0600 explicitly, site files 0644).
    old = os.umask(0o777 & ~want)
    try:
        folder.mkdir(mode=0o777)
        return True
    except FileExistsError:
        pass
    finally:
        os.umask(old)
    st = folder.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        return False
    mode = stat.S_IMODE(st.st_mode)
    missing = want & 0o777 & ~mode
    if not missing:
        return False
    # The kernel keeps the setgid bit here only when this account is in the folder's group;
    # the files inside are 0644, so the web server reads them either way.
    folder.chmod(mode | missing)
    return True


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


def _mount_of(path: Path) -> Path:
    """The mount point of the filesystem that holds (or would hold) ``path``."""
    here = path.resolve()
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n // 1024} KiB"


def no_space(exc: OSError, folder: Path, need: int | None) -> str | None:
    """For a write into ``folder`` that failed for want of space (a full filesystem or a used-up
    disk quota), what to do: free space on that filesystem, named by its mount point, and about
    how much the write needs (``need`` bytes, when known); None for any other error."""
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return None
    mount = _mount_of(folder)
    try:
        free = f"{_mib(shutil.disk_usage(mount).free)} free"
        if os.statvfs(mount).f_favail == 0:
            free = "no inodes left, " + free  # a full inode table says ENOSPC too
    except OSError:
        free = "free space unknown"
    what = "the disk quota is used up" if exc.errno == errno.EDQUOT else "no space left on device"
    needed = f", about {_mib(max(need, 1024))} to write" if need is not None else ""
    return (
        f"{what} writing {folder} ({free} on the filesystem mounted at {mount}{needed}): free "
        "space on that filesystem, or move the folder to one with room"
    )
