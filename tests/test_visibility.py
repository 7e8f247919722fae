"""What the public may read (docs/security.md#what-is-public, docs/site-files.md#the-read-views, docs/site-files.md): released status, unreleased decisions, note and
field readers, nonreaders, malformed readers. End to end: the CLI and openreview-py against the
emulator over HTTP, then every website file and the ``accepted_papers`` view are searched."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup, assert_mirror_equals_truth, write_config
from orsync.emulator import Emulator
from orsync.venue import VenueSettings, is_public, public_content_fields

# One worker runs this module, so its module-scoped fixture is built once.
pytestmark = pytest.mark.xdist_group("visibility")

V = "ICLR.cc/2024/Workshop/BGPT"


# --------------------------------------------------------------------------- the rules


@pytest.mark.parametrize(
    ("readers", "nonreaders", "public"),
    [
        (["everyone"], None, True),
        (["everyone"], [], True),
        ([V, "everyone"], [f"{V}/Reviewers"], True),
        (["everyone"], ["everyone"], False),
        ([V, f"{V}/Submission3/Authors"], None, False),
        ("everyone", None, False),  # malformed: a string, not a list
        (["everyone", 5], None, False),  # malformed item
        (None, None, False),  # absent readers
        (["everyone"], "everyone", False),  # malformed nonreaders
        (["everyone"], {"x": 1}, False),
    ],
)
def test_readable_by_everyone(readers: Any, nonreaders: Any, public: bool) -> None:
    assert is_public(readers, nonreaders) is public


def test_public_fields_follow_field_readers_and_the_note() -> None:
    note = {
        "id": "n1", "readers": ["everyone"], "nonreaders": None,
        "content": {
            "title": {"value": "t"},
            "authors": {"value": ["A"], "readers": [V, f"{V}/Submission1/Authors"]},
            "abstract": {"value": "a", "readers": ["everyone"]},
            "TLDR": {"value": "x", "readers": "everyone"},
            "pdf": {"value": "/pdf/x.pdf", "nonreaders": ["everyone"]},
        },
    }  # fmt: skip
    assert public_content_fields(note) == {"title", "abstract"}
    assert public_content_fields({**note, "nonreaders": ["everyone"]}) == set()
    assert public_content_fields({**note, "readers": [V]}) == set()


def test_acceptance_by_options_else_by_a_leading_accept() -> None:
    bare = VenueSettings.from_group({"id": V, "content": {}})
    empty = VenueSettings.from_group(
        {"id": V, "content": {"accept_decision_options": {"value": ""}}}
    )
    for settings in (bare, empty):
        assert settings.accept_decision_options is None
        assert settings.is_accepting("Accept (Poster)") and settings.is_accepting(" accept: oral")
        assert not settings.is_accepting("Not Accepted") and not settings.is_accepting("Reject")
    listed = VenueSettings.from_group(
        {"id": V, "content": {"accept_decision_options": {"value": ["Accept (Oral)", "Spotlight"]}}}
    )
    assert listed.is_accepting("Spotlight") and not listed.is_accepting("Accept (Poster)")


# --------------------------------------------------------------------------- helpers


def site_config(folder: Path, emu: Emulator) -> Path:
    site = folder / "site"
    return write_config(
        folder, emu, extra=f'[website]\noutput_dir = "{site}"\nformats = ["json", "yaml", "csv"]'
    )


def site_text(folder: Path) -> str:
    """Every website file, as one text to search."""
    files = sorted(p for p in (folder / "site").rglob("*") if p.is_file())
    assert files, "no website file written"
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


def papers(folder: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((folder / "site" / "papers.json").read_text(encoding="utf-8"))
    return {p["id"]: p for p in data}


def view_rows(db: Path) -> dict[str, dict[str, Any]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return {r["forum_id"]: dict(r) for r in con.execute("SELECT * FROM accepted_papers")}
    finally:
        con.close()


def pull(s: Setup) -> None:
    done = s.cli("pull", "--json")
    assert done.returncode == 0, done.stderr


@pytest.fixture
def held() -> Iterator[Emulator]:
    """A venue whose decisions are posted but not released: chairs only, venueid unchanged."""
    with Emulator(dataset="bgpt", seed=7, phase="review", hold_decisions=True) as emu:
        emu.advance("decision")
        yield emu


# --------------------------------------------------------------------------- (a)


def test_unreleased_decisions_stay_off_the_website_until_released(
    tmp_path: Path, held: Emulator
) -> None:
    s = Setup(held, tmp_path, site_config(tmp_path, held), tmp_path / "orsync.db")
    truth = held.truth("chair")["submissions"]
    decided = {f: t for f, t in truth.items() if t["decision"] and t["status"] == "active"}
    will_accept = {f for f, t in decided.items() if t["decision"].startswith("Accept")}
    assert will_accept and len(decided) > len(will_accept), "the venue must hold both kinds"
    hidden_authors = {
        a for t in truth.values() for a in [*(t["authors"] or []), *(t["authorids"] or [])]
    }
    assert hidden_authors

    pull(s)
    text = site_text(tmp_path)
    leaked = sorted(a for a in hidden_authors if a in text)
    assert not leaked, leaked[:5]
    assert papers(tmp_path) == {} and view_rows(s.db) == {}
    assert_mirror_equals_truth(s.db, held.truth("chair"))  # decisions kept, statuses active
    status = json.loads(s.cli("status", "--json").stdout)
    assert status["decided_unreleased"] == {
        "accept": len(will_accept),
        "reject": len(decided) - len(will_accept),
    }
    assert "accepted" not in status["submissions"]
    report = json.loads(s.cli("report", "--json", "--html", str(tmp_path / "r.html")).stdout)
    assert report["decided_unreleased"] == status["decided_unreleased"]

    assert held.release_decisions() == len(decided)
    pull(s)
    assert_mirror_equals_truth(s.db, held.truth("chair"))
    published = papers(tmp_path)
    assert set(published) == will_accept
    after = held.truth("chair")["submissions"]
    for forum, paper in published.items():
        assert paper["authors"] == after[forum]["authors"]  # revealed on release
        assert paper["decision"] == after[forum]["decision"]
    status = json.loads(s.cli("status", "--json").stdout)
    assert status["decided_unreleased"] == {"accept": 0, "reject": 0}


# --------------------------------------------------------------------------- (b)


def test_not_accepted_is_never_accepted_without_accept_options(tmp_path: Path) -> None:
    with Emulator(dataset="bgpt", seed=7, phase="review") as emu:
        assert "accept_decision_options" not in emu.venue._group()["content"]
        s = Setup(emu, tmp_path, site_config(tmp_path, emu), tmp_path / "orsync.db")
        active = sorted(
            f for f, t in emu.truth("chair")["submissions"].items() if t["status"] == "active"
        )
        rejected, public_unreleased, accepted = active[:3]
        emu.set_decision(rejected, "Not Accepted")  # released: venueid .../Rejected_Submission
        note = emu.set_decision(public_unreleased, "Not Accepted", release=False)
        emu.set_readers(note, ["everyone"])  # a public decision, venueid still .../Submission
        emu.set_decision(accepted, "Accept (Poster)")  # released: venueid is the venue id
        pull(s)
        published = papers(tmp_path)
        assert set(published) == {accepted} and set(view_rows(s.db)) == {accepted}
        assert published[accepted]["decision"] == "Accept (Poster)"
        assert published[accepted]["presentation"] == "poster"
        assert_mirror_equals_truth(s.db, emu.truth("chair"))
        status = json.loads(s.cli("status", "--json").stdout)
        assert (
            status["decided_unreleased"]["reject"] == 1
            and status["decided_unreleased"]["accept"] == 0
        )


# --------------------------------------------------------------------------- (c)


def _marker(field: str, value: Any, token: str) -> Any:
    """A value unique to this paper and field, of the same shape as the original."""
    if isinstance(value, list):
        return [f"{field}-{token}-item{i}" for i in range(max(1, len(value)))]
    if isinstance(value, str) and value.startswith("/"):
        return f"/{field}/{token}.pdf"  # file fields keep their path form
    return f"{field}-{token}-value"


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def test_a_field_is_published_only_when_everyone_may_read_it(setup: Setup) -> None:
    emu = setup.emu
    setup = Setup(emu, setup.dir, site_config(setup.dir, emu), setup.db)
    truth = emu.truth("chair")["submissions"]
    paper = sorted(f for f, t in truth.items() if t["status"] == "accepted")[0]
    note = emu.venue.notes[paper]
    number = note["number"]
    # Unique values for every content field but the status, so a hit is this field's value.
    markers = {
        field: _marker(field, entry["value"], f"mk{number}")
        for field, entry in note["content"].items()
        if field not in ("venueid",) and entry.get("value") is not None
    }
    emu.edit_content(paper, **markers)
    pull(setup)

    def where(field: str) -> tuple[bool, bool]:
        """Does this field's value show in a website file / in the paper's view row?"""
        text = site_text(setup.dir)
        row = json.dumps(view_rows(setup.db).get(paper, {}), ensure_ascii=False)
        wanted = _strings(markers[field])
        return any(w in text for w in wanted), any(w in row for w in wanted)

    reaching = {f for f in markers if any(where(f))}
    # Not vacuous: what papers.json is documented to carry reaches it from these fields.
    assert {"title", "authors", "authorids", "keywords", "abstract", "TLDR", "pdf"} <= reaching
    restricted = [V, f"{V}/Submission{number}/Authors"]
    for field in sorted(reaching):
        emu.set_readers(paper, restricted, field=field)
        pull(setup)
        assert paper in papers(setup.dir) and paper in view_rows(setup.db), field
        assert where(field) == (False, False), f"{field} published while its readers are restricted"
        others = sorted(reaching - {field})
        assert all(any(where(f)) for f in others), field  # only that field went private
        emu.set_readers(paper, ["everyone"], field=field)
    pull(setup)
    assert all(any(where(f)) for f in reaching)

    # The decision: published only when the decision note and its field are public.
    decision_note = next(
        r
        for r, v in emu.truth("chair")["replies"].items()
        if v["forum"] == paper and v["kind"] == "decision"
    )
    decision = truth[paper]["decision"]
    assert papers(setup.dir)[paper]["decision"] == decision
    emu.set_readers(decision_note, [f"{V}/Program_Chairs"], field="decision")
    pull(setup)
    assert (
        papers(setup.dir)[paper]["decision"] is None
        and view_rows(setup.db)[paper]["decision"] is None
    )
    emu.set_readers(decision_note, ["everyone"], field="decision")
    emu.set_readers(decision_note, [f"{V}/Program_Chairs"])
    pull(setup)
    assert papers(setup.dir)[paper]["decision"] is None
    emu.set_readers(decision_note, ["everyone"])
    pull(setup)
    assert papers(setup.dir)[paper]["decision"] == decision


# --------------------------------------------------------------------------- (d)


def test_nonreaders_and_malformed_readers_keep_a_paper_private(setup: Setup) -> None:
    emu = setup.emu
    setup = Setup(emu, setup.dir, site_config(setup.dir, emu), setup.db)
    truth = emu.truth("chair")["submissions"]
    accepted = sorted(f for f, t in truth.items() if t["status"] == "accepted")
    excluded, string_readers, odd_item, string_nonreaders, null_nonreaders = accepted[:5]
    emu.set_readers(excluded, nonreaders=["everyone"])
    emu.set_readers(string_readers, readers="everyone")
    emu.set_readers(odd_item, readers=["everyone", {"group": "x"}])
    emu.set_readers(string_nonreaders, nonreaders="nobody")
    with emu.venue.lock:  # a null nonreaders excludes no one
        emu.venue.notes[null_nonreaders]["nonreaders"] = None
        emu.venue._touch(null_nonreaders)
    pull(setup)
    private = {excluded, string_readers, odd_item, string_nonreaders}
    published = papers(setup.dir)
    assert not private & set(published) and not private & set(view_rows(setup.db))
    assert set(published) == set(accepted) - private
    text = site_text(setup.dir)
    assert not [f for f in private if f in text]
    assert not [truth[f]["title"] for f in private if truth[f]["title"] in text]


# --------------------------------------------------------------------------- migration 0002


def _raw(note_id: str, venueid: str | None = None, **extra: Any) -> dict[str, Any]:
    content: dict[str, Any] = {
        "title": {"value": f"Title {note_id}"},
        "authors": {"value": [f"Hidden {note_id}"], "readers": [V, f"{V}/Submission1/Authors"]},
        "abstract": {"value": f"Abstract {note_id}"},
    }
    if venueid:
        content["venueid"] = {"value": venueid}
    return {"id": note_id, "forum": note_id, "domain": V, "invitations": [f"{V}/-/Submission"],
            "readers": ["everyone"], "content": content, **extra}  # fmt: skip


def _migrate_a_0001_store(url: str) -> None:
    """A store written by revision 0001 (old statuses, no visibility), then migrated to head."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from orsync.store import _alembic_config, open_store

    engine = create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0001")
    released = _raw("Released01", V)
    unreleased = _raw("Unreleas01", f"{V}/Submission")
    decision = {"id": "Decision01", "forum": "Released01", "replyto": "Released01", "domain": V,
                "invitations": [f"{V}/Submission1/-/Decision"], "readers": ["everyone"],
                "content": {"decision": {"value": "Accept (Oral)"}}}  # fmt: skip
    private_decision = {**decision, "id": "Decision02", "forum": "Unreleas01", "replyto": "Unreleas01",
                        "readers": [f"{V}/Program_Chairs"]}  # fmt: skip
    insert = text(
        "INSERT INTO note (id, forum, replyto, kind, title, authors, abstract, venueid, status, "
        "decision, presentation, raw, digest, deleted, tmdate) VALUES (:id, :forum, :replyto, :kind, "
        ":title, :authors, :abstract, :venueid, :status, :decision, :presentation, :raw, 'd', false, 1)"
    )
    rows = [
        (released, "submission", "accepted", "Accept (Oral)", "oral"),
        (unreleased, "submission", "accepted", "Accept (Poster)", "poster"),  # the old rule
        (decision, "decision", None, "Accept (Oral)", None),
        (private_decision, "decision", None, "Accept (Poster)", None),
    ]
    with engine.begin() as conn:
        for raw, kind, status, dec, pres in rows:
            c = raw["content"]
            conn.execute(insert, {
                "id": raw["id"], "forum": raw["forum"], "replyto": raw.get("replyto"), "kind": kind,
                "title": c.get("title", {}).get("value"), "abstract": c.get("abstract", {}).get("value"),
                "authors": json.dumps(c["authors"]["value"]) if "authors" in c else None,
                "venueid": c.get("venueid", {}).get("value"), "status": status, "decision": dec,
                "presentation": pres, "raw": json.dumps(raw),
            })  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO sync_state (key, value) VALUES ('watermark_ms', '1'), ('cycles_since_full', '0')"
            )
        )
        assert len(conn.execute(text("SELECT * FROM accepted_papers")).all()) == 2  # the old view
    engine.dispose()
    if url.startswith("sqlite:///"):  # made by plain SQLAlchemy under the test's umask
        for made in Path(url.removeprefix("sqlite:///")).parent.glob("orsync.db*"):
            made.chmod(0o600)

    open_store(url).dispose()  # migrates to head
    engine = create_engine(url)
    with engine.connect() as conn:
        after = {
            r["forum_id"]: dict(r)
            for r in conn.execute(text("SELECT * FROM accepted_papers")).mappings()
        }
        status = conn.execute(text("SELECT status FROM note WHERE id = 'Unreleas01'")).scalar()
        full = conn.execute(
            text("SELECT value FROM sync_state WHERE key = 'full_required'")
        ).scalar()
    engine.dispose()
    assert set(after) == {"Released01"}
    row = after["Released01"]
    assert row["title"] == "Title Released01" and row["abstract"] == "Abstract Released01"
    assert row["authors"] is None  # restricted field, held back
    assert row["decision"] == "Accept (Oral)"
    assert status == "active" and full == "0002"


def test_migration_0002_backfills_visibility_and_forces_a_full_cycle(
    tmp_path: Path, emulator: Emulator
) -> None:
    _migrate_a_0001_store(f"sqlite:///{tmp_path / 'orsync.db'}")
    # The next cycle is full (it recomputes every forum with the venue's settings), then not.
    config = write_config(tmp_path, emulator)
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    first = s.cli("pull", "--json", "--force")  # the rows made up above are not in that venue
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["mode"] == "full"
    second = s.cli("pull", "--json")
    assert json.loads(second.stdout)["mode"] == "incremental"


@pytest.mark.skipif(shutil.which("initdb") is None, reason="PostgreSQL server binaries not on PATH")
def test_migration_0002_on_postgresql(postgres_url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:  # a database of its own, so other tests' stores are untouched
        conn.execute(text("DROP DATABASE IF EXISTS migration0002"))
        conn.execute(text("CREATE DATABASE migration0002"))
    engine.dispose()
    _migrate_a_0001_store(postgres_url.replace("/postgres?", "/migration0002?"))
