"""The systemd units in deploy/ pass systemd's own checks (deploy/README.md).

Needs `systemd-analyze` (no running systemd: both commands are used in offline mode).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNITS = ("orsync.service", "orsync@.service")
MAX_EXPOSURE = 2.0

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not on PATH")


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    assert ANALYZE is not None
    return subprocess.run(
        [ANALYZE, *args], capture_output=True, text=True, timeout=120, check=False
    )


def instance_path(unit: str, directory: Path) -> Path:
    """What to hand systemd-analyze for *unit*.

    A template cannot be loaded by itself. Given the path of a (non-existent) instance file,
    offline mode adds that file's directory to the unit search path and instantiates the
    template found there, so `DIR/orsync@bgpt.service` analyses `DIR/orsync@.service` with %i=bgpt.
    """
    return directory / (unit.replace("@.", "@bgpt.") if "@." in unit else unit)


@pytest.mark.parametrize("unit", UNITS)
def test_security_exposure(unit: str, tmp_path: Path) -> None:
    shutil.copy(DEPLOY / unit, tmp_path / unit)
    target = instance_path(unit, tmp_path)
    result = analyze("security", "--offline=true", "--no-pager", str(target))
    output = result.stdout + result.stderr
    match = re.search(r"Overall exposure level for (\S+): (\d+(?:\.\d+)?)", output)
    assert match, output
    assert match.group(1) == target.name
    exposure = float(match.group(2))
    assert exposure <= MAX_EXPOSURE, output


def our_warnings(output: str, names: set[str]) -> list[str]:
    """Lines of `verify` output that concern our units, not the machine's own unit files.

    `verify` also loads dependencies (network-online.target, multi-user.target) from the host,
    and a host's units can be noisy; those lines are not ours to fix.
    """
    lines = [line for line in output.splitlines() if line.strip()]
    return [line for line in lines if any(name in line for name in names) or ":" not in line]


@pytest.mark.parametrize("unit", UNITS)
def test_verify_is_clean(unit: str, tmp_path: Path) -> None:
    # `verify` insists that ExecStart's binary exists and is executable, and
    # /usr/local/bin/orsync is only there on an installed machine; so the copy under test runs
    # this venv's Python instead. Everything else in the unit is verified as shipped.
    text = (DEPLOY / unit).read_text()
    assert "ExecStart=/usr/local/bin/orsync " in text
    (tmp_path / unit).write_text(
        text.replace("ExecStart=/usr/local/bin/orsync ", f"ExecStart={sys.executable} ")
    )
    target = instance_path(unit, tmp_path)
    result = analyze("verify", "--man=no", str(target))
    problems = our_warnings(result.stdout + result.stderr, {unit, target.name})
    assert problems == [], "\n".join(problems)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("unit", UNITS)
def test_unit_contract(unit: str) -> None:
    """The settings deploy/README.md and the service code rely on, which `verify` cannot judge."""
    text = (DEPLOY / unit).read_text()
    settings = {
        line.split("=", 1)[0]: line.split("=", 1)[1]
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    assert settings["Type"] == "notify"
    assert settings["NotifyAccess"] == "main"
    assert settings["Restart"] == "on-failure"
    assert settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert int(settings["WatchdogSec"]) >= 30
    assert settings["StateDirectory"].startswith("orsync")
    # orsync reads $CREDENTIALS_DIRECTORY/openreview-password (docs/configuration.md).
    assert settings["LoadCredential"].startswith("openreview-password:/etc/orsync/")
    assert "AF_INET AF_INET6" in settings["RestrictAddressFamilies"]
    # Confidential files private whatever orsync forgets (docs/security.md#confidential-files), no core dumps (a dump holds
    # the password), the state directory closed, and the public website folder outside it.
    assert settings["UMask"] == "0077"
    assert settings["LimitCORE"] == "0"
    assert settings["StateDirectoryMode"] == "0700"
    site = settings["ReadWritePaths"].lstrip("-")
    assert site.startswith("/srv/orsync/") and not site.startswith("/var/lib/orsync")
    config = "/etc/orsync/%i.toml" if "@." in unit else "/etc/orsync/orsync.toml"
    assert settings["ExecStart"] == f"/usr/local/bin/orsync --config {config} run"
