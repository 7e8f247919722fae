"""The OpenReview emulator, exercised over real loopback HTTP with the real openreview-py client,
and `orsync emulator`'s options, banner and refusals as a real process."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import openreview
import pytest
import requests
from openreview import tools
from openreview.api import OpenReviewClient

from conftest import run_cli
from helpers import one_line_error
from orsync.emulator import Emulator, parse_fault_spec
from orsync.emulator.dataset import generate

# One worker runs this module, so its module-scoped fixture is built once.
pytestmark = pytest.mark.xdist_group("emulator")

BGPT = "ICLR.cc/2024/Workshop/BGPT"
SUB_INV = f"{BGPT}/-/Submission"

STATUS_BY_SUFFIX = {
    "Submission": "active",
    "Rejected_Submission": "rejected",
    "Withdrawn_Submission": "withdrawn",
    "Desk_Rejected_Submission": "desk_rejected",
}
KIND_BY_INVITATION = {
    "Official_Review": "review",
    "Meta_Review": "meta_review",
    "Decision": "decision",
    "Official_Comment": "comment",
    "Withdrawal": "withdrawal",
    "Desk_Rejection": "desk_rejection",
    "Camera_Ready_Revision": "camera_ready",
}


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """Shared read-only venue; tests that mutate build their own."""
    with Emulator(dataset="bgpt", seed=1) as e:
        yield e


@pytest.fixture
def fresh() -> Iterator[Emulator]:
    with Emulator(dataset="bgpt", seed=7, size=30) as e:
        yield e


def guest(e: Emulator) -> OpenReviewClient:
    return OpenReviewClient(baseurl=e.url)


def chair(e: Emulator) -> OpenReviewClient:
    return OpenReviewClient(baseurl=e.url, username=e.chair_username, password=e.chair_password)


def raw(e: Emulator, path: str, token: str | None = None, **params: Any) -> requests.Response:
    """One request with no retry layer, so faults are observed as sent."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(e.url + path, params=params, headers=headers, timeout=10)


def served(e: Emulator, client: OpenReviewClient) -> dict[str, Any]:
    """Rebuild truth-shaped data from what the server actually serves to `client`."""
    notes = client.get_all_notes(domain=e.venue_id)
    subs: dict[str, Any] = {}
    replies: dict[str, Any] = {}
    for n in notes:
        if n.id == n.forum:
            venueid = n.content["venueid"]["value"]
            if venueid == e.venue_id:
                status = "accepted"
            else:
                status = STATUS_BY_SUFFIX[venueid.rsplit("/", 1)[1]]
            subs[n.id] = {
                "number": n.number,
                "title": n.content["title"]["value"],
                "status": status,
                "authors": n.content.get("authors", {}).get("value"),
                "authorids": n.content.get("authorids", {}).get("value"),
            }
        else:
            kind = KIND_BY_INVITATION[n.invitations[0].rsplit("/-/", 1)[1]]
            replies[n.id] = {"forum": n.forum, "replyto": n.replyto, "kind": kind}
    return {"submissions": subs, "replies": replies}


def assert_truth_matches(e: Emulator, reader: str) -> None:
    client = chair(e) if reader == "chair" else guest(e)
    got = served(e, client)
    truth = e.truth(reader)
    assert set(got["submissions"]) == set(truth["submissions"])
    assert set(got["replies"]) == set(truth["replies"])
    for sid, s in got["submissions"].items():
        t = truth["submissions"][sid]
        for key in ("number", "title", "status", "authors", "authorids"):
            assert s[key] == t[key], (sid, key)
    for rid, r in got["replies"].items():
        t = truth["replies"][rid]
        assert (r["forum"], r["replyto"], r["kind"]) == (t["forum"], t["replyto"], t["kind"])


# --------------------------------------------------------------------------- dataset


