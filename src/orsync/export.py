"""``orsync export``: papers, submissions or reviews from the store as JSON, CSV or YAML."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import yaml
from sqlalchemy import select, text

from orsync.config import Config
from orsync.mirror import NOTE
from orsync.ops import open_for_reading
from orsync.website import neutralise_cell

WHATS = ("papers", "submissions", "reviews")
FORMATS = ("json", "csv", "yaml")
_JSON_COLUMNS = ("authors", "authorids", "keywords")
def rows(config: Config, what: str) -> list[dict[str, Any]]:
    store = open_for_reading(config)
    try:
        with store.connect() as conn:
            if what == "papers":
                result = conn.execute(
                    text("SELECT * FROM accepted_papers ORDER BY number, forum_id")
                )
            elif what == "submissions":
                result = conn.execute(
                    text("SELECT * FROM submissions_overview ORDER BY number, forum_id")
                )
            else:
                result = conn.execute(
                    select(
                        NOTE.c.id,
                        NOTE.c.forum,
                        NOTE.c.signature,
                        NOTE.c.rating,
                        NOTE.c.rating_text,
                        NOTE.c.confidence,
                        NOTE.c.confidence_text,
                        NOTE.c.title,
                        NOTE.c.tmdate,
                    )
                    .where(NOTE.c.kind == "review", ~NOTE.c.deleted)
                    .order_by(NOTE.c.forum, NOTE.c.id)
                )
            out = [dict(r._mapping) for r in result]
    finally:
        store.dispose()
    for row in out:
        for key in _JSON_COLUMNS:
            if isinstance(row.get(key), str):
                row[key] = json.loads(row[key])
        if "deleted" in row:
            row["deleted"] = bool(row["deleted"])
    return out


def render(data: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    buffer = io.StringIO()
    columns = list(data[0]) if data else []
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in data:
        writer.writerow([_csv_value(row.get(c)) for c in columns])
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = "|".join(str(v) for v in value)
    return neutralise_cell(str(value))


def export(config: Config, what: str, fmt: str) -> str:
    return render(rows(config, what), fmt)
