"""Seeded generator of a synthetic OpenReview venue.

The generator produces a *plan*: every submission and every reply the venue will ever have in
its default life (submission -> review -> decision -> camera-ready), with the values the ground
truth needs kept as plain Python data. `venue.Venue` turns the plan into served notes phase by
phase, so the oracle (`Venue.truth`) never has to parse the JSON it serves.
"""

from __future__ import annotations

import gc
import hashlib
import random
import string
from dataclasses import dataclass, field
from typing import Any, Literal

Outcome = Literal["oral", "poster", "reject", "withdrawn", "desk_rejected"]
ReplyKind = Literal[
    "review", "meta_review", "decision", "comment", "withdrawal", "desk_rejection", "camera_ready"
]

PHASES: tuple[str, ...] = ("submission", "review", "decision", "camera_ready")

INVITATION_NAMES: dict[str, str] = {
    "review": "Official_Review",
    "meta_review": "Meta_Review",
    "decision": "Decision",
    "comment": "Official_Comment",
    "withdrawal": "Withdrawal",
    "desk_rejection": "Desk_Rejection",
    "camera_ready": "Camera_Ready_Revision",
}

RATING_LABELS: dict[int, str] = {
    1: "strong reject",
    2: "reject, significant issues present",
    3: "reject, not good enough",
    4: "possibly reject, but has redeeming facets",
    5: "marginally below the acceptance threshold",
    6: "marginally above the acceptance threshold",
    7: "accept, but needs minor improvements",
    8: "accept, good paper",
    9: "strong accept, excellent work",
    10: "strong accept, should be highlighted at the conference",
}

CONFIDENCE_LABELS: dict[int, str] = {
    1: "You are unable to assess this paper and have alerted the ACs to seek an opinion from "
    "different reviewers.",
    2: "You are willing to defend your assessment, but it is quite likely that you did not "
    "understand the central parts of the submission.",
    3: "You are fairly confident in your assessment.",
    4: "You are confident in your assessment, but not absolutely certain.",
    5: "You are absolutely certain about your assessment.",
}

DECISIONS: dict[str, str] = {
    "oral": "Accept (Oral)",
    "poster": "Accept (Poster)",
    "reject": "Reject",
}

_ID_ALPHABET = string.ascii_letters + string.digits

# Titles that exercise every encoding trap a mirror can fall into; spliced into the first papers
# so even a tiny `size` carries them.
MESSY_TITLES: tuple[str, ...] = (
    r"Sorting in $\mathcal{O}(n^2)$ Time Is Enough: Revisiting Quadratic Attention",
    "Über die Größe neuronaler Netze: Müller's Lemma Revisited",
    "深度学习中的泛化：A Bilingual Study of Generalization",
    "Rocket-Fast Inference 🚀 with Speculative Decoding",
    "Cafe\u0301 Net: Combining Characters in Tokenizers (na\u0308ive or not?)",
    r"On the $\ell_1$-Robustness of \textsc{GPT}-Style Models & <Friends>",
    'The "Curse" of Depth; or, Why 100% Accuracy Isn\'t Enough',
)

