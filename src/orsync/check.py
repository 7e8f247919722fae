"""``orsync check``: every precondition of a pull, each reported on one line; and
``orsync venues``: the venue groups under a prefix, to find the venue id.

``check`` changes nothing: it creates no store, migrates none, creates no folder. It says what a
``pull`` would do instead (create the store, migrate it, create the output folder) and fails only
where a pull would fail. Its JSON is one fixed object, the same on success and failure::

    {"ok": bool, "exit_code": int,
     "checks": [{"name": str, "ok": bool, "detail": str, "exit_code": int, "warning": bool},
                ...]}

``checks`` holds ``config`` and, once the config is valid, ``login``, ``venue``, ``store``,
``website``, ``talks`` and ``day``, in that order; ``exit_code`` is the first failed check's (0
when all pass). ``talks`` and ``day`` run the day's rules as ``program`` and the push do
(``orsync.rules``): a problem there is a FAIL (exit 2) before the push meets it. A ``warning``
passed (it does not change the exit code) but says something the chairs should fix: where the
talks and OpenReview's orals disagree.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orsync import rules, schedule, site
from orsync.config import Config, find_config, load_config
from orsync.errors import EXIT_ACCESS, EXIT_STORE, EXIT_USAGE, OrsyncError
from orsync.pipeline import make_source
from orsync.publish import notices
from orsync.source import OpenReviewSource, RetryPolicy
from orsync.store import models, probe_schema, sqlite_path_of
from orsync.store.binding import read_for

CHECK_NAMES = ("config", "login", "venue", "store", "website", "talks", "day")


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    exit_code: int = 0
    # Passed, but something the chairs should look at (a WARN line; the exit code stays 0).
    warning: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        return next((c.exit_code for c in self.checks if not c.ok), 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "exit_code": self.exit_code,
            "checks": [c.as_dict() for c in self.checks],
        }


def _failed(name: str, exc: OrsyncError) -> CheckResult:
    return CheckResult(name, False, exc.message, exc.exit_code)


def _writable(folder: Path) -> bool:
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".orsync-check-"):
            return True
    except OSError:
        return False


def _check_source(config: Config) -> OpenReviewSource:
    # A diagnosis answers in seconds, not after the service's patient backoff.
    o = config.openreview
    policy = RetryPolicy(
        attempts=min(o.retry_attempts, 3),
        initial_s=o.retry_initial_s,
        max_wait_s=min(o.retry_max_wait_s, 5.0),
        max_total_s=60.0,
    )
    return make_source(config, policy=policy)


def run_checks(config_path: Path | None) -> CheckReport:
    report = CheckReport()
    try:
        path = find_config(config_path)
        config: Config = load_config(path)
    except OrsyncError as exc:
        report.checks.append(_failed("config", exc))
        return report
    report.checks.append(CheckResult("config", True, f"{path} is valid"))
    report.checks += _check_openreview(config)
    report.checks.append(_check_store(config))
    report.checks.append(_check_website(config))
    report.checks += _check_day(config)
    report.checks += _talk_warnings(config)
    report.checks += _placeholder_warnings(config, datetime.now(UTC))
    report.checks += _check_notice(config)
    return report


def _check_notice(config: Config) -> list[CheckResult]:
    """The authors' notice templates, when the config gives its own (docs/workshop.md)."""
    if config.authors_notice.subject is None and config.authors_notice.body is None:
        return []
    try:
        notices.check_templates(config)
    except OrsyncError as exc:
        return [_failed("authors notice", exc)]
    return [CheckResult("authors notice", True, "the [authors_notice] templates render")]


# The titles config.example.toml ships with, and their like: never meant for the public page.
PLACEHOLDER_TITLE = re.compile(r"(?i)\s*(invited talk \d+|tba|tbd|to be announced)\s*")


def _placeholder_warnings(config: Config, now: datetime) -> list[CheckResult]:
    """A WARN line per slot whose title is still a placeholder, from ``program.warn_days``
    before its day until the day is over."""
    out = []
    for i, slot in enumerate(config.program.slots, start=1):
        if PLACEHOLDER_TITLE.fullmatch(slot.title) is None:
            continue
        if slot.start - timedelta(days=config.program.warn_days) <= now <= slot.end:
            out.append(
                CheckResult(
                    "day",
                    True,
                    f"program.slots[{i}] is still titled {slot.title!r} and starts "
                    f"{slot.start:%Y-%m-%d %H:%M}: give it its real title and speaker before "
                    "the page goes out",
                    warning=True,
                )
            )
    return out


