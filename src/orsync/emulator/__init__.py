"""Synthetic OpenReview API v2 server over real loopback HTTP, for tests, demos and benchmarks.

>>> with Emulator(dataset="bgpt", seed=1) as emu:          # doctest: +SKIP
...     client = openreview.api.OpenReviewClient(baseurl=emu.url)
...     emu.truth("guest")["submissions"]

Modules: `dataset` (seeded generator), `venue` (state, visibility, mutations, ground truth),
`server` (HTTP handler, errors, request log, control surface — see its docstring), `faults`
(fault plan and the ``--faults`` grammar).
"""

from orsync.emulator.dataset import DATASETS, PHASES
from orsync.emulator.faults import FaultPlan, FaultRule, FaultSpec, parse_fault_spec
from orsync.emulator.server import (
    CHAIR_PROFILE_ID,
    DEFAULT_PASSWORD,
    Emulator,
    RequestRecord,
    serve_forever,
)
from orsync.emulator.venue import ApiError, Venue

__all__ = [
    "CHAIR_PROFILE_ID",
    "DATASETS",
    "DEFAULT_PASSWORD",
    "PHASES",
    "ApiError",
    "Emulator",
    "FaultPlan",
    "FaultRule",
    "FaultSpec",
    "RequestRecord",
    "Venue",
    "parse_fault_spec",
    "serve_forever",
]
