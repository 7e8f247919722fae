"""``schedule.ics`` from a day built in the test (``site.calendar``)."""

from __future__ import annotations

from datetime import UTC, datetime

import icalendar

from orsync.site import assemble, calendar, render
from site_helpers import record, schedule

VENUE = "ICLR.cc/2024/Workshop/BGPT"
NOW = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
NEWLINE_URL = "https://openreview.net/forum?id=forum2\nX-EVIL:injected"


def events(data: bytes) -> dict[str, icalendar.Event]:
    cal = icalendar.Calendar.from_ical(data)
    return {str(e["uid"]): e for e in cal.walk("VEVENT")}


def test_one_event_per_slot_with_stable_uids_and_the_talks_paper() -> None:
    day = assemble(
        schedule(("11:30", "11:45", "2"), timezone="Europe/Vienna"), [record(1), record(2)]
    )
    state = calendar.next_state(day, VENUE, {}, NOW)
    data = calendar.render(day, VENUE, state)
    found = events(data)
    assert len(found) == len(day.slots) == 4
    talk = found[calendar.uid(day, day.slots[2], VENUE)]
    assert str(talk["summary"]) == "Contributed talk: Paper 2"
    assert "Ada Lovelace, Alan Turing" in str(talk["description"])
    assert str(talk["url"]) == "https://openreview.net/forum?id=forum2"
    assert b"BEGIN:VTIMEZONE" in data and b"TZID=Europe/Vienna" in data
    poster = found[calendar.uid(day, day.slots[1], VENUE)]
    assert "board 1: Paper 1 (Ada Lovelace, Alan Turing)" in str(poster["description"])
    assert calendar.render(day, VENUE, state) == data  # same day, same bytes


def test_a_changed_event_gets_the_next_sequence_and_an_unchanged_one_keeps_its_own() -> None:
    before = assemble(schedule(("11:30", "11:45", "2")), [record(1), record(2)])
    first = calendar.next_state(before, VENUE, {}, NOW)
    after = assemble(schedule(("11:30", "11:45", "2")), [record(1), record(2, title="Retitled")])
    later = datetime(2024, 4, 2, tzinfo=UTC)
    second = calendar.next_state(after, VENUE, first, later)
    talk = calendar.uid(after, after.slots[2], VENUE)
    keynote = calendar.uid(after, after.slots[0], VENUE)
    assert (second[talk].sequence, second[talk].stamp) == (1, "20240402T000000Z")
    assert second[keynote] == first[keynote]
    assert calendar.load_state(calendar.dump_state(second)) == second
    assert calendar.load_state("not json") == {}


def test_a_forum_url_with_a_newline_never_reaches_the_calendar() -> None:
    papers = [record(1), record(2, forum_url=NEWLINE_URL)]
    day = assemble(schedule(("11:30", "11:45", "2")), papers)
    data = render(papers, [], ["ics"], day=day, venue_id=VENUE)["schedule.ics"]
    talk = events(data)[calendar.uid(day, day.slots[2], VENUE)]
    assert "url" not in talk and "OpenReview:" not in str(talk["description"])
    assert b"X-EVIL" not in data and b"injected" not in data
