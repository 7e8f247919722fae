"""Hosted files (docs/site-files.md#hosted-files): accepted papers' PDFs copied into the site's ``files/`` folder and
linked from the data files, fetched in batches at the pace of the attachments quota, fetched
again only when OpenReview's file changes, removed when the paper leaves, and every answer
checked before it is kept. The CLI runs against the emulator over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Setup, cli_environ, write_config
from helpers import PASSWORD, ServiceProcess, config_for, start
from orsync.emulator import Emulator
from orsync.emulator.server import bomb_member

pytestmark = pytest.mark.timeout(300)

WINDOW_S = 6.0  # "an hour" of the attachments quota
QUOTA = 36  # as recorded from the live service


@pytest.fixture
def site(tmp_path: Path, emulator: Emulator) -> Setup:
    config = write_config(
        tmp_path,
        emulator,
        extra=f'[website]\noutput_dir = "{tmp_path / "site"}"\nfiles = ["pdf"]\n',
    )
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def settle(emu: Emulator) -> list[Any]:
    time.sleep(0.2)  # an answer is logged just after it is sent
    return emu.requests


def downloads(emu: Emulator) -> list[Any]:
    return [r for r in settle(emu) if r.path == "/attachment"]


def pull(s: Setup) -> dict[str, Any]:
    done = s.cli("pull", "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    assert data["outcome"] == "ok"
    return data


def status(s: Setup) -> dict[str, Any]:
    done = s.cli("status", "--json")
    assert done.returncode == 0, done.stderr
    files: dict[str, Any] = json.loads(done.stdout)["files"]
    return files


def papers(s: Setup) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((s.dir / "site" / "papers.json").read_text())
    return data


def hosted(s: Setup) -> dict[str, bytes]:
    folder = s.dir / "site" / "files"
    return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.startswith(".")}


def _epoch(value: Any) -> float:
    """A window time as reported (epoch seconds or ISO text) in epoch seconds."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value)).timestamp()


def accepted_ids(emu: Emulator) -> set[str]:
    subs = emu.truth("guest")["submissions"]
    return {fid for fid, sub in subs.items() if sub["status"] == "accepted"}


def everything_outside_files(root: Path) -> set[str]:
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if "files" not in p.relative_to(root).parts[:2]
    }


def all_hosted(s: Setup) -> None:
    data = pull(s)
    assert data["files"]["pending"] == 0 and data["files"]["refused"] == 0, data["files"]
    assert data["files"]["current"] > 0


# -- pace -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("batches", [True, False], ids=["batches", "one-by-one"])
def test_every_accepted_file_is_hosted_within_the_download_quota(
    site: Setup, batches: bool
) -> None:
    emu = site.emu
    emu.set_rate_limit("attachments", QUOTA, WINDOW_S)
    if not batches:
        emu.set_file_answer("no_batch")  # the server takes no batches: the per-file fallback
    want = accepted_ids(emu)
    cycles: list[dict[str, Any]] = []
    windows = set()
    while True:
        emu.clear_requests()
        data = pull(site)
        # The metadata cycle does its work whatever the files do.
        assert data["outcome"] == "ok"
        files = data["files"]
        log = downloads(emu)
        assert all(r.status != 429 for r in log), "a download was refused by the quota"
        cycles.append({"requests": len(log), **{k: files[k] for k in ("current", "pending")}})
        if files["pending"] == 0:
            break
        assert len(cycles) < 8, cycles
        assert files["window_opens_at"] is not None, files
        # Before the window opens again no pull asks for a file (on a loaded machine the short
        # window standing for an hour may pass meanwhile: then a download is allowed again).
        emu.clear_requests()
        again = pull(site)
        if time.time() < _epoch(files["window_opens_at"]):
            assert downloads(emu) == [] and again["files"]["pending"] == files["pending"]
        shown = status(site)["window_opens_at"]
        assert shown is not None or time.time() >= _epoch(files["window_opens_at"])
        windows.add(files["window_opens_at"])
        time.sleep(WINDOW_S + 0.5)
    print(f"\n{'batches' if batches else 'one by one'}: cycles {cycles}")
    assert files["current"] == len(want) == 65
    links = {p["id"]: p["files"]["pdf"] for p in papers(site)}
    assert set(links) == want and all(links.values())
    names = hosted(site)
    assert {link.removeprefix("files/") for link in links.values()} == set(names)
    assert all(data.startswith(b"%PDF-") for data in names.values())
    for p in papers(site):
        assert p["pdf_url"].startswith(emu.url + "/pdf/")  # OpenReview's link stays
        number, field, hash8 = (
            p["files"]["pdf"].removeprefix("files/").removesuffix(".pdf").split("-")
        )
        assert (int(number), field) == (p["number"], "pdf") and hash8 in p["pdf_url"]
    if batches:
        assert [c["requests"] for c in cycles] == [2]  # 65 files: a batch of 50, one of 15
    else:
        # 33 requests a window (36 less the reserve of 3): the refused batch, then one by one.
        assert [c["requests"] for c in cycles] == [33, 33, 1]
        assert len(cycles) == 3


