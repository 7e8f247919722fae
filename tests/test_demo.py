"""The README's first command: `orsync demo` does the whole job on a fresh folder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from conftest import run_cli
from helpers import one_error_line


def test_demo_mirrors_assigns_and_publishes(tmp_path: Path) -> None:
    result = run_cli("demo", "--dir", str(tmp_path / "demo"), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "pull:" in result.stdout and "posters:" in result.stdout
    demo = tmp_path / "demo"
    assert (demo / "openreview-password").stat().st_mode & 0o077 == 0, (
        "the password file is private"
    )
    papers = json.loads((demo / "site" / "papers.json").read_text())
    assert papers and all(p["session"] and p["board"] for p in papers)
    status = run_cli("--config", str(demo / "orsync.toml"), "status", "--json")
    assert json.loads(status.stdout)["cycles"][0]["outcome"] == "ok"
    exported = run_cli(
        "--config",
        str(demo / "orsync.toml"),
        "export",
        "--what",
        "papers",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "p.csv"),
    )
    assert exported.returncode == 0
    rows = list(csv.DictReader((tmp_path / "p.csv").open(newline="")))
    assert sorted(r["forum_id"] for r in rows) == sorted(p["id"] for p in papers)


def test_demo_never_writes_into_a_chairs_folder(tmp_path: Path) -> None:
    chair = tmp_path / "bgpt"
    chair.mkdir()
    (chair / "orsync.toml").write_text("# the chair's real config\n", encoding="utf-8")
    result = run_cli("demo", "--dir", str(chair), "--size", "20")
    assert result.returncode == 2, result.stdout + result.stderr
    line = one_error_line(result.stderr)
    assert "did not write" in line and "--dir" in line
    assert (chair / "orsync.toml").read_text(encoding="utf-8") == "# the chair's real config\n"
    assert sorted(p.name for p in chair.iterdir()) == ["orsync.toml"]
    # A new folder is fine, and so is running the demo again in the folder it made.
    fresh = tmp_path / "demo"
    for _ in range(2):
        ok = run_cli("demo", "--dir", str(fresh), "--size", "20")
        assert ok.returncode == 0, ok.stderr
    assert (fresh / ".orsync-demo").is_file()
