"""A note as the store keeps it: its typed row, its canonical JSON and digest, what changed.

Pure functions of the raw note and the venue's settings (no store, no HTTP), on the full pull's
hot path: each is written for speed first (one encoder built once, flags set only where a note has
the field).
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import orjson

from orsync.venue import (
    VenueSettings,
    as_list,
    author_ids_from,
    content_value,
    note_is_public,
    parse_score,
    public_content_fields,
)

RawNote = dict[str, Any]

# Top-level keys whose change is worth telling a chair about; timestamps change on every edit.
_TRACKED_KEYS = (
    "readers",
    "nonreaders",
    "writers",
    "signatures",
    "invitations",
    "replyto",
    "ddate",
)
# Typed columns the read views publish, and the flag that says everyone may read each.
PUBLIC_FLAGS = {
    "title": "title_public",
    "authors": "authors_public",
    "authorids": "authorids_public",
    "keywords": "keywords_public",
    "abstract": "abstract_public",
    "tldr": "tldr_public",
    "pdf_url": "pdf_public",
}
_NO_FLAGS = {flag: False for flag in PUBLIC_FLAGS.values()}
_TIMESTAMPS = ("cdate", "tcdate", "mdate", "tmdate", "odate", "pdate", "ddate")


def web_base(baseurl: str) -> str:
    """The site that serves forums and PDFs for an API base URL."""
    for api in ("https://api2.openreview.net", "https://api.openreview.net"):
        if baseurl.rstrip("/") == api:
            return "https://openreview.net"
    return baseurl.rstrip("/")


# ``json.dumps`` with options builds a new encoder on every call; these are built once.
_TEXT = json.JSONEncoder(ensure_ascii=False)
_CANONICAL = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _json(value: Any) -> str | None:
    return None if value is None else _TEXT.encode(value)


def _compact_json(value: Any) -> str | None:
    """JSON for the columns nobody reads as text (``readers``): orjson, else the standard
    library with the same output, for what orjson refuses."""
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return _COMPACT.encode(value)


def strip_details(note: RawNote) -> RawNote:
    return {k: v for k, v in note.items() if k != "details"} if "details" in note else note


def canonical_json(note: RawNote) -> str:
    """A note's one serialisation: keys sorted, compact, non-ASCII as itself, NUL as ``\\u0000``.

    The ``raw`` column stores it and the digest hashes it, so each note is encoded once. orjson
    writes what ``json.dumps(sort_keys=True, ensure_ascii=False, separators=(",", ":"))`` writes
    (the digest of stores made before it is unchanged); what orjson refuses (integers beyond 64
    bits, lone surrogates) goes through the standard library.
    """
    try:
        return orjson.dumps(note, option=orjson.OPT_SORT_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return _CANONICAL.encode(note)


def digest_of(canonical: str) -> str:
    return digest_bytes(canonical).hex()


def digest_bytes(canonical: str) -> bytes:
    # What the store's index holds in memory: 16 bytes, where the hex text takes 32.
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).digest()


def digest(note: RawNote) -> str:
    return digest_of(canonical_json(note))


def no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; the raw JSON keeps it (escaped) for whoever needs it.
    return value.replace("\x00", "") if "\x00" in value else value


def _first(value: Any) -> str | None:
    if isinstance(value, list) and value:
        return str(value[0])
    return None


def _score(value: Any) -> tuple[float | None, str | None]:
    """A score field's value as a number and as the form's text."""
    if value is None:
        return None, None
    return parse_score(value), str(value)


def _ms_to_datetime(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


# Every column ``note_row`` writes, at its value for a note that fills none of them: each row
# starts as a copy of this (one C-level copy instead of fifty stores).
_BLANK_ROW: dict[str, Any] = {
    "id": None,
    "forum": None,
    "replyto": None,
    "kind": None,
    "invitation": None,
    "number": None,
    "signature": None,
    "readers": None,
    "raw": None,
    "digest": None,
    "deleted": False,
    "deleted_at": None,
    "title": None,
    "authors": None,
    "authorids": None,
    "keywords": None,
    "abstract": None,
    "tldr": None,
    "pdf_url": None,
    "forum_url": None,
    "venue": None,
    "venueid": None,
    "decision": None,
    "rating": None,
    "rating_text": None,
    "confidence": None,
    "confidence_text": None,
    "public": False,
    "public_fields": "[]",
    **dict.fromkeys(_TIMESTAMPS),
    **_NO_FLAGS,
}


@functools.lru_cache(maxsize=1024)
def _field_list_json(fields: frozenset[str]) -> str:
    """A set of field names as the sorted JSON list the store keeps: notes of one kind share
    a few such sets, so each is encoded once (bounded, for a venue of odd forms)."""
    return _TEXT.encode(sorted(fields))


def note_row(
    note: RawNote,
    kind: str,
    settings: VenueSettings,
    site: str,
    canonical: str | None = None,
    digest: str | None = None,
) -> dict[str, Any]:
    """The typed columns of one note; the raw JSON goes along verbatim (``canonical_json``,
    and its ``digest_of`` when the caller has them).

    On a first pull's hot path (a hundred thousand notes at ICLR scale): the note's content
    is looked up once, and a field read as ``content_value`` reads it."""
    if canonical is None:
        canonical = canonical_json(strip_details(note))
    get = note.get
    note_id = str(note["id"])
    content = get("content")
    if type(content) is dict:
        fields = content.get

        def value(name: str) -> Any:
            entry = fields(name)
            if type(entry) is dict:
                return entry.get("value")
            return content_value(note, name)  # a Mapping that is not a dict, or None

    else:

        def value(name: str) -> Any:
            return content_value(note, name)

    ddate = get("ddate")
    number = get("number")
    readers = get("readers")
    invitations = get("invitations")
    signatures = get("signatures")
    row = _BLANK_ROW.copy()
    row["id"] = note_id
    row["forum"] = str(get("forum") or note_id)
    row["replyto"] = get("replyto")
    row["kind"] = kind
    row["invitation"] = (
        str(invitations[0]) if type(invitations) is list and invitations else _first(invitations)
    )
    row["number"] = number if isinstance(number, int) else None
    row["signature"] = (
        str(signatures[0]) if type(signatures) is list and signatures else _first(signatures)
    )
    row["readers"] = _compact_json(readers)
    row["raw"] = canonical
    row["digest"] = digest if digest is not None else digest_of(canonical)
    if ddate:
        row["deleted"] = True
        row["deleted_at"] = _ms_to_datetime(ddate)
    for key in _TIMESTAMPS:
        stamp = get(key)
        if stamp is not None:
            row[key] = (
                stamp
                if type(stamp) is int
                else int(stamp)
                if isinstance(stamp, int | float)
                else None
            )
    public = note_is_public(note)
    row["public"] = public
    public_fields = public_content_fields(note, public) if public else frozenset()
    if public_fields:
        row["public_fields"] = _field_list_json(public_fields)
    title = value("title")
    row["title"] = str(title) if title is not None else None
    if kind == "submission":
        pdf = value("pdf")
        tldr_field = "TLDR" if value("TLDR") is not None else "tldr"
        tldr = value(tldr_field)
        abstract = value("abstract")
        ids, ids_field = author_ids_from(note)
        venue = value("venue")
        venueid = value("venueid")
        row["authors"] = _json(as_list(value("authors")))
        row["authorids"] = _json(ids)
        row["keywords"] = _json(as_list(value("keywords")))
        row["abstract"] = str(abstract) if abstract is not None else None
        row["tldr"] = str(tldr) if tldr is not None else None
        row["pdf_url"] = f"{site}{pdf}" if isinstance(pdf, str) and pdf.startswith("/") else None
        row["forum_url"] = f"{site}/forum?id={note_id}"
        row["venue"] = str(venue) if venue is not None else None
        row["venueid"] = str(venueid) if venueid is not None else None
        if public_fields:
            # The content field each typed column came from, to tell whether everyone may
            # read it; a column without a source stays at its flag's False (``_NO_FLAGS``).
            for column, source in (
                ("title", "title"),
                ("authors", "authors"),
                ("authorids", ids_field),
                ("keywords", "keywords"),
                ("abstract", "abstract"),
                ("tldr", tldr_field),
                ("pdf_url", "pdf"),
            ):
                row[PUBLIC_FLAGS[column]] = (
                    row[column] is not None and source is not None and source in public_fields
                )
    else:
        if kind == "review":
            row["rating"], row["rating_text"] = _score(value(settings.review_rating))
            row["confidence"], row["confidence_text"] = _score(value(settings.review_confidence))
        elif kind == "meta_review":
            row["confidence"], row["confidence_text"] = _score(value("confidence"))
        elif kind == "decision":
            decision = value(settings.decision_field_name)
            row["decision"] = str(decision) if decision is not None else None
        if public_fields:
            row["title_public"] = row["title"] is not None and "title" in public_fields
    # A NUL anywhere in the note shows in its JSON as an escape (or, for a key or a string
    # that the JSON writes with a backslash, as a look-alike): only then are the columns read.
    if "\\u0000" in canonical:
        for key, column_value in row.items():
            if key != "raw" and isinstance(column_value, str):
                row[key] = no_nul(column_value)
    return row


def changed_fields(old_raw: RawNote, new_raw: RawNote) -> list[str]:
    """Which content fields (by name) and tracked note keys differ between two versions."""
    old_content = old_raw.get("content") or {}
    new_content = new_raw.get("content") or {}
    fields = {
        key
        for key in set(old_content) | set(new_content)
        if old_content.get(key) != new_content.get(key)
    }
    fields.update(key for key in _TRACKED_KEYS if old_raw.get(key) != new_raw.get(key))
    return sorted(fields)
