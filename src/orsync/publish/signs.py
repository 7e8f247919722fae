"""``orsync posters signs``: the board signs' page written, and printed to PDF by a headless
Chromium where one is installed (docs/workshop.md#board-signs).

Public data only, as the site has it: the ``accepted_papers`` view's records and their places,
joined with the day (``site.with_talks``), so a sign never says what the page does not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orsync import schedule
from orsync.config import Config
from orsync.errors import UsageError
from orsync.files import inside, write_atomically
from orsync.site import build_records, with_talks
from orsync.site import signs as render_signs
from orsync.site.signs import PaperSize
from orsync.store import models
from orsync.store.binding import read_for

__all__ = ["CHROMIUM_NAMES", "Signs", "chromium", "print_signs"]

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PRINT_TIMEOUT_S = 180


@dataclass
class Signs:
    """What ``posters signs`` wrote: the page, the PDF if asked, and the signs per session."""

    html: str
    pdf: str | None
    paper: str
    pages: int  # one per board in use per session
    sessions: dict[str, int] = field(default_factory=dict)  # session id -> boards in use
    unplaced: int = 0  # accepted papers with no board yet: no sign

    def as_dict(self) -> dict[str, Any]:
        return {
            "html": self.html,
            "pdf": self.pdf,
            "paper": self.paper,
            "pages": self.pages,
            "sessions": dict(self.sessions),
            "unplaced": self.unplaced,
        }


def chromium() -> str | None:
    """The Chromium (or Chrome) on PATH, None without one."""
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def print_signs(config: Config, out: Path, *, paper: PaperSize = "a4", pdf: bool = False) -> Signs:
    """Write the signs' page to ``out`` (and ``out`` with ``.pdf`` when ``pdf``)."""
    browser = chromium() if pdf else None
    if pdf and browser is None:
        raise UsageError(
            "--pdf needs Chromium, which is not installed: install it (Debian and Ubuntu: "
            "apt install chromium), or open the HTML in a browser and print it"
        )
    site = config.website.output_dir if config.website is not None else None
    if site is not None and inside(out, site):
        # Every name there is a file the site publishes or may publish: a sign page must not
        # replace one of them.
        raise UsageError(f"--out {out} is inside website.output_dir {site}; write it elsewhere")
    if out.is_dir() or out.name.startswith("."):
        raise UsageError(f"--out {out} must name a file, such as signs.html")
    day = schedule.Schedule.from_config(config)
    if not day.sessions:
        raise UsageError("no [[posters.sessions]] in the config; add the sessions first")
    with read_for(config) as store, store.connect() as conn:
        papers = models.accepted_papers(conn)
    records = build_records(papers, list(day.sessions))
    built = with_talks(day, records, config.program.presentation_from)[1]
    signs = render_signs.signs(built)
    data = render_signs.render(built, paper)
    try:
        write_atomically(out.parent, {out.name: data})
    except OSError as exc:
        raise UsageError(f"cannot write --out {out}: {exc.strerror}") from None
    done = Signs(html=str(out), pdf=None, paper=paper, pages=len(signs))
    for sign in signs:
        done.sessions[sign.session_id] = done.sessions.get(sign.session_id, 0) + 1
    done.unplaced = sum(1 for r in records if r.board is None)
    if browser is not None:
        target = out.with_suffix(".pdf")
        _print_pdf(browser, out, target)
        done.pdf = str(target)
    return done


def _print_pdf(browser: str, page: Path, target: Path) -> None:
    """Chromium prints ``page`` to ``target`` (replaced whole, never half-written)."""
    flags = [
        "--headless",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        # The page fetches nothing; nothing it names may be resolved either.
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--no-pdf-header-footer",
    ]
    if os.geteuid() == 0:
        flags.append("--no-sandbox")  # Chromium refuses to start as root with its sandbox
    with tempfile.TemporaryDirectory(prefix="orsync-chromium-") as profile:
        tmp = target.with_name(f".{target.name}.printing")
        try:
            run = subprocess.run(
                [
                    browser,
                    *flags,
                    f"--user-data-dir={profile}",  # never the user's own browser profile
                    f"--print-to-pdf={tmp}",
                    page.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=PRINT_TIMEOUT_S,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if run.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
                last = (run.stderr.strip().splitlines() or ["no output"])[-1][:200]
                raise UsageError(
                    f"Chromium could not print {page} to PDF (exit {run.returncode}: {last})"
                )
            tmp.replace(target)
        except subprocess.TimeoutExpired:
            raise UsageError(f"Chromium did not print {page} within {PRINT_TIMEOUT_S} s") from None
        finally:
            tmp.unlink(missing_ok=True)