def test_generator_is_reproducible_and_messy() -> None:
    a, b = generate("bgpt", 3), generate("bgpt", 3)
    assert [s.id for s in a.submissions] == [s.id for s in b.submissions]
    assert generate("bgpt", 4).submissions[0].id != a.submissions[0].id
    subs = a.submissions
    assert len(subs) == 120
    outcomes = [s.outcome for s in subs]
    assert outcomes.count("oral") == 5 and outcomes.count("poster") == 60
    assert outcomes.count("withdrawn") == 4 and outcomes.count("desk_rejected") == 3
    titles = " ".join(s.title for s in subs)
    for needle in (r"\mathcal{O}", "Über", "深度", "🚀", "\u0301"):
        assert needle in titles
    assert any(isinstance(s.keywords, str) for s in subs)
    assert any(isinstance(s.keywords, list) for s in subs)
    ids = [aid for s in subs for aid in s.authorids]
    assert any(i.startswith("~") for i in ids) and any("@" in i for i in ids)
    assert len(ids) > len(set(ids))  # authors recur across papers
    ratings = [r.content["rating"]["value"] for s in subs for r in s.replies if r.kind == "review"]
    assert any(isinstance(r, int) for r in ratings) and any(isinstance(r, str) for r in ratings)
    assert any(len([r for r in s.replies if r.kind == "review"]) < 3 for s in subs)
    comments = [r for s in subs for r in s.replies if r.kind == "comment"]
    comment_ids = {c.id for c in comments}
    assert any(c.replyto in comment_ids for c in comments)
    assert any(not c.public for c in comments)
    all_ids = [s.id for s in subs] + [r.id for s in subs for r in s.replies]
    assert any(len(i) == 11 for i in all_ids)
    assert all(len(i) in (10, 11) for i in all_ids)


# ------------------------------------------------------------------------ read paths


def test_group_and_unknown_group(emu: Emulator) -> None:
    g = guest(emu).get_group(BGPT)
    assert g.content["submission_venue_id"]["value"] == f"{BGPT}/Submission"
    assert "accept_decision_options" not in g.content
    assert "meta_review_name" not in g.content
    with pytest.raises(openreview.OpenReviewException) as exc:
        guest(emu).get_group("No/Such/Venue")
    assert exc.value.args[0]["name"] == "NotFoundError"
    r = raw(emu, "/groups", id="No/Such/Venue")
    assert r.status_code == 404 and r.headers["Content-Type"].startswith("application/json")


def test_guest_get_all_notes_with_replies(emu: Emulator) -> None:
    notes = guest(emu).get_all_notes(invitation=SUB_INV, details="replies")
    truth = emu.truth("guest")
    assert {n.id for n in notes} == set(truth["submissions"])
    reply_ids = {r["id"] for n in notes for r in n.details["replies"]}
    assert reply_ids == set(truth["replies"])
    for n in notes:
        t = truth["submissions"][n.id]
        assert n.content["title"]["value"] == t["title"]
        if t["status"] == "accepted":
            assert n.content["authors"]["value"] == t["authors"]
            assert "readers" not in n.content["authors"]
        else:
            assert "authors" not in n.content and "authorids" not in n.content
            assert t["authors"] is None
        assert n.version == 2 if hasattr(n, "version") else True
    # every reply is public for the guest
    assert all(r["readers"] == ["everyone"] for n in notes for r in n.details["replies"])


def test_chair_sees_everything(emu: Emulator) -> None:
    c = chair(emu)
    notes = c.get_all_notes(invitation=SUB_INV, details="replies")
    truth = emu.truth("chair")
    assert {n.id for n in notes} == set(truth["submissions"])
    assert {r["id"] for n in notes for r in n.details["replies"]} == set(truth["replies"])
    hidden = [n for n in notes if n.content["venueid"]["value"] != BGPT]
    assert hidden and all("authors" in n.content for n in hidden)
    assert hidden[0].content["authors"]["readers"] == [
        BGPT,
        f"{BGPT}/Submission{hidden[0].number}/Authors",
    ]
    private = [r for n in notes for r in n.details["replies"] if "everyone" not in r["readers"]]
    assert private
    assert len(truth["replies"]) > len(emu.truth("guest")["replies"])


def test_truth_matches_served_data(emu: Emulator) -> None:
    assert_truth_matches(emu, "guest")
    assert_truth_matches(emu, "chair")
    truth = emu.truth("guest")["submissions"].values()
    statuses = [s["status"] for s in truth]
    assert statuses.count("withdrawn") == 4 and statuses.count("desk_rejected") == 3
    assert sum(s["presentation"] == "oral" for s in truth) == 5
    assert all(s["decision"] for s in truth if s["status"] in ("accepted", "rejected"))


