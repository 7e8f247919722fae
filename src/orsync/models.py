"""orsync's public read models: typed rows of the store's views (defined in ``store/models.py``).

``from orsync.models import AcceptedPaper`` is the import for website builds and notebooks.
"""

from orsync.store import models as _store

AcceptedPaper = _store.AcceptedPaper
SubmissionOverview = _store.SubmissionOverview

__all__ = ["AcceptedPaper", "SubmissionOverview"]
