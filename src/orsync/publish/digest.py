"""Whether a push has anything to do: a digest of everything it publishes from, and the files
it wrote last time, kept in ``sync_state`` (``PUSH_DIGEST``; docs/site-files.md#when-the-files-are-written).

The service pushes after every cycle; when nothing it publishes from changed, rendering every
file only to find the bytes equal is nearly all of a quiet cycle's cost. The digest covers the
store's rows the push reads (``queries.push_inputs``), the whole config, orsync's version and
``FORMAT`` (bumped when a renderer's output changes), the renderers' own files (an upgrade in
place that keeps the version number still renders again), and each written file's size,
modification time and inode, so a file deleted or edited by hand is written again.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from orsync import __version__, site
from orsync.config import Config
from orsync.site import calendar
from orsync.store import queries
from orsync.store.queries import POSTERS_ANNOUNCED, POSTERS_HOMES, POSTERS_PUBLISHED, PUSH_DIGEST

__all__ = ["FORMAT", "Digest", "clear", "current", "save", "stored", "unchanged"]

# Bumped when what a renderer makes of the same inputs changes within one version.
FORMAT = 1
# The sync_state facts a push reads besides the tables.
_STATE_KEYS = (POSTERS_PUBLISHED, POSTERS_HOMES, POSTERS_ANNOUNCED, calendar.STATE_KEY)


@dataclass(frozen=True)
class Digest:
    inputs: str
    files: dict[str, list[int]]
    papers: int


@functools.cache
def _renderers() -> str:
    """The renderers' source files and templates as installed (name, size, mtime): a new
    release, or an edited checkout, is a new input. Read once per process: code that changes
    under a running service takes effect at its restart anyway."""
    root = Path(site.__file__).parent
    stats = []
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".j2") and path.is_file():
            st = path.stat()
            stats.append(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}")
    return "\n".join(stats)


def inputs(conn: Connection, config: Config) -> str:
    """The digest of everything a push publishes from, as the store and config hold it now."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{__version__}/{FORMAT}\n".encode())
    h.update(_renderers().encode())
    h.update(config.model_dump_json().encode())
    exclude = config.talk_selection.exclude_field is not None
    for row in queries.push_inputs(conn, _STATE_KEYS, any_change=exclude):
        h.update(repr(tuple(row)).encode())
        h.update(b"\n")
    return h.hexdigest()


def file_stats(folder: Path, names: Iterable[str]) -> dict[str, list[int]]:
    """Size, modification time and inode of each file; a missing one is left out."""
    out = {}
    for name in sorted(names):
        try:
            st = (folder / name).stat()
        except OSError:
            continue
        out[name] = [st.st_size, st.st_mtime_ns, st.st_ino]
    return out


def stored(conn: Connection) -> Digest | None:
    """What the last push that finished recorded; None when none did (or it is unreadable)."""
    try:
        data = json.loads(queries.get_state(conn, PUSH_DIGEST) or "")
        files = {str(k): [int(x) for x in v] for k, v in data["files"].items()}
        return Digest(str(data["inputs"]), files, int(data["papers"]))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def current(conn: Connection, config: Config, folder: Path) -> Digest | None:
    """The stored digest when the store, the config and the files still match it, else None."""
    last = stored(conn)
    if last is None or file_stats(folder, last.files) != last.files:
        return None
    return last if inputs(conn, config) == last.inputs else None


def unchanged(conn: Connection, config: Config) -> Digest | None:
    """The stored digest when nothing changed and no ``website.on_change`` is owed, else None."""
    if config.website is None or queries.on_change_pending(conn) is not None:
        return None
    return current(conn, config, config.website.output_dir)


def save(conn: Connection, config: Config, folder: Path, names: Iterable[str], papers: int) -> None:
    """Recorded after the files are written, from the store as the push left it."""
    data = {"inputs": inputs(conn, config), "files": file_stats(folder, names), "papers": papers}
    queries.set_state(conn, PUSH_DIGEST, json.dumps(data, sort_keys=True))


def clear(conn: Connection) -> None:
    """Forgotten when a push starts work: one that fails leaves no digest to trust."""
    if queries.get_state(conn, PUSH_DIGEST) is not None:
        queries.set_state(conn, PUSH_DIGEST, "")
