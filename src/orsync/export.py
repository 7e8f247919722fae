"""``orsync export``: papers, submissions or reviews from the store as JSON, CSV or YAML.

The dump often goes to a terminal or a pager, so no control or bidi character from a title
reaches it raw: JSON and YAML escape them (``\\u001b``, ``\\u202e``: the same text to any
reader), CSV, which has no escapes, drops them as the website's papers.csv does.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from typing import Any

import yaml

from orsync.config import Config
from orsync.store.binding import read_for
from orsync.store.queries import export_rows
from orsync.terminal import BIDI_CONTROLS, json_text
from orsync.text import clean_text, iso_text, link_cell, neutralise_cell

FORMATS = ("json", "csv", "yaml")

# Columns written exactly in the CSV: identifiers, links and times are not free text, and a
# guarded one ("'-k9xQ2Lm_A") names no note. Numbers are never guarded either.
_ID_COLUMNS = frozenset(
    {"forum_id", "id", "forum", "signature", "authorids", "session_id", "replyto", "invitation"}
)
_LINK_COLUMNS = frozenset({"pdf_url", "forum_url"})
_TIME_SUFFIXES = ("_start", "_end", "date", "_at")


class _QuotedDumper(yaml.SafeDumper):
    """Every string double-quoted, so that every character of it can be written as an escape."""


def _quoted_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotedDumper.add_representer(str, _quoted_str)
# PyYAML escapes C0 and C1 in double quotes but writes these raw as "printable".
_YAML_RAW = re.compile(f"[{BIDI_CONTROLS}]")


# Times the store keeps as OpenReview's epoch milliseconds; exported as ISO 8601 in UTC.
_MS_TIMES = ("cdate", "tmdate")


def rows(config: Config, what: str) -> list[dict[str, Any]]:
    with read_for(config) as store, store.connect() as conn:
        found = export_rows(conn, what)
    for row in found:
        for key in _MS_TIMES:
            if isinstance(row.get(key), int):
                row[key] = iso_text(datetime.fromtimestamp(row[key] / 1000, UTC))
    return found


def render(data: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json_text(data) + "\n"
    if fmt == "yaml":
        text = yaml.dump(data, Dumper=_QuotedDumper, allow_unicode=True, sort_keys=False)
        return _YAML_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    buffer = io.StringIO()
    columns = list(data[0]) if data else []
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in data:
        writer.writerow([_csv_value(c, row.get(c)) for c in columns])
    return buffer.getvalue()


def _csv_value(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list):
        value = "|".join(str(v) for v in value)
    cell = clean_text(value)
    if column in _ID_COLUMNS or column.endswith(_TIME_SUFFIXES):
        return cell
    if column in _LINK_COLUMNS:
        return link_cell(cell)
    return neutralise_cell(cell)


def export(config: Config, what: str, fmt: str) -> str:
    return render(rows(config, what), fmt)
