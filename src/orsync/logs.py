"""Logging for orsync: structlog events, one pipeline for everything, secrets redacted.

Every event, whether it comes from orsync (structlog) or from a library through the stdlib
``logging`` module (urllib3, alembic, openreview-py, ``warnings``), goes through the same
``logging`` handler and the same processors, so under ``orsync run`` the journal receives one
format only: JSON lines with ``event``, ``level``, ``timestamp`` (ISO 8601, UTC), ``logger`` and
whatever is bound (``venue``, ``cycle_id``, ...). On a terminal the same events render as console
lines.

Redaction is the last step before rendering, and the rendered line is masked once more, so a
secret cannot leak through a value the processors do not understand (an object whose ``repr``
contains it). Tracebacks are rendered without frame locals everywhere: locals are where
passwords and tokens live.

Stray writes to ``sys.stdout``/``sys.stderr`` (openreview-py ``print``s its retry messages) are
turned into log events by :func:`redirect_prints_to_log`, which the service loop wraps around
its work.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from orsync.secrets import (
    REDACTED,
    add_secret,
    clear_secrets,
    is_secret_name,
    mask_registered,
    mask_text,
)
from orsync.secrets import scope as secrets_scope

__all__ = [
    "REDACTED",
    "LogFormat",
    "add_secret",
    "bind_cycle",
    "configure_logging",
    "get_logger",
    "redact",
]

if TYPE_CHECKING:
    # structlog itself is imported on first use: it costs a reading command (status, changes)
    # a tenth of its time, and those log nothing unless something goes wrong.
    from structlog.stdlib import BoundLogger
    from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console", "auto"]


def get_logger(name: str | None = None) -> BoundLogger:
    """A structlog logger, with structlog configured as ``configure_logging`` asked."""
    import structlog

    _configure_structlog()
    logger: BoundLogger = structlog.get_logger(name)
    return logger


# Keys the pipeline itself owns; a user value can never land in them by name.
_STRUCTURAL_KEYS = frozenset({"event", "level", "timestamp", "logger", "exception", "stack"})

_MAX_DEPTH = 32

# The filter itself (names, values, URL passwords) lives in orsync.secrets, shared with the
# STATUS= line, the CLI's error line and on_change's environment.
_mask_text = mask_text
_clear_secrets = clear_secrets


def _is_sensitive_key(key: object) -> bool:
    return key not in _STRUCTURAL_KEYS and is_secret_name(key)


def _is_blank(value: object) -> bool:
    # No masking of an absent value: "token=None" tells the reader something without leaking.
    return value is None or (isinstance(value, str) and not value)


def _scrub(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return _mask_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if depth >= _MAX_DEPTH:
        return _mask_text(repr(value))
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            key = _mask_text(k) if isinstance(k, str) else k
            if _is_sensitive_key(k) and not _is_blank(v):
                out[key] = REDACTED
            else:
                out[key] = _scrub(v, depth + 1)
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    if isinstance(value, bytes | bytearray):
        return _mask_text(bytes(value).decode("utf-8", "backslashreplace"))
    if isinstance(value, BaseException):
        # Renderers would repr() it; do it here so the message is masked like any text.
        return _mask_text(f"{type(value).__name__}: {value}")
    # Other objects are rendered via repr()/__structlog__ later; the rendered line is masked
    # again by _MaskRendered, which covers them.
    return value


_LEADING_KEYS = ("timestamp", "level", "event", "logger", "venue", "cycle_id")
_KEY_ORDER = {k: i for i, k in enumerate(_LEADING_KEYS)} | {
    "stack": len(_LEADING_KEYS) + 1,
    "exception": len(_LEADING_KEYS) + 2,
}


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Processor: mask registered secrets everywhere and credential-named keys' values.

    Also puts the keys a reader scans for first (and the bulky exception last), so a journal
    line starts with what happened rather than with whatever was bound.
    """
    ordered = sorted(event_dict, key=lambda k: _KEY_ORDER.get(k, len(_LEADING_KEYS)))
    return {
        key: (
            REDACTED
            if _is_sensitive_key(key) and not _is_blank(event_dict[key])
            else _scrub(event_dict[key])
        )
        for key in ordered
    }


