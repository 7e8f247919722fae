"""The account's password: from the systemd credential, ``openreview.password_file`` or
``$ORSYNC_OPENREVIEW_PASSWORD`` (docs/configuration.md#the-password), registered with the secret
filter the moment it is read."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path

from orsync.config import Config
from orsync.errors import ConfigError
from orsync.secrets import add_secret

__all__ = ["CREDENTIAL_NAME", "PASSWORD_ENV", "read_password", "register_password"]

CREDENTIAL_NAME = "openreview-password"
PASSWORD_ENV = "ORSYNC_OPENREVIEW_PASSWORD"  # noqa: S105 (a variable name)


def read_password(
    config: Config, environ: Mapping[str, str] = os.environ, *, warn: bool = True
) -> str | None:
    """The account's password, from the first source that has one (docs/configuration.md), or None for guests.

    Order: the systemd credential, ``openreview.password_file``, ``$ORSYNC_OPENREVIEW_PASSWORD``.
    The password is registered with the secret filter (masked in every output from then on),
    and a password file other users may read is warned about with the fix.
    """
    if config.openreview.username is None:
        return None
    sources: list[tuple[str, Path | None]] = []
    cred_dir = environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        sources.append(("systemd credential", Path(cred_dir) / CREDENTIAL_NAME))
    if config.openreview.password_file is not None:
        sources.append(("openreview.password_file", config.openreview.password_file))
    for label, path in sources:
        if path is None or not path.exists():
            if label == "openreview.password_file":
                raise ConfigError(f"openreview.password_file: {path} does not exist")
            continue
        try:
            password = path.read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{label}: cannot read {path}: {exc.__class__.__name__}") from None
        if not password:
            raise ConfigError(f"{label}: {path} is empty")
        add_secret(password)
        if label == "openreview.password_file" and warn:
            _warn_if_shared(path)
        return password
    from_env = environ.get(PASSWORD_ENV)
    if from_env:
        add_secret(from_env)
        return from_env
    raise ConfigError(
        f"openreview.username is set but no password was found: set openreview.password_file, "
        f"${PASSWORD_ENV}, or a systemd credential named {CREDENTIAL_NAME}"
    )


def _warn_if_shared(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return
    if mode & 0o077:
        logging.getLogger("orsync.config").warning(
            "openreview.password_file %s is readable by other users (mode %04o); run: chmod 600 %s",
            path,
            mode,
            path,
        )


def register_password(config: Config) -> None:
    """Register the password with the secret filter if it can be read, quietly.

    For the commands that publish without logging in (``push``, ``posters``): what they print
    (an on_change error that echoes it) is masked too. No error and no warning when there is none.
    """
    with contextlib.suppress(ConfigError, OSError):
        read_password(config, warn=False)
