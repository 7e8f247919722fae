"""``orsync check``: every precondition of a pull, each reported on one line."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orsync.config import Config, find_config, load_config
from orsync.errors import EXIT_STORE, EXIT_USAGE, OrsyncError


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    exit_code: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _failed(name: str, exc: OrsyncError) -> CheckResult:
    return CheckResult(name, False, exc.message, exc.exit_code)


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".orsync-check-"):
            return True
    except OSError:
        return False


def run_checks(config_path: Path | None) -> list[CheckResult]:
    from orsync import ops
    from orsync.store import open_store

    results: list[CheckResult] = []
    try:
        path = find_config(config_path)
        config: Config = load_config(path)
    except OrsyncError as exc:
        return [_failed("config", exc)]
    results.append(CheckResult("config", True, f"{path} is valid"))
    try:
        source = ops.make_source(config)
        source.connect()
        who = (
            f"logged in as {config.openreview.username}"
            if config.openreview.username
            else "guest (public data only)"
        )
        results.append(CheckResult("credentials", True, who))
        group = source.venue_group(config.openreview.venue_id)
        results.append(
            CheckResult("venue", True, f"{group['id']} is readable at {config.openreview.baseurl}")
        )
    except OrsyncError as exc:
        results.append(_failed("openreview", exc))
    try:
        store = open_store(config.store.url)
        with store.begin() as conn:
            conn.exec_driver_sql("SELECT 1")
        folder = store.sqlite_path.parent if store.sqlite_path else None
        store.dispose()
        if folder is not None and not _writable(folder):
            results.append(
                CheckResult("store", False, f"folder {folder} is not writable", EXIT_STORE)
            )
        else:
            results.append(CheckResult("store", True, f"{store.describe()} opens and is migrated"))
    except OrsyncError as exc:
        results.append(_failed("store", exc))
    if config.website is not None:
        out = config.website.output_dir
        if out.is_dir() and _writable(out):
            results.append(CheckResult("website", True, f"{out} is writable"))
        elif not out.exists() and out.parent.is_dir() and _writable(out.parent):
            results.append(CheckResult("website", True, f"{out} will be created"))
        else:
            results.append(
                CheckResult(
                    "website", False, f"website.output_dir {out} is not writable", EXIT_USAGE
                )
            )
    return results
