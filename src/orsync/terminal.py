"""Terminal-safe text: what orsync prints for people carries no control sequence from the venue.

Titles, decisions, error messages and anything else that comes from OpenReview or the store are
written by authors, and an author may put an ESC sequence (clear the screen, a hidden OSC 8 link,
a forged prompt), a carriage return that overwrites the line, or a bidi override (U+202E) that
reverses what the chair reads into a title. Whether stdout is a terminal or a pipe (a pipe often
ends in ``less -R`` or another terminal), such characters are replaced by visible escapes in the
style of Python's ``repr``: ESC becomes ``\\x1b``, U+202E becomes ``\\u202e``, a newline ``\\n``.

Two layers:

- :func:`safe` is the one function every piece of store or venue text goes through before it is
  printed; it also keeps one line one line (newlines become ``\\n``).
- :func:`console` builds the Rich consoles of the CLI: markup and emoji codes are never
  interpreted (a title ``[/] x`` or ``[link=…]`` is text, shown as written), and every string
  Rich renders is passed through :func:`safe` (keeping newlines), a backstop for text that was
  not routed through it.

:func:`json_text` is for ``--json`` output: data stays data, but C1 controls and bidi controls,
which ``json.dumps(ensure_ascii=False)`` leaves raw, are written as ``\\uXXXX`` escapes, which
every JSON reader decodes back to the same string.
"""

from __future__ import annotations

import json
import re
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from orsync.text import BIDI_CONTROLS

__all__ = ["BIDI_CONTROLS", "console", "json_text", "safe"]

# C0 controls but tab (newline handled apart), DEL, C1 controls, bidi controls.
_UNSAFE_KEEP_NL = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
_UNSAFE = re.compile(f"[\x00-\x08\x0a-\x1f\x7f-\x9f{BIDI_CONTROLS}]")
# What json.dumps(ensure_ascii=False) leaves raw: DEL, C1 and the bidi controls (it escapes C0).
_JSON_RAW = re.compile(f"[\x7f-\x9f{BIDI_CONTROLS}\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe(value: object, *, newlines: bool = False) -> str:
    """``value`` as text fit for a terminal: control and bidi characters made visible.

    Newlines become ``\\n`` unless ``newlines`` (a block of text, not a line or a table cell).
    Tabs stay. ``None`` is the empty string.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return (_UNSAFE_KEEP_NL if newlines else _UNSAFE).sub(_escape, text)


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON for a terminal or a pipe: readable Unicode, no raw control character.

    These characters can only occur inside JSON strings, where ``\\uXXXX`` means the same.
    """
    text = json.dumps(data, ensure_ascii=False, indent=indent, default=str)
    return _JSON_RAW.sub(_json_escape, text)


class SafeConsole(Console):
    """A Rich console that never interprets markup or emoji codes and shows controls as escapes."""

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(safe(text, newlines=True), **kwargs)


def console(*, stderr: bool = False, file: TextIO | None = None, **kwargs: Any) -> Console:
    """The CLI's consoles: no markup, no emoji, no highlighting, controls made visible."""
    kwargs.setdefault("highlight", False)
    return SafeConsole(stderr=stderr, file=file, markup=False, emoji=False, **kwargs)
