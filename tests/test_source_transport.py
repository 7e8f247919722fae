"""The pure parts of the transport: rate-limit headers, buckets, and which JSON pages need the
exact (slower) parser. The rest of the transport is tested against the emulator."""

from __future__ import annotations

import json

import orjson
import pytest

from orsync.jsonio import has_long_number
from orsync.source.transport import bucket_of, header_int, quota_headers

NOW = 1_700_000_000.0


def test_current_rate_limit_headers_give_the_reset_as_a_delay() -> None:
    headers = {"ratelimit-remaining": "7", "ratelimit-limit": "60", "ratelimit-reset": "30"}
    assert quota_headers(headers, NOW) == (7, 60, NOW + 30)


def test_older_rate_limit_headers_give_the_reset_as_a_moment() -> None:
    at = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 90)}
    assert quota_headers(at, NOW) == (0, None, NOW + 90)
    # A small number cannot be a moment: it is a delay.
    delay = {"x-ratelimit-remaining": "2", "x-ratelimit-limit": "10", "x-ratelimit-reset": "45"}
    assert quota_headers(delay, NOW) == (2, 10, NOW + 45)


def test_the_current_headers_win_and_no_headers_mean_no_quota() -> None:
    both = {"ratelimit-remaining": "5", "x-ratelimit-remaining": "9"}
    assert quota_headers(both, NOW) == (5, None, None)
    assert quota_headers({}, NOW) is None
    assert quota_headers({"ratelimit-remaining": "many"}, NOW) is None


def test_header_numbers() -> None:
    assert header_int("12") == 12
    assert header_int("12.7") == 12
    assert header_int(None) is None
    assert header_int("soon") is None


@pytest.mark.parametrize(
    ("path", "bucket"),
    [
        ("/notes", "notes"),
        ("/notes/edits", "notes"),
        ("/groups", "groups"),
        ("/attachment", "attachments"),
        ("/pdf", "attachments"),
        ("/login", "login"),
        ("/", "other"),
    ],
)
def test_buckets_as_the_server_counts_them(path: str, bucket: str) -> None:
    assert bucket_of(path) == bucket


@pytest.mark.parametrize(
    "text",
    [
        b'{"tmdate": 12345678901234567890}',
        b'{"values": [1, -12345678901234567890]}',
        b'{"a": 1,\n  12345678901234567890]',
    ],
)
def test_a_number_of_19_digits_or_more_goes_the_exact_way(text: bytes) -> None:
    assert has_long_number(text)


def test_exactly_what_orjson_would_round() -> None:
    page = b'{"notes": [{"number": 18446744073709551617}]}'
    assert has_long_number(page)
    # The reason for the check: orjson refuses or rounds what the standard library keeps.
    exact = json.loads(page)["notes"][0]["number"]
    try:
        fast = orjson.loads(page)["notes"][0]["number"]
    except orjson.JSONDecodeError:
        fast = None
    assert fast != exact


@pytest.mark.parametrize(
    "text",
    [
        b'{"tmdate": 1700000000000, "number": 42}',
        b'{"pdf": "/pdf/1234567890123456789012345678901234567890.pdf"}',
        b'{"id": "abc1234567890123456789"}',
        b"",
    ],
)
def test_ordinary_pages_and_digit_runs_inside_strings_go_the_fast_way(text: bytes) -> None:
    assert not has_long_number(text)
