"""`orsync emulator` as a subprocess, for the benchmarks (its memory is not theirs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import requests


class Emu:
    """The emulator in another process, driven through its loopback control surface."""

    def __init__(self, dataset: str, size: int | None) -> None:
        cmd = [sys.executable, "-m", "orsync", "emulator", "--port", "0", "--dataset", dataset]
        if size:
            cmd += ["--size", str(size)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        words = self.proc.stdout.readline().split()  # "orsync emulator: URL venue=V chair=USER"
        self.url = words[2]
        self.venue_id = words[3].split("=", 1)[1]
        self.chair_username = words[4].split("=", 1)[1]
        self.chair_password = "chair-password"
        self.http = requests.Session()

    def control(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, f"{self.url}/_emulator/{path}", json=body, timeout=120)
        r.raise_for_status()
        return r.json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait()

    def __enter__(self) -> Emu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bgpt_config(folder: Path, emu: Emu, *, sync: str, website: str = "") -> Path:
    """A config for ``emu`` in ``folder``: the chair's login from a password file, a SQLite store
    there, the day's poster sessions of config.example.toml, every format into ``site/``;
    ``sync`` is the [sync] section's body, ``website`` more [website] keys."""
    root = Path(__file__).resolve().parent.parent
    example = (root / "config.example.toml").read_text(encoding="utf-8")
    day = example[example.index("[[posters.sessions]]") : example.index("[talk_selection]")]
    pw = folder / "pw"
    pw.write_text(emu.chair_password)
    pw.chmod(0o600)
    path = folder / "orsync.toml"
    path.write_text(
        f'[openreview]\nbaseurl = "{emu.url}"\nvenue_id = "{emu.venue_id}"\n'
        f'username = "{emu.chair_username}"\npassword_file = "pw"\n\n'
        f'[store]\nurl = "sqlite:///{folder / "orsync.db"}"\n\n'
        f"[sync]\n{sync}\n"
        f'[website]\noutput_dir = "site"\n'
        f'formats = ["json", "yaml", "csv", "ics", "html"]\n{website}\n[posters]\n{day}',
        encoding="utf-8",
    )
    return path
