"""Poster assignment (docs/workshop.md#the-poster-assignment): hard rules, clash minimum, stability, pins, determinism."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orsync.posters import (
    AssignmentError,
    AssignmentResult,
    Placement,
    PosterPaper,
    Session,
    assign,
    author_keys,
    explain_moves,
    starting_places,
)

TZ = timezone(timedelta(hours=2))


def at(h: int, m: int) -> datetime:
    return datetime(2024, 5, 11, h, m, tzinfo=TZ)


BGPT = [
    Session("P1", "Poster session 1", at(10, 10), at(11, 0)),
    Session("P2", "Poster session 2", at(12, 0), at(14, 0)),
    Session("P3", "Poster session 3", at(15, 30), at(16, 20)),
    Session("P4", "Poster session 4", at(17, 5), at(17, 55)),
]
TALKS = [
    (at(11, 30), at(11, 45)),
    (at(11, 45), at(12, 0)),
    (at(15, 0), at(15, 15)),
    (at(15, 15), at(15, 30)),
    (at(16, 50), at(17, 5)),
]
KW = ["theory", "optimisation", "generalisation", "scaling", "transformers", "kernels", "sgd"]


def bgpt_papers(n: int = 65, seed: int = 7) -> list[PosterPaper]:
    """A workshop where senior authors have up to 4 papers each and 5 give talks.

    Built so that "session = i mod 4" has no clash: each senior's papers differ mod 4.
    """
    rng = random.Random(seed)
    papers = []
    for i in range(n):
        authors = {f"~Student{i}", f"~Senior{i // 4}", f"~Chair{(i // 4 + i % 4) % 17}"}
        talks = (TALKS[i // 3],) if i % 3 == 0 and i // 3 < len(TALKS) else ()
        kws = tuple(rng.sample(KW, 2))
        papers.append(PosterPaper(f"f{i:03d}", i + 1, tuple(sorted(authors)), kws, talks))
    return papers


def session_of(result: AssignmentResult) -> dict[str, str]:
    return {fid: p.session_id for fid, p in result.placements.items()}


def check_hard_rules(
    papers: list[PosterPaper],
    sessions: list[Session],
    capacity: int | None,
    pins: dict[str, str],
    result: AssignmentResult,
) -> None:
    by_id = {s.id: s for s in sessions}
    assert set(result.placements) == {p.forum_id for p in papers}
    seen: set[tuple[str, int]] = set()
    for p in papers:
        place = result.placements[p.forum_id]
        s = by_id[place.session_id]
        assert all(not (t0 < s.end and s.start < t1) for t0, t1 in p.talks)
        assert place.board >= 1
        if capacity is not None:
            assert place.board <= capacity
        assert (place.session_id, place.board) not in seen
        seen.add((place.session_id, place.board))
        if p.forum_id in pins:
            assert place.session_id == pins[p.forum_id]
    if capacity is not None:
        for s in sessions:
            assert sum(1 for v in session_of(result).values() if v == s.id) <= capacity


def shared_pairs_in_session(papers: list[PosterPaper], result: AssignmentResult) -> int:
    where = session_of(result)
    return sum(
        1
        for i, a in enumerate(papers)
        for b in papers[i + 1 :]
        if set(a.author_keys) & set(b.author_keys) and where[a.forum_id] == where[b.forum_id]
    )


def test_author_keys_prefers_profile_ids_and_normalises_names() -> None:
    keys = author_keys(
        ["Ada Lovelace", "José  Núñez", "ＡＢ Smith", "Ann Lee"],
        ["~Ada_Lovelace1", "jose@example.org", "", None],  # type: ignore[list-item]
    )
    assert keys == ("~Ada_Lovelace1", "jose nunez", "ab smith", "ann lee")
    assert author_keys(["Ann Lee", "ann  LEE"], None) == ("ann lee",)


def test_bgpt_capacity_talks_and_no_clash_when_feasible() -> None:
    papers = bgpt_papers()
    result = assign(papers, BGPT, 17, {}, {}, time_limit_s=5)
    check_hard_rules(papers, BGPT, 17, {}, result)
    assert result.clashes == []
    assert shared_pairs_in_session(papers, result) == 0
    sizes = sorted(list(session_of(result).values()).count(s.id) for s in BGPT)
    assert sizes[-1] - sizes[0] <= 1  # balanced


def test_one_author_on_five_papers_in_four_sessions_is_exactly_one_clash() -> None:
    papers = [PosterPaper(f"f{i}", i, ("~Prolific1", f"~S{i}"), ()) for i in range(1, 6)]
    result = assign(papers, BGPT, None, {}, {}, time_limit_s=5)
    assert result.status == "optimal"
    assert len(result.clashes) == 1
    clash = result.clashes[0]
    assert clash.authors == ("~Prolific1",)
    assert session_of(result)[clash.forum_ids[0]] == clash.session_id
    assert session_of(result)[clash.forum_ids[1]] == clash.session_id
    assert shared_pairs_in_session(papers, result) == 1


def test_the_solver_runs_in_a_child_and_or_tools_never_loads_here() -> None:
    # A process that solves a model (one clash cannot be proven optimal without CP-SAT) keeps
    # no OR-Tools in memory afterwards: the service idles without its 76 MiB.
    code = (
        "import sys\n"
        "from datetime import datetime, timedelta, timezone\n"
        "from orsync.posters import PosterPaper, Session, assign\n"
        "tz = timezone(timedelta(hours=2))\n"
        "def at(h): return datetime(2024, 5, 11, h, 0, tzinfo=tz)\n"
        "sessions = [Session(f'P{i}', f'P{i}', at(9 + 2 * i), at(10 + 2 * i)) for i in range(4)]\n"
        "papers = [PosterPaper(f'f{i}', i, ('~Prolific1', f'~S{i}'), ()) for i in range(1, 6)]\n"
        "r = assign(papers, sessions, None, {}, {}, time_limit_s=5)\n"
        "print(r.status, len(r.clashes), r.bound is not None, 'ortools' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["optimal", "1", "True", "False"]


def test_clash_minimum_respects_talks() -> None:
    # Two of the author's three papers can only go to P1 (talks block the rest): one clash, forced.
    talk_blocks = ((at(12, 0), at(17, 55)),)
    papers = [
        PosterPaper("a", 1, ("~X1",), (), talk_blocks),
        PosterPaper("b", 2, ("~X1",), (), talk_blocks),
        PosterPaper("c", 3, ("~X1",), ()),
    ]
    result = assign(papers, BGPT, None, {}, {}, time_limit_s=5)
    assert [c.forum_ids for c in result.clashes] == [("a", "b")]
    assert session_of(result)["c"] != "P1"


def test_stability_late_accepts_and_a_withdrawal() -> None:
    papers = bgpt_papers()
    first = assign(papers, BGPT, 18, {}, {}, time_limit_s=5)
    withdrawn = papers[10]
    late = [
        PosterPaper(f"late{j}", 100 + j, (f"~Late{j}", "~Senior3"), ("theory",)) for j in range(3)
    ]
    now = [p for p in papers if p is not withdrawn] + late
    second = assign(now, BGPT, 18, first.placements, {}, time_limit_s=5)
    check_hard_rules(now, BGPT, 18, {}, second)
    assert second.moved == []
    for p in papers:
        if p is not withdrawn:
            assert second.placements[p.forum_id] == first.placements[p.forum_id]
    # The withdrawn paper's board is simply free now (a late accept may take it).
    taken = {(pl.session_id, pl.board) for fid, pl in second.placements.items()}
    assert len(taken) == len(now)


def test_forced_move_is_reported() -> None:
    papers = bgpt_papers(12)
    first = assign(papers, BGPT, None, {}, {}, time_limit_s=2)
    fid = papers[5].forum_id
    away = next(s.id for s in BGPT if s.id != first.placements[fid].session_id)
    second = assign(papers, BGPT, None, first.placements, {fid: away}, time_limit_s=2)
    assert second.placements[fid].session_id == away
    # Only the pinned paper moves, even if that puts it next to a co-author: a clash alone never
    # moves an announced paper.
    assert second.moved == [fid]
    for p in papers:
        if p.forum_id != fid:
            assert second.placements[p.forum_id] == first.placements[p.forum_id]
    # A deliberate re-optimisation may move co-authors out of the way; every change is reported.
    third = assign(
        papers, BGPT, None, first.placements, {fid: away}, time_limit_s=2, reoptimise=True
    )
    assert third.placements[fid].session_id == away
    assert third.clashes == []
    assert fid in third.moved
    for p in papers:
        if p.forum_id not in third.moved:
            assert third.placements[p.forum_id] == first.placements[p.forum_id]


def test_pins_hold_and_survive_reassignment() -> None:
    papers = bgpt_papers()
    pins = {papers[1].forum_id: "P4", papers[2].forum_id: "P4", papers[4].forum_id: "P1"}
    first = assign(papers, BGPT, 18, {}, pins, time_limit_s=5)
    check_hard_rules(papers, BGPT, 18, pins, first)
    late = [PosterPaper("late", 200, ("~Senior1",), ())]
    second = assign(papers + late, BGPT, 18, first.placements, pins, time_limit_s=5)
    check_hard_rules(papers + late, BGPT, 18, pins, second)
    assert second.moved == []


def test_deterministic_and_independent_of_input_order() -> None:
    papers = bgpt_papers()
    a = assign(papers, BGPT, 17, {}, {}, time_limit_s=3, seed=0)
    b = assign(list(reversed(papers)), list(reversed(BGPT)), 17, {}, {}, time_limit_s=3, seed=0)
    assert a.placements == b.placements
    assert list(a.placements) == list(b.placements)


def test_related_papers_sit_next_to_each_other() -> None:
    papers = [
        PosterPaper(f"f{i}", i, (f"~A{i}",), ("theory",) if i % 2 else ("systems",))
        for i in range(1, 9)
    ]
    result = assign(papers, BGPT[:1], None, {}, {}, time_limit_s=2)
    order = sorted(result.placements, key=lambda f: result.placements[f].board)
    topics = [int(f[1:]) % 2 for f in order]
    assert sum(1 for x, y in itertools.pairwise(topics) if x != y) == 1


@pytest.mark.parametrize(
    ("papers", "capacity", "pins", "message"),
    [
        (bgpt_papers(9), 2, {}, "do not fit"),
        (bgpt_papers(3), None, {"f000": "P9"}, "unknown session"),
        (bgpt_papers(3), 1, {"f001": "P2", "f002": "P2"}, "boards"),
        (bgpt_papers(3), None, {"f000": "P1"}, "overlaps its talk"),
    ],
)
def test_infeasible_inputs_say_what_to_change(
    papers: list[PosterPaper], capacity: int | None, pins: dict[str, str], message: str
) -> None:
    if message == "overlaps its talk":
        papers[0] = PosterPaper("f000", 1, ("~Z1",), (), ((at(10, 0), at(10, 30)),))
    with pytest.raises(AssignmentError, match=message) as info:
        assign(papers, BGPT, capacity, {}, pins, time_limit_s=1)
    assert "\n" not in str(info.value)


def test_capacity_none_and_boards_count_from_one() -> None:
    papers = bgpt_papers(30)
    result = assign(papers, BGPT[:2], None, {}, {}, time_limit_s=2)
    for s in ("P1", "P2"):
        boards = sorted(p.board for p in result.placements.values() if p.session_id == s)
        assert boards == list(range(1, len(boards) + 1))


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[PosterPaper], int | None, dict[str, str]]:
    n = draw(st.integers(1, 14))
    capacity = draw(st.one_of(st.none(), st.integers(max(1, -(-n // 4)), n)))
    papers = []
    for i in range(n):
        authors = draw(st.sets(st.sampled_from([f"~A{j}" for j in range(6)]), min_size=1))
        talk = draw(st.one_of(st.none(), st.sampled_from([*TALKS, (at(10, 30), at(10, 45))])))
        papers.append(PosterPaper(f"p{i}", i, tuple(sorted(authors)), (), (talk,) if talk else ()))
    pins: dict[str, str] = {}
    for p in papers[:3]:
        free = [s.id for s in BGPT if all(not (a < s.end and s.start < b) for a, b in p.talks)]
        if draw(st.booleans()):
            pins[p.forum_id] = draw(st.sampled_from(free))
    return papers, capacity, pins


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_random_instances_respect_hard_rules(
    instance: tuple[list[PosterPaper], int | None, dict[str, str]],
) -> None:
    papers, capacity, pins = instance
    try:
        result = assign(papers, BGPT, capacity, {}, pins, time_limit_s=0.5)
    except AssignmentError:
        assert capacity is not None  # only capacity (with pins and talks) can make it infeasible
        return
    check_hard_rules(papers, BGPT, capacity, pins, result)
    assert len(result.clashes) == shared_pairs_in_session(papers, result)


# --------------------------------------------------------------------------- stability (docs/workshop.md)


def heavy_papers(n: int = 40) -> list[PosterPaper]:
    """Three authors on ~13 papers each in 4 sessions: clashes cannot be avoided."""
    return [
        PosterPaper(f"h{i:03d}", i + 1, (f"~Heavy{i % 3}", f"~Student{i}"), (KW[i % len(KW)],))
        for i in range(n)
    ]


def test_late_accepts_and_a_withdrawal_move_nobody_on_an_author_heavy_venue() -> None:
    papers = heavy_papers()
    first = assign(papers, BGPT, 12, {}, {}, time_limit_s=3)
    assert first.clashes  # the point: a re-solve could trade clashes for moves, and must not
    withdrawn = papers[7]
    # Each late accept shares a (single-paper) student author with one fixed paper.
    partners = [papers[0], papers[1], papers[2]]
    late = [
        PosterPaper(f"late{j}", 100 + j, (f"~Late{j}", p.author_keys[1]), ("theory",))
        for j, p in enumerate(partners)
    ]
    now = [p for p in papers if p is not withdrawn] + late
    second = assign(now, BGPT, 12, first.placements, {}, time_limit_s=3)
    check_hard_rules(now, BGPT, 12, {}, second)
    assert second.moved == []
    for p in papers:
        if p is not withdrawn:
            assert second.placements[p.forum_id] == first.placements[p.forum_id]
    for paper, partner in zip(late, partners, strict=True):
        assert second.placements[paper.forum_id].session_id != (
            first.placements[partner.forum_id].session_id
        )
    # The new clash count is the old one minus the withdrawn paper's: late accepts add none.
    gone = sum(1 for c in first.clashes if withdrawn.forum_id in c.forum_ids)
    assert len(second.clashes) == len(first.clashes) - gone
    assert second.status == "optimal"
    assert second.gap == 0.0


def test_unchanged_venue_takes_the_shortcut() -> None:
    papers = heavy_papers()
    first = assign(papers, BGPT, 12, {}, {}, time_limit_s=3)
    again = assign(list(reversed(papers)), BGPT, 12, first.placements, {}, time_limit_s=3)
    assert again.placements == first.placements
    assert list(again.placements) == list(first.placements)
    assert again.moved == []
    assert again.status == "optimal"
    assert again.bound is None and again.gap is None  # no solver ran
    assert again.clashes == first.clashes
    assert again.solve_time_s < 0.5


def test_capacity_shrink_moves_only_the_overflow() -> None:
    papers = heavy_papers(34)
    counts = {"P1": 12, "P2": 10, "P3": 6, "P4": 6}
    previous = {}
    it = iter(papers)
    for sid, count in counts.items():
        for board in range(1, count + 1):
            previous[next(it).forum_id] = Placement(sid, board)
    result = assign(papers, BGPT, 10, previous, {}, time_limit_s=3)
    check_hard_rules(papers, BGPT, 10, {}, result)
    overflow = sorted(f for f, pl in previous.items() if pl.board > 10)
    assert sorted(result.moved) == overflow  # boards 11 and 12 of P1 must go; nobody else moves
    for f in overflow:
        assert result.placements[f].session_id in {"P3", "P4"}


def test_reoptimise_may_reduce_clashes_stable_mode_does_not() -> None:
    papers = heavy_papers()
    # A clash-heavy announced assignment: each heavy author's papers crowd one session.
    bad = {p.forum_id: Placement(f"P{i % 3 + 1}", i // 3 + 1) for i, p in enumerate(papers)}
    kept = assign(papers, BGPT, 14, bad, {}, time_limit_s=3)
    assert kept.placements == bad
    assert kept.moved == []
    better = assign(papers, BGPT, 14, bad, {}, time_limit_s=3, reoptimise=True)
    check_hard_rules(papers, BGPT, 14, {}, better)
    assert len(better.clashes) < len(kept.clashes)
    assert better.moved
    assert better.bound is not None and better.gap is not None


def test_late_accept_that_fits_only_a_full_session_moves_one_paper() -> None:
    sessions = BGPT[:2]
    papers = [PosterPaper(f"p{i}", i, (f"~X{i}",), ()) for i in range(3)]
    previous = {"p0": Placement("P1", 1), "p1": Placement("P1", 2), "p2": Placement("P2", 1)}
    # Its talk blocks P2, and P1 is full: one kept paper has to make room, and only one.
    late = PosterPaper("late", 9, ("~L1",), (), ((at(12, 0), at(14, 0)),))
    result = assign([*papers, late], sessions, 2, previous, {}, time_limit_s=2)
    check_hard_rules([*papers, late], sessions, 2, {}, result)
    assert result.placements["late"].session_id == "P1"
    assert len(result.moved) == 1


# --------------------------------------------------------------------------- exhaustive optimum


def _tiny_instance(
    rng: random.Random,
) -> tuple[list[PosterPaper], list[Session], int | None, dict[str, str]]:
    """≤ 7 papers from a small author pool, 2-3 sessions, a small capacity, some talks and pins."""
    sessions = BGPT[: rng.choice([2, 3])]
    n = rng.randint(2, 7)
    pool = [f"~A{j}" for j in range(rng.randint(2, 4))]
    talk_slots = [(at(10, 30), at(10, 45)), (at(12, 30), at(12, 45)), (at(15, 45), at(16, 0))]
    papers = []
    for i in range(n):
        authors = tuple(sorted(set(rng.sample(pool, rng.randint(1, 2)))))
        talks = (rng.choice(talk_slots),) if rng.random() < 0.2 else ()
        papers.append(PosterPaper(f"t{i}", i + 1, authors, ("kw",), talks))
    even = -(-n // len(sessions))
    capacity = rng.choice([None, even, even + 1, max(even - 1, 1)])
    pins: dict[str, str] = {}
    if rng.random() < 0.3:
        pins[papers[0].forum_id] = rng.choice(sessions).id
    return papers, sessions, capacity, pins


def _brute_force(
    papers: list[PosterPaper],
    sessions: list[Session],
    capacity: int | None,
    pins: dict[str, str],
    home: dict[str, str],
) -> tuple[int, int, int] | None:
    """The lexicographic minimum of (clashes, moves away from ``home``, largest - smallest
    session) over every assignment that keeps capacity, talks and pins; None if there is none."""
    allowed = []
    for p in papers:
        ok = [
            s.id
            for s in sessions
            if all(not (a < s.end and s.start < b) for a, b in p.talks)
            and pins.get(p.forum_id, s.id) == s.id
        ]
        allowed.append(ok)
    pairs = [
        (i, j)
        for i in range(len(papers))
        for j in range(i + 1, len(papers))
        if set(papers[i].author_keys) & set(papers[j].author_keys)
    ]
    best: tuple[int, int, int] | None = None
    for choice in itertools.product(*allowed):
        sizes = [choice.count(s.id) for s in sessions]
        if capacity is not None and max(sizes) > capacity:
            continue
        clashes = sum(1 for i, j in pairs if choice[i] == choice[j])
        moves = sum(1 for p, s in zip(papers, choice, strict=True) if home.get(p.forum_id, s) != s)
        key = (clashes, moves, max(sizes) - min(sizes))
        if best is None or key < best:
            best = key
    return best


@pytest.mark.parametrize("seed", range(60))
def test_tiny_instances_match_the_exhaustive_optimum(seed: int) -> None:
    """Against every possible assignment: infeasible exactly when none exists, otherwise the
    fewest author clashes, then the most even sessions (cold), and with ``reoptimise`` the
    fewest clashes, then the fewest moves, then balance."""
    rng = random.Random(seed)
    papers, sessions, capacity, pins = _tiny_instance(rng)
    best = _brute_force(papers, sessions, capacity, pins, {})
    if best is None:
        with pytest.raises(AssignmentError):
            assign(papers, sessions, capacity, {}, pins, time_limit_s=5)
        return
    result = assign(papers, sessions, capacity, {}, pins, time_limit_s=5)
    check_hard_rules(papers, sessions, capacity, pins, result)
    assert result.status == "optimal"
    assert len(result.clashes) == shared_pairs_in_session(papers, result) == best[0]
    where = session_of(result)
    sizes = [list(where.values()).count(s.id) for s in sessions]
    assert max(sizes) - min(sizes) == best[2]

    # Re-optimising from an arbitrary announced assignment (each paper's first allowed session,
    # ignoring capacity and clashes): clashes first, then moves, then balance.
    home = {}
    for p in papers:
        free = [s.id for s in sessions if all(not (a < s.end and s.start < b) for a, b in p.talks)]
        home[p.forum_id] = pins.get(p.forum_id, free[0])
    previous = {}
    for board, p in enumerate(papers, start=1):
        previous[p.forum_id] = Placement(home[p.forum_id], board)
    if capacity is not None:
        previous = {f: pl for f, pl in previous.items() if pl.board <= capacity}
        home = {f: home[f] for f in previous}
    want = _brute_force(papers, sessions, capacity, pins, home)
    again = assign(papers, sessions, capacity, previous, pins, time_limit_s=5, reoptimise=True)
    check_hard_rules(papers, sessions, capacity, pins, again)
    assert again.status == "optimal"
    where = session_of(again)
    moves = sum(1 for f, s in home.items() if where[f] != s)
    sizes = [list(where.values()).count(s.id) for s in sessions]
    assert (len(again.clashes), moves, max(sizes) - min(sizes)) == want


def test_papers_moved_automatically_go_home_as_a_chain_once_home_is_free() -> None:
    sessions = BGPT[:2]
    papers = [
        PosterPaper("a", 1, ("~A",), ()),
        PosterPaper("b", 2, ("~B",), ()),
        # c's home session P1 now overlaps its talk: it stays where it was moved.
        PosterPaper("c", 3, ("~C",), (), ((at(10, 30), at(10, 45)),)),
    ]
    # b holds a's home and b's own home is free: b goes first, then a.
    homes = {"a": Placement("P1", 1), "b": Placement("P2", 3), "c": Placement("P1", 2)}
    published = {"a": Placement("P2", 1), "b": Placement("P1", 1), "c": Placement("P2", 2)}
    start = starting_places(papers, sessions, 25, {}, published, homes)
    assert start == {"a": Placement("P1", 1), "b": Placement("P2", 3), "c": Placement("P2", 2)}
    # A pin is the chairs' choice: the paper stays where the pin put it.
    pinned = starting_places(papers, sessions, 25, {"a": "P2"}, published, homes)
    assert pinned["a"] == Placement("P2", 1)
    moves = explain_moves(papers, sessions, 25, {}, published, homes, start, TZ)
    assert [(m.forum_id, m.cause) for m in moves] == [("a", "restored"), ("b", "restored")]
    assert moves[0].line() == (
        "#1 P2/1 → P1/1 because P1/1 is its published place and the rule that moved it is gone"
    )
    # A paper whose session went, pinned elsewhere by the chairs: the pin is why it moved.
    gone = {"a": Placement("P9", 4)}
    pinned_moves = explain_moves(papers, sessions, 25, {"a": "P2"}, gone, {}, published, TZ)
    assert [(m.cause, m.reason) for m in pinned_moves] == [("pin", "it is pinned to P2")]
    unpinned = explain_moves(papers, sessions, 25, {}, gone, {}, published, TZ)
    assert [m.cause for m in unpinned] == ["session_removed"]