def test_paging_after_offset_limit_count(emu: Emulator) -> None:
    c = guest(emu)
    walked = list(tools.efficient_iterget(c.get_notes, invitation=SUB_INV, limit=7))
    ids = [n.id for n in walked]
    assert len(ids) == len(set(ids)) == 120
    assert ids == sorted(ids)
    r = raw(emu, "/notes", invitation=SUB_INV, limit=10, offset=5)
    body = r.json()
    assert body["count"] == 120 and [n["id"] for n in body["notes"]] == ids[5:15]
    r = raw(emu, "/notes", invitation=SUB_INV, after=ids[-1], count="false")
    assert r.json()["notes"] == [] and "count" in r.json()
    r = raw(emu, "/notes", invitation=SUB_INV, sort="number:desc", limit=3)
    assert [n["number"] for n in r.json()["notes"]] == [120, 119, 118]
    after = r.json()["notes"][-1]["id"]
    r = raw(emu, "/notes", invitation=SUB_INV, sort="number:desc", limit=2, after=after)
    assert [n["number"] for n in r.json()["notes"]] == [117, 116]
    assert raw(emu, "/notes", invitation=SUB_INV, limit=5000).status_code == 400


def test_filters_select_and_details(emu: Emulator) -> None:
    c = guest(emu)
    sub = c.get_notes(invitation=SUB_INV, number=3)[0]
    forum = c.get_notes(forum=sub.id)
    assert forum[0].id == sub.id or sub.id in {n.id for n in forum}
    assert all(n.forum == sub.id for n in forum)
    direct = c.get_notes(replyto=sub.id)
    assert all(n.replyto == sub.id for n in direct)
    accepted = c.get_notes(content={"venueid": BGPT})
    assert len(accepted) == 65
    both = raw(emu, "/notes", **{"content.venueid": f"{BGPT},{BGPT}/Withdrawn_Submission"})
    assert both.json()["count"] == 69
    r = raw(emu, "/notes", id=sub.id, details="directReplies,replyCount")
    d = r.json()["notes"][0]["details"]
    assert d["replyCount"] >= len(d["directReplies"]) == len(direct)
    r = raw(emu, "/notes", invitation=SUB_INV, select="id,content.title", limit=2)
    n0 = r.json()["notes"][0]
    assert set(n0) == {"id", "content"} and set(n0["content"]) == {"title"}
    assert c.get_note(sub.id).id == sub.id
    pdf = c.get_attachment("pdf", id=sub.id)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    edits = raw(emu, "/notes/edits", **{"note.id": sub.id}).json()
    assert edits["edits"][0]["note"]["id"] == sub.id
    r = raw(emu, "/no/such/route")
    assert r.status_code == 404 and r.json()["name"] == "NotFoundError"


def test_tmdates_strictly_increase(emu: Emulator) -> None:
    notes = chair(emu).get_all_notes(domain=BGPT)
    tm = [n.tmdate for n in notes]
    assert len(set(tm)) == len(tm)


@pytest.mark.slow
def test_large_iclr_venue_generates_and_serves() -> None:
    with Emulator(dataset="iclr", seed=2) as e:
        assert len(e.truth("chair")["submissions"]) == 7500
        r = raw(
            e,
            "/notes",
            invitation="ICLR.cc/2024/Conference/-/Submission",
            details="replies",
            limit=1000,
        )
        body = r.json()
        assert body["count"] == 7500 and len(body["notes"]) == 1000
        assert sum(len(n["details"]["replies"]) for n in body["notes"]) > 8000
        g = guest(e).get_group("ICLR.cc/2024/Conference")
        assert "meta_review_name" in g.content and "accept_decision_options" in g.content


# ---------------------------------------------------------------------- auth


def test_wrong_password(emu: Emulator) -> None:
    with pytest.raises(openreview.OpenReviewException) as exc:
        OpenReviewClient(baseurl=emu.url, username=emu.chair_username, password="nope")
    err = exc.value.args[0]
    assert err["message"] == "Invalid username or password" and err["status"] == 400
    r = requests.post(
        emu.url + "/login", json={"id": emu.chair_username, "password": "x"}, timeout=5
    )
    assert r.status_code == 400