class _MaskRendered:
    """Wraps the renderer: masks registered secrets in the final line as a last resort."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, name, event_dict)
        if not isinstance(rendered, str):  # pragma: no cover - our renderers return str
            rendered = str(rendered)
        return mask_registered(rendered)


def bind_cycle(venue: str, cycle_id: str | int) -> AbstractContextManager[None]:
    """Every event inside the block (this thread/task) carries ``venue`` and ``cycle_id``.

    Context variables do not flow into threads started inside the block (e.g. a thread pool);
    run such work with ``contextvars.copy_context().run`` to keep the ids.
    """
    import structlog

    return structlog.contextvars.bound_contextvars(venue=venue, cycle_id=cycle_id)


def _level_for(verbosity: int) -> int:
    if verbosity < 0:
        return logging.WARNING
    if verbosity == 0:
        return logging.INFO
    return logging.DEBUG


# Libraries whose DEBUG output is a line per HTTP request: shown only from -vv on, so that -v is
# about orsync's own decisions.
_CHATTY_LIBRARIES = ("urllib3", "requests", "openreview")

# Marks the handler we install so that reconfiguring replaces it instead of stacking another.
_HANDLER_NAME = "orsync"


def _real_stream(stream: TextIO) -> TextIO:
    # If prints are being redirected into the log, the log itself must still go to the real
    # stream, or every event would loop back into the logger.
    # (``orsync.prints`` marks its writers so, and keeps the stream each one replaced.)
    while getattr(stream, "routes_prints_to_log", False):
        stream = stream.original  # type: ignore[attr-defined]
    return stream


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def configure_logging(
    fmt: LogFormat = "auto",
    verbosity: int = 0,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Configure structlog and the stdlib ``logging`` root logger for the whole process.

    *fmt* ``auto`` renders JSON lines unless *stream* is a terminal. *verbosity* ``-1`` shows
    warnings and errors only, ``0`` info, ``1`` debug for orsync (libraries stay at info), ``2``
    debug for everything. *stream* defaults to ``sys.stderr`` (resolved at call time) so that
    commands writing data to stdout (``export``, ``--json``) keep it clean; under systemd both
    streams go to the journal. Calling it again (e.g. after SIGHUP) replaces the configuration.

    Also installs ``sys.excepthook``/``threading.excepthook`` so that an uncaught exception is
    logged like any other event (JSON, redacted) instead of a raw traceback on stderr, and routes
    ``warnings`` through ``logging``.
    """
    for secret in secrets:
        add_secret(secret)

    out = _real_stream(stream if stream is not None else sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not _is_terminal(out))

    handler = _Handler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_LazyFormatter(use_json, out))

    root = logging.getLogger()
    # We own the root logger: a handler added earlier (a library's basicConfig) would print the
    # same records a second time in another format.
    for old in list(root.handlers):
        root.removeHandler(old)
        if old.get_name() == _HANDLER_NAME:
            old.close()
    root.addHandler(handler)
    level = _level_for(verbosity)
    root.setLevel(level)
    for name in _CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(
            logging.NOTSET if verbosity >= 2 else max(level, logging.INFO)
        )
    logging.captureWarnings(True)

    _structlog_state["wanted"] = True
    _structlog_state["configured"] = False
    if "structlog" in sys.modules:
        # Loggers made before this call (a SIGHUP's reconfiguration) follow it from now on.
        _configure_structlog()

    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


