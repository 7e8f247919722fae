"""The one secret filter: what counts as a secret, and how it is kept out of every output.

Used for the log events (``orsync.logs``), the ``STATUS=`` line systemd shows
(``orsync.notify``), the CLI's error line, and the environment of ``website.on_change``
(``orsync.publish.child_environ``), so that all four agree on what a secret is.

A secret is recognised three ways:

- **By value**: a password or token once read is registered with :func:`add_secret` and masked
  wherever it appears, in any of the forms a renderer, a URL or a ``repr`` gives it.
- **By name**: a variable, a log key, or a ``name=value`` / ``name: value`` in free text whose name
  says it holds a credential (:func:`is_secret_name`).
- **By shape**: the password of a URL (``scheme://user:password@host``) and a bearer token.

Names are split into words (``SMTP_PASS`` → ``SMTP``, ``PASS``; ``apiKey`` → ``api``, ``Key``)
and matched word by word, so that ``PATH``, ``KEYBOARD``, ``GIT_AUTHOR_NAME`` or
``TOKENIZERS_PARALLELISM`` are not secrets while ``MYSQL_PWD``, ``DEPLOY_KEY`` and
``X-Auth-Token`` are. A name that says *where* a secret is kept (``password_file``,
``SSH_AUTH_SOCK``) is not a secret itself. A few well-known system variables whose words look
like credentials (``PWD``, ``XDG_SESSION_TYPE``, ``DBUS_SESSION_BUS_ADDRESS``) and orsync's own
poster-session vocabulary are allowed by name. When in doubt the filter masks: masking too much
beats leaking a password.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator, Mapping

__all__ = [
    "REDACTED",
    "add_secret",
    "child_environ",
    "has_url_credentials",
    "is_secret_name",
    "mask_text",
]

REDACTED = "[REDACTED]"

# Whole words that name a credential.
_SECRET_WORDS = frozenset(
    {
        "PASS",
        "PASSWORD",
        "PASSWORDS",
        "PASSWD",
        "PWD",
        "PW",
        "PASSPHRASE",
        "TOKEN",
        "TOKENS",
        "SECRET",
        "SECRETS",
        "CREDENTIAL",
        "CREDENTIALS",
        "CREDS",
        "KEY",
        "KEYS",
        "APIKEY",
        "AUTH",
        "AUTHORIZATION",
        "COOKIE",
        "COOKIES",
        "SESSION",
        "SESSIONID",
        "PRIVATE",
    }
)
# Parts of a single word that name a credential (``csrftoken``, ``OPENREVIEWPASSWORD``).
_SECRET_PARTS = ("PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "CREDENTIAL", "COOKIE", "APIKEY")
_SECRET_SUFFIXES = ("TOKEN", "TOKENS", "AUTHORIZATION")
# Last words that make a name a place or a type rather than a value: "password_file",
# "CREDENTIALS_DIRECTORY", "SSH_AUTH_SOCK", "KeyError".
_LOCATION_WORDS = frozenset({"FILE", "PATH", "DIR", "DIRECTORY", "SOCK", "SOCKET"})
_TYPE_WORDS = frozenset({"ERROR", "EXCEPTION", "WARNING"})
# Exact names (case-insensitive) that look like credentials but are not.
_ALLOWED_NAMES = frozenset(
    {
        "PWD",  # the shell's working directory
        "OLDPWD",
        "SSH_AGENT_PID",
        "DESKTOP_SESSION",
        "SESSION_MANAGER",
        "DBUS_SESSION_BUS_ADDRESS",
        "GPG_TTY",
        # orsync's own vocabulary: poster sessions
        "SESSION",
        "SESSIONS",
        "SESSION_ID",
        "SESSION_NAME",
        "SESSION_START",
        "SESSION_END",
    }
)
_ALLOWED_PREFIXES = ("XDG_",)  # the freedesktop base-directory and login-session variables

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _words(name: str) -> list[str]:
    """``X-Auth-Token`` → X AUTH TOKEN, ``apiKey`` → API KEY, ``SMTP_PASS`` → SMTP PASS."""
    return [w.upper() for w in _WORD.findall(name)]


def is_secret_name(name: object) -> bool:
    """Whether a variable, key or field called *name* holds a credential."""
    if not isinstance(name, str) or not name:
        return False
    upper = name.upper()
    if upper in _ALLOWED_NAMES or upper.startswith(_ALLOWED_PREFIXES):
        return False
    words = _words(name)
    if not words or words[-1] in _LOCATION_WORDS or words[-1] in _TYPE_WORDS:
        return False
    for word in words:
        if word in _SECRET_WORDS or word.endswith(_SECRET_SUFFIXES):
            return True
        if any(part in word for part in _SECRET_PARTS):
            return True
    return False


# scheme://user:password@host: the password (possibly empty user) up to the '@'.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s/?#@:]*:)([^\s/?#@]+)(@)")


def has_url_credentials(value: str) -> bool:
    """Whether *value* holds a URL with a password in it (``https://user:pw@proxy``)."""
    return any(m.group(2) != REDACTED for m in _URL_CREDENTIALS.finditer(value))


# Credentials inside free text, where no key name helps: "Authorization: Bearer eyJ...",
# "password=hunter2", "'token': 'abc'", "MYSQL_PWD=abc" (a child's stderr, a response body).
# Only "Bearer" on its own (what OpenReview uses): "Basic" would also hit plain English.
_BEARER = re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_INLINE_ASSIGNMENT = re.compile(
    r"""(?x)
    (["']?([A-Za-z_][\w.-]*)["']?\s*[:=]\s*)          # a name, then ':' or '='
    (?!\s*\[REDACTED\])                              # already masked
    ((?:(?i:bearer|basic|token|digest)\s+)?           # an authorization scheme
     (?:"[^"]*"|'[^']*'|[^\s,;&}\])"']+))            # quoted or bare value
    """
)

# The registry is process-wide on purpose: a secret is registered where it is read (config
# loading, login) and must be masked in every later output, whichever module writes it.
_secrets_lock = threading.Lock()
_secret_values: set[str] = set()
_secret_pattern: re.Pattern[str] | None = None


def _variants(secret: str) -> set[str]:
    """The forms a secret takes once escaped by a renderer, a URL or a repr()."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret, safe=""),
    }
    return {f for f in forms if f}


def add_secret(value: str) -> None:
    """Register *value* (a password once read, a session token) to be masked from now on.

    Any non-blank value is registered, however short: masking too much beats leaking a password.
    Safe to call from any thread and more than once with the same value.
    """
    global _secret_pattern
    if not value or value.isspace():
        return
    with _secrets_lock:
        if value in _secret_values:
            return
        _secret_values.add(value)
        forms: set[str] = set()
        for secret in _secret_values:
            forms |= _variants(secret)
        # Longest first so that a secret containing another one is masked as a whole.
        ordered = sorted(forms, key=lambda s: (-len(s), s))
        _secret_pattern = re.compile("|".join(re.escape(f) for f in ordered))


def registered() -> frozenset[str]:
    """The values registered so far."""
    with _secrets_lock:
        return frozenset(_secret_values)


@contextlib.contextmanager
def scope() -> Iterator[None]:
    """Secrets registered inside the block are forgotten when it ends: one command's password
    does not stay registered in a process (a notebook, a test) that runs another command."""
    before = registered()
    try:
        yield
    finally:
        clear_secrets()
        for value in before:
            add_secret(value)


def clear_secrets() -> None:
    """Forget every registered secret."""
    global _secret_pattern
    with _secrets_lock:
        _secret_values.clear()
        _secret_pattern = None


def mask_registered(text: str) -> str:
    """Only the registered values: the last pass over an already rendered line."""
    pattern = _secret_pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def _mask_assignment(match: re.Match[str]) -> str:
    if not is_secret_name(match.group(2)):
        return match.group(0)
    return match.group(1) + REDACTED


def mask_text(text: str) -> str:
    """*text* with every secret the filter recognises replaced by ``[REDACTED]``."""
    text = mask_registered(text)
    if "://" in text:
        text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    if ":" in text or "=" in text:
        text = _INLINE_ASSIGNMENT.sub(_mask_assignment, text)
    if " " in text:
        text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return text


# Never passed to a child: systemd's handle on orsync's own password (LoadCredential=).
_CHILD_DROPPED = frozenset({"CREDENTIALS_DIRECTORY"})


def child_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """*environ* without any variable that is, or carries, a secret.

    Dropped: secret names (:func:`is_secret_name`), values with a URL password
    (``DATABASE_URL``, ``HTTPS_PROXY`` with ``user:pw@``: dropped whole, since a masked URL
    would only fail in a more confusing way), values equal to a registered secret, and
    ``CREDENTIALS_DIRECTORY``.
    """
    with _secrets_lock:
        known = tuple(_secret_values)
    return {
        k: v
        for k, v in environ.items()
        if k.upper() not in _CHILD_DROPPED
        and not is_secret_name(k)
        and not has_url_credentials(v)
        and not any(_carries(v, secret) for secret in known)
    }


def _carries(value: str, secret: str) -> bool:
    # A short registered secret would match inside unrelated values (PATH): then only equality.
    return secret in value if len(secret) >= 6 else secret == value
