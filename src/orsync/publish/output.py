"""Writing the site's files: each format's files into its folder, what the folder publishes now
(the guard's reference), and the errors a push raises about them."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from orsync import posters
from orsync.config import WebsiteConfig
from orsync.errors import EXIT_STORE, EXIT_USAGE, OrsyncError
from orsync.files import ensure_site_dir, no_space, write_atomically
from orsync.logs import get_logger
from orsync.site import FORMAT_FILES, Day, PaperRecord, miniconf

__all__ = [
    "PushError",
    "PushRefused",
    "format_error",
    "published_ids",
    "write_files",
    "write_miniconf",
]

log = get_logger("orsync.push")


class PushError(OrsyncError):
    """The website push could not finish: an unusable output folder, a failed hook, posters."""

    exit_code = EXIT_USAGE


class PushRefused(OrsyncError):
    """The push would unpublish most of the site: the store looks empty or is the wrong one."""

    exit_code = EXIT_STORE


def format_error(
    failed: Mapping[str, Exception], posters_error: posters.AssignmentError | None
) -> PushError:
    """The push's error when formats could not be rendered: each format, its files, and why."""
    parts = []
    for fmt, exc in failed.items():
        why = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        kept = FORMAT_FILES[fmt]
        left = "left as it was" if len(kept) == 1 else "left as they were"
        parts.append(
            f"website format {fmt} could not be rendered ({why}); {', '.join(kept)} {left}"
        )
    message = "; ".join(parts) + " (the other formats are published)"
    if posters_error is not None:
        message += f"; and no new poster places: {posters_error.message}"
    error = PushError(message)
    error.details["failed_formats"] = {fmt: str(exc) for fmt, exc in failed.items()}
    return error


def write_miniconf(
    site: WebsiteConfig,
    out: Path,
    records: Sequence[PaperRecord],
    day: Day,
    failed: dict[str, Exception],
) -> tuple[list[str], list[str]]:
    """The Mini-Conf bundle, in its own folder, rendered on its own like every format: the
    files it changed and every file it holds, as names relative to ``out`` (or absolute)."""
    folder = site.miniconf_folder
    try:
        files = miniconf.render(records, day)
    except Exception as exc:  # one format failing must not stop the others
        log.error("website format failed", format="miniconf", error=f"{type(exc).__name__}: {exc}")
        failed["miniconf"] = exc
        return [], []
    with contextlib.suppress(OSError):  # an unwritable folder is reported by the write
        if folder.parent == out:
            ensure_site_dir(folder, out)
    changed = write_files(folder, files, "website.miniconf_dir", folder)
    prefix = f"{folder.relative_to(out)}/" if folder.is_relative_to(out) else f"{folder}/"
    return [prefix + name for name in changed], [prefix + name for name in files]


def write_files(folder: Path, files: Mapping[str, bytes], key: str, shown: Path) -> list[str]:
    try:
        return write_atomically(folder, files)
    except OSError as exc:
        full = no_space(exc, folder, sum(len(data) for data in files.values()))
        if full is not None:
            raise PushError(f"cannot write {key}: {full}") from None
        reason = exc.strerror or type(exc).__name__
        raise PushError(
            f"cannot write {key} {shown} ({exc.filename or folder}: {reason}); make it a folder "
            f"this user can write, or change {key}"
        ) from None


def published_ids(output_dir: Path) -> set[str] | None:
    """The paper ids the site publishes now, from the first of its files that can be read.

    None when the folder holds no readable paper file (a first push); a push compares its
    papers with these before it replaces the files.
    """
    for name, reader in (
        ("papers.json", _ids_from_json),
        ("papers.csv", _ids_from_csv),
        ("papers.yml", _ids_from_yaml),
    ):
        try:
            data = (output_dir / name).read_bytes()
        except OSError:
            continue
        try:
            return reader(data)
        except (ValueError, KeyError, TypeError, yaml.YAMLError, csv.Error):
            continue  # a file we did not write; try the next one
    return None


def _ids_from_json(data: bytes) -> set[str]:
    return {str(item["id"]) for item in json.loads(data)}


def _ids_from_yaml(data: bytes) -> set[str]:
    return {str(item["id"]) for item in yaml.safe_load(data) or []}


def _ids_from_csv(data: bytes) -> set[str]:
    return {row["UID"] for row in csv.DictReader(io.StringIO(data.decode("utf-8-sig")))}
