"""A first pull's rows built by child processes (docs/architecture.md#a-first-pull): the store
they give, what they are given, and what becomes of them when something dies."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from sqlalchemy import insert

from conftest import assert_mirror_equals_truth, cli_environ, live_notes, write_config
from helpers import PASSWORD, ServiceProcess, clean_env, config_for
from orsync.emulator import Emulator
from orsync.mirror.apply import Mirror
from orsync.mirror.child import SMALL_PAGE, PageBuilder, _load
from orsync.mirror.pages import BuiltPage, build_parts, page_notes
from orsync.mirror.walk import write_pages
from orsync.source import Page
from orsync.store import Store, open_store
from orsync.store.tables import CYCLE, NOTE
from orsync.venue import VenueSettings

# Twenty submissions a page: the workshop's 120 over six pages, as a large venue's are.
PAGE_CAP = 20


@pytest.fixture
def paged() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=7, page_cap=PAGE_CAP) as emu:
        yield emu


def _row_builders(parent: int) -> list[int]:
    """The ``python -m orsync.mirror`` children of process ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == parent and b"orsync.mirror" in cmdline:
            found.append(int(entry.name))
    return found


def _pull(config: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orsync", "--config", str(config), "pull", "--no-push", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environ(env),
    )


def _pulled(config: Path) -> None:
    proc = _pull(config)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err


def _wait_for_builders(proc: subprocess.Popen[str], count: int) -> list[int]:
    deadline = time.monotonic() + 60
    while len(found := _row_builders(proc.pid)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no row builder started"
        time.sleep(0.02)
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # exited, not yet reaped by its (killed) parent's reaper


def test_a_first_pull_over_pages_is_built_by_two_children_that_hold_no_secret(
    tmp_path: Path, paged: Emulator
) -> None:
    config = write_config(tmp_path, paged)
    paged.faults.inject("slow", times=10, delay=0.5, path="/notes")  # children live a while
    secrets = {
        "GITHUB_TOKEN": "ghp_not-for-children",
        "HTTPS_PROXY": "http://proxyuser:proxy-secret@127.0.0.1:9",
        "NOTIFY_SOCKET": "/run/not-for-children",
    }
    proc = _pull(config, secrets)
    builders = _wait_for_builders(proc, 2)
    for pid in builders:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[1:3] == [b"-m", b"orsync.mirror"]
        for secret in [paged.chair_password, *secrets.values()]:
            assert secret.encode() not in environ
            assert all(secret.encode() not in arg for arg in cmdline)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["requests"] >= 120 // PAGE_CAP
    assert_mirror_equals_truth(tmp_path / "orsync.db", paged.truth("chair"))
    assert "rows built in-process" not in err
    with sqlite3.connect(tmp_path / "orsync.db") as db:
        records = db.execute("SELECT count(*), count(DISTINCT note_id) FROM change").fetchone()
    assert records == (summary["created"], summary["created"])
    assert all(_gone(pid) for pid in builders)


def test_a_workshop_of_one_page_starts_no_child(tmp_path: Path, emulator: Emulator) -> None:
    config = write_config(tmp_path, emulator)
    emulator.faults.inject("slow", times=1, delay=1.5, path="/notes")
    proc = _pull(config)
    seen: set[int] = set()
    while proc.poll() is None:
        seen.update(_row_builders(proc.pid))
        time.sleep(0.02)
    assert proc.returncode == 0, proc.communicate()
    assert seen == set()
    assert_mirror_equals_truth(tmp_path / "orsync.db", emulator.truth("chair"))


def test_row_builders_killed_mid_pull_leave_the_pull_whole(tmp_path: Path, paged: Emulator) -> None:
    """Both children killed while pages are still to come: the pull builds the rest itself."""
    config = write_config(tmp_path, paged)
    paged.faults.inject("slow", times=10, delay=0.5, path="/notes")
    proc = _pull(config)
    for pid in _wait_for_builders(proc, 2):
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out)["outcome"] == "ok"
    assert "rows built in-process" in err
    assert_mirror_equals_truth(tmp_path / "orsync.db", paged.truth("chair"))