# -- changes --------------------------------------------------------------------------------------


def test_a_changed_pdf_is_fetched_once_and_a_withdrawn_paper_loses_its_file(site: Setup) -> None:
    emu = site.emu
    all_hosted(site)
    before = hosted(site)
    json_before = (site.dir / "site" / "papers.json").read_bytes()

    # Nothing changed: no download, the site is byte-identical.
    emu.clear_requests()
    data = pull(site)
    assert downloads(emu) == [] and data["files"]["downloaded"] == []
    assert (site.dir / "site" / "papers.json").read_bytes() == json_before

    # One paper's PDF changes: exactly that file is fetched again.
    changed = sorted(accepted_ids(emu))[0]
    emu.edit_content(changed, pdf="/pdf/" + "ab12" * 10 + ".pdf")
    emu.clear_requests()
    data = pull(site)
    log = downloads(emu)
    assert [(r.query.get("id"), r.query.get("name")) for r in log] == [(changed, "pdf")]
    after = hosted(site)
    number = next(p["number"] for p in papers(site) if p["id"] == changed)
    new_name = f"{number}-pdf-ab12ab12.pdf"
    assert data["files"]["downloaded"] == [new_name]
    assert set(after) - set(before) == {new_name}
    (old_name,) = set(before) - set(after)
    assert old_name.startswith(f"{number}-pdf-")
    assert after[new_name] != before[old_name] and after[new_name].startswith(b"%PDF-")
    assert {k: v for k, v in after.items() if k != new_name} == {
        k: v for k, v in before.items() if k != old_name
    }
    link = next(p["files"]["pdf"] for p in papers(site) if p["id"] == changed)
    assert link == f"files/{new_name}"

    # A withdrawal: the paper and its file leave the site; nothing is downloaded.
    gone = sorted(accepted_ids(emu))[1]
    gone_link = next(p["files"]["pdf"] for p in papers(site) if p["id"] == gone)
    emu.withdraw(gone)
    emu.clear_requests()
    data = pull(site)
    assert downloads(emu) == []
    assert data["files"]["removed"] == [gone_link.removeprefix("files/")]
    assert not (site.dir / "site" / gone_link).exists()
    assert gone not in {p["id"] for p in papers(site)}
    assert len(hosted(site)) == len(before) - 1 == data["files"]["current"]


def test_a_paper_that_is_not_public_gets_no_hosted_file(site: Setup) -> None:
    emu = site.emu
    hidden = sorted(accepted_ids(emu))[2]
    number = emu.truth("chair")["submissions"][hidden]["number"]
    emu.set_readers(hidden, readers=[emu.venue_id])
    all_hosted(site)
    assert len(hosted(site)) == 64
    assert all(not name.startswith(f"{number}-") for name in hosted(site))
    assert hidden not in {p["id"] for p in papers(site)}
    asked = {i for r in downloads(emu) for i in (r.query.get("ids") or r.query["id"]).split(",")}
    assert hidden not in asked


# -- untrusted answers ----------------------------------------------------------------------------