def test_expired_tokens() -> None:
    with Emulator(size=5, token_ttl_s=0.5) as e:
        c = chair(e)
        c.get_group(BGPT)
        time.sleep(0.6)
        with pytest.raises(openreview.OpenReviewException) as exc:
            c.get_group(BGPT)
        assert exc.value.args[0]["name"] == "TokenExpiredError"
        assert exc.value.args[0]["status"] == 401
    with Emulator(size=5) as e:
        c = chair(e)
        e.faults.inject("expire_tokens")
        with pytest.raises(openreview.OpenReviewException) as exc:
            c.get_notes(invitation=SUB_INV)
        assert exc.value.args[0]["name"] == "TokenExpiredError"
        assert e.requests[-1].status == 401
        assert e.requests[-1].reader == e.chair_username
        c.login_user(e.chair_username, e.chair_password)  # a new token works again
        assert len(c.get_notes(invitation=SUB_INV)) == 5


# ---------------------------------------------------------------------- faults


def test_fault_kinds_raw() -> None:
    with Emulator(size=5) as e:
        e.faults.inject("429", times=2, retry_after=3)
        for _ in range(2):
            r = raw(e, "/notes", invitation=SUB_INV)
            assert r.status_code == 429 and r.headers["Retry-After"] == "3"
            body = r.json()
            assert body["name"] == "RateLimitError" and body["status"] == 429
            assert {"limit", "remaining", "resetTime", "reqId"} <= set(body["details"])
        assert raw(e, "/notes", invitation=SUB_INV).status_code == 200
        e.faults.inject("500")
        r = raw(e, "/groups", id=BGPT)
        assert r.status_code == 500 and r.json()["status"] == 500
        e.faults.inject("502")
        e.faults.inject("503")
        assert raw(e, "/notes").status_code == 502
        r = raw(e, "/notes")
        assert r.status_code == 503 and r.headers["Content-Type"].startswith("text/html")
        e.faults.inject("drop")
        with pytest.raises(requests.exceptions.ConnectionError):
            raw(e, "/notes")
        e.faults.inject("slow", delay=0.3)
        t = time.monotonic()
        assert raw(e, "/notes").status_code == 200
        assert time.monotonic() - t >= 0.3
        # /login is untouched unless asked for
        e.faults.inject("500")
        chair(e)
        assert raw(e, "/notes").status_code == 500
        e.faults.inject("503", path="/login")
        r = requests.post(e.url + "/login", json={"id": "x", "password": "y"}, timeout=5)
        assert r.status_code == 503
        faults = [rec.fault for rec in e.requests]
        for kind in ("429", "500", "502", "503", "drop", "slow"):
            assert kind in faults
        assert [rec.status for rec in e.requests if rec.fault == "drop"] == [0]
        e.faults.inject("500", times=5)
        e.faults.clear()
        assert raw(e, "/notes").status_code == 200


def test_openreview_client_rides_out_a_short_429() -> None:
    with Emulator(size=5) as e:
        e.faults.inject("429", retry_after=0)
        e.faults.inject("502")
        notes = guest(e).get_all_notes(invitation=SUB_INV)
        assert len(notes) == 5
        assert [r.status for r in e.requests[:3]] == [429, 502, 200]


def test_parse_fault_spec() -> None:
    specs = parse_fault_spec("429x3@retry_after=1,500x5,drop,slow@delay=2&path=/login")
    assert [(s.kind, s.times) for s in specs] == [("429", 3), ("500", 5), ("drop", 1), ("slow", 1)]
    assert specs[0].params == {"retry_after": 1.0}
    assert specs[3].params == {"delay": 2.0, "path": "/login"}
    assert parse_fault_spec("") == []
    for bad in ("418", "429x", "429x0", "slow@delay"):
        with pytest.raises(ValueError):
            parse_fault_spec(bad)


# -------------------------------------------------------------------- mutations


def test_phases_advance() -> None:
    with Emulator(size=20, phase="submission") as e:
        notes = chair(e).get_all_notes(domain=BGPT)
        assert len(notes) == 20
        assert {n.content["venueid"]["value"] for n in notes} == {f"{BGPT}/Submission"}
        assert all(n.pdate is None for n in notes)
        e.advance("review")
        kinds = {r["kind"] for r in e.truth("chair")["replies"].values()}
        assert "review" in kinds and "decision" not in kinds
        assert_truth_matches(e, "guest")
        e.advance("camera_ready")
        kinds = {r["kind"] for r in e.truth("chair")["replies"].values()}
        assert {"decision", "camera_ready"} <= kinds
        assert_truth_matches(e, "guest")
        accepted = guest(e).get_notes(content={"venueid": BGPT})
        assert accepted and all(n.pdate for n in accepted)
        with pytest.raises(ValueError):
            e.advance("review")


