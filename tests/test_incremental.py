"""Incremental cycles: what they cost (requests, on the 7,500-submission venue) and what they promise.

What an incremental cycle can promise, and what is asserted after each one below:

- It reads ``domain=V&mintmdate=<watermark>&trash=true``: every note the reader can read that was
  created, edited or soft-deleted (``ddate``) since the last cycle. So every note the reader can
  read now is mirrored, with its current values, and every deletion the reader could see is a
  tombstone.
- It cannot see a note that *became unreadable* (readers narrowed, no ``ddate``): the server
  simply stops returning it. Such a note lingers in the mirror as it was until the next full
  cycle; so do the replies of a submission that became unreadable (orsync mirrors replies through
  their submission). A submission whose forum holds a lingering note may keep a stale derived
  status/decision (e.g. a decision that became unreadable still counts). Nothing else may differ.
- A full cycle promises the exact truth: the reader's view, replies restricted to readable
  submissions.

For the program chair nothing ever becomes unreadable, so both kinds of cycle must match exactly.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from orsync import commands
from orsync.config import Config, parse_config
from orsync.emulator import Emulator

# One worker runs this module, so its module-scoped fixture is built once.
pytestmark = pytest.mark.xdist_group("incremental")

PASSWORD = "incremental-pw-9d2!"


def make_config(folder: Path, emu: Emulator, reader: str, **sync: Any) -> Config:
    (folder / "password").write_text(PASSWORD)
    openreview: dict[str, Any] = {"baseurl": emu.url, "venue_id": emu.venue_id}
    if reader == "chair":
        openreview |= {"username": emu.chair_username, "password_file": str(folder / "password")}
    return parse_config(
        {
            "openreview": openreview,
            "store": {"url": f"sqlite:///{folder / 'orsync.db'}"},
            "sync": {"full_every": 1000, **sync},
        }
    )


def mirror_of(db: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        subs = {
            r[0]: (r[1], r[2])
            for r in conn.execute(
                "SELECT id, status, decision FROM note WHERE kind='submission' AND NOT deleted"
            )
        }
        # orsync types ratings of reviews only (the raw JSON keeps any other note's fields).
        replies = {
            r[0]: (r[1], r[2] if r[1] == "review" else None)
            for r in conn.execute(
                "SELECT id, kind, rating FROM note WHERE kind!='submission' AND NOT deleted"
            )
        }
    finally:
        conn.close()
    return subs, replies


def truth_of(emu: Emulator, reader: str) -> tuple[dict[str, Any], dict[str, Any]]:
    t = emu.truth(reader)
    subs = {k: (v["status"], v["decision"]) for k, v in t["submissions"].items()}
    replies = {
        k: (v["kind"], v["rating"] if v["kind"] == "review" else None)
        for k, v in t["replies"].items()
        if v["forum"] in subs  # a reply is mirrored through its (readable) submission
    }
    return subs, replies


def check_mirror(emu: Emulator, db: Path, reader: str, mode: str) -> None:
    """Assert exactly what a cycle of ``mode`` promises (module docstring)."""
    t_subs, t_replies = truth_of(emu, reader)
    m_subs, m_replies = mirror_of(db)
    if mode == "full":
        assert m_subs == t_subs
        assert m_replies == t_replies
        return
    notes = emu.venue.notes

    def readable(note_id: str) -> bool:
        return reader == "chair" or "everyone" in notes[note_id]["readers"]

    missing = (t_subs.keys() - m_subs.keys()) | (t_replies.keys() - m_replies.keys())
    assert not missing, f"readable notes not mirrored: {sorted(missing)}"
    lingering = (m_subs.keys() | m_replies.keys()) - (t_subs.keys() | t_replies.keys())
    for note_id in lingering:
        forum = str(notes[note_id].get("forum") or note_id)
        assert not (readable(note_id) and readable(forum)), (
            f"{note_id} is readable yet gone from the truth (deleted): an incremental cycle "
            "must have seen its ddate"
        )
    tainted = {str(notes[n].get("forum") or n) for n in lingering}
    assert {k: v for k, v in m_subs.items() if k in t_subs and k not in tainted} == {
        k: v for k, v in t_subs.items() if k not in tainted
    }
    assert {k: v for k, v in m_replies.items() if k in t_replies} == t_replies


# -- request counts on the ICLR-scale venue ----------------------------------------------------------


@pytest.fixture(scope="module")
def iclr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Emulator, Config, Path]]:
    folder = tmp_path_factory.mktemp("iclr")
    with Emulator(dataset="iclr", seed=1, password=PASSWORD) as emu:
        config = make_config(folder, emu, "chair")
        first = commands.pull(config, push=False).cycle
        assert first.mode == "full" and first.created > 90_000
        assert first.requests == len(emu.requests)
        yield emu, config, folder / "orsync.db"


@pytest.mark.timeout(240)
def test_no_change_costs_at_most_3_requests(iclr: tuple[Emulator, Config, Path]) -> None:
    emu, config, db = iclr
    assert len(emu.venue.subs) == 7500
    check_mirror(emu, db, "chair", "full")
    emu.clear_requests()
    summary = commands.pull(config, push=False).cycle
    assert summary.mode == "incremental"
    assert summary.changes == 0
    assert summary.requests == len(emu.requests) <= 3  # login, venue group, one page of changes
    check_mirror(emu, db, "chair", "incremental")


@pytest.mark.timeout(240)
def test_50_changes_cost_at_most_5_requests(iclr: tuple[Emulator, Config, Path]) -> None:
    emu, config, db = iclr
    rng = random.Random(50)
    subs = rng.sample(sorted(emu.venue.subs), 25)
    reviews = rng.sample(sorted(r.id for r in emu.venue.replies.values() if r.kind == "review"), 25)
    for i, sub in enumerate(subs):
        emu.edit_content(sub, title=f"Edited title {i} — ünïcødé $x^2$")
    for review in reviews:
        emu.edit_content(review, rating=rng.randint(1, 10))
    emu.clear_requests()
    summary = commands.pull(config, push=False).cycle
    assert summary.mode == "incremental"
    assert summary.requests == len(emu.requests) <= 5
    assert (summary.created, summary.updated, summary.deleted) == (0, 50, 0)
    check_mirror(emu, db, "chair", "incremental")


@pytest.mark.timeout(240)
def test_ignored_mintmdate_falls_back_to_full_and_converges(
    iclr: tuple[Emulator, Config, Path],
) -> None:
    emu, config, db = iclr
    # The same as building the emulator with honour_mintmdate=False, without generating the
    # 100,000 notes and pulling them all a second time.
    emu.venue.honour_mintmdate = False
    try:
        rng = random.Random(7)
        for _ in range(20):
            emu.random_mutation(rng)
        emu.clear_requests()
        summary = commands.pull(config, push=False).cycle
        assert summary.mode == "full"
        assert summary.fallback is not None and "mintmdate" in summary.fallback
        assert summary.requests == len(emu.requests) <= 3 + 8  # + the whole walk, 1000 per page
        check_mirror(emu, db, "chair", "full")
    finally:
        emu.venue.honour_mintmdate = True


# -- stateful: mutations interleaved with incremental and full cycles --------------------------------


class MirrorMachine(RuleBasedStateMachine):
    reader = "chair"

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="orsync-machine-"))
        self.emu: Emulator | None = None
        self.config: Config | None = None
        self.cycles = 0

    @initialize(
        seed=st.integers(0, 40), phase=st.sampled_from(["review", "decision", "camera_ready"])
    )
    def start(self, seed: int, phase: str) -> None:
        self.emu = Emulator(dataset="bgpt", seed=seed, size=30, phase=phase, password=PASSWORD)
        self.emu.start()
        self.config = make_config(self.folder, self.emu, self.reader)
        self._cycle(full=True)

    @rule(count=st.integers(1, 8), seed=st.integers(0, 2**32))
    def mutate(self, count: int, seed: int) -> None:
        assert self.emu is not None
        rng = random.Random(seed)
        for _ in range(count):
            self.emu.random_mutation(rng)

    @rule(pick=st.integers(0, 10**6), submission=st.booleans())
    def hide(self, pick: int, submission: bool) -> None:
        """Narrow a public note's readers: the case only a full cycle can detect."""
        assert self.emu is not None
        venue = self.emu.venue
        with venue.lock:
            if submission:
                candidates = sorted(s.id for s in venue.subs.values() if not s.hidden)
            else:
                candidates = sorted(
                    r.id for r in venue.replies.values() if r.public and not r.hidden
                )
        if candidates:
            self.emu.hide_note(candidates[pick % len(candidates)])

    @rule()
    def incremental_cycle(self) -> None:
        self._cycle(full=False)

    @rule()
    def full_cycle(self) -> None:
        self._cycle(full=True)

    def _cycle(self, *, full: bool) -> None:
        assert self.emu is not None and self.config is not None
        summary = commands.pull(self.config, full=full, push=False).cycle
        assert summary.outcome == "ok"
        assert summary.mode == ("full" if full else "incremental")
        self.cycles += 1
        check_mirror(self.emu, self.folder / "orsync.db", self.reader, summary.mode)

    @invariant()
    def store_is_consistent(self) -> None:
        db = self.folder / "orsync.db"
        if db.exists():
            conn = sqlite3.connect(db)
            try:
                running = conn.execute(
                    "SELECT count(*) FROM cycle WHERE outcome != 'ok'"
                ).fetchone()
            finally:
                conn.close()
            assert running == (0,)

    def teardown(self) -> None:
        if self.emu is not None:
            self.emu.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


class GuestMirrorMachine(MirrorMachine):
    """A guest reads public notes only: hidden ones become unreadable, silently."""

    reader = "guest"


MACHINE_SETTINGS = settings(
    max_examples=8,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
MirrorMachine.TestCase.settings = MACHINE_SETTINGS
GuestMirrorMachine.TestCase.settings = MACHINE_SETTINGS
TestChairMirror = MirrorMachine.TestCase
TestGuestMirror = GuestMirrorMachine.TestCase
