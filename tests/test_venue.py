"""What notes mean (venue.py) and how hostile or malformed ones are filed (mirror.py),
on a real SQLite store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orsync.mirror import changed_fields, note_row, web_base
from orsync.mirror.apply import Mirror
from orsync.store import open_store
from orsync.venue import VenueSettings, as_list, parse_score, presentation, well_formed

V = "ICLR.cc/2024/Workshop/BGPT"
SETTINGS = VenueSettings.from_group({"id": V, "content": {}})


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (6, 6.0),
        (7.5, 7.5),
        ("6: marginally above the acceptance threshold", 6.0),
        ("10", 10.0),
        (" 3: reject", 3.0),
        ("strong accept", None),
        (None, None),
        (True, None),
        ([6], None),
    ],
)
def test_scores_become_numbers(value: Any, number: float | None) -> None:
    assert parse_score(value) == number


def test_keywords_and_authors_as_lists() -> None:
    assert as_list("deep learning, theory ,, ") == ["deep learning", "theory"]
    assert as_list(["a", None, "b"]) == ["a", "b"]
    assert as_list([{"fullname": "Jane Doe", "username": "~Jane_Doe1"}, {"username": "~X1"}]) == [
        "Jane Doe",
        "~X1",
    ]
    assert as_list(None) is None  # absent stays absent


def test_group_settings_are_read_defensively() -> None:
    odd = VenueSettings.from_group(
        {
            "id": V,
            "content": {
                "decision_name": {"value": None},
                "review_name": "not a dict",
                "accept_decision_options": {"value": []},
            },
        }
    )
    assert odd.decision_name == "Decision" and odd.review_name == "Official_Review"
    assert odd.accept_decision_options is None
    assert odd.is_accepting("Accept (Oral)") and not odd.is_accepting("Reject")
    strict = VenueSettings.from_group(
        {"id": V, "content": {"accept_decision_options": {"value": ["Accept: poster"]}}}
    )
    assert strict.is_accepting("Accept: poster") and not strict.is_accepting("Accept (Oral)")


def test_status_comes_from_venueid_only() -> None:
    assert SETTINGS.status(V) == "accepted"
    assert SETTINGS.status(f"{V}/Withdrawn_Submission") == "withdrawn"
    # A decision not yet released (venueid unchanged) is never a status.
    assert SETTINGS.status(f"{V}/Submission") == "active"
    assert SETTINGS.status(None) == "active"
    assert (
        presentation("Accept (Oral)", None) == "oral"
        and presentation(None, "BGPT Poster") == "poster"
    )


def test_web_base() -> None:
    assert web_base("https://api2.openreview.net") == "https://openreview.net"
    assert web_base("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"


def test_changed_fields_names_content_keys_and_tracked_keys() -> None:
    old = {
        "content": {"title": {"value": "a"}, "abstract": {"value": "x"}},
        "readers": ["everyone"],
        "tmdate": 1,
    }
    new = {
        "content": {"title": {"value": "b"}, "TLDR": {"value": "t"}, "abstract": {"value": "x"}},
        "readers": [V],
        "tmdate": 2,
    }
    assert changed_fields(old, new) == ["TLDR", "readers", "title"]


MALFORMED: list[Any] = [
    None,
    42,
    "a string",
    [],
    {"no": "id"},
    {"id": 17},
    {"id": ""},
    {"id": "x" * 500},
    {"id": "AbCdEfGhIj", "content": ["not", "an", "object"]},
    {"id": "KlMnOpQrSt", "forum": 5},
]


def test_malformed_notes_are_skipped_and_counted_hostile_ones_kept(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    hostile = {
        "id": "Good_Id-01",
        "forum": "Good_Id-01",
        "number": "not a number",
        "invitations": "not a list",
        "tmdate": "yesterday",
        "content": {
            "title": {"value": "<img src=x onerror=alert(1)>\u2028\u0000"},
            "abstract": {"value": "=cmd|' /C calc'!A0" * 10_000},
            "authors": {"value": "Jane Doe, John Roe"},
            "keywords": {"value": 12},
            "venueid": {"value": V},
            "weird": {"value": {"nested": [1, 2, {"deep": True}]}},
        },
    }
    with store.begin() as conn:
        mirror = Mirror(conn, 1, SETTINGS, "https://openreview.net", now=datetime.now(UTC))
        mirror.load_index()
        mirror.apply([*MALFORMED, hostile])
        # A first pull's created records are written once its walk is stored.
        assert mirror.record_created() == 1
        assert mirror.counts.malformed == len(MALFORMED)
        assert mirror.counts.created == 1
    with store.connect() as conn:
        row = conn.exec_driver_sql(
            "SELECT title, abstract, authors, keywords, number, status, raw FROM note"
        ).one()
    store.dispose()
    assert row.title == "<img src=x onerror=alert(1)>\u2028"  # NUL dropped from typed columns
    assert json.loads(row.raw)["content"]["title"]["value"].endswith("\u0000")  # kept in the raw
    assert len(row.abstract) == 180_000
    assert json.loads(row.authors) == ["Jane Doe", "John Roe"]
    assert json.loads(row.keywords) == ["12"]
    assert row.number is None and row.status == "accepted"
    assert json.loads(row.raw)["content"]["weird"]["value"]["nested"][2] == {"deep": True}


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
# What is tested is that no input crashes note_row; on a loaded machine generating the nested
# inputs is slow, which says nothing about orsync.
@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_note_row_never_crashes_on_well_formed_notes(content: Any) -> None:
    note = {
        "id": "AbCdEfGhIj",
        "content": {
            "title": content,
            "rating": content,
            "authors": {"value": content},
            "keywords": {"value": content},
            "pdf": {"value": content},
        },
    }
    assert well_formed(note)
    for kind in ("submission", "review", "decision", "meta_review", "comment"):
        row = note_row(note, kind, SETTINGS, "https://openreview.net")
        json.loads(row["raw"])
