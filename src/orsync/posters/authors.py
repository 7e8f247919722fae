"""Who is the same author: identity keys, and the paper pairs and groups they link."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from orsync.posters.data import PosterPaper
from orsync.text import name_key

_WS = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    """Case-folded, whitespace-collapsed text (keywords, names without their accents removed)."""
    return _WS.sub(" ", text.casefold()).strip()


def author_keys(authors: Sequence[str], authorids: Sequence[str] | None) -> tuple[str, ...]:
    """One identity key per author: the profile id (``~Name1``) when known, else the name.

    Emails are not used as identities: the same person signs with several addresses, and an
    email is private data that has no business in a clash report.
    """
    ids = list(authorids or [])
    keys: list[str] = []
    for i, name in enumerate(authors):
        aid = ids[i].strip() if i < len(ids) and ids[i] else ""
        key = aid if aid.startswith("~") else name_key(name)
        if key and key not in keys:
            keys.append(key)
    return tuple(keys)


@dataclass(frozen=True)
class Pair:
    """Two papers (indices, a < b) that share the ``authors``."""

    a: int
    b: int
    authors: tuple[str, ...]


def shared_author_pairs(papers: Sequence[PosterPaper]) -> tuple[list[Pair], list[list[int]]]:
    """Paper pairs sharing an author, and per author the papers they are on (for cuts)."""
    by_author: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(papers):
        for key in p.author_keys:
            by_author[key].append(i)
    shared: dict[tuple[int, int], list[str]] = defaultdict(list)
    groups: list[list[int]] = []
    for key in sorted(by_author):
        members = sorted(set(by_author[key]))
        if len(members) < 2:
            continue
        groups.append(members)
        for a, b in combinations(members, 2):
            shared[(a, b)].append(key)
    pairs = [Pair(a, b, tuple(sorted(keys))) for (a, b), keys in sorted(shared.items())]
    return pairs, groups


def min_pairs(n: int, k: int) -> int:
    """Fewest same-session pairs when n papers of one author spread over k sessions."""
    q, r = divmod(n, k)
    return r * (q + 1) * q // 2 + (k - r) * q * (q - 1) // 2