def test_a_hostile_archive_is_refused_member_by_member(site: Setup) -> None:
    emu = site.emu
    emu.set_file_answer("hostile_zip")
    outside = everything_outside_files(site.dir)
    data = pull(site)
    assert data["outcome"] == "ok" and data["push"]["papers"] == 65
    files = data["files"]
    # Per batch: a traversal, an absolute path, a duplicate and a bomb; the other members are
    # the real files, kept. Members nobody asked for are dropped.
    assert files["refused"] == 8 and files["current"] == 57 and files["pending"] == 0, files
    assert len(files["refused_files"]) == 8
    st = status(site)
    errors = sorted(r["error"] for r in st["refused_files"])
    assert sum("a path, not a plain file name" in e for e in errors) == 4, errors
    assert sum("more than one file" in e for e in errors) == 2, errors
    assert sum("archive bomb" in e for e in errors) == 2, errors
    # Nothing was written outside files/, nothing but checked PDFs inside it.
    new_outside = everything_outside_files(site.dir) - outside
    assert all(p.startswith(("site", "orsync.db", ".orsync")) for p in new_outside), new_outside
    assert not any(n.endswith(("x.pdf", "evil.pdf", "stranger.pdf")) for n in new_outside)
    assert not any(Path("/tmp", f"{fid}.pdf").exists() for fid in accepted_ids(emu))
    names = hosted(site)
    assert len(names) == 57 and all(v.startswith(b"%PDF-") for v in names.values())
    assert all(len(v) < 10_000 for v in names.values())  # no bomb inflated
    assert sorted((site.dir / "site" / "files").iterdir()) == sorted(
        site.dir / "site" / "files" / n for n in names
    )
    # Refused files are not linked; the next pull does not fetch them again at once.
    linked = [p["files"]["pdf"] for p in papers(site)]
    assert sum(link is None for link in linked) == 8
    emu.clear_requests()
    again = pull(site)
    assert downloads(emu) == [] and again["files"]["refused_files"] == []


def test_an_html_page_instead_of_a_pdf_is_refused(site: Setup) -> None:
    emu = site.emu
    emu.set_file_answer("html")
    data = pull(site)
    assert data["outcome"] == "ok" and data["push"]["papers"] == 65
    files = data["files"]
    assert files["current"] == 0 and files["downloaded"] == []
    refused = files["refused_files"]
    assert len(refused) == 4 and all("an HTML page, not a .pdf file" in r for r in refused)
    # The batch answer is unusable, so files are tried alone; after two HTML pages in a row the
    # rest of the batch waits for a later pass instead of spending the quota.
    assert len(downloads(emu)) == 6
    assert hosted(site) == {}
    assert all(p["files"] == {"pdf": None} for p in papers(site))
    st = status(site)
    assert st["refused"] == 4 and st["pending"] == 61 and st["next_attempt_at"] is not None


@pytest.mark.parametrize("batches", [True, False], ids=["zip-member", "single-file"])
def test_a_file_over_the_size_limit_is_refused(
    tmp_path: Path, emulator: Emulator, batches: bool
) -> None:
    config = write_config(
        tmp_path,
        emulator,
        extra=f'[website]\noutput_dir = "{tmp_path / "site"}"\nfiles = ["pdf"]\nfile_max_mb = 1\n',
    )
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    big = sorted(accepted_ids(emulator))[0]
    # Random-looking bytes (no archive compresses them), 2 MB.
    blob = b"%PDF-1.4\n" + bytes((i * 7919 + (i >> 8) * 31) % 251 for i in range(2 * 1024 * 1024))
    emulator.set_file(big, "pdf", blob)
    if not batches:
        emulator.set_file_answer("no_batch")
    data = pull(s)
    files = data["files"]
    assert files["current"] == 64 and files["refused"] == 1, files
    (line,) = files["refused_files"]
    assert "file_max_mb" in line
    number = next(p["number"] for p in papers(s) if p["id"] == big)
    assert not any(n.startswith(f"{number}-pdf-") for n in hosted(s))
    assert all(len(v) < 1024 * 1024 for v in hosted(s).values())


def test_check_says_whether_the_hosted_fields_exist(tmp_path: Path, emulator: Emulator) -> None:
    def check(fields: str) -> tuple[int, dict[str, Any]]:
        folder = tmp_path / fields.replace('"', "").replace(",", "_").replace(" ", "")
        config = write_config(
            folder,
            emulator,
            extra=f'[website]\noutput_dir = "{folder / "site"}"\nfiles = [{fields}]\n',
        )
        done = Setup(emulator, folder, config, folder / "orsync.db").cli("check", "--json")
        report = json.loads(done.stdout)
        return done.returncode, next(c for c in report["checks"] if c["name"] == "files")

    code, found = check('"pdf"')
    assert code == 0 and found["ok"], found
    code, found = check('"pdf", "poster"')
    assert code == 2 and not found["ok"]
    assert "poster" in found["detail"] and "website.files" in found["detail"]
    assert "pdf" in found["detail"]  # the fields the form has, to choose from


