"""`orsync emulator` as a subprocess, for the benchmarks (its memory is not theirs)."""

from __future__ import annotations

import subprocess
import sys
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
