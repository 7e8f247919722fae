"""orsync: mirror an OpenReview venue into SQL and publish what its website needs."""

__version__ = "0.1.0"
