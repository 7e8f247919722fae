"""Configuration: find the TOML file, validate it, and read the password (docs/configuration.md).

Validation is done by pydantic models with ``extra="forbid"`` so that a typo in a key is an
error naming that key rather than a silently ignored setting.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import tomllib
import urllib.parse
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orsync.config_keys import key_name, unknown_key
from orsync.errors import ConfigError
from orsync.files import confidential_files, site_leak, sqlite_file
from orsync.text import line_problem, link_problem

# The kinds of a [[program]] slot (the day's other slots: posters and talks have their own).
ProgramKind = Literal["invited", "break", "opening", "closing", "other"]
PresentationFrom = Literal["talks", "decision"]

DEFAULT_BASEURL = "https://api2.openreview.net"
# Requests of a rate-limit window orsync never spends: a cycle stops before it would leave
# fewer than this many (a chair's browser and `orsync check` share the account's quota).
QUOTA_RESERVE = 3
SEARCH_PATH = (Path("orsync.toml"), Path("/etc/orsync/orsync.toml"))


def _one_line(value: str) -> str:
    problem = line_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# Text the chairs write that a published file shows on one line (a calendar property, a JSON
# name, a heading): a line break or control character there is refused with its key, not
# flattened, because a change the chairs did not see would be published under their name.
Line = Annotated[str, AfterValidator(_one_line)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenReviewConfig(_Section):
    # Declared before baseurl so that baseurl's check can see it.
    allow_insecure_http: bool = False
    baseurl: str = DEFAULT_BASEURL
    venue_id: Annotated[Line, Field(min_length=1)]
    username: str | None = None
    password_file: Path | None = None
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 30
    retry_attempts: Annotated[int, Field(ge=1, le=20)] = 6
    retry_max_wait_s: Annotated[float, Field(ge=0, le=3600)] = 120
    retry_initial_s: Annotated[float, Field(ge=0, le=60)] = 1.0

    @field_validator("baseurl")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http:// for a local emulator)")
        host = urllib.parse.urlsplit(value).hostname or ""
        if (
            value.startswith("http://")
            and not is_loopback(host)
            and not info.data.get("allow_insecure_http", False)
        ):
            raise ValueError(
                f"http:// would send the password and session token to {host or 'the server'} "
                "unencrypted; use https://, or set openreview.allow_insecure_http = true if the "
                "network path is trusted"
            )
        return value.rstrip("/")


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the emulator and SSH tunnels, never the network."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StoreConfig(_Section):
    url: str = "sqlite:///orsync.db"


class SyncConfig(_Section):
    interval_s: Annotated[float, Field(gt=0)] = 300
    jitter_s: Annotated[float, Field(ge=0)] = 30
    full_every: Annotated[int, Field(ge=1)] = 12
    max_delete_fraction: Annotated[float, Field(ge=0, le=1)] = 0.5


SiteFormat = Literal["json", "yaml", "csv", "ics", "html", "miniconf", "frab"]


class WebsiteConfig(_Section):
    output_dir: Path
    # json: papers.json, posters.json and program.json; ics: schedule.ics; html: index.html;
    # miniconf: a Mini-Conf sitedata/ folder in miniconf_dir (None: output_dir/miniconf).
    formats: tuple[SiteFormat, ...] = ("json", "yaml", "csv")
    miniconf_dir: Path | None = None
    on_change: tuple[str, ...] | None = None
    # After this many seconds the on_change command and its whole process group are killed and
    # the push fails (exit 2); a hung hook must not hold the push, nor the service's stop.
    on_change_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 300
    # Content fields of accepted papers whose files the site hosts (docs/site-files.md#hosted-files), and the largest
    # file accepted, in MB (refused while it streams, never written).
    files: tuple[Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$")], ...] = ()
    file_max_mb: Annotated[float, Field(gt=0, le=4096)] = 50

    @field_validator("files")
    @classmethod
    def _unique_fields(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))

    @field_validator("on_change", mode="before")
    @classmethod
    def _argv(cls, value: Any) -> Any:
        # A string is split like a shell would, but never run through one.
        if isinstance(value, str):
            return tuple(shlex.split(value))
        return value

    @field_validator("on_change")
    @classmethod
    def _non_empty(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("must name a program to run")
        return value

    @field_validator("formats")
    @classmethod
    def _some_format(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must list at least one of json, yaml, csv, ics, html, miniconf, frab")
        return tuple(sorted(set(value)))

    @property
    def miniconf_folder(self) -> Path:
        """The folder of format ``miniconf``."""
        return self.miniconf_dir if self.miniconf_dir is not None else self.output_dir / "miniconf"


class PosterSessionConfig(_Section):
    id: Annotated[Line, Field(min_length=1)]
    name: Annotated[Line, Field(min_length=1)]
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> PosterSessionConfig:
        if self.end <= self.start:
            raise ValueError(f"session {self.id!r} ends before it starts")
        return self


class PostersConfig(_Section):
    boards_per_session: Annotated[int, Field(ge=1)] | None = None
    sessions: tuple[PosterSessionConfig, ...] = ()
    # Once the places are announced no push moves a poster by itself (``orsync posters freeze``
    # records the same in the store).
    announced: bool = False

    @field_validator("sessions")
    @classmethod
    def _unique_ids(cls, value: tuple[PosterSessionConfig, ...]) -> tuple[PosterSessionConfig, ...]:
        ids = [s.id for s in value]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate session id {dupes[0]!r}")
        return value


class TalkConfig(_Section):
    # A slot without a paper is allowed: chairs write the programme before picking the talks.
    paper: int | str | None = None
    start: AwareDatetime
    end: AwareDatetime
    # Who presents: one of the paper's authors (`check` warns otherwise). Published only with a
    # paper whose authors are public: before that it would name an author of a hidden paper.
    speaker: Line | None = None
    # Where the talk can be watched after the day (docs/workshop.md#recordings).
    recording_url: str | None = None

    @field_validator("recording_url")
    @classmethod
    def _recording(cls, value: str | None) -> str | None:
        return _web_link(value)

    @model_validator(mode="after")
    def _ordered(self) -> TalkConfig:
        if self.end <= self.start:
            raise ValueError("talk ends before it starts")
        return self


def _web_link(value: str | None) -> str | None:
    """An http(s) link with a host, or None: it becomes an href on the page and in the calendar
    (``text.link_problem`` says what is refused, for every link orsync shows)."""
    if value is None:
        return None
    problem = link_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value.strip()


# A slot's own name goes into calendar UIDs and the page's anchors as it is written.
SLOT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class ProgramSlotConfig(_Section):
    """One entry of the day that is neither a poster session nor a contributed talk."""

    # Optional; without it the slot is known by its kind and start time, so moving it makes
    # it a new calendar event (docs/workshop.md#calendar).
    id: str | None = None
    start: AwareDatetime
    end: AwareDatetime
    kind: ProgramKind
    title: Annotated[Line, Field(min_length=1)]
    speaker: Line | None = None
    affiliation: Line | None = None
    abstract: str | None = None
    url: str | None = None
    location: Line | None = None
    # Where the slot can be watched after the day (docs/workshop.md#recordings).
    recording_url: str | None = None

    @field_validator("id")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is not None and SLOT_ID.fullmatch(value) is None:
            raise ValueError(
                f"{value!r} is not a slot id: use up to 64 letters, digits, '-' and '_', "
                'starting with a letter or digit, e.g. "keynote-1"'
            )
        return value

    @field_validator("title")
    @classmethod
    def _title_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("url", "recording_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return _web_link(value)

    @model_validator(mode="after")
    def _ordered(self) -> ProgramSlotConfig:
        if self.end <= self.start:
            raise ValueError(f"slot {self.title!r} ends before it starts")
        return self


class ProgramConfig(_Section):
    """The event as a whole (docs/workshop.md): its name, room, zone and live stream, and the other slots."""

    name: Line | None = None
    location: Line | None = None
    # IANA name (Europe/Vienna); unset = the UTC offset written in the times.
    timezone: str | None = None
    stream_url: str | None = None
    # Which side says a paper is an oral on the site: the configured [[talks]] (the chairs'
    # final word on the day) or OpenReview's decision text. The other side's disagreements
    # are warnings either way.
    presentation_from: PresentationFrom = "talks"
    # From this many days before the day, `check` warns on a slot title still a placeholder
    # ("Invited talk 3", "TBA"): the page would otherwise go live with it.
    warn_days: Annotated[int, Field(ge=0, le=365)] = 14
    slots: tuple[ProgramSlotConfig, ...] = ()

    @field_validator("slots")
    @classmethod
    def _unique_ids(cls, value: tuple[ProgramSlotConfig, ...]) -> tuple[ProgramSlotConfig, ...]:
        seen: dict[str, int] = {}
        for i, slot in enumerate(value):
            if slot.id is None:
                continue
            if slot.id in seen:
                raise ValueError(
                    f"duplicate slot id {slot.id!r} (program.slots[{seen[slot.id] + 1}] and "
                    f"program.slots[{i + 1}]): each slot's id must be its own"
                )
            seen[slot.id] = i
        return value

    @field_validator("timezone")
    @classmethod
    def _iana_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(
                f'{value!r} is not an IANA time zone name, e.g. "Europe/Vienna" or "UTC"'
            ) from None
        return value

    @field_validator("stream_url")
    @classmethod
    def _stream(cls, value: str | None) -> str | None:
        return _web_link(value)


class TalkSelectionConfig(_Section):
    """How ``orsync talks suggest`` picks the contributed-talk shortlist (docs/workshop.md)."""

    # A submission form field (``content.<field>``) and the values that mark a paper as
    # previously published: such a paper is never an oral. Compared as text, ignoring case and
    # surrounding spaces; a list-valued field matches when any of its items does.
    exclude_field: Annotated[str, Field(min_length=1)] | None = None
    exclude_values: tuple[str, ...] = ()
    min_reviews: Annotated[int, Field(ge=1, le=100)] = 3

    @model_validator(mode="after")
    def _field_and_values(self) -> TalkSelectionConfig:
        if self.exclude_field is not None and not any(v.strip() for v in self.exclude_values):
            raise ValueError(
                "exclude_field needs exclude_values: the field's values that mark a paper as "
                'previously published, e.g. ["Yes"]'
            )
        if self.exclude_values and self.exclude_field is None:
            raise ValueError(
                "exclude_values needs exclude_field: the form field they are values of"
            )
        return self


class AuthorsNoticeConfig(_Section):
    """The notice ``orsync authors notify`` sends each accepted paper's authors
    (docs/workshop.md#telling-the-authors): Jinja2 templates of plain text."""

    # Jinja2 templates of plain text; None: orsync's own (``publish.notices``).
    subject: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    body: Annotated[str, Field(min_length=1)] | None = None
    # The public page the notice points to (an http(s) link).
    page_url: str | None = None
    # When the files still missing are due (shown in the venue's zone).
    files_due: AwareDatetime | None = None
    # At most this many messages per run: OpenReview's limits, and a template mistake stays small.
    max_per_run: Annotated[int, Field(ge=1, le=10000)] = 100

    @field_validator("page_url")
    @classmethod
    def _page(cls, value: str | None) -> str | None:
        return _web_link(value)


class Config(_Section):
    openreview: OpenReviewConfig
    store: StoreConfig = StoreConfig()
    sync: SyncConfig = SyncConfig()
    website: WebsiteConfig | None = None
    posters: PostersConfig = PostersConfig()
    talks: tuple[TalkConfig, ...] = ()
    program: ProgramConfig = ProgramConfig()
    talk_selection: TalkSelectionConfig = TalkSelectionConfig()
    authors_notice: AuthorsNoticeConfig = AuthorsNoticeConfig()
    source: Path | None = Field(default=None, exclude=True)


def find_config(explicit: Path | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The config file per docs/configuration.md: --config, $ORSYNC_CONFIG, ./orsync.toml, /etc/orsync."""
    if explicit is not None:
        return explicit
    env = environ.get("ORSYNC_CONFIG")
    if env:
        return Path(env)
    for candidate in SEARCH_PATH:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "no configuration found: pass --config FILE, set ORSYNC_CONFIG, or create ./orsync.toml "
        "(config.example.toml is a complete example)"
    )


def parse_config(data: Mapping[str, Any], source: Path | None = None) -> Config:
    where = f"{source}: " if source else ""
    try:
        config = Config.model_validate({**data, "source": source})
    except ValidationError as exc:
        errors = exc.errors()
        # A misspelt key is the likely cause of a "missing" one beside it: name it first.
        unknown = [e for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            raise ConfigError(where + unknown_key(Config, unknown[0]["loc"], data)) from None
        first = errors[0]
        key = key_name(first["loc"], data)
        if first["type"] == "missing":
            raise ConfigError(f"{where}missing required key {key!r}") from None
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}invalid value for {key!r}: {message}") from None
    return config


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    config = _anchor_paths(parse_config(data, path), path.absolute().parent)
    _keep_site_public(config)
    return config


def _keep_site_public(config: Config) -> None:
    """Refuse a site folder that is or holds a confidential file (docs/security.md#confidential-files)."""
    if config.website is not None:
        source = config.source.absolute() if config.source is not None else None
        private = confidential_files(source, config.openreview.password_file, config.store.url)
        site = config.website
        folders = [("website.output_dir", site.output_dir)]
        if "miniconf" in site.formats:  # Mini-Conf's folder is published whole too
            folders.append(("website.miniconf_dir", site.miniconf_folder))
        for key, folder in folders:
            problem = site_leak(folder, private, key)
            if problem is not None:
                raise ConfigError(problem)


def _anchor_paths(config: Config, base: Path) -> Config:
    """Make every relative path of the config relative to the config file's folder.

    One rule for all of them (the store, the password file, the website folder): a service, a
    cron job and a chair's shell start in different folders, and a store found relative to the
    shell would be a new, empty one that then overwrites the published site.
    """
    updates: dict[str, Any] = {}
    pw = config.openreview.password_file
    if pw is not None and not pw.is_absolute():
        updates["openreview"] = config.openreview.model_copy(update={"password_file": base / pw})
    store_url = anchor_store_url(config.store.url, base)
    if store_url != config.store.url:
        updates["store"] = config.store.model_copy(update={"url": store_url})
    if (site := config.website) is not None:  # base / an absolute path is that path
        mc = None if site.miniconf_dir is None else base / site.miniconf_dir
        updates["website"] = site.model_copy(
            update={"output_dir": base / site.output_dir, "miniconf_dir": mc}
        )
    return config.model_copy(update=updates) if updates else config


def anchor_store_url(url: str, base: Path) -> str:
    """A SQLite URL with a relative file, made absolute against ``base``; others unchanged."""
    from sqlalchemy.engine import make_url

    # A bad URL is left as it is: the store reports it when it is opened.
    database = sqlite_file(url)
    if database is None or database.is_absolute():
        return url
    return make_url(url).set(database=str(base / database)).render_as_string(hide_password=False)
