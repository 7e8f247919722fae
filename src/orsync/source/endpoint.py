"""The API v2 server orsync talks to: ``openreview.baseurl`` checked before any request, and
openreview-py's client made for it without the credentials of the environment."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

from orsync.errors import ConfigError

__all__ = ["API_V2_URL", "api_v2_url", "without_client_env"]


@contextlib.contextmanager
def without_client_env() -> Iterator[None]:
    # OpenReviewClient logs in with $OPENREVIEW_USERNAME/$OPENREVIEW_PASSWORD when given no
    # credentials; orsync's guest mode must stay a guest, and its password has its own sources.
    saved = {
        k: os.environ.pop(k)
        for k in ("OPENREVIEW_USERNAME", "OPENREVIEW_PASSWORD")
        if k in os.environ
    }
    try:
        yield
    finally:
        os.environ.update(saved)


API_V2_URL = "https://api2.openreview.net"
# OpenReview's API v1 hosts: openreview-py's v2 client refuses them, and orsync needs v2.
_V1_HOSTS = {
    "api.openreview.net": API_V2_URL,
    "devapi.openreview.net": "https://devapi2.openreview.net",
}
_SITE_HOSTS = {"openreview.net", "www.openreview.net"}


def api_v2_url(baseurl: str) -> str:
    """``openreview.baseurl`` checked before any request: an http(s) URL of an API v2 server."""
    url = baseurl.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"openreview.baseurl {baseurl!r} is not an http(s) URL; use {API_V2_URL}")
    host = parts.hostname.lower()
    if host in _V1_HOSTS:
        raise ConfigError(
            f"openreview.baseurl {url} is OpenReview's API v1, which orsync cannot read; "
            f'set openreview.baseurl = "{_V1_HOSTS[host]}" (API v2)'
        )
    if host in _SITE_HOSTS:
        raise ConfigError(
            f"openreview.baseurl {url} is OpenReview's website, not its API; "
            f'set openreview.baseurl = "{API_V2_URL}"'
        )
    return url
