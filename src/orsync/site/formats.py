"""The paper files (docs/site-files.md): papers.json, papers.yml, papers.csv and posters.json.

Deterministic bytes from the records; only a record's fields are written.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orsync.schedule import Session
from orsync.site.records import PaperRecord
from orsync.text import LIST_SEPARATOR, clean_text, link_cell, neutralise_cell

if TYPE_CHECKING:
    import yaml

__all__ = [
    "CSV_HEADER",
    "CSV_TALK",
    "csv_bytes",
    "json_bytes",
    "posters",
    "site_order",
    "yaml_bytes",
]

CSV_HEADER = (
    "UID", "title", "authors", "abstract", "keywords", "sessions", "pdf_url", "presentation", "board"
)  # fmt: skip
# After every other column (the hosted files' too), so that no column a reader counts on moves.
CSV_TALK = ("talk_start", "talk_end")


def site_order(records: Sequence[PaperRecord]) -> list[PaperRecord]:
    """The order of the paper files: by number (papers without one last), then id."""
    return sorted(records, key=lambda r: (r.number is None, r.number or 0, r.id))


# Characters escaped in the JSON files, where they can only occur inside strings and where
# "\uXXXX" means the same to every JSON parser. U+2028/2029 end a JavaScript string literal in
# pre-ES2019 engines; "<", ">" and "&" let a page inline papers.json in a <script> element (a
# title "</script><script>..." would otherwise close it, "<!--" would change how it is parsed).
_JSON_ESCAPES = {ch: f"\\u{ord(ch):04x}" for ch in ("<", ">", "&", "\u2028", "\u2029")}
_JSON_ESCAPED = re.compile("[<>&\u2028\u2029]")


def json_bytes(data: object) -> bytes:
    text = json.dumps(data, ensure_ascii=False, indent=2)
    text = _JSON_ESCAPED.sub(lambda m: _JSON_ESCAPES[m.group()], text)
    return (text + "\n").encode("utf-8")


@functools.cache
def _quoted_dumper() -> type[yaml.SafeDumper]:
    """A dumper that double-quotes every string: YAML 1.1 and 1.2 readers (Ruby for Jekyll, Go
    for Hugo) then agree, whatever the text ("no", "0o17", "2024-05-11", leading "@", line
    separators). PyYAML loads here, when a push writes papers.yml, not for every reader of the
    day."""
    import yaml

    class QuotedDumper(yaml.SafeDumper):
        pass

    def quoted_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')

    QuotedDumper.add_representer(str, quoted_str)
    return QuotedDumper


def yaml_bytes(data: object) -> bytes:
    import yaml

    text = yaml.dump(
        data,
        Dumper=_quoted_dumper(),
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=100,
        line_break="\n",
    )
    return text.encode("utf-8")


def csv_bytes(records: Sequence[PaperRecord]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    hosted = sorted({name for r in records for name, _ in r.files or ()})
    writer.writerow((*CSV_HEADER, *(f"file_{name}" for name in hosted), *CSV_TALK))
    for r in records:
        files = r.files_dict()
        # Only free text is guarded: the id, the board, the links and the times are written
        # exactly, or a reader joining on UID finds no paper.
        writer.writerow(
            [
                r.id,
                neutralise_cell(r.title),
                neutralise_cell(LIST_SEPARATOR.join(r.authors)),
                neutralise_cell(r.abstract or ""),
                neutralise_cell(LIST_SEPARATOR.join(r.keywords)),
                neutralise_cell(r.session.name) if r.session else "",
                link_cell(r.pdf_url or ""),
                neutralise_cell(r.presentation or ""),
                "" if r.board is None else str(r.board),
                *(link_cell(files.get(name) or "") for name in hosted),
                r.talk.start if r.talk else "",
                r.talk.end if r.talk else "",
            ]
        )
    return out.getvalue().encode("utf-8")


def posters(records: Sequence[PaperRecord], sessions: Sequence[Session]) -> list[Any]:
    """posters.json: each session (configured, or still holding papers) with its papers by
    board, sessions in time order."""
    by_id: dict[str, dict[str, Any]] = {}
    for s in sessions:
        by_id[s.id] = {
            "id": clean_text(s.id), "name": clean_text(s.name),
            "start": s.start.isoformat(), "end": s.end.isoformat(),
        }  # fmt: skip
    for r in records:
        if r.session is not None and r.session.id not in by_id:
            by_id[r.session.id] = r.session.as_dict()  # a session no longer configured
    out = []
    for sid, head in by_id.items():
        papers = []
        for r in records:
            if r.session is None or r.session.id != sid:
                continue
            entry: dict[str, Any] = {
                "board": r.board, "id": r.id, "number": r.number, "title": r.title,
                "authors": list(r.authors),
                "talk": None if r.talk is None else r.talk.as_dict(),
            }  # fmt: skip
            if r.files is not None:
                entry["files"] = r.files_dict()
            papers.append(entry)
        papers.sort(key=lambda p: (p["board"] is None, p["board"] or 0, p["number"] or 0, p["id"]))
        out.append({**head, "papers": papers})
    out.sort(key=lambda entry: (_sort_time(entry["start"]), entry["id"]))
    return out


def _sort_time(value: str | None) -> tuple[int, float, str]:
    try:
        return (0, datetime.fromisoformat(value or "").timestamp(), "")
    except (ValueError, TypeError):
        return (1, 0.0, value or "")  # unparsable or naive times go last, by text