def test_a_killed_pull_takes_its_row_builders_with_it(tmp_path: Path, paged: Emulator) -> None:
    config = write_config(tmp_path, paged)
    paged.faults.inject("slow", times=10, delay=0.5, path="/notes")
    proc = _pull(config)
    builders = _wait_for_builders(proc, 2)
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in builders):
        assert time.monotonic() < deadline, "a row builder outlived its pull"
        time.sleep(0.05)
    # The cycle's transaction never committed: no note is in the store.
    assert live_notes(tmp_path / "orsync.db") == {}


def test_ctrl_c_reaches_the_pull_and_its_row_builders_as_a_terminal_sends_it(
    tmp_path: Path, paged: Emulator
) -> None:
    """Ctrl-C goes to the terminal's whole process group: the children ignore it, the pull
    rolls back, says one line, exits 130, and its children are gone."""
    config = write_config(tmp_path, paged)
    paged.faults.inject("slow", times=10, delay=0.5, path="/notes")
    proc = subprocess.Popen(
        [sys.executable, "-m", "orsync", "--config", str(config), "pull", "--no-push"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_environ(None),
        start_new_session=True,  # its own process group, as a shell gives a foreground job
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    builders = _wait_for_builders(proc, 2)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in out + err
    assert err.strip().splitlines() == ["orsync: error: interrupted; the cycle was rolled back"]
    assert all(_gone(pid) for pid in builders)
    # A first pull that did not finish leaves no store behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["orsync.toml", "pw"]


_OTHER = "zzzzzzzzzz"  # a note of nothing the venue has: the store is not empty


def _hold_another_note(store: Store) -> None:
    with store.begin() as conn:
        conn.execute(
            insert(NOTE).values(id=_OTHER, forum=_OTHER, kind="comment", raw="{}", digest="00")
        )


def _typed_rows(db: Path) -> dict[str, tuple[object, ...]]:
    """Every note's columns but the cycles it was first and last seen in, by id."""
    with sqlite3.connect(db) as conn:
        cursor = conn.execute("SELECT * FROM note")
        names = [d[0] for d in cursor.description]
        keep = [i for i, name in enumerate(names) if name not in ("first_cycle", "last_cycle")]
        return {row[0]: tuple(row[i] for i in keep) for row in cursor}


def _records(db: Path) -> set[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return set(conn.execute("SELECT at, note_id, forum, kind, op, fields FROM change"))


def test_children_store_what_a_pull_into_a_known_store_stores(
    tmp_path: Path, paged: Emulator
) -> None:
    """The first pull's path (pages built alone by the children, written in order, created
    records made by the database) against the path of a store that held a note (each page
    built knowing the store, records made here): every row and record the same."""
    first = write_config(tmp_path / "first", paged)
    _pulled(first)
    known = write_config(tmp_path / "known", paged)
    store = open_store(f"sqlite:///{tmp_path / 'known' / 'orsync.db'}")
    _hold_another_note(store)
    store.dispose()
    _pulled(known)
    ours, theirs = (
        _typed_rows(tmp_path / "first" / "orsync.db"),
        _typed_rows(tmp_path / "known" / "orsync.db"),
    )
    theirs.pop(_OTHER)
    assert len(ours) > 700 and ours == theirs
    records = _records(tmp_path / "known" / "orsync.db")
    records = {r for r in records if r[1] != _OTHER}
    assert _records(tmp_path / "first" / "orsync.db") == records
    # And each record's time is its note's tmdate, exactly.
    with sqlite3.connect(tmp_path / "first" / "orsync.db") as conn:
        pairs = conn.execute(
            "SELECT change.at, note.tmdate FROM change JOIN note ON note.id = change.note_id"
        ).fetchall()
    for at, tmdate in pairs:
        expected = datetime.fromtimestamp(tmdate / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        assert at == expected


V = "V/2024/Conference"
SETTINGS = VenueSettings(venue_id=V)


def _note(note_id: str, forum: str, kind: str, tmdate: int, **content: str) -> dict[str, object]:
    invitation = f"{V}/-/Submission" if kind == "Submission" else f"{V}/{forum}/-/{kind}"
    return {
        "id": note_id,
        "forum": forum,
        **({} if note_id == forum else {"replyto": forum}),
        "invitations": [invitation],
        "readers": ["everyone"],
        "signatures": [f"{V}/Authors"],
        "tmdate": tmdate,
        "cdate": tmdate,
        "content": {k: {"value": v} for k, v in content.items()},
    }


def _pages() -> list[list[dict[str, object]]]:
    """Two pages of submissions with their replies; the second brings again a reply of the
    first (edited) and a decision on the first page's submission: pages built alone conflict."""
    s1 = _note("s1", "s1", "Submission", 1000, title="One", venueid=V)
    s2 = _note("s2", "s2", "Submission", 1001, title="Two", venueid=V)
    r1 = _note("r1", "s1", "Official_Review", 1002, rating="6: fine")
    r1_again = _note("r1", "s1", "Official_Review", 1003, rating="8: good")
    d1 = _note("d1", "s1", "Decision", 1004, decision="Accept (Oral)")
    s1["details"] = {"replies": [r1]}
    s2["details"] = {"replies": [r1_again, d1]}
    return [[s1], [s2]]


def _walk(db: Path, pages: list[list[dict[str, object]]], *, alone: bool) -> Path:
    store = open_store(f"sqlite:///{db}")
    if not alone:
        _hold_another_note(store)
    with store.begin() as conn:
        cycle = conn.execute(
            insert(CYCLE).values(started_at=datetime.now(UTC), mode="full")
        ).inserted_primary_key[0]
        mirror = Mirror(conn, cycle, SETTINGS, "https://openreview.net", now=datetime.now(UTC))
        mirror.load_index()
        if alone:  # as a first pull: built alone, written in order, checked
            write_pages(mirror, [Page(p, 2, json.dumps({"notes": p}).encode()) for p in pages])
            mirror.record_created()
        else:  # each page built knowing the store, which holds a note of another venue
            assert not mirror.fresh
            for page in pages:
                mirror.apply(page_notes(page))
    store.dispose()
    return db


def test_a_page_built_alone_that_conflicts_is_built_again_knowing_the_store(
    tmp_path: Path,
) -> None:
    pages = _pages()
    rules_store = open_store(f"sqlite:///{tmp_path / 'probe.db'}")
    with rules_store.begin() as conn:
        rules = Mirror(conn, 1, SETTINGS, "https://openreview.net").rules()
    rules_store.dispose()
    second = list(build_parts(pages[1], rules))
    first = list(build_parts(pages[0], rules))
    # Alone, the second page knows nothing of r1: it would insert it again.
    assert [c[0] for c in second[0].created] == ["s2", "r1", "d1"]
    alone = _walk(tmp_path / "alone.db", pages, alone=True)
    ordered = _walk(tmp_path / "ordered.db", pages, alone=False)
    ordered_rows = _typed_rows(ordered)
    ordered_rows.pop(_OTHER)
    assert _typed_rows(alone) == ordered_rows
    ordered_records = {r[1:] for r in _records(ordered) if r[1] != _OTHER}
    assert {r[1:] for r in _records(alone)} == ordered_records
    rows = _typed_rows(alone)
    assert len(rows) == 4
    with sqlite3.connect(alone) as conn:
        assert conn.execute(
            "SELECT decision, presentation FROM note WHERE id = 's1'"
        ).fetchone() == ("Accept (Oral)", "oral")
        assert conn.execute("SELECT rating FROM note WHERE id = 'r1'").fetchone() == (8.0,)
    assert [c[0] for c in first[0].created] == ["s1", "r1"]


def test_the_row_builder_answers_are_unpickled_as_built_pages_only() -> None:
    page = BuiltPage([], [], [], set(), {}, [], [], [], 0, 0)
    assert isinstance(_load(bytearray(b"P" + pickle.dumps(page))), BuiltPage)
    with pytest.raises(ValueError, match="unreadable"):
        _load(bytearray(b"P" + pickle.dumps(os.system)))
    with pytest.raises(ValueError, match="unreadable"):
        _load(bytearray(b"P" + pickle.dumps(subprocess.Popen)))


def test_the_service_stopped_mid_first_pull_takes_its_row_builders_along(tmp_path: Path) -> None:
    """SIGTERM to `orsync run` while its first cycle's children build pages: the service stops
    within its usual bound, the cycle is recorded interrupted, no child is left."""
    with Emulator(dataset="bgpt", seed=7, page_cap=PAGE_CAP, password=PASSWORD) as emu:
        cfg = config_for(tmp_path, emu)
        emu.faults.inject("slow", times=10, delay=0.5, path="/notes")
        svc = ServiceProcess(cfg, clean_env())
        try:
            builders = _wait_for_builders(svc.proc, 2)
            stopped = time.monotonic()
            assert svc.stop(signal.SIGTERM) == 0
            assert time.monotonic() - stopped < 8
        finally:
            svc.kill()
        assert all(_gone(pid) for pid in builders)
        with sqlite3.connect(tmp_path / "orsync.db") as db:
            assert db.execute("SELECT outcome FROM cycle").fetchall() == [("interrupted",)]
            assert db.execute("SELECT count(*) FROM note").fetchone() == (0,)


def test_a_first_page_too_big_to_parse_here_goes_to_a_child(tmp_path: Path) -> None:
    """A first page over 2 MiB is not parsed here: the children start with it, and its
    paging (the venue's count, the last id) comes from the child that took it."""
    with Emulator(dataset="iclr", seed=3, size=500, page_cap=250) as emu:
        session = requests.Session()
        token = session.post(
            f"{emu.url}/login", json={"id": emu.chair_username, "password": emu.chair_password}
        ).json()["token"]
        first = session.get(
            f"{emu.url}/notes",
            params={"invitation": f"{emu.venue_id}/-/Submission", "details": "replies"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert len(first.content) > SMALL_PAGE  # the premise
        emu.clear_requests()
        config = write_config(tmp_path, emu)
        emu.faults.inject("slow", times=4, delay=0.5, path="/notes")
        proc = _pull(config)
        _wait_for_builders(proc, 2)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "rows built in-process" not in err
        pages = [r for r in emu.requests if r.path == "/notes" and r.status == 200]
        assert len(pages) == 2  # the count from the first page ended the walk
        assert_mirror_equals_truth(tmp_path / "orsync.db", emu.truth("chair"))


def test_a_page_a_child_cannot_parse_is_refused_as_not_json_and_the_child_goes_on(
    tmp_path: Path,
) -> None:
    """A truncated page handed to a child: ``ValueError`` (the transport asks again, as for a
    page parsed here), nothing is built for it, and the child takes the next page as before."""
    probe = open_store(f"sqlite:///{tmp_path / 'probe.db'}")
    with probe.begin() as conn:
        rules = Mirror(conn, 1, SETTINGS, "https://openreview.net").rules()
    probe.dispose()
    first, second = _pages()
    pool = PageBuilder(rules, 1)
    with pool:
        # A small first page that shows more to come starts the child, which takes it too.
        body = json.dumps({"notes": first, "count": 2}).encode()
        assert pool.read_page(body) == {"notes": [{"id": "s1"}], "count": 2}
        assert [c[0] for c in _received(pool, body)[0].created] == ["s1", "r1"]
        with pytest.raises(ValueError, match="not JSON"):
            pool.read_page(b'{"notes": [{"id": "s2"')
        body = json.dumps({"notes": second, "count": 2}).encode()
        paging = pool.read_page(body)
        assert paging == {"notes": [{"id": "s2"}], "count": 2}
        parts = _received(pool, body)
        assert [c[0] for c in parts[0].created] == ["s2", "r1", "d1"]
        assert pool.failed is None


def _received(pool: PageBuilder, body: bytes) -> list[BuiltPage]:
    """The parts of the page ``body``, from the child that took it."""
    child = pool.claim(body)
    assert child is not None
    parts = []
    while (answer := child.receive()) is not True:
        assert isinstance(answer, BuiltPage), answer
        parts.append(answer)
    return parts
