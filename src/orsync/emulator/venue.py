"""In-memory state of one emulated venue: notes, phase, visibility, mutations and ground truth.

All state sits behind a single re-entrant lock: the HTTP handler threads and the test thread
(mutating through `Emulator`) interleave freely. Served JSON is cached per note per reader and
invalidated whenever the note changes, which keeps 1000-submission pages with `details=replies`
cheap. The ground truth is kept in separate records (`SubRec`, `ReplyRec`) that are updated by the
same operations but never derived from the served JSON.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import io
import json
import random
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from orsync.emulator.dataset import (
    INVITATION_NAMES,
    PHASES,
    IdMaker,
    Plan,
    PlannedReply,
    PlannedSubmission,
    ReplyKind,
    generate,
    make_title,
    normalise_keywords,
    parse_score,
)

Reader = Literal["guest", "chair"]
Status = Literal["active", "accepted", "rejected", "withdrawn", "desk_rejected"]

LICENSE = "CC BY 4.0"
# Synthetic wall-clock anchors (epoch ms) for generated notes of each phase, early 2024.
PHASE_BASE_MS: dict[str, int] = {
    "submission": 1_705_708_800_000,
    "review": 1_707_955_200_000,
    "decision": 1_709_424_000_000,
    "camera_ready": 1_710_892_800_000,
}
SORT_FIELDS = ("id", "number", "cdate", "tcdate", "tmdate")


class ApiError(Exception):
    """An error answered as OpenReview's `{"name","message","status","details"}` body."""

    def __init__(
        self, status: int, name: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.name = name
        self.message = message
        self.details = details or {}


@dataclass
class SubRec:
    id: str
    number: int
    title: str | None
    authors: list[str] | None
    authorids: list[str] | None
    keywords: list[str]
    status: Status
    presentation: str | None = None
    authors_public: bool = False
    hidden: bool = False
    deleted: bool = False
    # Content fields narrowed to fewer readers than the note (guests do not see them).
    private_fields: frozenset[str] = frozenset()


@dataclass
class ReplyRec:
    id: str
    forum: str
    replyto: str
    kind: ReplyKind
    rating: float | None
    confidence: float | None
    decision: str | None
    public: bool
    hidden: bool = False
    deleted: bool = False


class Clock:
    """Strictly increasing epoch-ms clock so `mintmdate` polling never misses or repeats."""

    def __init__(self) -> None:
        self.last = 0

    def tick(self, at: int | None = None) -> int:
        wanted = at if at is not None else int(time.time() * 1000)
        self.last = max(self.last + 1, wanted)
        return self.last


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while building ~100k small dicts.

    Allocation-heavy loops make the collector rescan the growing heap again and again; nothing
    built here is cyclic garbage, so pausing it more than halves generation time at iclr scale.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Other venues next to the emulated one (names of real ICLR 2024 workshops; no notes).
_SIBLING_VENUES = ("DMLR", "ME-FoMo", "R2-FM")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _split(value: str) -> list[str]:
    return [v for v in value.split(",") if v != ""]


def _everyone(readers: Any, nonreaders: Any = None) -> bool:
    """OpenReview's rule for guests: ``everyone`` reads, unless ``nonreaders`` names it.
    Malformed lists let no guest in."""
    if not isinstance(readers, list) or not all(isinstance(r, str) for r in readers):
        return False
    if nonreaders is not None and (
        not isinstance(nonreaders, list) or not all(isinstance(r, str) for r in nonreaders)
    ):
        return False
    return "everyone" in readers and "everyone" not in (nonreaders or [])


def _int_param(q: dict[str, str], key: str) -> int | None:
    if key not in q:
        return None
    try:
        return int(q[key])
    except ValueError:
        raise ApiError(
            400, "ValidationError", f"{key} must be an integer", {"path": key, "value": q[key]}
        ) from None


class Venue:
    def __init__(
        self,
        dataset: str = "bgpt",
        seed: int = 1,
        size: int | None = None,
        phase: str = "camera_ready",
        honour_mintmdate: bool = True,
        hold_decisions: bool = False,
    ) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}; choose one of {PHASES}")
        self._lock = threading.RLock()
        self.plan: Plan = generate(dataset, seed, size)
        self.cfg = self.plan.config
        self.venue_id = self.cfg.venue_id
        self.honour_mintmdate = honour_mintmdate
        self._rng = random.Random(f"{dataset}:{seed}:mutations")
        self._ids = IdMaker(self._rng)
        for p in self.plan.submissions:
            self._ids.reserve([p.id, *(r.id for r in p.replies)])
        self.clock = Clock()
        self.notes: dict[str, dict[str, Any]] = {}
        self.by_forum: dict[str, list[str]] = {}
        self.by_invitation: dict[str, set[str]] = {}
        self.subs: dict[str, SubRec] = {}
        self.replies: dict[str, ReplyRec] = {}
        self._plan_by_id: dict[str, PlannedSubmission] = {p.id: p for p in self.plan.submissions}
        self._cache: dict[tuple[str, Reader], bytes | None] = {}
        self._reply_counter: dict[tuple[str, str], int] = {}
        # Bytes served for one note's file instead of the generated PDF (tests: an oversized
        # file, a file of the wrong type).
        self.file_overrides: dict[tuple[str, str], bytes] = {}
        self.phase = "none"
        # Held decisions: posted readable by the program chairs only, venueid unchanged and
        # author fields still restricted, until `release_decisions` (as OpenReview venues do
        # between the decision stage and the release of decisions).
        self.hold_decisions = hold_decisions
        # The most notes a page answers, below the 1,000 a client may ask for (tests: a small
        # venue spread over pages, as a large one is).
        self.page_cap: int | None = None
        self._held: dict[str, tuple[Status, str | None]] = {}
        self._group_json = _dumps(self._group())
        with gc_paused():
            for ph in PHASES[: PHASES.index(phase) + 1]:
                self._enter_phase(ph)

    # ----------------------------------------------------------------- helpers

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def _group(self) -> dict[str, Any]:
        v = self.venue_id
        content: dict[str, Any] = {
            "title": {"value": self.cfg.venue_short},
            "submission_name": {"value": "Submission"},
            "submission_venue_id": {"value": f"{v}/Submission"},
            "withdrawn_venue_id": {"value": f"{v}/Withdrawn_Submission"},
            "desk_rejected_venue_id": {"value": f"{v}/Desk_Rejected_Submission"},
            "rejected_venue_id": {"value": f"{v}/Rejected_Submission"},
            "review_name": {"value": "Official_Review"},
            "review_rating": {"value": "rating"},
            "review_confidence": {"value": "confidence"},
            "decision_name": {"value": "Decision"},
            "decision_field_name": {"value": "decision"},
            "program_chairs_id": {"value": f"{v}/Program_Chairs"},
            "reviewers_id": {"value": f"{v}/Reviewers"},
        }
        if self.cfg.has_meta_review:
            content["meta_review_name"] = {"value": "Meta_Review"}
            content["area_chairs_id"] = {"value": f"{v}/Area_Chairs"}
        if self.cfg.has_accept_options:
            content["accept_decision_options"] = {"value": ["Accept (Oral)", "Accept (Poster)"]}
        t = PHASE_BASE_MS["submission"] - 86_400_000 * 30
        return {
            "id": v,
            "content": content,
            "readers": ["everyone"],
            "writers": [v],
            "signatures": ["~Super_User1"],
            "signatories": [v],
            "members": [f"{v}/Program_Chairs"],
            "invitations": [f"{v}/-/Edit"],
            "domain": v,
            "host": "venues",
            "cdate": t,
            "tcdate": t,
            "tmdate": t,
            "web": None,
        }

    def _index(self, nid: str) -> None:
        note = self.notes[nid]
        for inv in note["invitations"]:
            self.by_invitation.setdefault(inv, set()).add(nid)

    def _touch(self, nid: str, at: int | None = None) -> int:
        t = self.clock.tick(at)
        note = self.notes[nid]
        note["tmdate"] = t
        note["mdate"] = t
        self._cache.pop((nid, "guest"), None)
        self._cache.pop((nid, "chair"), None)
        return t

    def _sub_readers_hidden(self, number: int) -> list[str]:
        return [self.venue_id, f"{self.venue_id}/Submission{number}/Authors"]

    def _venue_text(self, status: Status, presentation: str | None) -> str:
        short = self.cfg.venue_short
        if status == "accepted":
            word = "Oral" if presentation == "oral" else "Poster"
            return f"{short} {word if 'Workshop' in short else word.lower()}"
        if status == "withdrawn":
            return f"{short} Withdrawn Submission"
        if status == "desk_rejected":
            return f"{short} Desk Rejected Submission"
        return f"Submitted to {short}"

    def _venueid(self, status: Status) -> str:
        v = self.venue_id
        return {
            "active": f"{v}/Submission",
            "accepted": v,
            "rejected": f"{v}/Rejected_Submission",
            "withdrawn": f"{v}/Withdrawn_Submission",
            "desk_rejected": f"{v}/Desk_Rejected_Submission",
        }[status]

    def _bibtex(self, note: dict[str, Any], reveal: bool) -> tuple[str, str]:
        c = note["content"]
        title = str(c["title"]["value"])
        authors = c.get("authors", {}).get("value") or []
        first_last = str(authors[0]).split()[-1].lower() if (reveal and authors) else "anonymous"
        key_word = (title.split() or ["paper"])[0].lower()
        key = "".join(ch for ch in f"{first_last}2024{key_word}" if ch.isalnum())
        if reveal:
            bib = (
                f"@inproceedings{{\n{key},\ntitle={{{title}}},\n"
                f"author={{{' and '.join(map(str, authors))}}},\n"
                f"booktitle={{{self.cfg.venue_short}}},\nyear={{2024}},\n"
                f"url={{https://openreview.net/forum?id={note['id']}}}\n}}"
            )
        else:
            bib = (
                f"@misc{{\n{key},\ntitle={{{title}}},\nauthor={{Anonymous}},\n"
                f"year={{2024}},\nurl={{https://openreview.net/forum?id={note['id']}}}\n}}"
            )
        words = "_".join(w.lower() for w in title.split() if w.isalnum())
        return bib, f"{first_last}|{words}"

    def _apply_status(
        self, sid: str, status: Status, presentation: str | None = None, at: int | None = None
    ) -> None:
        """Post-decision bookkeeping as OpenReview's process functions do it."""
        note = self.notes[sid]
        rec = self.subs[sid]
        c = note["content"]
        reveal = status == "accepted"
        c["venueid"] = {"value": self._venueid(status)}
        c["venue"] = {"value": self._venue_text(status, presentation)}
        for key in ("authors", "authorids"):
            if key in c:
                if reveal:
                    c[key].pop("readers", None)
                else:
                    c[key]["readers"] = self._sub_readers_hidden(note["number"])
        bib, ph = self._bibtex(note, reveal)
        c["_bibtex"] = {"value": bib}
        c["paperhash"] = {"value": ph}
        if (
            status == "withdrawn"
            and f"{self.venue_id}/-/Withdrawn_Submission" not in (note["invitations"])
        ):
            note["invitations"].append(f"{self.venue_id}/-/Withdrawn_Submission")
        if (
            status == "desk_rejected"
            and f"{self.venue_id}/-/Desk_Rejected_Submission" not in (note["invitations"])
        ):
            note["invitations"].append(f"{self.venue_id}/-/Desk_Rejected_Submission")
        self._index(sid)
        t = self._touch(sid, at)
        if reveal:
            note.setdefault("pdate", t)
        else:
            note.pop("pdate", None)
        rec.status = status
        rec.presentation = presentation if reveal else None
        rec.authors_public = reveal

    # ------------------------------------------------------------ note creation

    def _create_submission(self, p: PlannedSubmission, at: int | None) -> str:
        v = self.venue_id
        t = self.clock.tick(at)
        hidden = self._sub_readers_hidden(p.number)
        note: dict[str, Any] = {
            "id": p.id,
            "number": p.number,
            "forum": p.id,
            "invitations": [f"{v}/-/Submission", f"{v}/-/Post_Submission"],
            "domain": v,
            "content": {
                "title": {"value": p.title},
                "authors": {"value": list(p.authors), "readers": list(hidden)},
                "authorids": {"value": list(p.authorids), "readers": list(hidden)},
                "keywords": {
                    "value": p.keywords if isinstance(p.keywords, str) else list(p.keywords)
                },
                "abstract": {"value": p.abstract},
                "TLDR": {"value": p.tldr},
                "pdf": {"value": f"/pdf/{hashlib.sha256(p.id.encode()).hexdigest()[:40]}.pdf"},
                "previously_published": {"value": "Yes" if p.previously_published else "No"},
            },
            "readers": ["everyone"],
            "nonreaders": [],
            "writers": [v, f"{v}/Submission{p.number}/Authors"],
            "signatures": [f"{v}/Submission{p.number}/Authors"],
            "cdate": t,
            "tcdate": t,
            "mdate": t,
            "tmdate": t,
            "odate": t,
            "license": LICENSE,
            "version": 2,
        }
        self.notes[p.id] = note
        self.by_forum.setdefault(p.id, [])
        self.subs[p.id] = SubRec(
            id=p.id,
            number=p.number,
            title=p.title,
            authors=list(p.authors),
            authorids=list(p.authorids),
            keywords=normalise_keywords(p.keywords),
            status="active",
        )
        self._index(p.id)
        self._apply_status(p.id, "active", at=t)
        return p.id

    def _create_reply(
        self, forum: str, r: PlannedReply, at: int | None, readers: list[str] | None = None
    ) -> str:
        v = self.venue_id
        sub = self.notes[forum]
        number = sub["number"]
        inv = f"{v}/Submission{number}/-/{INVITATION_NAMES[r.kind]}"
        t = self.clock.tick(at)
        ckey = (forum, r.kind)
        self._reply_counter[ckey] = self._reply_counter.get(ckey, 0) + 1
        prefix = f"{v}/Submission{number}"
        if readers is not None:
            public = _everyone(readers)
        elif r.public:
            readers, public = ["everyone"], True
        else:
            readers, public = [f"{v}/Program_Chairs", f"{prefix}/Reviewers"], False
            if self.cfg.has_meta_review:
                readers.insert(1, f"{prefix}/Area_Chairs")
        note: dict[str, Any] = {
            "id": r.id,
            "number": self._reply_counter[ckey],
            "forum": forum,
            "replyto": r.replyto,
            "invitations": [inv],
            "domain": v,
            "content": {k: dict(v) for k, v in r.content.items()},
            "readers": readers,
            "nonreaders": [],
            "writers": [v, r.signature],
            "signatures": [r.signature],
            "cdate": t,
            "tcdate": t,
            "mdate": t,
            "tmdate": t,
            "license": LICENSE,
            "version": 2,
        }
        if public:
            note["odate"] = t
        self.notes[r.id] = note
        self.by_forum.setdefault(forum, []).append(r.id)
        self._index(r.id)
        decision = None
        if r.kind == "decision":
            decision = str(r.content.get("decision", {}).get("value"))
        self.replies[r.id] = ReplyRec(
            id=r.id,
            forum=forum,
            replyto=r.replyto,
            kind=r.kind,
            rating=r.rating,
            confidence=r.confidence,
            decision=decision,
            public=public,
        )
        return r.id

    def _enter_phase(self, phase: str) -> None:
        base = PHASE_BASE_MS[phase]
        offset = 0

        def at() -> int:
            nonlocal offset
            offset += 1000
            return base + offset

        if phase == "submission":
            for p in self.plan.submissions:
                self._create_submission(p, at())
        else:
            for p in self.plan.submissions:
                rec = self.subs.get(p.id)
                if rec is None or rec.deleted:
                    continue
                if phase == "decision" and rec.status != "active":
                    continue
                if phase == "camera_ready" and rec.status != "accepted":
                    continue
                for r in p.replies:
                    if r.phase != phase:
                        continue
                    if r.kind == "decision" and self.hold_decisions:
                        self._create_reply(p.id, r, at(), readers=self._chairs_only())
                        outcome = p.outcome
                        self._held[p.id] = (
                            ("accepted", outcome)
                            if outcome in ("oral", "poster")
                            else ("rejected", None)
                        )
                        continue
                    self._create_reply(p.id, r, at())
                    if r.kind == "withdrawal":
                        self._apply_status(p.id, "withdrawn", at=at())
                    elif r.kind == "desk_rejection":
                        self._apply_status(p.id, "desk_rejected", at=at())
                    elif r.kind == "decision":
                        outcome = p.outcome
                        if outcome in ("oral", "poster"):
                            self._apply_status(p.id, "accepted", outcome, at=at())
                        else:
                            self._apply_status(p.id, "rejected", at=at())
                    elif r.kind == "camera_ready":
                        c = self.notes[p.id]["content"]
                        c["abstract"] = {"value": r.content["abstract"]["value"]}
                        c["pdf"] = {"value": r.content["pdf"]["value"]}
                        if p.camera_ready_title:
                            c["title"] = {"value": p.camera_ready_title}
                            rec.title = p.camera_ready_title
                        self._touch(p.id, at())
        self.phase = phase

    # ---------------------------------------------------------------- mutations

    def advance(self, phase: str) -> None:
        with self._lock:
            if phase not in PHASES:
                raise ValueError(f"unknown phase {phase!r}; choose one of {PHASES}")
            cur = PHASES.index(self.phase)
            target = PHASES.index(phase)
            if target < cur:
                raise ValueError(f"cannot go back from {self.phase!r} to {phase!r}")
            for ph in PHASES[cur + 1 : target + 1]:
                if ph == "camera_ready":
                    self.release_decisions()  # camera-ready revisions follow the release
                self._enter_phase(ph)

    def _chairs_only(self) -> list[str]:
        return [f"{self.venue_id}/Program_Chairs"]

    def _accepts(self, decision: str) -> bool:
        """The venue's own rule: its accept options, else a decision beginning with Accept."""
        if self.cfg.has_accept_options:
            return decision in ("Accept (Oral)", "Accept (Poster)")
        return decision.strip().lower().startswith("accept")

    def release_decisions(self) -> int:
        """Release held decisions: the decision notes become public and each submission moves
        to its venueid (authors revealed for accepted papers). Returns how many were released."""
        with self._lock:
            held, self._held = self._held, {}
            for sid, (status, pres) in sorted(held.items()):
                rec = self.subs.get(sid)
                if rec is None or rec.deleted:
                    continue
                found = self._decision_reply(sid)
                if found is not None:
                    note = self.notes[found.id]
                    note["readers"] = ["everyone"]
                    t = self._touch(found.id)
                    note["odate"] = t
                    found.public = True
                self._apply_status(sid, status, pres)
            return len(held)

    def set_readers(
        self,
        note_id: str,
        readers: Any = None,
        nonreaders: Any = None,
        field: str | None = None,
    ) -> None:
        """Set a note's ``readers``/``nonreaders`` (None: leave as is), or with ``field`` the
        ``readers`` of one content field. Any JSON goes, malformed values included."""
        with self._lock:
            note = self.notes.get(note_id)
            if note is None:
                raise KeyError(f"no note {note_id!r}")
            if field is not None:
                entry = note["content"].get(field)
                if entry is None:
                    raise KeyError(f"note {note_id!r} has no content field {field!r}")
                entry["readers"] = readers
                if note_id in self.subs:
                    rec = self.subs[note_id]
                    if _everyone(readers):
                        rec.private_fields = rec.private_fields - {field}
                    else:
                        rec.private_fields = rec.private_fields | {field}
            else:
                if readers is not None:
                    note["readers"] = readers
                if nonreaders is not None:
                    note["nonreaders"] = nonreaders
                hidden = not _everyone(note.get("readers"), note.get("nonreaders"))
                if hidden:
                    note.pop("odate", None)
                if note_id in self.subs:
                    self.subs[note_id].hidden = hidden
                elif note_id in self.replies:
                    self.replies[note_id].public = not hidden
                    self.replies[note_id].hidden = False
            self._touch(note_id)

    def _require_sub(self, forum_id: str) -> SubRec:
        rec = self.subs.get(forum_id)
        if rec is None:
            raise KeyError(f"no submission {forum_id!r}")
        return rec

    def add_submission(self, note_id: str | None = None) -> str:
        """A new submission; ``note_id`` chooses its id (one a test needs, such as a migrated
        note's "-k9xQ2Lm_A"), else a fresh one."""
        with self._lock:
            if note_id is not None:
                if note_id in self.notes:
                    raise ValueError(f"note {note_id!r} exists already")
                self._ids.reserve([note_id])
            number = max((s.number for s in self.subs.values()), default=0) + 1
            title = make_title(self._rng)
            authors = [f"New Author{number}", "Ana Costa"]
            p = PlannedSubmission(
                id=note_id if note_id is not None else self._ids.new(),
                number=number,
                title=title,
                authors=authors,
                authorids=[f"~New_Author{number}1", f"ana.costa{number}@uni-example.edu"],
                keywords=["late submissions"],
                abstract=f"A late addition about {title.lower()}.",
                tldr="Added while the venue was live.",
                outcome="reject",
            )
            return self._create_submission(p, None)

    def add_review(self, forum_id: str, rating: int | str | None = None) -> str:
        with self._lock:
            rec = self._require_sub(forum_id)
            value: int | str = self._rng.randint(1, 10) if rating is None else rating
            conf = self._rng.randint(1, 5)
            sig = f"{self.venue_id}/Submission{rec.number}/Reviewer_{self._ids.new()[:4]}"
            r = PlannedReply(
                id=self._ids.new(),
                kind="review",
                replyto=forum_id,
                signature=sig,
                content={
                    "title": {"value": "Official review"},
                    "review": {"value": "Added review."},
                    "rating": {"value": value},
                    "confidence": {"value": conf},
                },
                public=True,
                phase="review",
                rating=parse_score(value),
                confidence=float(conf),
            )
            return self._create_reply(forum_id, r, None)

    def add_comment(self, forum_id: str, replyto: str | None = None, public: bool = True) -> str:
        with self._lock:
            rec = self._require_sub(forum_id)
            parent = replyto or forum_id
            pnote = self.notes.get(parent)
            if pnote is None or pnote["forum"] != forum_id:
                raise KeyError(f"{parent!r} is not a note of forum {forum_id!r}")
            r = PlannedReply(
                id=self._ids.new(),
                kind="comment",
                replyto=parent,
                signature=f"{self.venue_id}/Submission{rec.number}/Authors",
                content={"title": {"value": "Comment"}, "comment": {"value": "Added comment."}},
                public=public,
                phase="review",
            )
            return self._create_reply(forum_id, r, None)

    def edit_content(self, note_id: str, **fields: Any) -> None:
        with self._lock:
            note = self.notes.get(note_id)
            if note is None:
                raise KeyError(f"no note {note_id!r}")
            c = note["content"]
            for key, value in fields.items():
                if key in c:
                    c[key]["value"] = value
                else:
                    c[key] = {"value": value}
            self._touch(note_id)
            if note_id in self.subs:
                s = self.subs[note_id]
                if "title" in fields:
                    s.title = str(fields["title"])
                if "authors" in fields:
                    s.authors = list(fields["authors"])
                if "authorids" in fields:
                    s.authorids = list(fields["authorids"])
                if "keywords" in fields:
                    s.keywords = normalise_keywords(fields["keywords"])
            elif note_id in self.replies:
                r = self.replies[note_id]
                if "rating" in fields:
                    r.rating = parse_score(fields["rating"])
                if "confidence" in fields:
                    r.confidence = parse_score(fields["confidence"])
                if "decision" in fields and r.kind == "decision":
                    r.decision = str(fields["decision"])

    def _decision_reply(self, forum_id: str) -> ReplyRec | None:
        found = None
        for rid in self.by_forum.get(forum_id, []):
            r = self.replies[rid]
            if r.kind == "decision" and not r.deleted:
                found = r
        return found

    def _planned_decision(self, forum_id: str, decision: str, *, public: bool) -> PlannedReply:
        return PlannedReply(
            id=self._ids.new(),
            kind="decision",
            replyto=forum_id,
            signature=f"{self.venue_id}/Program_Chairs",
            content={
                "title": {"value": "Paper Decision"},
                "decision": {"value": decision},
                "comment": {"value": "Decision set by the program chairs."},
            },
            public=public,
            phase="decision",
        )

    def set_decision(self, forum_id: str, decision: str, release: bool = True) -> str:
        """Create or update the decision note; returns its id. Unreleased (``release=False``):
        readable by the program chairs only, the submission unchanged until
        `release_decisions`."""
        with self._lock:
            self._require_sub(forum_id)
            existing = self._decision_reply(forum_id)
            accepted = self._accepts(decision)
            pres = "oral" if "oral" in decision.lower() else "poster"
            if not release:
                self._held[forum_id] = ("accepted", pres) if accepted else ("rejected", None)
                if existing is not None:
                    self.edit_content(existing.id, decision=decision)
                    return existing.id
                r = self._planned_decision(forum_id, decision, public=False)
                return self._create_reply(forum_id, r, None, readers=self._chairs_only())
            self._held.pop(forum_id, None)
            if existing is not None:
                self.edit_content(existing.id, decision=decision)
                did = existing.id
                note = self.notes[did]
                if not existing.public:
                    note["readers"] = ["everyone"]
                    note["odate"] = self._touch(did)
                    existing.public = True
            else:
                r = self._planned_decision(forum_id, decision, public=True)
                did = self._create_reply(forum_id, r, None)
            if accepted:
                self._apply_status(forum_id, "accepted", pres)
            else:
                self._apply_status(forum_id, "rejected")
            return did

    def flip_decision(self, forum_id: str) -> str:
        with self._lock:
            rec = self._require_sub(forum_id)
            new = "Reject" if rec.status == "accepted" else "Accept (Poster)"
            self.set_decision(forum_id, new)
            return new

    def _terminal(self, forum_id: str, kind: ReplyKind, status: Status) -> str:
        with self._lock:
            rec = self._require_sub(forum_id)
            prefix = f"{self.venue_id}/Submission{rec.number}"
            if kind == "withdrawal":
                sig = f"{prefix}/Authors"
                content = {
                    "title": {"value": "Submission Withdrawn by the Authors"},
                    "withdrawal_confirmation": {"value": "I agree."},
                }
            else:
                sig = f"{self.venue_id}/Program_Chairs"
                content = {
                    "title": {"value": "Submission Desk Rejected by Program Chairs"},
                    "desk_reject_comments": {"value": "Out of scope."},
                }
            r = PlannedReply(
                id=self._ids.new(),
                kind=kind,
                replyto=forum_id,
                signature=sig,
                content=content,
                public=True,
                phase="review",
            )
            rid = self._create_reply(forum_id, r, None)
            self._apply_status(forum_id, status)
            return rid

    def withdraw(self, forum_id: str) -> str:
        return self._terminal(forum_id, "withdrawal", "withdrawn")

    def desk_reject(self, forum_id: str) -> str:
        return self._terminal(forum_id, "desk_rejection", "desk_rejected")

    def delete_note(self, note_id: str) -> None:
        with self._lock:
            note = self.notes.get(note_id)
            if note is None:
                raise KeyError(f"no note {note_id!r}")
            t = self._touch(note_id)
            note["ddate"] = t
            if note_id in self.subs:
                self.subs[note_id].deleted = True
            elif note_id in self.replies:
                self.replies[note_id].deleted = True

    def hide_note(self, note_id: str) -> None:
        with self._lock:
            note = self.notes.get(note_id)
            if note is None:
                raise KeyError(f"no note {note_id!r}")
            note["readers"] = [f"{self.venue_id}/Program_Chairs"]
            note.pop("odate", None)
            self._touch(note_id)
            if note_id in self.subs:
                self.subs[note_id].hidden = True
            elif note_id in self.replies:
                self.replies[note_id].hidden = True

    def random_mutation(self, rng: random.Random) -> str:
        with self._lock:
            live_subs = sorted(s.id for s in self.subs.values() if not s.deleted)
            live_replies = sorted(r.id for r in self.replies.values() if not r.deleted)
            ops = ["add_submission"]
            if live_subs:
                ops += [
                    "add_review",
                    "add_comment",
                    "edit_title",
                    "set_decision",
                    "flip",
                    "withdraw",
                    "desk_reject",
                    "hide_sub",
                ]
            if live_replies:
                ops += ["delete_reply", "hide_reply", "edit_rating"]
            if self.phase != PHASES[-1]:
                ops.append("advance")
            op = rng.choice(ops)
            fid = rng.choice(live_subs) if live_subs else ""
            if op == "add_submission":
                return f"add_submission -> {self.add_submission()}"
            if op == "add_review":
                rating: int | str = (
                    rng.randint(1, 10) if rng.random() < 0.5 else "3: reject, not good enough"
                )
                return f"add_review({fid}, {rating!r}) -> {self.add_review(fid, rating)}"
            if op == "add_comment":
                candidates = [fid, *self.by_forum.get(fid, [])]
                parent = rng.choice(candidates)
                public = rng.random() < 0.7
                nid = self.add_comment(fid, parent, public)
                return f"add_comment({fid}, replyto={parent}, public={public}) -> {nid}"
            if op == "edit_title":
                title = f"Retitled {rng.randint(0, 10**6)} — ünïcødé"
                self.edit_content(fid, title=title)
                return f"edit_content({fid}, title={title!r})"
            if op == "set_decision":
                d = rng.choice(["Accept (Oral)", "Accept (Poster)", "Reject"])
                self.set_decision(fid, d)
                return f"set_decision({fid}, {d!r})"
            if op == "flip":
                return f"flip_decision({fid}) -> {self.flip_decision(fid)}"
            if op == "withdraw":
                return f"withdraw({fid}) -> {self.withdraw(fid)}"
            if op == "desk_reject":
                return f"desk_reject({fid}) -> {self.desk_reject(fid)}"
            if op == "hide_sub":
                self.hide_note(fid)
                return f"hide_note({fid})"
            rid = rng.choice(live_replies) if live_replies else ""
            if op == "delete_reply":
                self.delete_note(rid)
                return f"delete_note({rid})"
            if op == "hide_reply":
                self.hide_note(rid)
                return f"hide_note({rid})"
            if op == "edit_rating":
                value = rng.randint(1, 10)
                self.edit_content(rid, rating=value)
                return f"edit_content({rid}, rating={value})"
            nxt = PHASES[PHASES.index(self.phase) + 1]
            self.advance(nxt)
            return f"advance({nxt!r})"

    # ------------------------------------------------------------------ truth

    def truth(self, reader: str = "chair") -> dict[str, Any]:
        if reader not in ("chair", "guest"):
            raise ValueError("reader must be 'chair' or 'guest'")
        chair = reader == "chair"
        with self._lock, gc_paused():

            def reply_visible(r: ReplyRec) -> bool:
                return not r.deleted and (chair or (r.public and not r.hidden))

            replies: dict[str, Any] = {}
            decision_of: dict[str, str] = {}
            for r in self.replies.values():
                if not reply_visible(r):
                    continue
                replies[r.id] = {
                    "forum": r.forum,
                    "replyto": r.replyto,
                    "kind": r.kind,
                    "rating": r.rating,
                    "confidence": r.confidence,
                    "decision": r.decision,
                }
                if r.kind == "decision" and r.decision is not None:
                    decision_of[r.forum] = r.decision  # later notes win, as in _decision_reply
            subs: dict[str, Any] = {}
            for s in self.subs.values():
                if s.deleted or (s.hidden and not chair):
                    continue
                see_authors = chair or s.authors_public
                shown = frozenset() if chair else s.private_fields
                see_authors = see_authors and "authors" not in shown
                subs[s.id] = {
                    "number": s.number,
                    "title": None if "title" in shown else s.title,
                    "status": s.status,
                    "decision": decision_of.get(s.id),
                    "presentation": s.presentation if s.status == "accepted" else None,
                    "authors": list(s.authors) if see_authors and s.authors is not None else None,
                    "authorids": (
                        list(s.authorids)
                        if see_authors and "authorids" not in shown and s.authorids is not None
                        else None
                    ),
                    "keywords": list(s.keywords),
                }
            return {"venue_id": self.venue_id, "submissions": subs, "replies": replies}

    # ---------------------------------------------------------------- serving

    def group_json(self, group_id: str) -> bytes:
        if group_id == self.venue_id:
            return b'{"groups":[' + self._group_json + b'],"count":1}'
        other = self._other_groups().get(group_id)
        if other is None:
            raise ApiError(
                404,
                "NotFoundError",
                f"Group Not Found: {group_id}",
                {"path": "id", "value": group_id},
            )
        return b'{"groups":[' + _dumps(other) + b'],"count":1}'

    def groups_json(self, parent: str | None, prefix: str | None) -> bytes:
        """``GET /groups?parent=P`` (direct children) or ``?prefix=P`` (every id starting so)."""
        groups = {**self._other_groups(), self.venue_id: None}
        ids = sorted(
            g
            for g in groups
            if (parent is None or g.rpartition("/")[0] == parent)
            and (prefix is None or g.startswith(prefix))
        )
        items = [self._group_json if g == self.venue_id else _dumps(groups[g]) for g in ids]
        return b'{"groups":[' + b",".join(items) + b'],"count":' + str(len(ids)).encode() + b"}"

    def _other_groups(self) -> dict[str, dict[str, Any]]:
        """The venue's ancestors (containers with empty content) and a few sibling venues,
        so a client can list the venues under a prefix as it would on the live service."""
        t = PHASE_BASE_MS["submission"] - 86_400_000 * 60
        parts = self.venue_id.split("/")
        out: dict[str, dict[str, Any]] = {}
        for i in range(1, len(parts)):
            gid = "/".join(parts[:i])
            out[gid] = {
                "id": gid,
                "content": {},
                "readers": ["everyone"],
                "writers": [gid],
                "signatures": ["~Super_User1"],
                "signatories": [gid],
                "members": [],
                "cdate": t,
                "tcdate": t,
                "tmdate": t,
            }
        parent = "/".join(parts[:-1])
        for name in _SIBLING_VENUES:
            gid = f"{parent}/{name}" if parent else name
            if gid == self.venue_id:
                continue
            out[gid] = {
                "id": gid,
                "readers": ["everyone"],
                "writers": [gid],
                "signatures": ["~Super_User1"],
                "signatories": [gid],
                "members": [f"{gid}/Program_Chairs"],
                "domain": gid,
                "content": {
                    "title": {"value": f"{name} workshop"},
                    "submission_venue_id": {"value": f"{gid}/Submission"},
                },
                "cdate": t,
                "tcdate": t,
                "tmdate": t,
            }
        return out

    def _view(self, nid: str, reader: Reader) -> dict[str, Any] | None:
        note = self.notes[nid]
        if reader == "chair":
            return note
        if not _everyone(note.get("readers"), note.get("nonreaders")):
            return None
        content = {
            k: v
            for k, v in note["content"].items()
            if "readers" not in v or _everyone(v["readers"])
        }
        return {**note, "content": content}

    def _json(self, nid: str, reader: Reader) -> bytes | None:
        key = (nid, reader)
        if key in self._cache:
            return self._cache[key]
        view = self._view(nid, reader)
        data = None if view is None else _dumps(view)
        self._cache[key] = data
        return data

    def _visible(self, nid: str, reader: Reader, trash: bool) -> bool:
        note = self.notes[nid]
        if "ddate" in note and not trash:
            return False
        return reader == "chair" or _everyone(note.get("readers"), note.get("nonreaders"))

    def list_notes(self, reader: Reader, q: dict[str, str]) -> bytes:
        with self._lock:
            return self._list_notes(reader, q)

    def _list_notes(self, reader: Reader, q: dict[str, str]) -> bytes:
        trash = q.get("trash", "false").lower() == "true"
        limit = _int_param(q, "limit")
        offset = _int_param(q, "offset") or 0
        mintcdate = _int_param(q, "mintcdate")
        mintmdate = _int_param(q, "mintmdate") if self.honour_mintmdate else None
        if limit is None:
            limit = 1000
        if limit < 0 or limit > 1000 or offset < 0:
            raise ApiError(
                400,
                "ValidationError",
                "limit must be between 0 and 1000",
                {"path": "limit", "value": q.get("limit")},
            )
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        sort = q.get("sort", "id")
        field, _, direction = sort.partition(":")
        direction = direction or "asc"
        if field not in SORT_FIELDS or direction not in ("asc", "desc"):
            raise ApiError(
                400,
                "ValidationError",
                f"Invalid sort value: {sort}",
                {"path": "sort", "value": sort},
            )

        candidates: list[str] | set[str]
        if "id" in q:
            candidates = [i for i in _split(q["id"]) if i in self.notes]
        elif "forum" in q:
            candidates = []
            for f in _split(q["forum"]):
                if f in self.notes:
                    candidates.append(f)
                    candidates.extend(self.by_forum.get(f, []))
        elif "invitation" in q:
            candidates = set()
            for inv in _split(q["invitation"]):
                candidates |= self.by_invitation.get(inv, set())
        else:
            candidates = list(self.notes)

        filters: dict[str, set[str]] = {}
        for name in ("id", "forum", "replyto", "invitation", "number", "domain"):
            if name in q:
                filters[name] = set(_split(q[name]))
        content_filters = {
            k[len("content.") :]: set(_split(v)) for k, v in q.items() if k.startswith("content.")
        }

        matched: list[dict[str, Any]] = []
        for nid in candidates:
            if not self._visible(nid, reader, trash):
                continue
            note = self.notes[nid]
            if "id" in filters and nid not in filters["id"]:
                continue
            if "forum" in filters and note["forum"] not in filters["forum"]:
                continue
            if "replyto" in filters and note.get("replyto") not in filters["replyto"]:
                continue
            if "invitation" in filters and not filters["invitation"].intersection(
                note["invitations"]
            ):
                continue
            if "number" in filters and str(note.get("number")) not in filters["number"]:
                continue
            if "domain" in filters and note["domain"] not in filters["domain"]:
                continue
            if mintcdate is not None and note["tcdate"] < mintcdate:
                continue
            if mintmdate is not None and note["tmdate"] < mintmdate:
                continue
            if content_filters:
                view = self._view(nid, reader)
                assert view is not None
                if not all(
                    self._content_match(view["content"].get(f), wanted)
                    for f, wanted in content_filters.items()
                ):
                    continue
            matched.append(note)

        def key(n: dict[str, Any]) -> tuple[Any, str]:
            return (n.get(field) or 0, n["id"]) if field != "id" else ("", n["id"])

        reverse = direction == "desc"
        matched.sort(key=key, reverse=reverse)
        count = len(matched)
        if "id" in q and not matched:
            ident = q["id"]
            raise ApiError(
                404,
                "NotFoundError",
                f"The Note {ident} was not found",
                {"path": "id", "value": ident},
            )
        if "after" in q:
            anchor = self.notes.get(q["after"])
            if field == "id":
                akey: tuple[Any, str] | None = ("", q["after"])
            elif anchor is not None:
                akey = key(anchor)
            else:
                akey = None
            if akey is None:
                matched = []
            elif reverse:
                matched = [n for n in matched if key(n) < akey]
            else:
                matched = [n for n in matched if key(n) > akey]
        page = matched[offset : offset + limit]

        details = set(_split(q.get("details", "")))
        select = _split(q.get("select", ""))
        parts = [self._serialise(n["id"], reader, trash, details, select) for n in page]
        return b'{"notes":[' + b",".join(parts) + b'],"count":' + str(count).encode() + b"}"

    @staticmethod
    def _content_match(field: dict[str, Any] | None, wanted: set[str]) -> bool:
        if field is None:
            return False
        value = field.get("value")
        if isinstance(value, list):
            return any(str(v) in wanted for v in value)
        return str(value) in wanted

    def _serialise(
        self, nid: str, reader: Reader, trash: bool, details: set[str], select: list[str]
    ) -> bytes:
        if select:
            view = self._view(nid, reader)
            assert view is not None
            picked: dict[str, Any] = {}
            for s in select:
                if s.startswith("content."):
                    f = s[len("content.") :]
                    if f in view["content"]:
                        picked.setdefault("content", {})[f] = view["content"][f]
                elif s in view:
                    picked[s] = view[s]
            base = _dumps(picked)
        else:
            raw = self._json(nid, reader)
            assert raw is not None
            base = raw
        if not details:
            return base
        note = self.notes[nid]
        forum_replies = (
            [r for r in self.by_forum.get(nid, []) if self._visible(r, reader, trash)]
            if note["forum"] == nid
            else []
        )
        chunks: list[bytes] = []
        if "replyCount" in details:
            chunks.append(b'"replyCount":' + str(len(forum_replies)).encode())
        if "directReplies" in details:
            direct = [
                r
                for r in self.by_forum.get(note["forum"], [])
                if self.notes[r].get("replyto") == nid and self._visible(r, reader, trash)
            ]
            chunks.append(
                b'"directReplies":['
                + b",".join(self._json(r, reader) or b"{}" for r in direct)
                + b"]"
            )
        if "replies" in details:
            chunks.append(
                b'"replies":['
                + b",".join(self._json(r, reader) or b"{}" for r in forum_replies)
                + b"]"
            )
        body = b"{" + b",".join(chunks) + b"}"
        if base == b"{}":
            return b'{"details":' + body + b"}"
        return base[:-1] + b',"details":' + body + b"}"

    def attachment(self, reader: Reader, note_id: str, name: str) -> bytes:
        """One note's file: the generated PDF changes with ``content.<name>.value`` (whose path
        carries the file's hash), as OpenReview's files do."""
        with self._lock:
            if note_id not in self.notes or not self._visible(note_id, reader, False):
                raise ApiError(
                    404,
                    "NotFoundError",
                    f"The Note {note_id} was not found",
                    {"path": "id", "value": note_id},
                )
            view = self._view(note_id, reader)
            assert view is not None
            if name not in view["content"]:
                raise ApiError(
                    404,
                    "NotFoundError",
                    f"Attachment {name} not found",
                    {"path": "name", "value": name},
                )
            override = self.file_overrides.get((note_id, name))
            if override is not None:
                return override
            title = str(self.notes[note_id]["content"].get("title", {}).get("value", note_id))
            value = str(view["content"][name].get("value", ""))
        return _pdf_bytes(title, value)

    def attachments_zip(self, reader: Reader, ids: list[str], name: str) -> bytes:
        """``GET /attachment?ids=A,B&name=F``: one zip, a member ``<id>.<ext>`` per readable
        note that has the file (others are left out); at most 50 ids."""
        if not ids or len(ids) > 50:
            raise ApiError(
                400, "ValidationError", "ids must hold 1 to 50 note ids", {"path": "ids"}
            )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for nid in ids:
                try:
                    data = self.attachment(reader, nid, name)
                except ApiError:
                    continue
                archive.writestr(f"{nid}.{self._ext(nid, name)}", data)
        return buffer.getvalue()

    def _ext(self, note_id: str, name: str) -> str:
        with self._lock:
            field = self.notes[note_id]["content"].get(name) or {}
            value = str(field.get("value", ""))
        ext = value.rpartition(".")[2].lower()
        return ext if ext.isalnum() and len(ext) <= 8 else "pdf"

    def edits(self, reader: Reader, q: dict[str, str]) -> bytes:
        with self._lock:
            nid = q.get("note.id", "")
            if nid not in self.notes or not self._visible(nid, reader, True):
                return b'{"edits":[],"count":0}'
            view = self._view(nid, reader)
            assert view is not None
            note = self.notes[nid]
            edit = {
                "id": "E" + nid[1:10],
                "invitation": note["invitations"][0],
                "domain": self.venue_id,
                "signatures": note["signatures"],
                "readers": note["readers"],
                "writers": note["writers"],
                "note": view,
                "cdate": note["cdate"],
                "tcdate": note["tcdate"],
                "tmdate": note["tmdate"],
            }
            return b'{"edits":[' + _dumps(edit) + b'],"count":1}'


def _pdf_bytes(title: str, version: str = "") -> bytes:
    """A tiny but structurally valid one-page PDF; ``version`` (the file's path) is printed
    small at the foot, so a new upload is new bytes."""
    safe = "".join(ch for ch in title if 32 <= ord(ch) < 127 and ch not in "()\\")[:80]
    tag = "".join(ch for ch in version if 32 <= ord(ch) < 127 and ch not in "()\\")[:80]
    stream = (f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET BT /F1 6 Tf 72 40 Td ({tag}) Tj ET").encode(
        "latin-1"
    )
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
