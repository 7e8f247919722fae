"""Poster assignment benchmark: ``.venv/bin/python bench/bench_posters.py [--seed N]``.

Two author profiles, both with 2-6 authors per paper, ~8% of papers with a contributed talk and a
tight-ish capacity (5% slack over an even split):
- ``heavy``: offset-Zipf authorship, prolific seniors on many papers (7-9 at 150 papers, ~40 at
  2,000) -- harder than a real workshop on purpose, so clashes are unavoidable;
- ``realistic``: a workshop -- most authors on one paper, some on two, a few on 3-5.
Each row: a cold assignment; the everyday re-run after one withdrawal and three late accepts
(stable mode); the no-change re-run (shortcut); and ``reoptimise=True`` on the re-run input.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from datetime import datetime, timedelta, timezone

from orsync.posters import AssignmentResult, Placement, PosterPaper, Session, assign

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


def _talks(sess: list[Session], rng: random.Random) -> tuple[tuple[datetime, datetime], ...]:
    if rng.random() < 0.08:
        s = rng.choice(sess)
        return ((s.start + timedelta(minutes=10), s.start + timedelta(minutes=25)),)
    return ()


def realistic_venue(n: int, sess: list[Session], rng: random.Random) -> list[PosterPaper]:
    """Most authors on one paper, ~n/4 on two, ~n/15 on three to five."""
    slots: list[str] = []
    for a in range(max(1, n // 15)):
        slots += [f"~Senior{a}"] * rng.randint(3, 5)
    for a in range(n // 4):
        slots += [f"~Mid{a}"] * 2
    rng.shuffle(slots)
    authors: list[set[str]] = [set() for _ in range(n)]
    for key in slots:  # each repeated author on distinct papers
        for _ in range(10):
            i = rng.randrange(n)
            if key not in authors[i] and len(authors[i]) < 4:
                authors[i].add(key)
                break
    papers = []
    for i in range(n):
        target = rng.randint(2, 6)
        while len(authors[i]) < target:
            authors[i].add(f"~Solo{i}_{len(authors[i])}")
        kws = tuple(sorted(set(rng.sample(KEYWORDS, rng.randint(1, 4)))))
        papers.append(
            PosterPaper(f"forum{i:05d}", i + 1, tuple(sorted(authors[i])), kws, _talks(sess, rng))
        )
    return papers


def venue(n: int, sess: list[Session], rng: random.Random) -> list[PosterPaper]:
    pool = max(20, int(n * 2.5))
    # Offset Zipf: top authors reach ~7 papers at 150 and ~35 at 2,000, as at ICLR.
    weights = [1.0 / (r + 50) for r in range(pool)]
    papers = []
    for i in range(n):
        k = rng.randint(2, 6)
        authors = sorted({f"~Author{a}" for a in rng.choices(range(pool), weights, k=k)})
        kws = tuple(sorted(set(rng.sample(KEYWORDS, rng.randint(1, 4)))))
        papers.append(PosterPaper(f"forum{i:05d}", i + 1, tuple(authors), kws, _talks(sess, rng)))
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


PROFILES = {"heavy": venue, "realistic": realistic_venue}


def run(profile: str, n: int, k: int, seed: int, time_limit: float) -> list[str]:
    make = PROFILES[profile]
    rng = random.Random(seed)
    sess = sessions(k)
    papers = make(n, sess, rng)
    cap = math.ceil(n / k * 1.05)
    pairs = shared_pairs(papers)
    t0 = time.perf_counter()
    first = assign(papers, sess, cap, {}, {}, time_limit_s=time_limit, seed=0)
    cold = time.perf_counter() - t0
    # Re-run after 3 late accepts (co-authors drawn like the rest) and one withdrawal.
    late = make(3, sess, random.Random(seed + 1))
    late = [
        PosterPaper(f"late{j}", n + j + 1, p.author_keys, p.keywords) for j, p in enumerate(late)
    ]
    prev: dict[str, Placement] = dict(first.placements)
    again = papers[1:] + late
    t0 = time.perf_counter()
    second = assign(again, sess, cap + 1, prev, {}, time_limit_s=time_limit, seed=0)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    third = assign(again, sess, cap + 1, second.placements, {}, time_limit_s=time_limit, seed=0)
    same = time.perf_counter() - t0
    assert third.placements == second.placements
    t0 = time.perf_counter()
    reopt = assign(again, sess, cap + 1, prev, {}, time_limit_s=time_limit, seed=0, reoptimise=True)
    reopt_s = time.perf_counter() - t0
    gap = "-" if first.gap is None else f"{100 * first.gap:.1f}%"
    return [
        profile,
        f"{n}",
        f"{k}",
        f"{cap}",
        f"{pairs}",
        f"{max_author_load(papers)}",
        f"{cold:.2f}",
        first.status,
        f"{len(first.clashes)}",
        f"{_clash_lower_bound(first, n)}",
        gap,
        f"{warm:.3f}",
        second.status,
        f"{len(second.moved)}",
        f"{len(second.clashes)}",
        f"{same * 1000:.1f}",
        f"{reopt_s:.2f}",
        f"{len(reopt.clashes)}",
        f"{len(reopt.moved)}",
    ]


def _clash_lower_bound(result: AssignmentResult, n: int) -> int:
    """Fewest clashes CP-SAT's bound allows (cold objective = (n+1) * clashes + imbalance)."""
    if result.bound is None:
        return len(result.clashes)
    return max(0, math.ceil((result.bound - n) / (n + 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--profile", choices=[*PROFILES, "all"], default="all")
    parser.add_argument("--sizes", default="65x4,150x4,2000x8")
    args = parser.parse_args()
    header = [
        "profile",
        "papers",
        "sessions",
        "cap",
        "shared-author pairs",
        "max papers/author",
        "cold s",
        "status",
        "clashes",
        "clash LB",
        "gap",
        "re-run s",
        "status",
        "moved",
        "clashes",
        "no-change ms",
        "reopt s",
        "clashes",
        "moved",
    ]
    sizes = [tuple(int(v) for v in item.split("x")) for item in args.sizes.split(",")]
    profiles = list(PROFILES) if args.profile == "all" else [args.profile]
    rows = [
        run(profile, n, k, args.seed, args.time_limit) for profile in profiles for n, k in sizes
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |", flush=True)


if __name__ == "__main__":
    main()
