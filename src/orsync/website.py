"""Website data files (SPEC §6.1): render them from store rows, replace them atomically.

Only allowlisted public fields leave this module: rows may carry anything (reviews, emails,
authorids) and none of it is copied unless named in ``_record``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orsync.errors import OrsyncError
from orsync.files import STALE_TEMP_S, TEMP_PREFIX, fsync_dir
from orsync.schedule import Session
from orsync.terminal import BIDI_CONTROLS

if TYPE_CHECKING:
    from orsync.ics import EventState
    from orsync.program import Day

__all__ = [
    "FORMATS",
    "OnChangeError",
    "OnChangeStopped",
    "clean_text",
    "neutralise_cell",
    "render",
    "run_on_change",
    "write_atomically",
]

FORMATS = ("json", "yaml", "csv", "ics", "html")
CSV_HEADER = (
    "UID", "title", "authors", "abstract", "keywords", "sessions", "pdf_url", "presentation", "board"
)  # fmt: skip
LIST_SEPARATOR = "|"


class OnChangeError(OrsyncError):
    """The website's on_change command failed or timed out; the files themselves are written.

    The push reports it as its own failure (exit 2, "the files are written"): the push did its
    part, the site was not rebuilt.
    """


class OnChangeStopped(OnChangeError):
    """The on_change command was killed because orsync was asked to stop."""


# --------------------------------------------------------------------------- cleaning

# C0 controls other than tab and newline, DEL and C1 controls: NUL truncates strings in C-based
# readers, YAML 1.1 forbids them in a stream (Ruby/Go readers used by Jekyll and Hugo refuse the
# file), and no title or abstract legitimately contains them; they come from copy-paste of PDFs.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi embedding, override and isolate controls (U+202A-202E, U+2066-2069) are removed, not
# replaced: an RLO in a title reverses the text shown after it ("Trojan Source"), on the page and
# beyond the title when the site inlines it without <bdi>; no title or abstract needs one, and a
# removed one leaves the text readable in its logical order, where a placeholder would show junk.
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# Lone surrogates cannot be encoded as UTF-8 at all.
_SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: object) -> str:
    if text is None:
        return ""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")  # keep line breaks, not CRs
    return _SURROGATES.sub("\ufffd", _BIDI.sub("", _CONTROLS.sub("", s)))


def _clean_optional(text: object) -> str | None:
    return None if text is None else clean_text(text)


def _clean_list(value: object) -> list[str]:
    """A list field; the store view holds JSON text, callers may pass lists."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list | tuple):
        value = [value]
    # "|" joins list items in the CSV (Mini-Conf's convention); inside an item it would split it,
    # so it becomes a broken bar in every format, keeping all formats equal.
    return [clean_text(v).replace(LIST_SEPARATOR, "¦") for v in value if v is not None]


