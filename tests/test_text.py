"""The rules for published text (``orsync.text``): cleaning, the one link rule, CSV cells."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from orsync.config import ProgramConfig, ProgramSlotConfig
from orsync.text import (
    clean_list,
    clean_text,
    iso_text,
    line_problem,
    link_problem,
    neutralise_cell,
    web_link,
)

NEWLINE_URL = "https://openreview.net/forum?id=abc\nX-EVIL: injected"


def test_clean_text_keeps_line_breaks_and_drops_controls_bidi_and_surrogates() -> None:
    assert clean_text("a\r\nb\rc") == "a\nb\nc"
    assert clean_text("t\tab\x00\x07\x1b\x7f\x85x") == "t\tabx"
    assert clean_text("a\u202eb\u2066c\u2069") == "abc"
    assert clean_text("\ud800x") == "\ufffdx"
    assert clean_text(None) == "" and clean_text(3) == "3"
    assert clean_text("Ünïcödé עברית \u200f 日本語") == "Ünïcödé עברית \u200f 日本語"


def test_clean_list_decodes_json_text_and_keeps_the_csv_separator_out_of_items() -> None:
    assert clean_list('["A|B", "C"]') == ["A¦B", "C"]
    assert clean_list(["x\x00", None, "y"]) == ["x", "y"]
    assert clean_list("not json") == ["not json"]
    assert clean_list(None) == []


@pytest.mark.parametrize(
    "value",
    [
        NEWLINE_URL,
        "https://example.org/a b",
        "https://example.org/\ta",
        "https://example.org/\x00",
        "https://example.org/\u202eevil",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https://",
        "/pdf?id=relative",
        "ftp://example.org/",
    ],
)
def test_links_that_must_not_become_links(value: str) -> None:
    assert web_link(value) is None
    assert link_problem(value) is not None


def test_good_links_pass_trimmed() -> None:
    assert (
        web_link(" https://openreview.net/forum?id=abc ") == "https://openreview.net/forum?id=abc"
    )
    assert web_link("http://127.0.0.1:8000/x") == "http://127.0.0.1:8000/x"
    assert web_link(None) is None and web_link(3) is None


def test_config_links_follow_the_same_rule() -> None:
    with pytest.raises(ValidationError, match="spaces or control characters"):
        ProgramConfig(stream_url=NEWLINE_URL)
    with pytest.raises(ValidationError, match="with a host"):
        ProgramConfig(stream_url="javascript:alert(1)")
    slot = ProgramSlotConfig(
        start=datetime(2024, 5, 11, 9, tzinfo=UTC),
        end=datetime(2024, 5, 11, 10, tzinfo=UTC),
        kind="invited",
        title="Keynote",
        url=" https://example.org/k ",
    )
    assert slot.url == "https://example.org/k"


def test_csv_cells_that_spreadsheets_would_run_are_quoted() -> None:
    for cell in ("=1+1", "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise_cell(cell) == "'" + cell
    assert neutralise_cell("plain") == "plain" and neutralise_cell("") == ""


def test_iso_text_normalises_times_and_keeps_other_text() -> None:
    assert iso_text("2024-05-11T10:10:00+02:00") == "2024-05-11T10:10:00+02:00"
    assert iso_text(datetime(2024, 5, 11, 8, 10, tzinfo=UTC)) == "2024-05-11T08:10:00+00:00"
    assert iso_text("2024-05-11 10:10") == "2024-05-11T10:10:00"
    assert iso_text("soon\x00") == "soon" and iso_text(None) is None


@pytest.mark.parametrize(
    "value", ["a\nb", "a\rb", "a\tb", "a\x00b", "a\x1bb", "a\x85b", "a\u2028b", "a\u202eb"]
)
def test_one_line_text_refuses_breaks_and_controls(value: str) -> None:
    assert line_problem(value) is not None


def test_one_line_text_keeps_names_as_written() -> None:
    for value in ("BGPT @ ICLR 2024", "Hörsaal 1 – 日本語 🎉", "  spaced  ", "O'Brien \u200f"):
        assert line_problem(value) is None
