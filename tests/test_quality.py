"""The project's own checks, so that CI enforces them: ruff and mypy --strict are clean, and the
test modules stand alone."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> str:
    path = Path(sys.executable).with_name(name)
    found = str(path) if path.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def test_ruff_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = subprocess.run(
        [_tool("ruff"), "format", "--check", "src", "tests", "bench"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def _test_module_imports(folder: Path) -> list[str]:
    """Where a module in ``folder`` imports a test module (``test_*``), as ``file:line name``."""
    found = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [
                f"{path.name}:{node.lineno} {name}"
                for name in names
                if name.split(".")[0].startswith("test_")
            ]
    return found


def test_no_test_module_imports_another(tmp_path: Path) -> None:
    """What modules share lives in helpers.py and shared_fixtures.py: importing a test module
    runs its imports and module-level code, and hides where a fixture comes from."""
    assert _test_module_imports(ROOT / "tests") == []
    # The search finds such an import, in either spelling, wherever it stands in the file.
    (tmp_path / "test_a.py").write_text("import os\n\ndef f():\n    import test_b\n")
    (tmp_path / "test_c.py").write_text("from test_b import fixture  # noqa\n")
    assert _test_module_imports(tmp_path) == ["test_a.py:4 test_b", "test_c.py:1 test_b"]