def test_the_page_links_the_hosted_copy(tmp_path: Path, emulator: Emulator) -> None:
    """index.html links the local file when the site hosts it, and OpenReview's beside it."""
    site_dir = tmp_path / "site"
    config = write_config(
        tmp_path,
        emulator,
        extra=f'[website]\noutput_dir = "{site_dir}"\nfiles = ["pdf"]\n'
        'formats = ["json", "html"]\n',
    )
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    pull(s)
    page = (site_dir / "index.html").read_text(encoding="utf-8")
    linked = [p for p in papers(s) if (p.get("files") or {}).get("pdf")]
    assert linked, "the pull hosted some files"
    for paper in linked:
        path = paper["files"]["pdf"]
        assert (site_dir / path).is_file()
        assert f'<a href="{path}">PDF</a>' in page
    assert "PDF on OpenReview" in page


# -- what is linked is there ----------------------------------------------------------------------


def linked(s: Setup, site_dir: Path | None = None) -> dict[str, str | None]:
    """Each paper's hosted link in papers.json, by paper id."""
    folder = site_dir or s.dir / "site"
    data = json.loads((folder / "papers.json").read_text())
    return {p["id"]: p["files"]["pdf"] for p in data}


def assert_links_exist(site_dir: Path, links: dict[str, str | None]) -> None:
    missing = [link for link in links.values() if link and not (site_dir / link).is_file()]
    assert missing == [], f"papers.json links files that are not there: {missing}"


def test_a_deleted_file_is_not_linked_and_is_fetched_again(site: Setup) -> None:
    emu = site.emu
    all_hosted(site)
    site_dir = site.dir / "site"
    victim = sorted(accepted_ids(emu))[0]
    name = linked(site)[victim]
    assert name is not None
    original = (site_dir / name).read_bytes()
    (site_dir / name).unlink()

    # The push alone (no download): the data files stop linking it, status says so.
    done = site.cli("push", "--json")
    assert done.returncode == 0, done.stderr
    links = linked(site)
    assert links[victim] is None
    assert_links_exist(site_dir, links)
    st = status(site)
    assert st["current"] == 64 and st["pending"] == 1, st

    # The next pass fetches exactly that file again and links it.
    emu.clear_requests()
    data = pull(site)
    asked = [(r.query.get("id"), r.query.get("ids")) for r in downloads(emu)]
    assert asked == [(victim, None)], asked
    assert data["files"]["downloaded"] == [name.removeprefix("files/")]
    assert (site_dir / name).read_bytes() == original
    assert linked(site)[victim] == name
    assert status(site)["current"] == 65


def test_status_counts_a_file_deleted_since_the_last_pass_as_missing(site: Setup) -> None:
    all_hosted(site)
    site_dir = site.dir / "site"
    name = sorted(link for link in linked(site).values() if link)[0]
    (site_dir / name).unlink()
    st = status(site)  # a reading command: it looks, and changes nothing
    assert st["current"] == 64 and st["missing"] == 1, st
    assert [m["file"] for m in st["missing_files"]] == [name.removeprefix("files/")]
    done = site.cli("status")
    assert done.returncode == 0, done.stderr
    assert "64 current, 0 pending, 0 refused, 1 missing" in done.stdout, done.stdout
    assert name in done.stdout
    assert (site_dir / name).exists() is False  # status fetched nothing


def test_a_file_hosted_before_content_hashes_were_recorded_gets_its_hash(site: Setup) -> None:
    """A store from an orsync that recorded OpenReview's path hash in file_hash: the first check
    records the content's hash (the size matched), unlinks nothing and fetches nothing."""
    import sqlite3

    emu = site.emu
    all_hosted(site)
    with sqlite3.connect(site.db) as db:
        db.execute("UPDATE hosted_file SET file_hash = hash")
        db.execute("DELETE FROM sync_state WHERE key = 'hosted_checked'")
    links = linked(site)
    emu.clear_requests()
    data = pull(site)
    assert downloads(emu) == [] and data["files"]["current"] == 65
    assert linked(site) == links
    with sqlite3.connect(site.db) as db:
        hashes = [r[0] for r in db.execute("SELECT file_hash FROM hosted_file")]
    assert len(hashes) == 65 and all(h.startswith("sha256:") for h in hashes)


