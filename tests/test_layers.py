"""The layer rule (docs/architecture.md): a module imports only from its own layer or lower.

import-linter reads every import statement of every module, those inside functions and under
``TYPE_CHECKING`` included, against the contracts in pyproject.toml.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # Run where the package lives, so the copy in a test's folder is the one analysed.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(root / "pyproject.toml")],
        cwd=root,
        env={"PYTHONPATH": str(root / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_module_keeps_to_its_layer() -> None:
    found = lint_imports(ROOT)
    assert found.returncode == 0, found.stdout + found.stderr
    assert "0 broken" in found.stdout


def test_an_upward_import_inside_a_function_breaks_the_rule(tmp_path: Path) -> None:
    """The check sees what a start-up trick would hide: an import in a function body."""
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    store = tmp_path / "src" / "orsync" / "store" / "__init__.py"
    store.write_text(
        store.read_text() + "\n\ndef _upward() -> None:\n    from orsync import pipeline  # noqa\n"
    )
    found = lint_imports(tmp_path)
    assert found.returncode == 1, found.stdout + found.stderr
    assert "orsync.store -> orsync.pipeline" in found.stdout


def test_the_architecture_page_lists_every_layer_as_checked() -> None:
    """docs/architecture.md draws the layers; it names every module the contract names, in the
    same order (lowest last), so the page and the check cannot drift apart."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    layers = next(c for c in contracts["contracts"] if c["name"] == "orsync's layers")["layers"]
    page = (ROOT / "docs" / "architecture.md").read_text()
    drawn = page.split("```", 2)[1]
    names = [re.findall(r"[\w_]+", layer) for layer in layers]
    positions = [[drawn.find(f" {name}") for name in group] for group in names]
    for group, found in zip(names, positions, strict=True):
        assert all(at >= 0 for at in found), f"docs/architecture.md does not draw {group}"
    firsts = [min(found) for found in positions]
    assert firsts == sorted(firsts), "docs/architecture.md draws the layers in another order"