_ADJ = (
    "Scalable",
    "Robust",
    "Efficient",
    "Provable",
    "Sparse",
    "Adaptive",
    "Contrastive",
    "Causal",
    "Hierarchical",
    "Implicit",
    "Neural",
    "Bayesian",
    "Federated",
    "Equivariant",
    "Latent",
    "Generative",
    "Self-Supervised",
    "Differentiable",
    "Multimodal",
    "Continual",
)
_NOUN = (
    "Transformers",
    "Language Models",
    "Diffusion",
    "Attention",
    "Tokenization",
    "Retrieval",
    "Graph Networks",
    "Optimisation",
    "Representations",
    "Agents",
    "Reward Models",
    "Prompting",
    "Benchmarks",
    "Alignment",
    "Scaling Laws",
    "In-Context Learning",
    "Distillation",
)
_TAIL = (
    "for Long Contexts",
    "without Labels",
    "at Scale",
    "in the Wild",
    "via Spectral Methods",
    "under Distribution Shift",
    "with Guarantees",
    "Revisited",
    "from First Principles",
    "",
)
_FIRST = (
    "Ana",
    "Bo",
    "Chen",
    "Dana",
    "Emil",
    "Fatima",
    "Goran",
    "Hiro",
    "Ines",
    "Jonas",
    "Kavya",
    "Lars",
    "Mei",
    "Nikolai",
    "Olu",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tomás",
    "Uma",
    "Valentin",
    "Wen",
    "Xavier",
    "Yuki",
    "Zoë",
    "José",
    "Björn",
    "Łukasz",
    "Siobhán",
)
_LAST = (
    "Abe",
    "Bauer",
    "Costa",
    "Dubois",
    "Eriksen",
    "Fischer",
    "García",
    "Hoang",
    "Ivanova",
    "Jensen",
    "Kim",
    "Li",
    "Müller",
    "Nakamura",
    "O'Brien",
    "Petrov",
    "Quispe",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Virtanen",
    "Wang",
    "Xu",
    "Yilmaz",
    "Zhang",
    "Nguyen",
    "Smith",
    "Kowalski",
    "Singh",
)
_KEYWORDS = (
    "large language models",
    "transformers",
    "attention",
    "reinforcement learning",
    "robustness",
    "interpretability",
    "diffusion models",
    "tokenization",
    "scaling laws",
    "benchmarks",
    "in-context learning",
    "alignment",
    "efficiency",
    "theory",
    "graph neural networks",
    "federated learning",
    "optimization",
    "generalization",
    "multimodal",
    "retrieval",
)
_DOMAINS = ("uni-example.edu", "example.ac.uk", "research.example.com", "inst.example.org")


@dataclass(frozen=True)
class DatasetConfig:
    """Shape of one venue; `bgpt` and `iclr` differ only in these numbers and switches."""

    name: str
    venue_id: str
    venue_short: str  # "ICLR 2024 Workshop BGPT"
    default_size: int
    has_meta_review: bool
    has_accept_options: bool
    oral_frac: float
    poster_frac: float
    withdrawn_frac: float
    desk_frac: float
    reviews_per_paper: int
    comments_mean: float
    int_rating_frac: float  # share of reviews with integer (not string) ratings


DATASETS: dict[str, DatasetConfig] = {
    "bgpt": DatasetConfig(
        name="bgpt",
        venue_id="ICLR.cc/2024/Workshop/BGPT",
        venue_short="ICLR 2024 Workshop BGPT",
        default_size=120,
        has_meta_review=False,
        has_accept_options=False,
        oral_frac=5 / 120,
        poster_frac=60 / 120,
        withdrawn_frac=4 / 120,
        desk_frac=3 / 120,
        reviews_per_paper=3,
        comments_mean=1.5,
        int_rating_frac=0.5,
    ),
    "iclr": DatasetConfig(
        name="iclr",
        venue_id="ICLR.cc/2024/Conference",
        venue_short="ICLR 2024",
        default_size=7500,
        has_meta_review=True,
        has_accept_options=True,
        oral_frac=0.012,
        poster_frac=0.30,
        withdrawn_frac=0.08,
        desk_frac=0.015,
        reviews_per_paper=4,
        comments_mean=7.5,
        int_rating_frac=0.1,
    ),
}


@dataclass
class PlannedReply:
    id: str
    kind: ReplyKind
    replyto: str
    signature: str
    content: dict[str, Any]
    public: bool
    phase: str  # phase in which the reply appears
    rating: float | None = None
    confidence: float | None = None


