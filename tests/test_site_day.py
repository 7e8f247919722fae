"""The day's assembly (``site.day``): talks with their papers, sessions by board, what is missing."""

from __future__ import annotations

from orsync.rules import DayFacts, KnownPaper, validate
from orsync.schedule import ProgramSlot, Schedule, TalkSlot
from orsync.site import assemble, describe, talk_paper, with_talks
from site_helpers import P1, P2, at, record, schedule


def test_talks_find_their_paper_by_number_or_forum_id() -> None:
    papers = [record(1), record(2, presentation="oral"), record(3)]
    day = assemble(schedule(("11:30", "11:45", "2"), ("11:45", "12:00", "forum3")), papers)
    talks = [s for s in day.slots if s.kind == "contributed"]
    assert [t.paper.id if t.paper else None for t in talks] == ["forum2", "forum3"]
    assert talks[0].title == "Paper 2" and talks[0].abstract == "Abstract 2."
    assert talks[0].url == "https://openreview.net/forum?id=forum2"
    assert talk_paper(TalkSlot(at("11:30"), at("11:45"), paper="9"), papers) is None


def test_slots_are_keyed_in_time_order_and_posters_listed_by_board() -> None:
    papers = [record(1, board=3), record(2, board=1), record(3, board=None), record(4)]
    papers[3] = record(4, session_id="P2", session_name="Poster session 2", board=1)
    day = assemble(schedule(("11:30", "11:45", "1")), papers)
    assert [s.key for s in day.slots] == [
        "invited-20240511T0700Z",  # the kind and the start in UTC
        "poster-P1",
        "contributed-20240511T0930Z",  # a talk: its kind and start, never its paper
        "poster-P2",
    ]
    p1 = day.slots[1]
    assert [p.id for p in p1.papers] == ["forum2", "forum1", "forum3"]  # no board last
    assert p1.paper is None  # only a talk has "its" paper


def test_keys_name_slots_by_identity_and_stay_unique() -> None:
    papers = [record(1), record(2)]
    day = schedule(("11:30", "11:45", None), ("11:45", "12:00", "2"), ("16:00", "16:15", "2"))
    rooms = (
        ProgramSlot(at("15:00"), at("15:30"), "break", "Coffee", location="Hall A"),
        ProgramSlot(at("15:00"), at("15:30"), "break", "Tea", location="Hall B"),
        ProgramSlot(at("17:00"), at("17:30"), "closing", "Closing", id="bye"),
    )
    keys = [s.key for s in assemble(Schedule(day.sessions, day.talks, rooms), papers).slots]
    assert keys == [
        "poster-P1",
        "contributed-20240511T0930Z",  # no paper yet: the kind and the start
        "contributed-20240511T0945Z",  # with a paper: still its kind and start
        "poster-P2",
        "break-20240511T1300Z",
        "break-20240511T1300Z-2",  # two breaks at once in two rooms
        "contributed-20240511T1400Z",
        "slot-bye",  # a configured id
    ]


def test_what_is_missing_is_said() -> None:
    papers = [record(1, abstract=" "), record(2, session_id=None)]
    day = assemble(schedule(("11:30", "11:45", None), ("11:45", "12:00", "77")), papers)
    assert day.missing == [
        "contributed talk 11:30-11:45 (talks[1]) has no paper yet: set its paper "
        "(see `orsync talks suggest`)",
        "1 accepted paper has no public abstract for the website: #1",
        "1 accepted paper has no poster session yet: #2 (run `orsync push`)",
        "poster session P2 (Poster session 2) has no papers",
    ]


def test_overlapping_slots_are_problems_except_a_break_among_posters() -> None:
    sched = Schedule(sessions=(P1, P2), talks=(TalkSlot(at("10:30"), at("10:45"), "1"),))
    day = assemble(sched, [record(1), record(2, session_id="P2")])
    assert day.missing == []  # a clash is not missing: it is wrong (orsync.rules)
    [clash] = validate(DayFacts(day=sched, talk_refs=(1,)))
    assert (clash.kind, clash.severity) == ("schedule.overlap", "error")
    assert clash.message == (
        "poster session P1 10:10-11:00 overlaps contributed talk 10:30-10:45 (talks[1])"
    )
    with_break = Schedule(
        sessions=(P1,),
        program=(ProgramSlot(at("10:30"), at("10:45"), "break", "Coffee"),),
    )
    assert validate(DayFacts(day=with_break, talk_refs=())) == []


