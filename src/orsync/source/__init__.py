"""OpenReview access: the one package that talks to the API (through openreview-py).

``transport`` is everything about one request and its answer (timeouts, the one retry layer,
rate-limit headers and the quota reserve, error bodies, browser checks); ``client`` is what
orsync asks OpenReview (login, groups, notes page by page, attachments); ``bodies`` reads every
answer's body in bounded chunks, against a byte cap and a wall-clock deadline. openreview-py itself
is imported only when a source is made: reading commands never load it.
"""

from orsync.config import QUOTA_RESERVE
from orsync.source.client import (
    PAGE_SIZE,
    MaybeSent,
    MintmdateIgnored,
    Note,
    OpenReviewSource,
    Page,
)
from orsync.source.endpoint import API_V2_URL
from orsync.source.transport import (
    FileTooLarge,
    Quota,
    RetryPolicy,
    TransientError,
    WalkStopped,
    bucket_of,
)

__all__ = [
    "API_V2_URL",
    "PAGE_SIZE",
    "QUOTA_RESERVE",
    "FileTooLarge",
    "MaybeSent",
    "MintmdateIgnored",
    "Note",
    "OpenReviewSource",
    "Page",
    "Quota",
    "RetryPolicy",
    "TransientError",
    "WalkStopped",
    "bucket_of",
]
