"""One public record per accepted paper (``site.records``): built once, cleaned once, frozen."""

from __future__ import annotations

import dataclasses
import json

import pytest

from orsync.site import FORMATS, PaperRecord, assemble, build_records, render
from orsync.site.formats import json_bytes
from site_helpers import P1, P2, paper, record, schedule

KEYS = [
    "id", "number", "title", "authors", "keywords", "abstract", "tldr", "pdf_url", "forum_url",
    "decision", "presentation", "talk", "session", "board",
]  # fmt: skip


def test_as_dict_is_the_papers_json_object_in_the_documented_order() -> None:
    r = record(3)
    assert list(r.as_dict()) == KEYS
    assert r.as_dict()["session"] == {
        "id": "P1",
        "name": "Poster session 1",
        "start": "2024-05-11T10:10:00+02:00",
        "end": "2024-05-11T11:00:00+02:00",
    }
    (published,) = json.loads(render([r], [P1], ["json"])["papers.json"])
    assert published == json.loads(json_bytes(r.as_dict()))


def test_confidential_columns_never_reach_the_record() -> None:
    r = record(1)
    assert "authorids" not in r.as_dict() and not hasattr(r, "authorids")
    assert "~Ada1" not in json.dumps(r.as_dict())


def test_text_is_cleaned_once_when_the_record_is_built() -> None:
    r = record(1, title="a\u202eb\x00c", authors=["X|Y", "Z\u2066"], keywords='["k|1"]')
    assert r.title == "abc"
    assert r.authors == ("X¦Y", "Z") and r.keywords == ("k¦1",)


def test_records_are_frozen() -> None:
    r = record(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.title = "changed"  # type: ignore[misc]


def test_hosted_files_are_in_the_object_only_when_the_site_hosts_files() -> None:
    assert "files" not in record(1).as_dict()
    hosted = record(1, {"supplementary_material": None, "pdf": "files/1.pdf"})
    assert list(hosted.as_dict())[-1] == "files"
    assert hosted.as_dict()["files"] == {"pdf": "files/1.pdf", "supplementary_material": None}
    assert list(hosted.as_dict()["files"]) == ["pdf", "supplementary_material"]


def test_a_session_the_store_does_not_describe_takes_the_configured_name_and_times() -> None:
    r = record(1, session_name=None, session_start=None, session_end=None)
    assert r.session is not None
    assert (r.session.name, r.session.start) == ("Poster session 1", P1.start.isoformat())
    unknown = record(2, session_id="P9", session_name=None, session_start=None, session_end=None)
    assert unknown.session is not None and unknown.session.as_dict() == {
        "id": "P9", "name": "P9", "start": None, "end": None,
    }  # fmt: skip
    assert record(3, session_id=None).session is None


def test_links_and_abstracts_as_the_day_shows_them() -> None:
    assert record(1).forum_link == "https://openreview.net/forum?id=forum1"
    assert record(1, forum_url="javascript:alert(1)").forum_link is None
    assert record(1, forum_url="https://openreview.net/forum?id=x\nEVIL").forum_link is None
    assert record(1, abstract="  \n").public_abstract is None
    assert record(1, abstract="  \n").as_dict()["abstract"] == "  \n"  # published as it is
    assert record(1).label == "#1" and record(1, number=None).label == "forum1"


def test_build_records_keeps_the_order_and_gives_each_paper_its_files() -> None:
    papers = [paper(2), paper(1)]
    records = build_records(papers, [P1], {"forum1": {"pdf": "files/1.pdf"}})
    assert [r.id for r in records] == ["forum2", "forum1"]
    assert records[0].files == () and records[1].files == (("pdf", "files/1.pdf"),)
    assert all(r.files is None for r in build_records(papers, [P1]))
    assert isinstance(records[0], PaperRecord)


def test_a_link_with_a_line_break_or_space_reaches_no_format() -> None:
    """A forum or PDF URL made from a hostile note id or path (a line break, a space) is no
    link in any format: the data files publish null, the page and the calendar no link, so a
    site builder that puts pdf_url into an href meets the same rule as the page."""
    bad = record(
        1,
        forum_url="https://openreview.net/forum?id=x\nEVIL: 1",
        pdf_url="https://openreview.net/pdf?id=x EVIL",
    )
    records = [bad, record(2)]
    day = assemble(schedule(("11:30", "11:45", "1")), records)
    files = render(records, [P1, P2], FORMATS, day=day, venue_id="V")
    assert set(files) == {
        "index.html", "papers.csv", "papers.json", "papers.yml", "posters.json", "program.json",
        "schedule.ics", "schedule.json", "schedule.xml",
    }  # fmt: skip
    for name, data in files.items():
        assert b"EVIL" not in data, name
    papers = json.loads(files["papers.json"])
    assert (papers[0]["forum_url"], papers[0]["pdf_url"]) == (None, None)
    assert papers[1]["pdf_url"] == "https://openreview.net/pdf?id=forum2"
