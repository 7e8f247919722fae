"""Fault plan: a FIFO of injected failures consumed by incoming requests.

Fault kinds
    ``429``            answer 429 ``RateLimitError`` with a ``Retry-After`` header
                       (param ``retry_after``, whole seconds, default 1)
    ``500``            answer 500 with an OpenReview JSON error body
    ``502``, ``503``   answer with the HTML page a reverse proxy produces (not JSON, as in life)
    ``drop``           close the socket without sending any response; with ``after=1``, after
                       the request took effect (a send whose answer was lost)
    ``slow``           sleep ``delay`` seconds (default 1), then answer normally
    ``expire_tokens``  immediately expire every token issued so far (they answer 401
                       ``TokenExpiredError``); ``times`` is irrelevant

Hostile answers (what a broken or hostile server could send)
    ``slow_body``      answer normally, but the body dribbles: ``bytes`` bytes (default 1) every
                       ``byte_every`` seconds (default 1), headers at once
    ``slow_headers``   answer normally, but the status line and headers dribble: one byte every
                       ``byte_every`` seconds (default 1), then the body at once
    ``redirect``       answer 302 with ``Location`` param ``location`` (default ``/``), e.g.
                       another emulator's URL; the target is whatever that server answers
    ``big_error``      answer HTTP ``status`` (default 500) with a JSON error body of ``mb``
                       MiB (default 64) decoded, gzip-encoded unless ``gzip=0``
    ``gzip_bomb``      answer 200 with a JSON page (no notes) whose gzip body of a few MB
                       inflates to ``mb`` MiB (default 1024)

Hostile batch answers (a ``/attachment?ids=`` request; give ``path=/attachment``), built by
``server.hostile_batch``; the other members are the real files, deflated:
    ``bzip2``, ``lzma``  the first ``members`` asked ids' members (default 1) compressed with that
                       method: a PDF header, then ``inflate_mb`` MiB of zeros (default 256; a
                       few hundred bytes compressed), declaring the size of a small PDF
    ``huge_directory`` an archive whose central directory holds ``entries`` entries (default
                       1,000,000, one small stray member named again and again; a zip64 end
                       record says how many), before the real members

By default a rule applies to requests whose path starts with ``/notes`` or ``/groups``; param
``path`` (a path prefix such as ``/login``, ``/attachment`` or ``/messages``, or ``*`` for every
path) overrides that. Rules are consumed in the order they were injected: ``429x3,500x2`` fails
the next three matching requests with 429, then two with 500.

Spec grammar (``--faults`` / :func:`parse_fault_spec`)::

    spec   := item ("," item)*
    item   := kind ["x" times] ["@" param ("&" param)*]
    param  := name "=" value          (numbers become float, anything else stays a string)

e.g. ``429x3@retry_after=1,500x5,drop,slow@delay=2&path=/login``. ``expire_tokens`` in a spec
given at start-up has nothing to expire yet and is accepted only for symmetry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS: frozenset[str] = frozenset({"429", "500", "502", "503", "drop", "slow", "expire_tokens"})
KINDS = KINDS | frozenset({"slow_body", "slow_headers", "redirect", "big_error", "gzip_bomb"})
KINDS = KINDS | frozenset({"bzip2", "lzma", "huge_directory"})
DEFAULT_PATHS: tuple[str, ...] = ("/notes", "/groups")

ParamValue = float | str


@dataclass
class FaultRule:
    kind: str
    remaining: int
    params: dict[str, ParamValue] = field(default_factory=dict)

    def matches(self, path: str) -> bool:
        wanted = self.params.get("path")
        if wanted is None:
            return path.startswith(DEFAULT_PATHS)
        if wanted == "*":
            return True
        return path.startswith(str(wanted))

    def number(self, name: str, default: float) -> float:
        value = self.params.get(name, default)
        try:
            return float(value)
        except ValueError:
            return default


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    times: int
    params: dict[str, ParamValue]


def _value(raw: str) -> ParamValue:
    try:
        return float(raw)
    except ValueError:
        return raw


def parse_fault_spec(spec: str) -> list[FaultSpec]:
    """Parse ``"429x3@retry_after=1,500x5,drop,slow@delay=2"`` (grammar in the module doc)."""
    out: list[FaultSpec] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        head, _, tail = item.partition("@")
        kind, sep, times_s = head.partition("x")
        kind = kind.strip()
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r} in {item!r}; kinds: {sorted(KINDS)}")
        times = 1
        if sep:
            try:
                times = int(times_s)
            except ValueError:
                raise ValueError(f"bad repeat count in {item!r}") from None
            if times < 1:
                raise ValueError(f"repeat count must be >= 1 in {item!r}")
        params: dict[str, ParamValue] = {}
        if tail:
            for pair in tail.split("&"):
                name, eq, raw = pair.partition("=")
                if not eq or not name.strip():
                    raise ValueError(f"bad parameter {pair!r} in {item!r}; expected name=value")
                params[name.strip()] = _value(raw.strip())
        out.append(FaultSpec(kind, times, params))
    return out


class FaultPlan:
    """Thread-safe queue of pending faults; the HTTP handler calls :meth:`take` per request."""

    def __init__(self, on_expire_tokens: Callable[[], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._on_expire = on_expire_tokens

    def inject(self, kind: str, times: int = 1, **params: ParamValue) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; kinds: {sorted(KINDS)}")
        if times < 1:
            raise ValueError("times must be >= 1")
        if kind == "expire_tokens":
            if self._on_expire is not None:
                self._on_expire()
            return
        with self._lock:
            self._rules.append(FaultRule(kind, times, dict(params)))

    def apply_spec(self, spec: str) -> None:
        for f in parse_fault_spec(spec):
            self.inject(f.kind, f.times, **f.params)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    @property
    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [FaultRule(r.kind, r.remaining, dict(r.params)) for r in self._rules]

    def take(self, path: str) -> FaultRule | None:
        """Consume one use of the first rule matching `path`, if any."""
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.matches(path):
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        del self._rules[i]
                    return FaultRule(rule.kind, 1, dict(rule.params))
            return None
