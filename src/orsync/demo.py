"""``orsync demo``: the whole job, end to end, against the bundled emulator on loopback."""

from __future__ import annotations

import json
import shutil
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orsync import pipeline
from orsync.config import load_config
from orsync.emulator import Emulator
from orsync.emulator.dataset import PHASES
from orsync.errors import UnreachableError, UsageError
from orsync.files import write_private

_CONFIG = """\
# Written by `orsync demo`: the BGPT workshop, served by orsync's emulator on loopback.
[openreview]
baseurl = "{url}"
venue_id = "{venue}"
username = "{user}"
password_file = "openreview-password"

[store]
url = "sqlite:///{store}"

[website]
output_dir = "site"
formats = ["json", "yaml", "csv", "ics", "html"]

[program]
name = "BGPT workshop (demo)"
timezone = "Europe/Vienna"

[posters]
boards_per_session = 20

[[posters.sessions]]
id = "P1"
name = "Poster session 1"
start = "2024-05-11T10:10:00+02:00"
end = "2024-05-11T11:00:00+02:00"

[[posters.sessions]]
id = "P2"
name = "Poster session 2"
start = "2024-05-11T12:00:00+02:00"
end = "2024-05-11T14:00:00+02:00"

[[posters.sessions]]
id = "P3"
name = "Poster session 3"
start = "2024-05-11T15:30:00+02:00"
end = "2024-05-11T16:20:00+02:00"

[[posters.sessions]]
id = "P4"
name = "Poster session 4"
start = "2024-05-11T17:05:00+02:00"
end = "2024-05-11T17:55:00+02:00"
{talks}"""

_TALK_SLOTS = (
    ("11:30", "11:45"),
    ("11:45", "12:00"),
    ("15:00", "15:15"),
    ("15:15", "15:30"),
    ("16:50", "17:05"),
)


def _talks(orals: list[int]) -> str:
    out = []
    for number, (start, end) in zip(orals, _TALK_SLOTS, strict=False):
        out.append(
            f'\n[[talks]]\npaper = {number}\nstart = "2024-05-11T{start}:00+02:00"\nend = "2024-05-11T{end}:00+02:00"\n'
        )
    return "".join(out)


def _program() -> str:
    """How the user can call orsync again: `orsync` if on PATH, else the path they used."""
    argv0 = Path(sys.argv[0])
    if argv0.name == "__main__.py":
        return f"{sys.executable} -m orsync"
    on_path = shutil.which("orsync")
    if on_path and Path(on_path).resolve() == argv0.resolve():
        return "orsync"
    try:
        return str(argv0.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(argv0)


MARKER = ".orsync-demo"


def claim_folder(folder: Path) -> Path:
    """The demo's folder: one it creates, or one that holds its marker; never a chair's.

    The demo writes a config, a store and website files with fixed names: in a chair's folder
    they would replace the real ``orsync.toml`` and mix demo cycles into the real store.
    """
    marker = folder / MARKER
    if folder.exists() and not marker.is_file():
        if not folder.is_dir():
            raise UsageError(f"--dir {folder} exists and is not a folder; pick another --dir")
        if any(folder.iterdir()):
            raise UsageError(
                f"--dir {folder} already holds files that the demo did not write; the demo only "
                "writes into a new folder (or one it made before): pick another --dir"
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(
            "This folder was made by `orsync demo`; the demo may replace everything in it.\n",
            encoding="utf-8",
        )
    except OSError as exc:
        raise UsageError(f"cannot write the demo into {folder}: {exc.strerror}") from None
    return folder.resolve()


def run_demo(folder: Path, *, size: int | None = None, verbosity: int = 0) -> Iterator[str]:
    """Start the emulator, pull, assign posters, push; yields lines for the user."""

    folder = claim_folder(folder)
    with Emulator(dataset="bgpt", seed=1, size=size) as emu:
        yield f"emulator: serving {emu.venue_id} at {emu.url}"
        orals = sorted(
            s["number"]
            for s in emu.truth("chair")["submissions"].values()
            if s["presentation"] == "oral"
        )
        password_file = folder / "openreview-password"
        write_private(password_file, emu.chair_password)
        config_path = folder / "orsync.toml"
        write_private(
            config_path,
            _CONFIG.format(
                url=emu.url,
                venue=emu.venue_id,
                user=emu.chair_username,
                store=folder / "orsync.db",
                talks=_talks(orals),
            ),
        )
        config = load_config(config_path)
        passed = pipeline.pull(config, pipeline.PassOptions(full=True, command="demo"))
        passed.raise_first_error()
        summary, result = passed.cycle, passed.push
        by_status = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items()))
        yield (
            f"pull: {summary.notes_seen} notes in {summary.duration_s:.1f}s with {summary.requests} "
            f"requests; submissions: {by_status}"
        )
        assert config.website is not None and result is not None
        if result.assignment is not None:
            yield (
                f"posters: {len(result.assignment.placements)} papers in "
                f"{len(config.posters.sessions)} sessions ({result.assignment.status}, "
                f"{len(result.assignment.clashes)} author clashes)"
            )
        yield f"website: {', '.join(result.changed) or 'nothing new'} in {config.website.output_dir}"
        yield f"page:   {config.website.output_dir / 'index.html'} (open it in a browser)"
    yield f"config: {config_path}"
    yield f"store:  {folder / 'orsync.db'}  (try: sqlite3 {folder / 'orsync.db'} 'select number, title, session_id, board from accepted_papers limit 5')"  # noqa: S608 (a hint to type, not a query)
    prog = _program()
    yield f"next:   {prog} --config {config_path} status   |   {prog} --config {config_path} posters show"


@dataclass(frozen=True)
class EmulatorPhase:
    """A running emulator moved on: where it was and where it is now."""

    url: str
    before: str
    phase: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def advance(port: int, to: str | None = None, host: str = "127.0.0.1") -> EmulatorPhase:
    """Move a running emulator (``orsync emulator``) to ``to``, or its next phase, through its
    control endpoint (answered on loopback only), for rehearsing a venue's weeks in minutes."""
    base = f"http://{host}:{port}/_emulator"

    def call(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (a loopback http URL built here)
            base + path, data=data, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                result = json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise UsageError(f"the emulator on port {port} refused: {exc.read()[:300]!r}") from None
        except (OSError, ValueError) as exc:
            raise UnreachableError(
                f"no emulator answers on {host}:{port} ({exc.__class__.__name__}); start one "
                f"with `orsync emulator --port {port}`"
            ) from None
        if not isinstance(result, dict):
            raise UnreachableError(f"{host}:{port} does not answer like an orsync emulator")
        return result

    before = str(call("/info").get("phase"))
    if to is None:
        if before not in PHASES or before == PHASES[-1]:
            raise UsageError(f"the emulator is at {before!r}, the last phase: nothing to advance")
        to = PHASES[PHASES.index(before) + 1]
    if to not in PHASES:
        raise UsageError(f"--to {to!r} is unknown; choose one of {', '.join(PHASES)}")
    if PHASES.index(to) < PHASES.index(before):
        raise UsageError(f"the emulator is at {before!r}; phases go forward only, not to {to!r}")
    after = str(call("/advance", {"phase": to}).get("phase"))
    return EmulatorPhase(url=f"http://{host}:{port}", before=before, phase=after)
