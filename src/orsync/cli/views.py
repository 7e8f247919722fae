"""What the commands show on a terminal: tables, summary lines and the ``--json`` shapes.

Text from the store or the venue is the authors': it goes through ``safe`` (one line, control
and bidi characters made visible) and the consoles never interpret markup (``orsync.terminal``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from orsync.config import Config
from orsync.errors import local_time
from orsync.terminal import console, json_text, safe
from orsync.text import authors_text

if TYPE_CHECKING:
    from orsync.commands import Changes, Status
    from orsync.hosted import FilesResult
    from orsync.publish import Frozen, PushResult
    from orsync.publish.notices import NoticeRun
    from orsync.publish.signs import Signs
    from orsync.report import Report
    from orsync.sync import CycleSummary

CHANGES_SHOWN = 50  # rows of `orsync changes` without --limit / --since


def _stdout() -> Console:
    return console(soft_wrap=True)


def _stderr() -> Console:
    return console(stderr=True, soft_wrap=True)


@dataclass
class Screen:
    """Standard output and error of one run, as consoles made when the run starts (a console
    reads COLUMNS, NO_COLOR and TERM when it is made); both write to ``sys.stdout`` and
    ``sys.stderr`` as they are at each write."""

    out: Console = field(default_factory=_stdout)
    err: Console = field(default_factory=_stderr)
    # -q: what a pass did goes unsaid (a cron job mails any output); warnings and errors stay.
    quiet: bool = False

    @property
    def done(self) -> Console:
        """Where a writing command says what it did: standard output, silent under ``-q``."""
        return console(soft_wrap=True, quiet=True) if self.quiet else self.out

    def json(self, data: Any) -> None:
        sys.stdout.write(json_text(data) + "\n")


# -- status ----------------------------------------------------------------------------------


def show_status(screen: Screen, info: Status) -> None:
    # A grid that folds long values, so the summary reads well at 80 columns.
    facts = Table.grid(padding=(0, 2))
    facts.add_column(no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("venue", info.venue_id)
    facts.add_row("store", info.store)
    facts.add_row(
        "submissions",
        ", ".join(f"{n} {s}" for s, n in sorted(info.submissions.items())) or "none yet",
    )
    facts.add_row("notes", ", ".join(f"{n} {k}" for k, n in sorted(info.notes.items())) or "none")
    facts.add_row(
        "last success",
        f"{info.last_success} ({info.seconds_since_success:.0f}s ago)"
        if info.last_success
        else "none yet: run `orsync pull`",
    )
    unreleased = info.decided_unreleased
    if any(unreleased.values()):
        facts.add_row(
            "decided",
            ", ".join(f"{n} {k}" for k, n in unreleased.items() if n)
            + " (not released yet: never published)",
        )
    if info.rate_limited_until:
        until = datetime.fromisoformat(info.rate_limited_until).timestamp()
        facts.add_row(
            "rate limit",
            f"OpenReview's rate limit holds cycles back until {local_time(until)} (local time)",
        )
    facts.add_row("lock", info.describe_lock().removeprefix("lock: "))
    push = info.last_push
    if push is not None:
        when = push.finished_at or push.started_at
        line = f"{push.outcome} at {when} ({push.command})"
        if push.outcome == "ok":
            changed = push.changed
            line += f", {push.papers} papers" + (
                f", wrote {', '.join(changed)}" if changed else ", files unchanged"
            )
        elif push.error:
            line += f": {push.error}"
        facts.add_row("last push", line)
    for i, warning in enumerate(info.push_warnings):
        facts.add_row("push warned" if i == 0 else "", safe(warning))
    owed = info.on_change_pending
    if owed is not None:
        line = f"website.on_change pending since {owed.get('since')}"
        if owed.get("error"):
            line += f" ({owed.get('attempts')} failed: {safe(owed['error'])})"
        facts.add_row("on_change", line + "; the next push, pull or run runs it again")
    hosted = info.files
    if hosted is not None:
        line = (
            f"{hosted['current']} current, {hosted['pending']} pending, {hosted['refused']} refused"
        )
        if hosted.get("missing"):
            line += f", {hosted['missing']} missing (fetched again at the next pass)"
        if hosted["next_attempt_at"]:
            line += f"; next download {hosted['next_attempt_at']}"
        if hosted["window_opens_at"]:
            line += f" (download quota used up until {hosted['window_opens_at']})"
        facts.add_row("files", line)
        for r in hosted["refused_files"][:10]:
            facts.add_row("", f"refused #{r['number']} {r['field']}: {safe(r['error'] or '')}")
        for m in hosted.get("missing_files", [])[:10]:
            facts.add_row("", f"missing #{m['number']} {m['field']}: files/{safe(m['file'])}")
    _poster_facts(facts, info.posters)
    if info.notices is not None:
        n = info.notices
        facts.add_row(
            "authors",
            f"{n['told']} told, {n['pending_update']} pending an update, {n['failed']} failed "
            "(`orsync authors notify`)",
        )
    screen.out.print(facts)
    if info.cycles:
        # Fits 80 columns: the counts share one column and errors go on lines of their own.
        table = Table("cycle", "started (UTC)", "mode", "outcome", "req", "+ ~ -", "s")
        failures = []
        for c in info.cycles:
            table.add_row(
                str(c.id),
                (c.started_at or "").replace("T", " ")[:19],
                c.mode,
                c.outcome,
                str(c.requests),
                f"{c.created} {c.updated} {c.deleted}",
                f"{c.duration_s:.1f}" if c.duration_s is not None else "",
            )
            if c.outcome == "deferred":
                # Not a failure: orsync kept its reserve of the quota and waits for the reset.
                reset = datetime.fromisoformat(c.quota_reset_at) if c.quota_reset_at else None
                if reset is not None and reset.tzinfo is None:
                    reset = reset.replace(tzinfo=UTC)  # the store keeps UTC
                when = local_time(reset.timestamp()) if reset else None
                failures.append(
                    f"cycle {c.id} deferred until {when or 'the quota resets'} (local time): "
                    "nothing failed, the quota's reserve is kept"
                )
            elif c.error:
                failures.append(f"cycle {c.id} {c.outcome}: {c.error}")
        screen.out.print(table)
        for line in failures:
            screen.out.print(line)


def _poster_facts(facts: Table, posters: dict[str, Any] | None) -> None:
    if posters is None:
        return
    if posters["announced_by"] == "freeze":
        facts.add_row("posters", f"announced (orsync posters freeze at {posters['announced_at']})")
    elif posters["announced_by"] == "config":
        facts.add_row("posters", "announced (posters.announced = true)")
    else:
        facts.add_row("posters", "not announced: pushes may move posters, each move reported")
    last = posters["last_moves"]
    if last:
        facts.add_row(
            "moved",
            f"{len(last['moves'])} published posters at {last['at']} ({safe(last['command'])})",
        )
        for line in last["lines"]:
            facts.add_row("", safe(line))


# -- changes ---------------------------------------------------------------------------------


def _minute(iso: str | None) -> str:
    """``2024-05-11T09:30:12+00:00`` as ``2024-05-11 09:30``: fits a narrow column whole."""
    return (iso or "").replace("T", " ")[:16]


def show_changes(screen: Screen, found: Changes, *, since: str | None, capped: bool) -> None:
    rows, first = found.rows, found.first_pull
    if not rows and first is None:
        screen.out.print("no changes recorded" + (f" since {since}" if since else ""))
        return
    more = capped and len(rows) > CHANGES_SHOWN
    rows = rows[:CHANGES_SHOWN] if more else rows
    if rows:
        # The time never wraps (a folded date reads as two); title and fields give way.
        # At 80 columns: light rules, and the short cells (time, op, kind, paper, note id) whole
        # on their line; fields and title wrap in what is left.
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
        for name in ("when (UTC)", "op", "kind", "paper", "note"):
            table.add_column(name, no_wrap=True, overflow="fold")
        table.add_column("fields", overflow="fold")
        table.add_column("title", overflow="fold", ratio=1)
        for r in rows:
            table.add_row(
                _minute(r["at"]),
                r["op"],
                r["kind"],
                f"#{r['number']}" if r["number"] is not None else safe(r["forum"]),
                safe(r["note_id"]),
                safe(", ".join(r["fields"])),
                safe((r["title"] or "")[:50]),
            )
        screen.out.print(table)
    if more:
        screen.out.print(
            f"(the newest {CHANGES_SHOWN} shown; --since 7d or --limit N for others, --json for all)"
        )
    if first is not None:
        made = first["created"]
        counts = ", ".join(
            f"{made[k]} {_PLURAL.get(k, k + 's')}"
            for k in sorted(made, key=lambda k: (k != "submission", -made[k], k))
        )
        screen.out.print(
            f"first pull: {counts} (cycle {first['cycle']}, {_minute(first['started_at'])} UTC; "
            "--json lists each)",
            soft_wrap=False,  # wrapped at the terminal's width, between words
        )


_PLURAL = {"camera_ready": "camera-ready revisions", "desk_rejection": "desk rejections"}


# -- report ----------------------------------------------------------------------------------


def show_report(screen: Screen, data: Report) -> None:
    out = screen.out
    expected = data.expected_reviews
    subs = ", ".join(f"{n} {s}" for s, n in data.by_status.items()) or "none"
    out.print(f"{safe(data.venue_id)}: {safe(subs)}; {data.reviews} reviews")
    if data.completion is not None:
        out.print(
            f"review completion: {data.completion:.0%} of papers under review have "
            f"{expected}+ reviews; {len(data.missing_reviews)} have fewer"
        )
        by_count: dict[int, list[str]] = {}
        for m in data.missing_reviews:
            by_count.setdefault(m["missing"], []).append(f"#{m['number']}")
        for count, papers in sorted(by_count.items(), reverse=True):
            out.print(f"  {count} of {expected} missing: {' '.join(papers)}", soft_wrap=False)
    if data.due is None:
        out.print("overdue: no review deadline given (--due DATE)")
    elif data.overdue:
        owed = sum(m["missing"] for m in data.overdue)
        out.print(f"overdue: {owed} reviews on {len(data.overdue)} papers (due {data.due})")
    else:
        out.print(f"overdue: none (due {data.due})")
    if data.decisions:
        out.print("decisions: " + safe(", ".join(f"{n} {d}" for d, n in data.decisions.items())))
    if data.rating_histogram:
        peak = max(data.rating_histogram.values())
        out.print("ratings:")
        for label, count in data.rating_histogram.items():
            out.print(f"  {label:>3} {'#' * round(30 * count / peak)} {count}")
    if data.papers:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0))
        for name in ("paper", "reviews", "mean", "status", "decision"):
            table.add_column(name, no_wrap=True, justify="right" if name != "status" else "left")
        table.add_column("title", overflow="fold", ratio=1)
        for p in data.papers:
            mean = p["rating_mean"]
            table.add_row(
                f"#{p['number']}",
                str(p["reviews"]),
                "" if mean is None else f"{mean:.2f}",
                p["status"],
                safe(p["decision"] or ""),
                safe((p["title"] or "")[:60]),
            )
        out.print(table)
    out.print(f"HTML report with charts: {safe(data.html or '')}")


# -- a cycle and what followed it -------------------------------------------------------------


def show_cycle(screen: Screen, summary: CycleSummary) -> None:
    screen.done.print(summary.line())
    if summary.fallback:
        screen.done.print(f"note: {safe(summary.fallback)}")
    if summary.malformed:
        screen.err.print(
            f"warning: {summary.malformed} malformed notes (no id, or content not an object) "
            "were skipped"
        )


def show_files(screen: Screen, files: FilesResult) -> None:
    """One line on the hosted files (docs/site-files.md#hosted-files), and each refused file on its own."""
    c = files.counts
    line = (
        f"files: {len(files.downloaded)} downloaded, {len(files.removed)} removed in "
        f"{files.requests} requests; {c.get('current', 0)} current, {c.get('pending', 0)} "
        f"pending, {c.get('refused', 0)} refused"
    )
    if files.window_opens_at is not None:
        line += f"; more after {local_time(files.window_opens_at)} (download quota)"
    screen.done.print(line)
    for what in files.refused:
        screen.err.print(f"warning: refused {safe(what)}")


def show_push(screen: Screen, result: PushResult, config: Config) -> None:
    """What the push did; of its warnings only those the last push did not give (docs/cli.md#output)."""
    done = screen.done
    if config.website is not None:
        where = config.website.output_dir
        done.print(
            f"website: wrote {', '.join(result.changed)} in {where}"
            if result.changed
            else f"website: {where} already up to date"
        )
        owed = result.on_change_was_pending
        if result.on_change == "pending" and owed is not None:
            done.print(
                f"website: ran website.on_change because it was pending since "
                f"{owed.get('since')} (last failure: {safe(owed.get('error') or 'interrupted')})"
            )
    for line in result.moved_lines():
        screen.out.print(f"poster moved: {safe(line)}")
    for line in result.new_warnings:
        screen.err.print(f"warning: {safe(line)}")
    known = len(result.problems) + len(result.clash_lines()) - len(result.new_warnings)
    if known > 0:
        done.print(f"{known} warnings given before still hold (orsync status lists them)")


# -- posters ---------------------------------------------------------------------------------


def show_frozen(screen: Screen, done: Frozen) -> None:
    sessions = ", ".join(f"{sid} {n}" for sid, n in done.sessions.items())
    if done.already:
        screen.out.print(f"already frozen since {done.announced_at}: {done.places} poster places")
    else:
        screen.out.print(f"froze {done.places} poster places ({sessions}) at {done.announced_at}")
    screen.out.print(
        "from now on no push moves a poster by itself: a change that would force a move fails "
        "the push (exit 2) naming the fix; `orsync posters pin` still moves one"
    )


def assignment_dict(result: PushResult) -> dict[str, Any]:
    a = result.assignment
    if a is None:
        return {"status": None}
    return {"status": a.status, "gap": a.gap, "solve_time_s": round(a.solve_time_s, 3)}


def show_assignment(screen: Screen, result: PushResult, *, dry_run: bool) -> None:
    a = result.assignment
    if a is None:
        return
    gap = f", gap {a.gap:.1%}" if a.gap is not None else ""
    verb = "would move" if dry_run else "moved"
    screen.out.print(
        f"assignment: {a.status}{gap}, {len(a.clashes)} author clashes, "
        f"{len(a.moved)} papers {verb}, solved in {a.solve_time_s:.2f}s"
    )
    if dry_run:  # the moves made are shown with the push
        for line in result.moved_lines():
            screen.out.print(f"would move: {safe(line)}")


_POSTER_KEYS = (
    "session_id",
    "board",
    "number",
    "forum_id",
    "title",
    "presentation",
    "pinned",
    "talk",
)


def posters_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: r[k] for k in _POSTER_KEYS} for r in rows]