def test_as_dict_lists_ids_for_the_site_and_details_for_the_chairs() -> None:
    day = assemble(schedule(("11:30", "11:45", "2")), [record(1), record(2)])
    site = day.as_dict(details=False)
    assert "missing" not in site
    poster = next(s for s in site["slots"] if s["kind"] == "poster")
    assert poster["papers"] == ["forum1", "forum2"] and poster["session"] == "P1"
    chairs = day.as_dict()
    talk = next(s for s in chairs["slots"] if s["kind"] == "contributed")
    poster = next(s for s in chairs["slots"] if s["kind"] == "poster")
    # A poster's paper carries its board; a talk's paper does not (it is on stage, not a board).
    assert talk["papers"] == [
        {
            "id": "forum2",
            "number": 2,
            "title": "Paper 2",
            "authors": ["Ada Lovelace", "Alan Turing"],
        }
    ]
    assert poster["papers"][0]["board"] == 1
    assert talk["start"] == "2024-05-11T11:30:00+02:00"


def test_describe_shows_the_day_for_a_terminal() -> None:
    day = assemble(
        schedule(("11:30", "11:45", "2"), name="Day\u202e", stream_url="https://example.org/live"),
        [record(1), record(2, title="Evil\x1b[31m")],
    )
    lines = describe(day)
    assert lines[0] == "Day"  # the config's texts are cleaned like the papers'
    assert "live stream: https://example.org/live" in lines
    assert "11:30-11:45  contributed  #2 Evil[31m" in lines
    assert any(line.endswith("board   1  #1 Paper 1") for line in lines)
    assert lines[-1] == "  - poster session P2 (Poster session 2) has no papers"


def test_with_talks_the_talks_decide_and_each_mismatch_is_said_once() -> None:
    papers = [record(1, presentation="oral"), record(2), record(3, presentation="oral")]
    # Paper 2 is in two slots (a config slip): its talk is the first in time order.
    day = schedule(("15:00", "15:15", "2"), ("11:30", "11:45", "2"), ("11:45", "12:00", "3"))
    published, built = with_talks(day, papers)
    by_id = {r.id: r for r in published}
    assert [by_id[f].presentation for f in ("forum1", "forum2", "forum3")] == [
        "poster", "oral", "oral",
    ]  # fmt: skip
    talk = by_id["forum2"].talk
    assert talk is not None and talk.start == "2024-05-11T11:30:00+02:00"
    assert talk.slot in {s.key for s in built.slots if s.kind == "contributed"}
    assert by_id["forum1"].talk is None
    assert built.warnings == [
        "#1 is an oral on OpenReview but has no talk",
        "#2 has a talk but OpenReview says poster",
    ]
    # The day is made of the same records the files are.
    talk_papers = {s.paper.id: s.paper for s in built.slots if s.paper is not None}
    assert talk_papers["forum2"] is by_id["forum2"]
    # OpenReview's decision wins on request; the talks and the warnings stay.
    kept, again = with_talks(day, papers, "decision")
    assert [r.presentation for r in kept] == ["oral", "poster", "oral"]
    assert [r.talk is not None for r in kept] == [False, True, True]
    assert again.warnings == built.warnings


def test_with_talks_without_talk_slots_keeps_openreview_and_warns_nothing() -> None:
    papers = [record(1, presentation="oral"), record(2)]
    published, built = with_talks(schedule(), papers)
    assert [r.presentation for r in published] == ["oral", "poster"]
    assert all(r.talk is None for r in published) and built.warnings == []


def test_the_rules_hold_pins_and_boards_against_the_talks() -> None:
    sched = Schedule(sessions=(P1, P2), talks=(TalkSlot(at("12:30"), at("12:45"), "1", 0),))
    papers = (
        KnownPaper("forum1", 1, "Paper 1", True, "P2", 4),
        KnownPaper("forum2", 2, "Paper 2", True, "P1", 1),
        KnownPaper("forum3", 3, "Paper 3", False),
    )
    facts = DayFacts(
        day=sched,
        talk_refs=(1,),
        boards_per_session=1,
        papers=papers,
        pins={"forum2": "P9"},
    )
    found = {(p.kind, p.message) for p in validate(facts)}
    kinds = sorted(kind for kind, _ in found)
    assert kinds == [
        "poster.capacity",
        "poster.pin_unknown_session",
        "poster.talk_overlap",
        "schedule.overlap",
    ]
    messages = "\n".join(m for _, m in found)
    assert (
        "3 posters (1 of them decided, not released) do not fit 2 sessions × 1 boards" in messages
    )
    assert "#1 talks[1] (12:30-12:45) overlaps its poster session P2 (board 4)" in messages
    assert "#2 is pinned to poster session 'P9', which is not in [[posters.sessions]]" in messages
    # Pinned where its talk is: said as the pin's fault, not as a move to come.
    pinned = validate(DayFacts(day=sched, talk_refs=(1,), papers=papers[:1], pins={"forum1": "P2"}))
    assert sorted(p.kind for p in pinned) == ["poster.pin_overlaps_talk", "schedule.overlap"]
