"""JSON from OpenReview read exactly, the one way every page is parsed.

orsync parses a page of notes with orjson, in a third of the standard library's time; orjson turns
an integer beyond 64 bits into a float, so a page that may hold a number of 19 digits or more goes
through the standard library (exact), as does whatever orjson refuses (NaN, lone surrogates,
another encoding). The transport parses every answer here, and a first pull's row builder
(``mirror/child.py``) parses the same bytes here again, so both see the same notes.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

import orjson

# Every ASCII digit as "0", anything else as ".": a run of 19 digits is then a plain substring,
# which bytes.find locates at memory speed (a regular expression takes ten times as long).
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(i) in "0123456789" else ord(".") for i in range(256))
_RUN = b"0" * 19


def has_long_number(text: bytes | bytearray) -> bool:
    """Whether a JSON text may hold a number of 19 digits or more: a digit run right after
    ``:``, ``,`` or ``[`` (and a minus sign, and blanks). A run inside a string that looks so
    only sends the page the slower, exact way; most runs (a hash in a PDF path) do not."""
    mapped = text.translate(_DIGITS_AS_ZEROS)
    start = mapped.find(_RUN)
    while start != -1:
        at = start - 1
        if at >= 0 and text[at] == ord("-"):
            at -= 1
        while at >= 0 and text[at] in b" \t\r\n":
            at -= 1
        if at >= 0 and text[at] in b":,[":
            return True
        end = start + len(_RUN)
        while end < len(mapped) and mapped[end] == ord("0"):
            end += 1
        start = mapped.find(_RUN, end)
    return False


def loads(text: bytes | bytearray) -> Any:
    """The JSON value of ``text``; ``ValueError`` when it is not JSON."""
    if not has_long_number(text):
        with contextlib.suppress(orjson.JSONDecodeError):
            return orjson.loads(text)
    return json.loads(text)