@pytest.mark.parametrize("same_size", [False, True], ids=["other-size", "same-size"])
def test_an_altered_file_is_not_linked_and_is_fetched_again(site: Setup, same_size: bool) -> None:
    emu = site.emu
    all_hosted(site)
    site_dir = site.dir / "site"
    victim = sorted(accepted_ids(emu))[3]
    name = linked(site)[victim]
    assert name is not None
    original = (site_dir / name).read_bytes()
    altered = original[:-8] + b"tampered" if same_size else b"%PDF-1.4\nsomething else entirely\n"
    assert altered != original and (len(altered) == len(original)) == same_size
    time.sleep(0.01)  # a new modification time, as any real edit has
    (site_dir / name).write_bytes(altered)

    done = site.cli("push", "--json")
    assert done.returncode == 0, done.stderr
    assert linked(site)[victim] is None

    emu.clear_requests()
    data = pull(site)
    assert [r.query.get("id") for r in downloads(emu)] == [victim]
    assert data["files"]["downloaded"] == [name.removeprefix("files/")]
    assert (site_dir / name).read_bytes() == original
    assert linked(site)[victim] == name
    assert data["files"]["current"] == 65


def test_a_new_output_dir_gets_every_file_fetched_again(site: Setup) -> None:
    all_hosted(site)
    new_dir = site.dir / "new-site"
    text = site.config.read_text().replace(f'"{site.dir / "site"}"', f'"{new_dir}"')
    assert str(new_dir) in text
    site.config.write_text(text)

    done = site.cli("push", "--json")
    assert done.returncode == 0, done.stderr
    links = linked(site, new_dir)
    assert set(links.values()) == {None}, "the new folder holds no file yet"
    st = status(site)
    assert st["current"] == 0 and st["pending"] == 65, st

    data = pull(site)
    assert len(data["files"]["downloaded"]) == 65 and data["files"]["current"] == 65
    links = linked(site, new_dir)
    assert all(links.values())
    assert_links_exist(new_dir, links)


def test_only_files_orsync_wrote_are_ever_removed(site: Setup) -> None:
    emu = site.emu
    all_hosted(site)
    folder = site.dir / "site" / "files"
    # A chair's own files: names that look like orsync's (a date is 8 hex digits).
    foreign = {
        "slides-day1-20240507.pdf": b"%PDF-1.4 slides\n",
        "17-pdf-deadbeef.pdf": b"%PDF-1.4 a chair's copy\n",
    }
    for name, data in foreign.items():
        (folder / name).write_bytes(data)
    gone = sorted(accepted_ids(emu))[1]
    gone_link = linked(site)[gone]
    assert gone_link is not None
    emu.withdraw(gone)
    data = pull(site)
    # The withdrawn paper's file, which orsync wrote, goes; the chair's files stay.
    assert data["files"]["removed"] == [gone_link.removeprefix("files/")]
    for name, content in foreign.items():
        assert (folder / name).read_bytes() == content
    data = pull(site)
    assert data["files"]["removed"] == []
    assert all((folder / name).exists() for name in foreign)


@pytest.mark.parametrize(
    ("site_mode", "made_before"),
    [(0o750, None), (0o2750, None), (0o2750, 0o2700)],
    ids=["0750", "2750", "2750-files-made-2700-before"],
)
def test_folders_orsync_creates_in_the_site_take_the_site_folders_mode(
    tmp_path: Path, emulator: Emulator, site_mode: int, made_before: int | None
) -> None:
    """Under the service's UMask=0077 the web server's group still reads files/ and its files;
    a files/ an older orsync made 2700 is opened to the same readers."""
    import os
    import stat

    site_dir = tmp_path / "site"
    site_dir.mkdir()
    site_dir.chmod(site_mode)
    if made_before is not None:
        (site_dir / "files").mkdir()
        (site_dir / "files").chmod(made_before)
    config = write_config(
        tmp_path,
        emulator,
        extra=f'[website]\noutput_dir = "{site_dir}"\nfiles = ["pdf"]\n',
    )
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    old = os.umask(0o077)
    try:
        done = s.cli("pull", "--json", process=True)
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    folder = site_dir / "files"
    assert stat.S_IMODE(folder.stat().st_mode) == site_mode
    hosted_files = list(folder.iterdir())
    assert hosted_files
    for path in [*hosted_files, site_dir / "papers.json"]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o040, f"{path.name} is not group-readable"