@contextlib.contextmanager
def restored_afterwards() -> Iterator[None]:
    """What ``configure_logging`` sets for the whole process (the root logger's handlers and
    levels, the libraries' levels, structlog, warnings routed to logging, the exception hooks)
    and the secrets registered meanwhile, put back as they were when the block ends.

    ``orsync.cli.main`` runs a command inside it, so a command run in a process that goes on
    (a notebook, the test suite) leaves that process as it found it.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    hooks = (sys.excepthook, threading.excepthook)
    structlog_state = dict(_structlog_state)
    # structlog is imported only when a command logs (``--help`` never does).
    had_structlog = "structlog" in sys.modules
    structlog_config = _structlog_config() if had_structlog else None
    # captureWarnings(True) swaps in logging's own showwarning; nothing public says whether it did.
    warnings_captured = warnings.showwarning is getattr(logging, "_showwarning", None)
    try:
        with secrets_scope():
            yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            if handler.get_name() == _HANDLER_NAME and handler not in handlers:
                handler.close()
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))
        logging.captureWarnings(warnings_captured)
        sys.excepthook, threading.excepthook = hooks
        _structlog_state.update(structlog_state)
        if "structlog" in sys.modules:
            import structlog

            structlog.reset_defaults()
            if structlog_config is not None:
                structlog.configure(**structlog_config)


def _structlog_config() -> dict[str, Any] | None:
    import structlog

    return structlog.get_config() if structlog.is_configured() else None


# Whether ``configure_logging`` ran (structlog is to be configured), and whether it was.
_structlog_state = {"wanted": False, "configured": False}


def _shared_processors() -> list[Processor]:
    import structlog

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _configure_structlog() -> None:
    """Send structlog's events through the stdlib handler ``configure_logging`` installed."""
    if not _structlog_state["wanted"] or _structlog_state["configured"]:
        return
    import structlog

    _structlog_state["configured"] = True
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Safe to cache: everything that depends on fmt/verbosity lives in the handler and the
        # stdlib levels, which a later configure_logging() replaces in place.
        cache_logger_on_first_use=True,
    )


class _LazyFormatter(logging.Formatter):
    """structlog's ``ProcessorFormatter``, built (and structlog imported) at the first record."""

    def __init__(self, use_json: bool, out: TextIO) -> None:
        super().__init__()
        self._use_json = use_json
        self._out = out
        self._real: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._real is None:
            self._real = self._build()
        return self._real.format(record)

    def _build(self) -> logging.Formatter:
        import structlog
        from structlog.processors import ExceptionRenderer
        from structlog.tracebacks import ExceptionDictTransformer

        _configure_structlog()
        exceptions: Processor
        renderer: Processor
        if self._use_json:
            # Structured traceback (frames as dicts) that journald/jq can query; no locals.
            exceptions = ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
            renderer = structlog.processors.JSONRenderer()
        else:
            # Formatted to plain text *before* redaction, so the masking sees the exception
            # text; rich/better-exceptions are bypassed on purpose (they print locals).
            exceptions = structlog.processors.format_exc_info
            renderer = structlog.dev.ConsoleRenderer(
                colors=_is_terminal(self._out),
                exception_formatter=structlog.dev.plain_traceback,
            )
        return structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.StackInfoRenderer(),
                exceptions,
                redact,
                _MaskRendered(renderer),
            ],
        )


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose failure report cannot leak a secret.

    The stdlib's ``handleError`` prints the record's raw message and arguments to stderr, i.e.
    the event *before* redaction. A failed write (journald restarting, a closed pipe) or a failing
    processor must neither crash the service nor print that, so we report only the error type.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - stdlib name
        del record  # deliberately unused: it holds the unredacted event
        exc = sys.exc_info()[1]
        try:
            notice = json.dumps(
                {"level": "error", "event": "log write failed", "error": type(exc).__name__}
            )
            err = sys.__stderr__
            if err is not None and err is not self.stream:
                err.write(notice + "\n")
                err.flush()
        except Exception:  # noqa: S110 - nowhere left to report to
            pass


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    get_logger("orsync").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or issubclass(args.exc_type, SystemExit):
        return
    get_logger("orsync").critical(
        "uncaught exception in thread",
        thread=args.thread.name if args.thread is not None else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