def _talk_warnings(config: Config) -> list[CheckResult]:
    """Each disagreement between the talks and OpenReview's orals, a WARN line (the site says
    what the talks say; the chairs should know where OpenReview differs)."""

    path = sqlite_path_of(config.store.url)
    if not config.talks or (path is not None and not path.exists()):
        return []
    try:
        store = read_for(config)
    except OrsyncError:
        return []  # the store line says why
    with store, store.connect() as conn:
        papers = models.accepted_papers(conn)
    day = schedule.Schedule.from_config(config)
    records = site.build_records(papers, list(day.sessions))
    return [
        CheckResult("talks", True, w, warning=True)
        for w in site.with_talks(day, records, config.program.presentation_from)[1].warnings
    ]


def _check_day(config: Config) -> list[CheckResult]:
    """The day's rules (``orsync.rules``), as ``program`` and the push run them: ``talks`` for
    the contributed talks and the exclusion rule, ``day`` for the schedule and the posters.
    Before the first pull only the config's own rules run."""

    note = ""
    path = sqlite_path_of(config.store.url)
    if path is not None and not path.exists():
        facts = rules.gather(None, config)
        note = "papers checked after `orsync pull`"
    else:
        try:
            with read_for(config) as store, store.connect() as conn:
                facts = rules.gather(conn, config)
        except OrsyncError as exc:
            facts = rules.gather(None, config)
            note = f"papers not checked: {exc.message}"
    problems = rules.validate(facts)
    talks = [p for p in problems if p.area == "talk"]
    day = [p for p in problems if p.area != "talk"]
    return [
        _verdict("talks", talks, _talks_fine(config, facts), note),
        _verdict("day", day, _day_fine(facts), note),
        # A warning gets its own WARN line, as the talks' other warnings do: folded into an OK
        # line it would go unread.
        *(
            CheckResult("talks" if p.area == "talk" else "day", True, p.message, warning=True)
            for p in problems
            if p.severity == "warning"
        ),
    ]


def _verdict(name: str, problems: list[rules.Problem], fine: str, note: str) -> CheckResult:
    errors = [p.message for p in problems if p.severity == "error"]
    if errors:
        return CheckResult(name, False, "; ".join(errors), EXIT_USAGE)
    return CheckResult(name, True, "; ".join([fine, *([note] if note else [])]))


def _talks_fine(config: Config, facts: rules.DayFacts) -> str:
    named = [t for t in config.talks if t.paper is not None]
    if not named:
        return f"{len(config.talks)} talk slots, no paper set yet"
    if facts.papers is None:
        return f"{len(named)} talk papers set"
    waiting = len(facts.unreleased_talks())
    decided = f" ({waiting} decided, not released)" if waiting else ""
    return f"{len(named)} talk papers are accepted papers{decided}"


def _day_fine(facts: rules.DayFacts) -> str:
    day = facts.day
    fine = f"{len(day.slots())} slots, none clashing"
    if facts.papers is not None and day.sessions and facts.boards_per_session is not None:
        boards = len(day.sessions) * facts.boards_per_session
        fine += f"; {len(facts.papers)} posters for {boards} boards, pins and talks apart"
    return fine