# -- bounds: slow downloads, redirects, the service's stop ----------------------------------------


def small_files_setup(tmp_path: Path, emulator: Emulator, file_max_mb: float) -> Setup:
    """Hosted files with ``openreview.timeout_s = 2`` and a small size limit, so a download's
    deadline (timeout_s plus the limit at 256 KiB/s) is seconds."""
    config = write_config(
        tmp_path,
        emulator,
        extra=(
            f'[website]\noutput_dir = "{tmp_path / "site"}"\nfiles = ["pdf"]\n'
            f"file_max_mb = {file_max_mb}\n"
        ),
    )
    config.write_text(config.read_text().replace("timeout_s = 5", "timeout_s = 2"))
    return Setup(emulator, tmp_path, config, tmp_path / "orsync.db")


def test_a_slow_download_ends_at_its_deadline_and_waits_with_backoff(
    tmp_path: Path, emulator: Emulator
) -> None:
    s = small_files_setup(tmp_path, emulator, 0.05)
    # One byte every 0.3 s: the first batch (50 files: deadline 2 + 10 s) and the first file
    # asked alone after it (2.2 s) dribble; everything else answers at once.
    emulator.faults.inject("slow_body", 2, path="/attachment", byte_every=0.3)
    started = time.monotonic()
    data = pull(s)
    assert time.monotonic() - started < 60
    files = data["files"]
    assert files["current"] == 64 and files["pending"] == 1, files
    (line,) = files["failed_files"]
    assert "not complete within 2 s" in line, line
    assert len(hosted(s)) == 64
    slow = next(r for r in settle(emulator) if r.fault == "slow_body" and "id" in r.query)
    with sqlite3.connect(s.db) as conn:
        attempts, next_at = conn.execute(
            "SELECT attempts, next_attempt_at FROM hosted_file WHERE forum_id = ?",
            (slow.query["id"],),
        ).fetchone()
    assert attempts == 1 and datetime.fromisoformat(next_at).timestamp() > time.time() + 30
    # The next pass does not ask for it again before its back-off ends.
    emulator.clear_requests()
    pull(s)
    assert downloads(emulator) == []


def test_a_download_whose_headers_dribble_ends_at_the_deadline(
    tmp_path: Path, emulator: Emulator
) -> None:
    s = small_files_setup(tmp_path, emulator, 0.05)
    # One byte of the headers a second: the first batch and the first file asked alone after
    # it; each ends at timeout_s (2 s), where a per-read timeout never would.
    emulator.faults.inject("slow_headers", 2, path="/attachment", byte_every=1)
    started = time.monotonic()
    data = pull(s)
    assert time.monotonic() - started < 60
    files = data["files"]
    assert files["current"] == 64 and files["pending"] == 1, files
    (line,) = files["failed_files"]
    assert "no complete answer within openreview.timeout_s" in line, line
    assert len(hosted(s)) == 64


def test_a_redirected_download_is_refused_and_its_target_never_asked(
    tmp_path: Path, emulator: Emulator
) -> None:
    s = small_files_setup(tmp_path, emulator, 1)
    with Emulator(dataset="bgpt", seed=7) as other:
        ids = ",".join(sorted(accepted_ids(other))[:50])
        emulator.faults.inject(
            "redirect", 1, path="/attachment", location=f"{other.url}/attachment?ids={ids}&name=pdf"
        )
        data = pull(s)
        # The batch answer was refused; its files came one by one from the configured server.
        assert data["files"]["current"] == 65, data["files"]
        assert other.requests == []
    assert [r.fault for r in settle(emulator) if r.fault] == ["redirect"]


