"""Shared fixtures: an emulator on loopback, a config pointing at it, the CLI as a subprocess,
and the comparison of a mirror against the emulator's ground truth."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orsync.emulator import Emulator

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Setup:
    emu: Emulator
    dir: Path
    config: Path
    db: Path

    def cli(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run_cli("--config", str(self.config), *args, env=env, timeout=timeout)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("ORSYNC_", "NOTIFY_SOCKET"))
    }
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "orsync", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=cwd,
    )


def write_config(
    folder: Path,
    emu: Emulator | None,
    *,
    guest: bool = False,
    baseurl: str | None = None,
    venue_id: str | None = None,
    password: str | None = None,
    extra: str = "",
    retry_attempts: int = 6,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    url = baseurl or (emu.url if emu else "http://127.0.0.1:9")
    venue = venue_id or (emu.venue_id if emu else "ICLR.cc/2024/Workshop/BGPT")
    lines = [
        "[openreview]",
        f'baseurl = "{url}"',
        f'venue_id = "{venue}"',
        "timeout_s = 5",
        f"retry_attempts = {retry_attempts}",
        "retry_initial_s = 0.05",
        "retry_max_wait_s = 2",
    ]
    if not guest and emu is not None:
        pw = folder / "pw"
        pw.write_text(password if password is not None else emu.chair_password)
        pw.chmod(0o600)  # as a chair should keep it (orsync warns otherwise)
        lines += [f'username = "{emu.chair_username}"', 'password_file = "pw"']
    lines += ["", "[store]", f'url = "sqlite:///{folder / "orsync.db"}"', "", extra]
    path = folder / "orsync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=7) as emu:
        yield emu


@pytest.fixture
def setup(tmp_path: Path, emulator: Emulator) -> Setup:
    config = write_config(tmp_path, emulator)
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def live_notes(db: Path) -> dict[str, dict[str, Any]]:
    """The non-deleted notes of a store, read with plain sqlite3 like any other reader."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute("SELECT * FROM note WHERE NOT deleted").fetchall()
    finally:
        con.close()
    return {r["id"]: dict(r) for r in rows}


def assert_mirror_equals_truth(db: Path, truth: dict[str, Any]) -> None:
    notes = live_notes(db)
    subs = {i: n for i, n in notes.items() if n["kind"] == "submission"}
    replies = {i: n for i, n in notes.items() if n["kind"] != "submission"}
    assert set(subs) == set(truth["submissions"]), "submissions differ"
    for forum, want in truth["submissions"].items():
        got = subs[forum]
        assert got["number"] == want["number"], forum
        assert got["title"] == want["title"], forum
        assert got["status"] == want["status"], (forum, got["status"], want["status"])
        assert got["decision"] == want["decision"], forum
        assert got["presentation"] == want["presentation"], forum
        for key in ("authors", "authorids"):
            stored = json.loads(got[key]) if got[key] is not None else None
            assert stored == want[key], (forum, key)
        assert json.loads(got["keywords"]) == want["keywords"], forum
    assert set(replies) == set(truth["replies"]), "replies differ"
    for note_id, want in truth["replies"].items():
        got = replies[note_id]
        assert got["kind"] == want["kind"], note_id
        assert got["forum"] == want["forum"] and got["replyto"] == want["replyto"], note_id
        assert got["rating"] == want["rating"], note_id
        assert got["confidence"] == want["confidence"], note_id
        assert got["decision"] == want["decision"], note_id


def store_dump(db: Path) -> list[tuple[Any, ...]]:
    """Everything a clean run determines, without the bookkeeping that differs between runs."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(
            "SELECT id, forum, replyto, kind, number, title, authors, authorids, keywords, abstract, "
            "status, decision, presentation, rating, confidence, raw, digest, deleted FROM note ORDER BY id"
        ).fetchall()
    finally:
        con.close()