def _check_openreview(config: Config) -> list[CheckResult]:
    venue_id = config.openreview.venue_id
    try:
        source = _check_source(config)
        source.connect()
    except OrsyncError as exc:
        return [
            _failed("login", exc),
            CheckResult("venue", False, f"{venue_id} not checked: no connection", exc.exit_code),
        ]
    who = (
        f"logged in to {source.baseurl} as {config.openreview.username}"
        if config.openreview.username
        else f"guest at {source.baseurl} (public data only; set openreview.username to log in)"
    )
    login = CheckResult("login", True, who)
    try:
        group = source.venue_group(venue_id)
    except OrsyncError as exc:
        return [login, _failed("venue", exc)]
    content = group.get("content")
    if isinstance(content, dict) and not content:
        # Container groups (ICLR.cc/2024/Workshop) have empty content; venues have settings.
        return [
            login,
            CheckResult(
                "venue",
                False,
                f"{venue_id} is a group of venues, not a venue; "
                f"`orsync venues {venue_id}/` lists them, then set openreview.venue_id",
                EXIT_ACCESS,
            ),
        ]
    title = _title(group)
    venue = CheckResult("venue", True, f"{venue_id}{title} is readable")
    if config.website is None or not config.website.files:
        return [login, venue]
    return [login, venue, _check_file_fields(config, source, group)]


def _check_file_fields(
    config: Config, source: OpenReviewSource, group: dict[str, Any]
) -> CheckResult:
    """``website.files`` names fields of the venue's submission form (docs/site-files.md#hosted-files): looked up in
    the content keys of a few submissions."""
    assert config.website is not None
    content = group.get("content")
    setting = content.get("submission_name") if isinstance(content, dict) else None
    name = setting.get("value") if isinstance(setting, dict) else None
    invitation = (
        f"{config.openreview.venue_id}/-/{name if isinstance(name, str) and name else 'Submission'}"
    )
    fields = ", ".join(config.website.files)
    try:
        keys = source.content_fields(invitation)
    except OrsyncError as exc:
        return CheckResult(
            "files", False, f"website.files ({fields}) not checked: {exc.message}", exc.exit_code
        )
    if keys is None:
        return CheckResult(
            "files", True, f"website.files ({fields}): no submission to compare with yet"
        )
    missing = [f for f in config.website.files if f not in keys]
    if missing:
        known = ", ".join(sorted(k for k in keys if not k.startswith("_"))) or "none"
        return CheckResult(
            "files",
            False,
            f"website.files names {', '.join(missing)}, which the submissions of "
            f"{config.openreview.venue_id} do not have (their fields: {known}); fix website.files",
            EXIT_USAGE,
        )
    return CheckResult("files", True, f"website.files ({fields}) are fields of the submission form")


def _title(group: dict[str, Any]) -> str:
    content = group.get("content")
    title = content.get("title") if isinstance(content, dict) else None
    value = title.get("value") if isinstance(title, dict) else None
    return f" ({value})" if isinstance(value, str) and value else ""


def _check_store(config: Config) -> CheckResult:

    url = config.store.url
    try:
        path = sqlite_path_of(url)
    except Exception:  # make_url has many complaints; open_store words them
        path = None
    try:
        if path is not None:
            folder = path.parent if str(path.parent) else Path()
            if not folder.is_dir():
                return CheckResult(
                    "store",
                    False,
                    f"store {path}: folder {folder} does not exist; create it first",
                    EXIT_STORE,
                )
            if not path.exists():
                if _writable(folder):
                    return CheckResult(
                        "store", True, f"{path} does not exist yet; `orsync pull` will create it"
                    )
                return CheckResult(
                    "store",
                    False,
                    f"store {path} cannot be created: folder {folder} is not writable",
                    EXIT_STORE,
                )
        state, detail = probe_schema(url)
    except OrsyncError as exc:
        return _failed("store", exc)
    if state in ("newer", "foreign"):
        return CheckResult("store", False, detail, EXIT_STORE)
    if state == "current":
        try:
            read_for(config).dispose()  # a store of another venue: every command refuses it
        except OrsyncError as exc:
            return _failed("store", exc)
    if path is not None:
        folder = path.parent if str(path.parent) else Path()
        if not os.access(path, os.W_OK) or not _writable(folder):
            return CheckResult(
                "store",
                False,
                f"{detail}, but it is read-only here: readers work, `orsync pull` cannot "
                f"write it (make {path} and its folder writable for this user)",
                EXIT_STORE,
            )
    return CheckResult("store", True, detail)