def show_posters(
    screen: Screen, rows: list[dict[str, Any]], config: Config, warnings: list[str]
) -> None:
    table = Table("session", "board", "paper", "title", "talk", "pinned")
    names = {s.id: s.name for s in config.posters.sessions}
    for r in rows:
        table.add_row(
            safe(f"{r['session_id']} {names.get(r['session_id'], '')}".strip())
            if r["session_id"]
            else "-",
            str(r["board"] or "-"),
            f"#{r['number']}",
            safe((r["title"] or "")[:60]) + "\n" + safe(authors_text(r["authors"])[:60]),
            r["talk"] or "",
            safe(r["pinned"]),
        )
    screen.out.print(table)
    for line in warnings:  # the last push's, every one: this is where the chairs look
        screen.out.print(f"warning: {safe(line)}")


def show_signs(screen: Screen, done: Signs) -> None:
    sessions = ", ".join(f"{safe(sid)}: {n}" for sid, n in done.sessions.items()) or "none"
    screen.out.print(f"wrote {safe(done.html)}: {done.pages} signs ({done.paper}; {sessions})")
    if done.pdf is not None:
        screen.out.print(f"printed {safe(done.pdf)}: {done.pages} pages")
    if done.unplaced:
        screen.err.print(
            f"warning: {done.unplaced} accepted papers have no board yet and no sign "
            "(run `orsync push`)"
        )


def show_notices(screen: Screen, run: NoticeRun) -> None:
    """``authors notify``: who gets (or got) what; the messages in full on a dry run."""
    out = screen.out
    if not run.send:
        for item in run.notices:
            out.print(f"[bold]to {safe(item.recipients)}[/] ({item.kind})", highlight=False)
            out.print(f"subject: {safe(item.subject)}", highlight=False)
            out.print(safe(item.message), highlight=False)
        verb = "would be sent; pass --send to send them"
    else:
        for forum_id in run.confirmed:
            out.print(f"already sent (found on OpenReview): {safe(forum_id)}", highlight=False)
        for item in run.notices:
            if item.forum_id in run.sent:
                out.print(f"sent ({item.kind}) to {safe(item.recipients)}", highlight=False)
        verb = "sent"
    count = len(run.sent) if run.send else len(run.notices)
    line = f"{count} notices {verb}; {run.told} papers already told"
    if run.waiting:
        line += f", {len(run.waiting)} without a session or talk yet"
    if run.deferred:
        line += f", {run.deferred} left for the next run (authors_notice.max_per_run)"
    if run.papers == 0:
        line = "no accepted paper is public yet: nothing to tell"
    out.print(line, highlight=False)