@dataclass
class PlannedSubmission:
    id: str
    number: int
    title: str
    authors: list[str]
    authorids: list[str]
    keywords: list[str] | str  # as served: some forms use one comma-separated string
    abstract: str
    tldr: str
    outcome: Outcome
    replies: list[PlannedReply] = field(default_factory=list)
    camera_ready_title: str | None = None  # set when the camera-ready revision retitles
    # The form's "previously published" answer (served as content.previously_published, "Yes"
    # or "No"): such papers may not be orals. Derived from the id, not the seeded stream, so
    # every other generated value stays what it was before the field existed.
    previously_published: bool = False


@dataclass
class Plan:
    config: DatasetConfig
    submissions: list[PlannedSubmission]


def normalise_keywords(raw: list[str] | str | None) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [k.strip() for k in raw.split(",") if k.strip()]
    return [str(k) for k in raw]


def parse_score(value: object) -> float | None:
    """Numeric part of a rating/confidence: ints as-is, strings like '6: marginally ...'."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        head = value.split(":", 1)[0].strip()
        try:
            return float(head)
        except ValueError:
            return None
    return None


class IdMaker:
    """Unique note ids; ~1% are 11 characters with '-' or '_' like API-v1 migrated notes."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._seen: set[str] = set()

    def reserve(self, ids: list[str]) -> None:
        self._seen.update(ids)

    def new(self) -> str:
        while True:
            if self._rng.random() < 0.01:
                chars = self._rng.choices(_ID_ALPHABET, k=11)
                chars[self._rng.randrange(1, 10)] = self._rng.choice("-_")
            else:
                chars = self._rng.choices(_ID_ALPHABET, k=10)
            nid = "".join(chars)
            if nid not in self._seen:
                self._seen.add(nid)
                return nid


def published_before(note_id: str) -> bool:
    """About one submission in ten says it was published before (a journal version, say)."""
    return int(hashlib.sha256(f"published:{note_id}".encode()).hexdigest()[:8], 16) % 10 == 0


def _anon_suffix(rng: random.Random) -> str:
    return "".join(rng.choice(_ID_ALPHABET) for _ in range(4))


def make_title(rng: random.Random) -> str:
    tail = rng.choice(_TAIL)
    title = f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}"
    return f"{title} {tail}" if tail else title


def make_review(
    rng: random.Random, cfg: DatasetConfig, outcome: Outcome
) -> tuple[dict[str, Any], float, float]:
    centre = {"oral": 8.5, "poster": 6.5, "reject": 4.0, "withdrawn": 3.5, "desk_rejected": 3.0}
    rating = max(1, min(10, round(rng.gauss(centre[outcome], 1.3))))
    confidence = rng.randint(2, 5)
    content: dict[str, Any] = {
        "title": {"value": "Official review"},
        "review": {"value": f"The paper is {rng.choice(['clear', 'dense', 'novel', 'thin'])}."},
    }
    if rng.random() < cfg.int_rating_frac:
        content["rating"] = {"value": rating}
        content["confidence"] = {"value": confidence}
    else:
        content["rating"] = {"value": f"{rating}: {RATING_LABELS[rating]}"}
        content["confidence"] = {"value": f"{confidence}: {CONFIDENCE_LABELS[confidence]}"}
    return content, float(rating), float(confidence)


def _outcomes(n: int, cfg: DatasetConfig, rng: random.Random) -> list[Outcome]:
    n_oral = max(1, round(n * cfg.oral_frac)) if n >= 10 else min(1, n)
    n_poster = round(n * cfg.poster_frac)
    n_wd = max(1, round(n * cfg.withdrawn_frac)) if n >= 10 else 0
    n_desk = max(1, round(n * cfg.desk_frac)) if n >= 10 else 0
    oral: list[Outcome] = ["oral"]
    poster: list[Outcome] = ["poster"]
    wd: list[Outcome] = ["withdrawn"]
    desk: list[Outcome] = ["desk_rejected"]
    out = oral * n_oral + poster * n_poster + wd * n_wd + desk * n_desk
    out = out[:n]
    reject: list[Outcome] = ["reject"]
    out += reject * (n - len(out))
    rng.shuffle(out)
    return out