def _check_website(config: Config) -> CheckResult:
    if config.website is None:
        return CheckResult("website", True, "no [website] section: pull writes no website files")
    out = config.website.output_dir
    first = _check_folder("website.output_dir", out)
    if not first.ok or "miniconf" not in config.website.formats:
        return first
    if config.website.miniconf_folder.resolve() == out.resolve():
        return CheckResult("website", False, site.miniconf.OWN_FOLDER, EXIT_USAGE)
    second = _check_folder("website.miniconf_dir", config.website.miniconf_folder)
    if not second.ok:
        return second
    return CheckResult("website", True, f"{first.detail}; {second.detail}")


def _check_folder(key: str, out: Path) -> CheckResult:
    # `push` creates the folder with its parents: the first existing ancestor decides.
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return CheckResult(
            "website",
            False,
            f"{key} {out}: {existing} is a file, not a folder",
            EXIT_USAGE,
        )
    if not _writable(existing):
        return CheckResult(
            "website",
            False,
            f"{key} {out} is not writable ({existing} is read-only for this user)",
            EXIT_USAGE,
        )
    if existing == out:
        return CheckResult("website", True, f"{out} is writable")
    return CheckResult("website", True, f"{out} does not exist yet; `orsync push` will create it")


# -- venues ------------------------------------------------------------------------------------


@dataclass
class VenueEntry:
    id: str
    title: str | None
    venue: bool  # has venue settings (a container group such as .../Workshop has none)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VenueList:
    """What ``orsync venues`` found under a prefix, and the prefix as OpenReview spells it when
    the one given found nothing but differs only in case (ids are case-sensitive)."""

    prefix: str
    groups: list[VenueEntry]
    suggestion: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "groups": [g.as_dict() for g in self.groups],
            "suggestion": self.suggestion,
        }


def find_venues(config: Config, prefix: str | None = None) -> VenueList:
    """The groups under ``prefix`` (default: next to ``openreview.venue_id``) that the account
    can read, for finding the venue id. ``ICLR.cc/2024/Workshop/`` lists its children;
    ``ICLR.cc/2024/Workshop/B`` those whose id starts so."""
    if prefix is None:
        prefix = config.openreview.venue_id.rpartition("/")[0] + "/"
    source = _check_source(config)
    source.connect()
    groups = _groups_under(source, prefix)
    entries = []
    for g in groups:
        content = g.get("content")
        title = _title(g)[2:-1] or None
        entries.append(VenueEntry(g["id"], title, isinstance(content, dict) and bool(content)))
    suggestion = None if entries else _right_case(source, prefix, config.openreview.venue_id)
    return VenueList(prefix, sorted(entries, key=lambda e: e.id.lower()), suggestion)


def _groups_under(source: OpenReviewSource, prefix: str) -> list[dict[str, Any]]:
    if prefix.endswith("/"):
        return source.child_groups(prefix.rstrip("/"))
    groups = source.child_groups(prefix)
    if not groups and "/" in prefix:
        parent = prefix.rpartition("/")[0]
        groups = [g for g in source.child_groups(parent) if g["id"].startswith(prefix)]
    return groups


def _right_case(source: OpenReviewSource, prefix: str, venue_id: str) -> str | None:
    """``prefix`` as the groups spell it (``iclr.cc/2024/workshop/`` -> ``ICLR.cc/2024/Workshop/``),
    walking down from the root one listing at a time; None when nothing matches but for case."""
    segments = prefix.rstrip("/").split("/")
    root = segments[0]
    head, dot, tail = root.partition(".")
    configured = venue_id.split("/")[0]
    candidates = [configured] if configured.lower() == root.lower() else []
    candidates += [head.upper() + dot + tail, root.lower(), head.capitalize() + dot + tail]
    found = next((c for c in dict.fromkeys(candidates) if source.child_groups(c)), None)
    if found is None:
        return None
    for i, segment in enumerate(segments[1:], start=2):
        last = i == len(segments) and not prefix.endswith("/")
        names = [g["id"].rpartition("/")[2] for g in source.child_groups(found)]
        match = next(
            (
                n[: len(segment)] if last else n
                for n in names
                if (n.lower().startswith(segment.lower()) if last else n.lower() == segment.lower())
            ),
            None,
        )
        if match is None:
            return None
        found = f"{found}/{match}"
    suggestion = found + ("/" if prefix.endswith("/") else "")
    return None if suggestion == prefix else suggestion