def test_the_service_stops_within_seconds_while_a_file_dribbles(
    tmp_path: Path, services: list[ServiceProcess]
) -> None:
    with Emulator(dataset="bgpt", seed=7, password=PASSWORD) as emulator:
        cfg = config_for(tmp_path, emulator, sync={"interval_s": 300})
        site_dir = tmp_path / "site"
        cfg.write_text(cfg.read_text() + f'[website]\noutput_dir = "{site_dir}"\nfiles = ["pdf"]\n')
        emulator.faults.inject("slow_body", 100, path="/attachment", byte_every=0.5)
        svc = start(services, cfg, None)
        give_up = time.monotonic() + 60
        while not list((site_dir / "files").glob("*.tmp")) and time.monotonic() < give_up:
            time.sleep(0.1)  # the download's temporary file: the batch is streaming
        assert list((site_dir / "files").glob("*.tmp")), svc.err
        time.sleep(1.5)
        stopped = time.monotonic()
        assert svc.stop(timeout=30) == 0
        assert time.monotonic() - stopped < 5
        assert list((site_dir / "files").glob("*.tmp")) == []  # nothing half-written is left


# -- bounds on hostile archives (docs/security.md#bounds) --------------------------------------

PEAK_MIB = 200  # a pull's peak memory under a hostile batch answer (about 70 MiB without one)
WALL_S = 90  # its wall time, generously: the machine is shared


def measured_pull(s: Setup) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """``orsync pull --json`` as a child of a fresh interpreter, which reports the child's peak
    resident memory: (the run, peak MiB, wall seconds)."""
    script = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run(sys.argv[1:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(done.returncode)\n"
    )
    args = [sys.executable, "-m", "orsync", "--config", str(s.config), "pull", "--json"]
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=WALL_S * 2,
        env=cli_environ(None),
    )
    wall = time.monotonic() - start
    lines = done.stderr.rstrip().splitlines()
    peak_kib = int(lines[-1])
    return done, peak_kib / 1024, wall


@pytest.mark.parametrize(("kind", "method"), [("bzip2", "bzip2"), ("lzma", "LZMA")])
def test_bzip2_and_lzma_members_are_refused_before_they_inflate(
    site: Setup, kind: str, method: str
) -> None:
    emu = site.emu
    # The batch answer's first two members: a PDF header, then 256 MiB of zeros in a few
    # hundred bytes, declaring the size of a small PDF. The other members are good files.
    emu.faults.inject(kind, path="/attachment", members=2, inflate_mb=256)
    bomb_member(kind, 256)  # built ahead: compressing takes the emulator seconds
    done, peak, wall = measured_pull(site)
    assert done.returncode == 0, done.stderr[-2000:]
    files = json.loads(done.stdout)["files"]
    assert files["refused"] == 2 and files["current"] == 63 and files["pending"] == 0, files
    assert all(
        f"compressed with {method}; only stored and deflate members are read" in line
        for line in files["refused_files"]
    ), files["refused_files"]
    assert peak < PEAK_MIB, f"peak {peak:.0f} MiB"
    assert wall < WALL_S, f"{wall:.0f}s"
    names = hosted(site)
    assert len(names) == 63 and all(len(v) < 10_000 for v in names.values())
    refused = [r for r in status(site)["refused_files"]]
    assert len(refused) == 2 and all(method in r["error"] for r in refused)


def test_a_huge_archive_directory_is_refused_before_it_is_parsed(site: Setup) -> None:
    emu = site.emu
    # A batch answer whose central directory holds a million entries (a zip64 end record says
    # so): refused from its end records; the files come one by one instead.
    emu.faults.inject("huge_directory", path="/attachment", entries=1_000_000)
    done, peak, wall = measured_pull(site)
    assert done.returncode == 0, done.stderr[-2000:]
    files = json.loads(done.stdout)["files"]
    assert files["current"] == 65 and files["refused"] == 0 and files["pending"] == 0, files
    assert "its directory declares 1000050 members for 50 files asked" in done.stderr
    assert peak < PEAK_MIB, f"peak {peak:.0f} MiB"
    assert wall < WALL_S, f"{wall:.0f}s"
    asked = downloads(emu)
    assert sum("ids" in r.query for r in asked) == 2  # the hostile batch, then the other one
    assert len(hosted(site)) == 65


