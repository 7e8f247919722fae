"""orsync's modules byte-compiled before they are timed, as an install leaves them.

``pip install`` (a wheel) writes every module's ``.pyc`` when it installs; an editable install
writes them at the first import, unless ``PYTHONDONTWRITEBYTECODE`` is set, as it is on some
machines (this one included). Then each orsync process would compile its own modules from source
again (30-40 ms of a start-up), while the packages it is compared with (openreview-py,
SQLAlchemy) were compiled at install: the comparison would charge orsync for the machine.
"""

from __future__ import annotations

import compileall
from pathlib import Path

import orsync


def ensure_bytecode() -> None:
    compileall.compile_dir(Path(orsync.__file__).parent, quiet=1)