def generate(dataset: str, seed: int, size: int | None = None) -> Plan:
    """Build the whole life of a venue deterministically from `seed`."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    cfg = DATASETS[dataset]
    n = cfg.default_size if size is None else size
    if n < 0:
        raise ValueError("size must be >= 0")
    rng = random.Random(f"{dataset}:{seed}")
    # No cyclic garbage is built here; GC rescans of the growing plan dominate at iclr scale.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _generate(cfg, n, rng)
    finally:
        if was_enabled:
            gc.enable()


def _generate(cfg: DatasetConfig, n: int, rng: random.Random) -> Plan:
    ids = IdMaker(rng)
    v = cfg.venue_id

    pool_size = max(8, n * 2)
    pool: list[tuple[str, str, str]] = []  # (name, tilde id, email)
    used_names: dict[str, int] = {}
    for _ in range(pool_size):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        base = f"{first}_{last}".replace(" ", "_").replace("'", "")
        used_names[base] = used_names.get(base, 0) + 1
        email = f"{first.lower()}.{last.lower()}{used_names[base]}@{rng.choice(_DOMAINS)}"
        pool.append((f"{first} {last}", f"~{base}{used_names[base]}", email))
    # A small prolific core so many authors appear on several papers.
    core = pool[: max(3, pool_size // 20)]

    outcomes = _outcomes(n, cfg, rng)
    subs: list[PlannedSubmission] = []
    for i in range(n):
        number = i + 1
        outcome = outcomes[i]
        sid = ids.new()
        title = MESSY_TITLES[i] if i < len(MESSY_TITLES) else make_title(rng)
        k = rng.choice((1, 2, 3, 3, 4, 5, 6))
        chosen: list[tuple[str, str, str]] = []
        while len(chosen) < k:
            a = rng.choice(core) if rng.random() < 0.3 else rng.choice(pool)
            if a not in chosen:
                chosen.append(a)
        authors = [a[0] for a in chosen]
        authorids = [a[2] if rng.random() < 0.2 else a[1] for a in chosen]
        kws = rng.sample(_KEYWORDS, rng.randint(1, 4))
        keywords: list[str] | str = ", ".join(kws) if rng.random() < 0.15 else kws
        sub = PlannedSubmission(
            id=sid,
            number=number,
            title=title,
            authors=authors,
            authorids=authorids,
            keywords=keywords,
            abstract=f"We study {title.lower()}. Results on {rng.randint(2, 9)} benchmarks.",
            tldr=f"{rng.choice(_ADJ)} method; {rng.randint(1, 40)}% better.",
            outcome=outcome,
            previously_published=published_before(sid),
        )
        sig_prefix = f"{v}/Submission{number}"
        reviewer_sigs: list[str] = []
        if outcome != "desk_rejected":
            n_rev = cfg.reviews_per_paper
            r = rng.random()
            if outcome == "withdrawn":
                n_rev = rng.randint(0, cfg.reviews_per_paper)
            elif r < 0.12:
                n_rev = rng.randint(1, 2)
            elif r < 0.30:
                n_rev += 1
            for _ in range(n_rev):
                content, rating, conf = make_review(rng, cfg, outcome)
                sig = f"{sig_prefix}/Reviewer_{_anon_suffix(rng)}"
                reviewer_sigs.append(sig)
                sub.replies.append(
                    PlannedReply(
                        ids.new(),
                        "review",
                        sid,
                        sig,
                        content,
                        True,
                        "review",
                        rating=rating,
                        confidence=conf,
                    )
                )
        if outcome == "withdrawn":
            sub.replies.append(
                PlannedReply(
                    ids.new(),
                    "withdrawal",
                    sid,
                    f"{sig_prefix}/Authors",
                    {
                        "title": {"value": "Submission Withdrawn by the Authors"},
                        "withdrawal_confirmation": {
                            "value": "I have read and agree with the venue's withdrawal policy "
                            "on behalf of myself and my co-authors."
                        },
                    },
                    True,
                    "review",
                )
            )
        if outcome == "desk_rejected":
            sub.replies.append(
                PlannedReply(
                    ids.new(),
                    "desk_rejection",
                    sid,
                    f"{v}/Program_Chairs",
                    {
                        "title": {"value": "Submission Desk Rejected by Program Chairs"},
                        "desk_reject_comments": {"value": "Violates the page limit."},
                    },
                    True,
                    "review",
                )
            )
        # Comments: some nested, some restricted to the committee.
        if outcome != "desk_rejected":
            n_com = min(20, int(rng.expovariate(1 / cfg.comments_mean))) if cfg.comments_mean else 0
            parents: list[str] = [sid] + [r.id for r in sub.replies if r.kind == "review"]
            comments: list[str] = []
            for _ in range(n_com):
                if comments and rng.random() < 0.35:
                    parent = rng.choice(comments)
                else:
                    parent = rng.choice(parents)
                public = rng.random() >= 0.2
                sig = rng.choice([f"{sig_prefix}/Authors", f"{v}/Program_Chairs", *reviewer_sigs])
                cid = ids.new()
                comments.append(cid)
                sub.replies.append(
                    PlannedReply(
                        cid,
                        "comment",
                        parent,
                        sig,
                        {
                            "title": {"value": rng.choice(["Response", "Re: question", "Thanks"])},
                            "comment": {
                                "value": rng.choice(
                                    [
                                        "We clarified §3.",
                                        "See Table 2 ✓",
                                        "Merci — updated.",
                                        "Agreed.",
                                    ]
                                )
                            },
                        },
                        public,
                        "review",
                    )
                )
        if outcome in ("oral", "poster", "reject"):
            decision = DECISIONS[outcome]
            if cfg.has_meta_review:
                # Drawn in the order they always were: a seed gives the venue it gave.
                meta_id = ids.new()
                area_chair = f"{sig_prefix}/Area_Chair_{_anon_suffix(rng)}"
                meta_confidence = rng.randint(3, 5)
                sub.replies.append(
                    PlannedReply(
                        meta_id,
                        "meta_review",
                        sid,
                        area_chair,
                        {
                            "metareview": {"value": "The reviewers reached consensus."},
                            "recommendation": {"value": decision},
                            "confidence": {"value": meta_confidence},
                        },
                        True,
                        "decision",
                        # The truth holds what the note says (orsync keeps a meta-review's).
                        confidence=float(meta_confidence),
                    )
                )
            sub.replies.append(
                PlannedReply(
                    ids.new(),
                    "decision",
                    sid,
                    f"{v}/Program_Chairs",
                    {
                        "title": {"value": "Paper Decision"},
                        "decision": {"value": decision},
                        "comment": {
                            "value": rng.choice(
                                [
                                    "Congratulations.",
                                    "Solid work.",
                                    "The committee thanks the authors.",
                                ]
                            )
                        },
                    },
                    True,
                    "decision",
                )
            )
            if outcome in ("oral", "poster"):
                new_title = None
                if rng.random() < 0.2:
                    new_title = sub.title + ": Camera-Ready Edition"
                sub.camera_ready_title = new_title
                sub.replies.append(
                    PlannedReply(
                        ids.new(),
                        "camera_ready",
                        sid,
                        f"{sig_prefix}/Authors",
                        {
                            "title": {"value": new_title or sub.title},
                            "abstract": {"value": sub.abstract + " (camera-ready)"},
                            "pdf": {"value": f"/pdf/{rng.getrandbits(160):040x}.pdf"},
                        },
                        True,
                        "camera_ready",
                    )
                )
        subs.append(sub)
    return Plan(config=cfg, submissions=subs)