def test_mintmdate_polling(fresh: Emulator) -> None:
    c = chair(fresh)
    high = max(n.tmdate for n in c.get_all_notes(domain=BGPT))
    fid = next(iter(fresh.truth("chair")["submissions"]))
    fresh.edit_content(fid, title="Nouveau titre — ✓")
    rid = fresh.add_review(fid, rating="6: marginally above the acceptance threshold")
    r = raw(fresh, "/notes", domain=BGPT, mintmdate=high + 1, sort="tmdate:asc", trash="true")
    got = r.json()["notes"]
    assert [n["id"] for n in got] == [fid, rid]
    assert got[0]["content"]["title"]["value"] == "Nouveau titre — ✓"
    assert fresh.truth("chair")["replies"][rid]["rating"] == 6.0


def test_mintmdate_ignored_when_not_honoured() -> None:
    with Emulator(size=5, honour_mintmdate=False) as e:
        r = raw(e, "/notes", domain=BGPT, mintmdate=2**50)
        assert r.json()["count"] == len(e.truth("guest")["submissions"]) + len(
            e.truth("guest")["replies"]
        )


def test_delete_and_trash(fresh: Emulator) -> None:
    truth = fresh.truth("guest")
    rid = next(iter(truth["replies"]))
    fresh.delete_note(rid)
    c = guest(fresh)
    with pytest.raises(openreview.OpenReviewException) as exc:
        c.get_note(rid)
    assert exc.value.args[0]["name"] == "NotFoundError"
    assert rid not in {n.id for n in c.get_all_notes(domain=BGPT)}
    trashed = c.get_all_notes(domain=BGPT, trash=True)
    note = next(n for n in trashed if n.id == rid)
    assert note.ddate and note.ddate == note.tmdate
    assert raw(fresh, "/notes", id=rid, trash="true").json()["notes"][0]["ddate"]
    assert rid not in fresh.truth("guest")["replies"]
    assert_truth_matches(fresh, "guest")


def test_hide_and_private_comments(fresh: Emulator) -> None:
    fid = next(iter(fresh.truth("chair")["submissions"]))
    public = fresh.add_comment(fid)
    nested_private = fresh.add_comment(fid, replyto=public, public=False)
    g_ids = {n.id for n in guest(fresh).get_notes(forum=fid)}
    assert public in g_ids and nested_private not in g_ids
    c_notes = {n.id: n for n in chair(fresh).get_notes(forum=fid)}
    assert c_notes[nested_private].replyto == public
    fresh.hide_note(public)
    assert public not in {n.id for n in guest(fresh).get_notes(forum=fid)}
    assert public in {n.id for n in chair(fresh).get_notes(forum=fid)}
    assert raw(fresh, f"/notes?id={public}").status_code == 404
    assert_truth_matches(fresh, "guest")
    assert_truth_matches(fresh, "chair")


def test_decisions_withdrawals_over_http(fresh: Emulator) -> None:
    new = fresh.add_submission()
    g = guest(fresh)
    n = g.get_note(new)
    assert n.content["venueid"]["value"] == f"{BGPT}/Submission" and "authors" not in n.content
    fresh.set_decision(new, "Accept (Oral)")
    n = g.get_note(new)
    assert n.content["venueid"]["value"] == BGPT and n.content["authors"]["value"]
    assert "Oral" in n.content["venue"]["value"] and n.pdate
    t = fresh.truth("guest")["submissions"][new]
    assert (t["status"], t["decision"], t["presentation"]) == ("accepted", "Accept (Oral)", "oral")
    assert fresh.flip_decision(new) == "Reject"
    n = g.get_note(new)
    assert n.content["venueid"]["value"] == f"{BGPT}/Rejected_Submission"
    assert "authors" not in n.content
    decisions = [x for x in g.get_notes(forum=new) if x.invitations[0].endswith("/-/Decision")]
    assert len(decisions) == 1 and decisions[0].content["decision"]["value"] == "Reject"
    fresh.withdraw(new)
    assert g.get_note(new).content["venueid"]["value"] == f"{BGPT}/Withdrawn_Submission"
    other = fresh.add_submission()
    fresh.desk_reject(other)
    kinds = {r["kind"] for r in fresh.truth("guest")["replies"].values() if r["forum"] == other}
    assert kinds == {"desk_rejection"}
    assert_truth_matches(fresh, "guest")
    assert_truth_matches(fresh, "chair")


