"""The rules for text that leaves orsync for a reader: cleaning, links, CSV cells, times.

Every website file, the calendar, the page and the config's links go through these, so a title,
a forum URL or a speaker's page is judged by one rule wherever it is shown.
"""

from __future__ import annotations

import json
import re
import unicodedata
import urllib.parse
from collections.abc import Sequence
from datetime import datetime

__all__ = [
    "BIDI_CONTROLS",
    "LIST_SEPARATOR",
    "clean_list",
    "clean_optional",
    "clean_text",
    "iso_local",
    "iso_text",
    "line_problem",
    "link_cell",
    "link_problem",
    "name_key",
    "neutralise_cell",
    "web_link",
]

# The embedding, override and isolate controls (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): they
# reorder what is displayed ("Trojan Source"). The marks (LRM, RLM, ALM) only nudge neutral
# characters and are legitimate in right-to-left names, so they stay.
BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069"
# "|" joins list items in the CSV (Mini-Conf's convention).
LIST_SEPARATOR = "|"

# C0 controls other than tab and newline, DEL and C1 controls: NUL truncates strings in C-based
# readers, YAML 1.1 forbids them in a stream (Ruby/Go readers used by Jekyll and Hugo refuse the
# file), and no title or abstract legitimately contains them; they come from copy-paste of PDFs.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidi controls are removed, not replaced: an RLO in a title reverses the text shown after it,
# on the page and beyond the title when the site inlines it without <bdi>; no title or abstract
# needs one, and a removed one leaves the text readable in its logical order, where a
# placeholder would show junk.
_BIDI = re.compile(f"[{BIDI_CONTROLS}]")
# Lone surrogates cannot be encoded as UTF-8 at all.
_SURROGATES = re.compile("[\ud800-\udfff]")
# Anything that must never be inside a link: whitespace (a newline splits a calendar line and
# ends an HTML attribute's meaning), every control and the bidi controls.
_NOT_IN_LINK = re.compile(f"[\\s\x00-\x1f\x7f-\x9f{BIDI_CONTROLS}]")


_WHITESPACE = re.compile(r"\s+")


# What pages and listings say of a paper whose authors are not public yet (double-blind until
# the camera-ready release): a line that says so, never an empty one. The data files keep the
# list empty (absence, docs/site-files.md); nothing here is ever written into them.
AUTHORS_HIDDEN = "authors hidden until the release"


def authors_text(authors: Sequence[str] | None) -> str:
    """The authors as one line of text, or ``AUTHORS_HIDDEN`` when there are none to show."""
    return ", ".join(authors) if authors else AUTHORS_HIDDEN


def name_key(name: str) -> str:
    """A person's name compared as the same person: accents dropped, compatibility forms
    folded, case-folded, whitespace collapsed ("José  García" and "jose garcia" are one)."""
    # NFKD splits "é" into "e" + combining accent so the accent can be dropped; NFKC afterwards
    # folds compatibility forms (full-width letters, ligatures) the same way for every spelling.
    decomposed = unicodedata.normalize("NFKD", name)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WHITESPACE.sub(" ", unicodedata.normalize("NFKC", stripped).casefold()).strip()


def clean_text(text: object) -> str:
    """``text`` fit for every published format: line breaks kept (as LF), controls removed."""
    if text is None:
        return ""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")  # keep line breaks, not CRs
    return _SURROGATES.sub("\ufffd", _BIDI.sub("", _CONTROLS.sub("", s)))


def clean_optional(text: object) -> str | None:
    return None if text is None else clean_text(text)


def clean_list(value: object) -> list[str]:
    """A list field cleaned item by item; JSON text (as a view holds it) is decoded first."""
    if value is None:
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list | tuple):
        value = [value]
    # Inside an item the CSV's separator would split it, so it becomes a broken bar in every
    # format, keeping all formats equal.
    return [clean_text(v).replace(LIST_SEPARATOR, "¦") for v in value if v is not None]


# What may not be in one line of text the chairs configure: every control (tab, line breaks
# included), the Unicode line and paragraph separators, and the bidi controls.
_NOT_IN_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f\u2028\u2029{BIDI_CONTROLS}]")


def line_problem(value: str) -> str | None:
    """Why ``value`` may not be one line of published text (a name, a title), None when it may."""
    if _NOT_IN_LINE.search(value):
        return "must be one line, without line breaks or control characters"
    return None


def link_problem(value: str) -> str | None:
    """Why ``value`` may not become a link on the page or in the calendar, None when it may.

    http(s) with a host only: a ``javascript:`` or ``file:`` link would run or leak something on
    a reader's machine, and a space or control character would break the line it is written on.
    """
    text = value.strip()
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// link with a host"
    if _NOT_IN_LINK.search(text):
        return "must not contain spaces or control characters"
    return None


def web_link(value: object) -> str | None:
    """``value`` as a link a reader may follow (see ``link_problem``), else None."""
    if not isinstance(value, str):
        return None
    try:
        return value.strip() if link_problem(value) is None else None
    except ValueError:  # urlsplit refuses some malformed hosts ("http://[x")
        return None


def neutralise_cell(cell: str) -> str:
    """A free-text CSV cell a spreadsheet shows as text (OWASP's CSV injection advice: a
    leading ' on a cell it would evaluate as a formula).

    Only for free text: an identifier, a number, a URL or a time is written exactly, or the
    reader's join breaks (an OpenReview id may begin with "-": "'-k9xQ2Lm_A" is no paper, and
    a site generator builds a page named after it).
    """
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def link_cell(cell: str) -> str:
    """A link's CSV cell: exact when it is a web link (which cannot look like a formula) or a
    path; anything else in a link column is guarded as text."""
    if web_link(cell) is not None or cell.startswith(("/", "files/")) or not cell:
        return cell
    return neutralise_cell(cell)


def iso_text(value: object) -> str | None:
    """A time as ISO 8601 text: a datetime or text a datetime can be read from; other text is
    kept (cleaned) as it is."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    text = clean_text(value)
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        return text


def iso_local(epoch_s: float | None) -> str | None:
    """A Unix time as local ISO 8601 text to the second (what ``--json`` reports show)."""
    if epoch_s is None:
        return None
    return datetime.fromtimestamp(epoch_s).astimezone().isoformat(timespec="seconds")