def _iso(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    text = clean_text(value)
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def _int_or_none(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(str(value)) if not isinstance(value, int) else value


# --------------------------------------------------------------------------- records


def _session_of(row: Mapping[str, Any], known: Mapping[str, Session]) -> dict[str, Any] | None:
    sid = row.get("session_id")
    if sid is None:
        return None
    s = known.get(str(sid))
    return {
        "id": clean_text(sid),
        "name": clean_text(row.get("session_name") or (s.name if s else sid)),
        "start": _iso(row.get("session_start") or (s.start if s else None)),
        "end": _iso(row.get("session_end") or (s.end if s else None)),
    }


def _record(row: Mapping[str, Any], known: Mapping[str, Session]) -> dict[str, Any]:
    """The public shape of one paper; key order is the documented one."""
    return {
        "id": clean_text(row["forum_id"]),
        "number": _int_or_none(row.get("number")),
        "title": clean_text(row.get("title")),
        "authors": _clean_list(row.get("authors")),
        "keywords": _clean_list(row.get("keywords")),
        "abstract": _clean_optional(row.get("abstract")),
        "tldr": _clean_optional(row.get("tldr")),
        "pdf_url": _clean_optional(row.get("pdf_url")),
        "forum_url": _clean_optional(row.get("forum_url")),
        "decision": _clean_optional(row.get("decision")),
        "presentation": _clean_optional(row.get("presentation")),
        "session": _session_of(row, known),
        "board": _int_or_none(row.get("board")),
    }


def _files_of(row: Mapping[str, Any]) -> dict[str, str | None]:
    """The hosted copies of a paper's files (SPEC §10): ``{field: "files/<name>" | None}``."""
    return {clean_text(k): _clean_optional(v) for k, v in sorted(dict(row["files"]).items())}


def _records(
    papers: Sequence[Mapping[str, Any]], sessions: Sequence[Session]
) -> list[dict[str, Any]]:
    known = {s.id: s for s in sessions}
    records = [_record(row, known) for row in papers]
    for record, row in zip(records, papers, strict=True):
        if row.get("files") is not None:
            record["files"] = _files_of(row)
    records.sort(key=lambda r: (r["number"] is None, r["number"] or 0, r["id"]))
    return records


# --------------------------------------------------------------------------- formats


# Characters escaped in the JSON files, where they can only occur inside strings and where
# "\uXXXX" means the same to every JSON parser. U+2028/2029 end a JavaScript string literal in
# pre-ES2019 engines; "<", ">" and "&" let a page inline papers.json in a <script> element (a
# title "</script><script>..." would otherwise close it, "<!--" would change how it is parsed).
_JSON_ESCAPES = {ch: f"\\u{ord(ch):04x}" for ch in ("<", ">", "&", "\u2028", "\u2029")}
_JSON_ESCAPED = re.compile("[<>&\u2028\u2029]")


def _json_bytes(data: object) -> bytes:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    text = _JSON_ESCAPED.sub(lambda m: _JSON_ESCAPES[m.group()], text)
    return (text + "\n").encode("utf-8")


class _QuotedDumper(yaml.SafeDumper):
    """Every string double-quoted: YAML 1.1 and 1.2 readers (Ruby for Jekyll, Go for Hugo) then
    agree, whatever the text ("no", "0o17", "2024-05-11", leading "@", line separators)."""


def _quoted_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotedDumper.add_representer(str, _quoted_str)


def _yaml_bytes(data: object) -> bytes:
    text = yaml.dump(
        data,
        Dumper=_QuotedDumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        line_break="\n",
    )
    return text.encode("utf-8")


def neutralise_cell(cell: str) -> str:
    # OWASP CSV injection advice: a leading ' makes spreadsheets treat the cell as text.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def _csv_bytes(records: Sequence[Mapping[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    hosted = sorted({name for r in records for name in r.get("files") or {}})
    writer.writerow((*CSV_HEADER, *(f"file_{name}" for name in hosted)))
    for r in records:
        session = r["session"]
        row = [
            r["id"],
            r["title"],
            LIST_SEPARATOR.join(r["authors"]),
            r["abstract"] or "",
            LIST_SEPARATOR.join(r["keywords"]),
            session["name"] if session else "",
            r["pdf_url"] or "",
            r["presentation"] or "",
            "" if r["board"] is None else str(r["board"]),
            *((r.get("files") or {}).get(name) or "" for name in hosted),
        ]
        writer.writerow([neutralise_cell(cell) for cell in row])
    return out.getvalue().encode("utf-8")


def _posters(records: Sequence[Mapping[str, Any]], sessions: Sequence[Session]) -> list[Any]:
    by_id: dict[str, dict[str, Any]] = {}
    for s in sessions:
        by_id[s.id] = {
            "id": clean_text(s.id), "name": clean_text(s.name),
            "start": s.start.isoformat(), "end": s.end.isoformat(),
        }  # fmt: skip
    for r in records:
        if r["session"] is not None and r["session"]["id"] not in by_id:
            by_id[r["session"]["id"]] = dict(r["session"])  # a session no longer configured
    out = []
    for sid, head in by_id.items():
        papers = [
            {k: r[k] for k in ("board", "id", "number", "title", "authors", "files") if k in r}
            for r in records
            if r["session"] is not None and r["session"]["id"] == sid
        ]
        papers.sort(key=lambda p: (p["board"] is None, p["board"] or 0, p["number"] or 0, p["id"]))
        out.append({**head, "papers": papers})
    out.sort(key=lambda entry: (_sort_time(entry["start"]), entry["id"]))
    return out


def _sort_time(value: str | None) -> tuple[int, float, str]:
    try:
        return (0, datetime.fromisoformat(value or "").timestamp(), "")
    except (ValueError, TypeError):
        return (1, 0.0, value or "")  # unparsable or naive times go last, by text


def render(
    papers: Sequence[Mapping[str, Any]],
    sessions: Sequence[Session],
    formats: Collection[str],
    *,
    day: Day | None = None,
    venue_id: str = "",
    calendar: Mapping[str, EventState] | None = None,
) -> dict[str, bytes]:
    """The website files for ``formats``, deterministic bytes.

    "json" gives papers.json, posters.json and, when the day has slots, program.json; "ics"
    schedule.ics; "html" index.html. ``day`` is the program (``program.assemble``; without it,
    the poster sessions alone); ``calendar`` the events' stored sequences (``ics.next_state``;
    without it every event is at sequence 0).
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise ValueError(f"unknown website format {unknown[0]!r}; use {', '.join(FORMATS)}")
    records = _records(papers, sessions)
    files: dict[str, bytes] = {}
    wants_day = "ics" in formats or "html" in formats
    if day is None and wants_day:
        from orsync.program import assemble
        from orsync.schedule import Schedule

        day = assemble(Schedule(sessions=tuple(sessions)), papers)
    if "json" in formats:
        files["papers.json"] = _json_bytes(records)
        files["posters.json"] = _json_bytes(_posters(records, sessions))
        if day is not None and day.slots:
            files["program.json"] = _json_bytes(day.as_dict(details=False))
    if "ics" in formats and day is not None:
        from orsync import ics

        state = calendar
        if state is None or any(ics.uid(day, s, venue_id) not in state for s in day.slots):
            first = min((s.start for s in day.slots), default=datetime(2000, 1, 1, tzinfo=UTC))
            state = ics.next_state(day, venue_id, state or {}, first)
        files["schedule.ics"] = ics.render(day, venue_id, state)
    if "html" in formats and day is not None:
        from orsync import page

        files["index.html"] = page.render(day, records)
    if "yaml" in formats:
        files["papers.yml"] = _yaml_bytes(records)
    if "csv" in formats:
        files["papers.csv"] = _csv_bytes(records)
    return dict(sorted(files.items()))


# --------------------------------------------------------------------------- writing


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


# --------------------------------------------------------------------------- on_change


def _tail(data: bytes) -> str:
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return (": " + lines[-1][:200]) if lines else ""


DEFAULT_ON_CHANGE_TIMEOUT_S = 300.0
_POLL_S = 0.1  # how often a running hook is checked against the deadline and a stop request
_GRACE_S = 2.0  # between SIGTERM and SIGKILL to the hook's process group
_DRAIN_S = 2.0  # reading what is left of its stderr once it is dead


def _kill_group(proc: subprocess.Popen[bytes]) -> bytes:
    """End the hook and everything it started in its process group: SIGTERM, then SIGKILL.

    Returns what could still be read of its stderr. A grandchild that left the group and keeps the
    pipe open cannot hold orsync: the pipe is abandoned after a short wait.
    """
    for sig, wait_s in ((signal.SIGTERM, _GRACE_S), (signal.SIGKILL, _DRAIN_S)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            _, err = proc.communicate(timeout=wait_s)
            return err or b""
        except subprocess.TimeoutExpired:
            continue
    if proc.stderr is not None:
        proc.stderr.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_DRAIN_S)
    return b""


def run_on_change(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    timeout_s: float = DEFAULT_ON_CHANGE_TIMEOUT_S,
    *,
    should_stop: Callable[[], bool] | None = None,
    tick: Callable[[], None] | None = None,
) -> None:
    """Run the website's on_change command (no shell) with the caller's scrubbed environment.

    It runs in its own process group, which is killed (SIGTERM, then SIGKILL) when it outlives
    ``timeout_s`` (``website.on_change_timeout_s``), when ``should_stop()`` turns true (the
    service is stopping) and when orsync itself is interrupted (Ctrl-C), so no hook outlives the
    push that started it. ``tick`` is called while it runs (the service's watchdog heartbeat:
    a hook bounded by its timeout is progress).
    """
    if not argv:
        raise OnChangeError("website.on_change is empty; give a command and its arguments")
    shown = " ".join(argv)[:120]
    try:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, so a timeout kills its children too
        )
    except OSError as exc:
        raise OnChangeError(
            f"website.on_change {shown!r} could not start: {exc.strerror}; check the command"
        ) from None
    deadline = time.monotonic() + timeout_s
    killed = False
    try:
        while True:
            if should_stop is not None and should_stop():
                killed = True
                _kill_group(proc)
                raise OnChangeStopped(
                    f"website.on_change {shown!r} was stopped because orsync is stopping"
                )
            if tick is not None:
                tick()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                killed = True
                _kill_group(proc)
                raise OnChangeError(
                    f"website.on_change {shown!r} did not finish within {timeout_s:g} s "
                    "(website.on_change_timeout_s) and was killed with its process group; "
                    "make it faster or raise the timeout"
                )
            try:
                _, err = proc.communicate(timeout=min(_POLL_S, remaining))
                break
            except subprocess.TimeoutExpired:
                continue
    except BaseException:
        if not killed and proc.poll() is None:
            _kill_group(proc)  # interrupted (Ctrl-C, a bug): the hook must not outlive us
        raise
    if proc.returncode != 0:
        raise OnChangeError(
            f"website.on_change {shown!r} failed with exit status {proc.returncode}{_tail(err)}"
        )


# --------------------------------------------------------------------------- what is published


def published_ids(output_dir: Path) -> set[str] | None:
    """The paper ids the site publishes now, from the first of its files that can be read.

    None when the folder holds no readable paper file (a first push); a push compares its
    papers with these before it replaces the files.
    """
    for name, reader in (
        ("papers.json", _ids_from_json),
        ("papers.csv", _ids_from_csv),
        ("papers.yml", _ids_from_yaml),
    ):
        try:
            data = (output_dir / name).read_bytes()
        except OSError:
            continue
        try:
            return reader(data)
        except (ValueError, KeyError, TypeError, yaml.YAMLError, csv.Error):
            continue  # a file we did not write; try the next one
    return None


def _ids_from_json(data: bytes) -> set[str]:
    return {str(item["id"]) for item in json.loads(data)}


def _ids_from_yaml(data: bytes) -> set[str]:
    return {str(item["id"]) for item in yaml.safe_load(data) or []}


def _ids_from_csv(data: bytes) -> set[str]:
    return {row["UID"] for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}