def test_random_mutations_keep_truth_consistent() -> None:
    with Emulator(size=15, phase="review", seed=11) as e:
        rng = random.Random(5)
        seen_tm = 0
        for _ in range(40):
            desc = e.random_mutation(rng)
            assert isinstance(desc, str) and desc
            latest = max(n["tmdate"] for n in e.venue.notes.values())
            assert latest > seen_tm
            seen_tm = latest
        assert_truth_matches(e, "guest")
        assert_truth_matches(e, "chair")


def test_control_surface(fresh: Emulator) -> None:
    base = fresh.url + "/_emulator"
    info = requests.get(base + "/info", timeout=5).json()
    assert info["venue_id"] == BGPT and "password" not in json.dumps(info)
    fid = next(iter(fresh.truth("guest")["submissions"]))
    r = requests.post(base + "/mutate", json={"op": "withdraw", "forum": fid}, timeout=5)
    assert r.status_code == 200
    truth = requests.get(base + "/truth", params={"reader": "guest"}, timeout=5).json()
    assert truth["submissions"][fid]["status"] == "withdrawn"
    r = requests.post(base + "/faults", json={"spec": "429x2@retry_after=0"}, timeout=5)
    assert r.json()["pending"][0]["remaining"] == 2
    assert raw(fresh, "/notes").status_code == 429
    requests.post(base + "/faults", json={"clear": True}, timeout=5)
    assert raw(fresh, "/notes").status_code == 200
    time.sleep(0.2)  # an answer is logged just after it is sent
    log = requests.get(base + "/requests", timeout=5).json()
    assert [x["status"] for x in log][-2:] == [429, 200]
    assert all(not x["path"].startswith("/_emulator") for x in log)
    r = requests.post(base + "/advance", json={"phase": "camera_ready"}, timeout=5)
    assert r.json()["phase"] == "camera_ready"
    r = requests.post(base + "/mutate", json={"op": "nope"}, timeout=5)
    assert r.status_code == 400
    requests.post(base + "/clear_requests", timeout=5)
    assert fresh.requests == []


def test_client_built_from_a_token(emu: Emulator) -> None:
    token = chair(emu).token
    c = OpenReviewClient(baseurl=emu.url, token=token)
    assert len(c.get_notes(invitation=SUB_INV, limit=3)) == 3