def test_a_batch_answer_is_capped_at_its_files_times_file_max_mb(
    tmp_path: Path, emulator: Emulator
) -> None:
    config = write_config(
        tmp_path,
        emulator,
        extra=f'[website]\noutput_dir = "{tmp_path / "site"}"\nfiles = ["pdf"]\n'
        "file_max_mb = 0.05\n",
    )
    s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
    big = sorted(accepted_ids(emulator))[0]
    # 3 MB no archive compresses: more than the 50 files of a batch may bring at 0.05 MB each.
    blob = b"%PDF-1.4\n" + os.urandom(3 * 1024 * 1024)
    emulator.set_file(big, "pdf", blob)
    done, peak, wall = measured_pull(s)
    assert done.returncode == 0, done.stderr[-2000:]
    files = json.loads(done.stdout)["files"]
    assert files["current"] == 64 and files["refused"] == 1, files
    assert "batch answer over the size limit" in done.stderr
    # The batch holding the big file was dropped while it streamed: its files came one by one.
    singles = [r for r in downloads(emulator) if "id" in r.query]
    assert big in {r.query["id"] for r in singles} and len(singles) in (15, 50)
    assert not list((tmp_path / "site" / "files").glob(".orsync-*"))
    assert peak < PEAK_MIB and wall < WALL_S


@contextlib.contextmanager
def small_filesystem(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``folder`` (root only: the test is skipped otherwise)."""
    folder.mkdir(parents=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_batch_that_does_not_fit_the_free_space_waits(tmp_path: Path, emulator: Emulator) -> None:
    site_dir = tmp_path / "site"
    with small_filesystem(site_dir, "2m"):
        config = write_config(
            tmp_path,
            emulator,
            extra=f'[website]\noutput_dir = "{site_dir}"\nfiles = ["pdf"]\nfile_max_mb = 4\n',
        )
        s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
        data = pull(s)
        files = data["files"]
        # The site itself is written; no batch (50 files at 4 MB may need 400 MB) is asked for,
        # nor a file (4 MB), and after two that did not fit, the rest waits for a later pass.
        assert files["current"] == 0 and files["pending"] == 65, files
        assert not any("ids" in r.query for r in downloads(emulator))
        assert len(downloads(emulator)) == 0
        short = [line for line in files["failed_files"] if "free space on that" in line]
        assert len(short) == 4 and all(str(site_dir) in line for line in short), short
        with contextlib.closing(sqlite3.connect(s.db)) as db:
            attempts = db.execute("SELECT count(*) FROM hosted_file WHERE attempts = 1").fetchone()
        assert attempts == (65,)
        assert (site_dir / "papers.json").exists()


def test_a_files_stage_stopped_by_a_full_disk_keeps_what_it_fetched(
    tmp_path: Path, emulator: Emulator
) -> None:
    site_dir = tmp_path / "site"
    # Room for the site (four files and files/) and about ten more: the filesystem runs out of
    # inodes part way through the downloads, whatever the free bytes say.
    with small_filesystem(site_dir, "16m,nr_inodes=17"):
        config = write_config(
            tmp_path,
            emulator,
            extra=f'[website]\noutput_dir = "{site_dir}"\nfiles = ["pdf"]\nfile_max_mb = 1\n',
        )
        s = Setup(emulator, tmp_path, config, tmp_path / "orsync.db")
        emulator.set_file_answer("no_batch")  # one file per request
        done = s.cli("pull")
        assert done.returncode != 0
        (error,) = [line for line in done.stderr.splitlines() if line.startswith("orsync: error")]
        assert "no space left on device" in error and "free space on that filesystem" in error
        assert "no inodes left" in error, error
        with contextlib.closing(sqlite3.connect(s.db)) as db:
            rows = db.execute(
                "SELECT status, attempts, file, last_error FROM hosted_file"
            ).fetchall()
        current = [r for r in rows if r[0] == "current"]
        waiting = [r for r in rows if r[0] != "current"]
        # The files fetched before the disk filled are in place; every other row has its
        # attempt recorded (a back-off, not a loop), with why.
        assert 5 <= len(current) < 65 and len(current) + len(waiting) == 65, len(current)
        assert all((site_dir / "files" / str(r[2])).is_file() for r in current)
        assert all(r[1] == 1 and "No space left on device" in str(r[3]) for r in waiting), waiting[
            :3
        ]
