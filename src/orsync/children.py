"""The environment of every process orsync starts: the chairs' hook and orsync's own helpers.

A child gets no secret (``secrets.child_environ``) and no systemd notify socket
(``Notifier.child_environ``): it must not read the account's password, nor believe it is the
service. orsync's own helpers (``python -m orsync.posters``, ``python -m orsync.mirror``) also
get the path this very orsync was imported from, however the parent found it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from orsync import secrets
from orsync.notify import Notifier

__all__ = ["child_environ", "helper_environ"]


def child_environ(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """``environ`` without secrets and without the service manager's variables."""
    return secrets.child_environ(Notifier.child_environ(environ))


def helper_environ() -> dict[str, str]:
    """``child_environ`` for a ``python -m orsync.<part>`` child of this process."""
    env = child_environ()
    here = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
    return env