def test_serve_forever_cli_entry() -> None:
    code = (
        "from orsync.emulator import serve_forever;"
        "serve_forever(port=0, size=4, faults='429@retry_after=0')"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert BGPT in line and "chair=" in line and "password" not in line
        url = line.split()[2]
        assert requests.get(url + "/notes", timeout=5).status_code == 429
        assert requests.get(url + "/notes", timeout=5).json()["count"] == 4 * 1 + len(
            requests.get(url + "/_emulator/truth", timeout=5).json()["replies"]
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_concurrent_reads_during_mutations() -> None:
    import threading

    with Emulator(size=20, seed=3) as e:
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                c = chair(e)
                for _ in range(5):
                    notes = c.get_all_notes(invitation=SUB_INV, details="replies")
                    assert all(n.forum == n.id for n in notes)
            except BaseException as exc:  # surfaced in the main thread
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        rng = random.Random(9)
        for _ in range(30):
            e.random_mutation(rng)
        for t in threads:
            t.join(timeout=30)
        assert not errors
        assert_truth_matches(e, "chair")


# -- `orsync emulator` as a chair starts it ----------------------------------------------------

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - what the emulator must refuse unless asked


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--dataset", "neurips"), ("--dataset", "bgpt, iclr")),
        (("--phase", "rebuttal"), ("--phase", "camera_ready")),
        (("--faults", "418x2"), ("--faults", "unknown fault kind")),
        (("--faults", "429xmany"), ("--faults", "repeat count")),
        (("--port", "70000"), ("--port",)),
        (("--host", ALL_INTERFACES), ("--host 0.0.0.0", "--allow-remote")),
        (("--host", "no-such-host.invalid"), ("--host",)),
    ],
)
def test_emulator_bad_options_exit_2(args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    one_line_error(run_cli("emulator", "--port", "0", *args, timeout=60, process=True), 2, *needles)


def test_emulator_port_in_use_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("emulator", "--port", str(port), timeout=60, process=True)
    one_line_error(result, 2, f"port {port}", "in use", "--port 0")


def _banner(*args: str) -> list[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "orsync", "emulator", "--port", "0", "--size", "3", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(5)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return lines


def test_emulator_banner_says_how_to_log_in_and_where_it_listens() -> None:
    lines = _banner()
    first = lines[0].split()
    # The first line stays machine-readable (bench/_emulator.py parses it).
    assert first[:2] == ["orsync", "emulator:"] and first[2].startswith("http://127.0.0.1:")
    assert first[3] == "venue=ICLR.cc/2024/Workshop/BGPT" and first[4].startswith("chair=")
    user = first[4].split("=", 1)[1]
    text = "".join(lines)
    assert f"log in as {user} with password 'chair-password'" in text and "demo password" in text
    port = first[2].rsplit(":", 1)[1]
    assert f"listening on 127.0.0.1:{port}, loopback only" in text


def test_emulator_on_every_interface_only_when_asked_and_says_so() -> None:
    text = "".join(_banner("--host", ALL_INTERFACES, "--allow-remote"))
    assert "listening on 0.0.0.0:" in text and "reachable from other machines" in text


def test_emulator_advance_moves_a_running_emulator_for_rehearsals() -> None:
    """`orsync emulator --help` says how; `orsync emulator advance --port N [--to PHASE]` does it."""
    shown = run_cli("emulator", "--help")
    assert shown.returncode == 0 and "orsync emulator advance --port" in " ".join(
        shown.stdout.split()
    )
    with Emulator(dataset="bgpt", seed=3, phase="review") as emu:
        port = str(emu.listening[1])
        moved = run_cli("emulator", "advance", "--port", port)
        assert moved.returncode == 0, moved.stderr
        assert "review -> decision" in moved.stdout and emu.phase == "decision"
        moved = run_cli("emulator", "advance", "--port", port, "--to", "camera_ready", "--json")
        assert json.loads(moved.stdout)["phase"] == "camera_ready" == emu.phase
        one_line_error(
            run_cli("emulator", "advance", "--port", port, "--to", "review"), 2, "forward only"
        )
        one_line_error(run_cli("emulator", "advance", "--port", port), 2, "last phase")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = str(s.getsockname()[1])
    one_line_error(run_cli("emulator", "advance", "--port", free), 3, "no emulator answers")


# ---------------------------------------------------------------------- messages


def test_messages_from_the_chair_through_openreview_py_and_no_one_else() -> None:
    with Emulator(size=5) as e:
        c = chair(e)
        group = f"{BGPT}/Submission1/Authors"
        answer = c.post_message("Your poster", [group], "Board 3", invitation=f"{BGPT}/-/Edit")
        assert answer["groups"] == [group] and answer["id"]
        assert c.get_message_requests(invitation=f"{BGPT}/-/Edit")[0]["id"] == answer["id"]
        assert [m["message"] for m in e.messages.sent] == ["Board 3"]
        with pytest.raises(openreview.OpenReviewException) as exc:
            c.post_message("x", [f"{BGPT}/Submission999/Authors"], "y")
        assert exc.value.args[0]["status"] == 404
        member = OpenReviewClient(baseurl=e.url)
        member.login_user(e.member_username, e.chair_password)
        with pytest.raises(openreview.OpenReviewException) as exc:
            member.post_message("x", [group], "y")
        assert exc.value.args[0]["name"] == "ForbiddenError"
        assert exc.value.args[0]["status"] == 403
        guest = requests.post(f"{e.url}/messages/requests", json={"groups": [group]}, timeout=5)
        assert guest.status_code == 403
        # A send whose answer is lost took effect all the same.
        e.faults.apply_spec("drop@after=1&path=/messages")
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(
                f"{e.url}/messages/requests",
                json={"groups": [group], "subject": "s", "message": "m"},
                headers={"Authorization": f"Bearer {c.token}"},
                timeout=5,
            )
        assert len(e.messages.sent) == 2
        deadline = time.monotonic() + 5  # logged once the handler is done, after the cut
        while not any(r.fault == "drop" for r in e.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.status for r in e.requests if r.fault == "drop"] == [0]
        assert len(requests.get(f"{e.url}/_emulator/messages", timeout=5).json()) == 2
