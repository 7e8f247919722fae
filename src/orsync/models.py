"""orsync's public read models (``orsync.store.models``): typed rows of the store's views."""

from orsync.store.models import AcceptedPaper, SubmissionOverview

__all__ = ["AcceptedPaper", "SubmissionOverview"]
