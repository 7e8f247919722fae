"""``schedule.ics`` from a day built in the test (``site.calendar``)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import icalendar

from orsync.schedule import ProgramSlot, Schedule, TalkSlot
from orsync.site import assemble, calendar, render
from site_helpers import at, record, schedule

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
    talk = after.slots[2].key
    keynote = after.slots[0].key
    assert second[talk].uid == calendar.uid(after, after.slots[2], VENUE)
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


# -- identity: events are slots, not places in the day ---------------------------------------------

COFFEE = ProgramSlot(at("10:30"), at("10:50"), "break", "Coffee break")
LUNCH = ProgramSlot(at("12:00"), at("13:00"), "break", "Lunch")
REGISTRATION = ProgramSlot(at("08:30"), at("09:00"), "break", "Registration")


def with_program(*slots: ProgramSlot) -> Schedule:
    """site_helpers' day (keynote, two poster sessions, one talk) with more program slots."""
    day = schedule(("11:30", "11:45", "2"))
    return Schedule(day.sessions, day.talks, (*day.program, *slots), timezone="Europe/Vienna")


def publish(
    day: Schedule, stored: dict[str, calendar.EventState], when: datetime
) -> tuple[dict[str, calendar.EventState], dict[str, bytes]]:
    """The state after a push of ``day`` and its events as bytes, by UID."""
    built = assemble(day, [record(1), record(2)])
    state = calendar.next_state(built, VENUE, stored, when)
    data = calendar.render(built, VENUE, state)
    found = events(data)
    assert len(found) == len(built.slots)  # one event per slot, no UID twice
    return state, {uid: e.to_ical() for uid, e in found.items()}


def test_inserting_a_slot_adds_its_event_and_changes_no_other() -> None:
    state, before = publish(with_program(COFFEE, LUNCH), {}, NOW)
    later = datetime(2024, 4, 2, tzinfo=UTC)
    state, after = publish(with_program(REGISTRATION, COFFEE, LUNCH), state, later)
    (new,) = set(after) - set(before)
    assert b"SUMMARY:Registration" in after[new] and b"SEQUENCE:0" in after[new]
    # Every other event: its UID, SEQUENCE, DTSTAMP and content as they were, byte for byte.
    assert {uid: after[uid] for uid in before} == before
    # Removing a slot removes its event only.
    _, removed = publish(with_program(REGISTRATION, LUNCH), state, later)
    (gone,) = set(after) - set(removed)
    assert b"SUMMARY:Coffee break" in after[gone]
    assert {uid: after[uid] for uid in removed} == removed


def test_an_id_keeps_the_event_when_the_slot_moves() -> None:
    keynote = ProgramSlot(at("14:00"), at("15:00"), "invited", "Talk", id="keynote-2")
    state, before = publish(with_program(keynote, COFFEE), {}, NOW)
    moved = replace(keynote, start=at("16:00"), end=at("17:00"))
    later = datetime(2024, 4, 2, tzinfo=UTC)
    _, after = publish(with_program(moved, replace(COFFEE, start=at("10:35"))), state, later)
    (uid,) = [u for u in after if u.startswith("slot-keynote-2.")]
    assert b"SEQUENCE:1" in after[uid] and uid in before
    # Without an id the start is the identity: the moved break is another event.
    assert {u.partition(".")[0] for u in set(after) ^ set(before)} == {
        "break-20240511T0830Z",
        "break-20240511T0835Z",
    }


def legacy(day: Schedule, state: dict[str, calendar.EventState], sequence: int) -> str:
    """``state`` in the layout an older orsync stored: keyed by UIDs made from each slot's place
    among the slots of its kind (``break-2``), at ``sequence``."""
    built = assemble(day, [record(1), record(2)])
    counts: dict[str, int] = {}
    out = {}
    for slot in built.slots:
        name = slot.key
        if slot.kind != "poster":
            counts[slot.kind] = counts.get(slot.kind, 0) + 1
            name = f"{slot.kind}-{counts[slot.kind]}"
        tag = state[slot.key].uid.partition(".")[2]
        st = state[slot.key]
        out[f"{name}.{tag}"] = {"digest": st.digest, "sequence": sequence, "stamp": st.stamp}
    return json.dumps(out)


def test_state_stored_before_keys_were_identities_keeps_uids_and_sequences() -> None:
    day = with_program(COFFEE, LUNCH)
    state, _ = publish(day, {}, NOW)
    old = calendar.load_state(legacy(day, state, sequence=4))
    later = datetime(2024, 4, 2, tzinfo=UTC)
    # The same day: every event keeps its old UID, sequence and stamp.
    adopted, same = publish(day, old, later)
    assert {u.partition(".")[0] for u in same} == {
        "invited-1",
        "poster-P1",
        "contributed-1",
        "break-1",
        "poster-P2",
        "break-2",
    }
    assert all(b"SEQUENCE:4" in e and b"DTSTAMP:20240401T120000Z" in e for e in same.values())
    # A break inserted with the upgrade: the others are found by their content, not renumbered.
    _, grown = publish(with_program(REGISTRATION, COFFEE, LUNCH), old, later)
    (new,) = set(grown) - set(same)
    assert new.startswith("break-20240511T0630Z.") and b"SEQUENCE:0" in grown[new]
    assert {u: grown[u] for u in same} == same
    # An event changed at its old place keeps its UID at the next sequence.
    _, retitled = publish(with_program(replace(COFFEE, title="Tea"), LUNCH), old, later)
    tea = next(u for u, e in retitled.items() if b"SUMMARY:Tea" in e)
    assert tea.startswith("break-1.") and b"SEQUENCE:5" in retitled[tea]
    # Saved in the new layout, it reads back as it was and needs no adoption again.
    assert calendar.load_state(calendar.dump_state(adopted)) == adopted
    assert publish(day, adopted, datetime(2024, 4, 3, tzinfo=UTC))[1] == same


def test_a_new_event_never_takes_a_uid_an_old_event_had() -> None:
    # The old first talk was "contributed-1"; a talk added now is named by its start.
    day = with_program()
    state, _ = publish(day, {}, NOW)
    old = calendar.load_state(legacy(day, state, sequence=2))
    grown = Schedule(
        day.sessions,
        (*day.talks, TalkSlot(at("16:00"), at("16:15"), paper="1", index=1)),
        day.program,
        timezone="Europe/Vienna",
    )
    _, after = publish(grown, old, datetime(2024, 4, 2, tzinfo=UTC))
    papers = {u: e for u, e in after.items() if b"Contributed talk: Paper" in e}
    assert sorted(u.partition(".")[0] for u in papers) == [
        "contributed-1",
        "contributed-20240511T1400Z",
    ]  # two UIDs: the old talk's, and a new one for the talk added
