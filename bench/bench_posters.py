"""Poster assignment benchmark: ``.venv/bin/python bench/bench_posters.py [--seed N]``.

Synthetic venues with a realistic author structure: a few prolific senior authors on many papers
(Zipf-like), most authors on one or two, 2-6 authors per paper, ~8% of papers with a contributed
talk, and a tight-ish capacity (5% slack over an even split).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from datetime import datetime, timedelta, timezone

from orsync.posters import Placement, PosterPaper, Session, assign

TZ = timezone(timedelta(hours=2))
KEYWORDS = [f"kw{i}" for i in range(60)]


def sessions(count: int) -> list[Session]:
    day = datetime(2024, 5, 11, 9, 0, tzinfo=TZ)
    return [
        Session(
            f"P{k + 1}",
            f"Poster session {k + 1}",
            day + timedelta(hours=1.5 * k),
            day + timedelta(hours=1.5 * k + 1),
        )
        for k in range(count)
    ]


def venue(n: int, sess: list[Session], rng: random.Random) -> list[PosterPaper]:
    pool = max(20, int(n * 2.5))
    # Offset Zipf: top authors reach ~7 papers at 150 and ~35 at 2,000, as at ICLR.
    weights = [1.0 / (r + 50) for r in range(pool)]
    papers = []
    for i in range(n):
        k = rng.randint(2, 6)
        authors = sorted({f"~Author{a}" for a in rng.choices(range(pool), weights, k=k)})
        kws = tuple(sorted(set(rng.sample(KEYWORDS, rng.randint(1, 4)))))
        talks: tuple[tuple[datetime, datetime], ...] = ()
        if rng.random() < 0.08:
            s = rng.choice(sess)
            talks = ((s.start + timedelta(minutes=10), s.start + timedelta(minutes=25)),)
        papers.append(PosterPaper(f"forum{i:05d}", i + 1, tuple(authors), kws, talks))
    return papers


def shared_pairs(papers: list[PosterPaper]) -> int:
    by_author: dict[str, set[int]] = {}
    for i, p in enumerate(papers):
        for a in p.author_keys:
            by_author.setdefault(a, set()).add(i)
    pairs = {(i, j) for m in by_author.values() for i in m for j in m if i < j}
    return len(pairs)


def max_author_load(papers: list[PosterPaper]) -> int:
    counts: dict[str, int] = {}
    for p in papers:
        for a in p.author_keys:
            counts[a] = counts.get(a, 0) + 1
    return max(counts.values())


def run(n: int, k: int, seed: int, time_limit: float) -> list[str]:
    rng = random.Random(seed)
    sess = sessions(k)
    papers = venue(n, sess, rng)
    cap = math.ceil(n / k * 1.05)
    pairs = shared_pairs(papers)
    t0 = time.perf_counter()
    first = assign(papers, sess, cap, {}, {}, time_limit_s=time_limit, seed=0)
    cold = time.perf_counter() - t0
    # Re-run after 3 late accepts and one withdrawal, the everyday push.
    late = venue(3, sess, random.Random(seed + 1))
    late = [
        PosterPaper(f"late{j}", n + j + 1, p.author_keys, p.keywords) for j, p in enumerate(late)
    ]
    prev: dict[str, Placement] = dict(first.placements)
    again = papers[1:] + late
    t0 = time.perf_counter()
    second = assign(again, sess, cap + 1, prev, {}, time_limit_s=time_limit, seed=0)
    warm = time.perf_counter() - t0
    return [
        f"{n}",
        f"{k}",
        f"{cap}",
        f"{pairs}",
        f"{max_author_load(papers)}",
        f"{cold:.2f}",
        first.status,
        f"{len(first.clashes)}",
        f"{first.objective:g}",
        f"{warm:.2f}",
        second.status,
        f"{len(second.moved)}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=10.0)
    args = parser.parse_args()
    header = [
        "papers",
        "sessions",
        "cap",
        "shared-author pairs",
        "max papers/author",
        "cold s",
        "status",
        "clashes",
        "objective",
        "re-run s",
        "status",
        "moved",
    ]
    rows = [run(n, k, args.seed, args.time_limit) for n, k in ((65, 4), (150, 4), (2000, 8))]
    widths = [max(len(h), *(len(r[c]) for r in rows)) for c, h in enumerate(header)]
    print(" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    print("-|-".join("-" * w for w in widths))
    for r in rows:
        print(" | ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
