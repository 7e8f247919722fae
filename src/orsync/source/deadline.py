"""The wall-clock deadline of a request until its headers have arrived.

A body is read in chunks that each wait at most until the request's deadline
(:mod:`orsync.source.bodies`), but connecting and reading the status line and headers happen
inside urllib3 and ``http.client``, whose socket timeout bounds each read only: a server that
sends one byte of its headers every second would hold a request for ever. So every request is
watched from its start until its headers are in: a timer armed at the start shuts the
request's socket down at the deadline (every read then ends at once), and the request fails as
:class:`~orsync.source.bodies.DeadlinePassed`, a timeout like any other.

The watched connection is the one urllib3's pool hands out on the request's own thread
(:class:`WatchedAdapter`); the timer is disarmed before the connection can go back to the
pool, so it never touches another request's socket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, PoolManager

from orsync.source.bodies import DeadlinePassed

# How soon the timer looks again when the deadline passed before the connection had a socket
# (still connecting: the connect timeout bounds that part, and the socket is shut once it exists).
_RECHECK_S = 0.05

_current = threading.local()


class HeaderDeadline:
    """One request's watch: ``with HeaderDeadline(seconds):`` around sending it and reading its
    headers. An exception raised after the deadline passed becomes ``DeadlinePassed``; a request
    that came back after it (a race with the timer) is for the caller to drop: see ``passed``."""

    def __init__(self, seconds: float) -> None:
        self._lock = threading.Lock()
        self._armed = False
        self._connection: Any = None
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self.passed = False

    def watch(self, connection: Any) -> None:
        with self._lock:
            self._connection = connection

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.passed = True
            sock = getattr(self._connection, "sock", None)
            if not isinstance(sock, socket.socket):
                again = threading.Timer(_RECHECK_S, self._fire)
                again.daemon = True
                self._timer = again
                again.start()
                return
            # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would drop its
            # TLS state under the thread that is reading from it.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> HeaderDeadline:
        self._armed = True
        _current.watch = self
        self._timer.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _current.watch = None
        with self._lock:
            self._armed = False
            self._timer.cancel()
        if self.passed and isinstance(exc, Exception):
            raise DeadlinePassed("no answer's headers before the deadline") from None


def _watched_connection(connection: Any) -> Any:
    watch: HeaderDeadline | None = getattr(_current, "watch", None)
    if watch is not None:
        watch.watch(connection)
    return connection


class _WatchedHTTPPool(HTTPConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _watched_connection(super()._get_conn(timeout))


class _WatchedHTTPSPool(HTTPSConnectionPool):
    def _get_conn(self, timeout: float | None = None) -> Any:
        return _watched_connection(super()._get_conn(timeout))


_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


def _watched(manager: PoolManager) -> PoolManager:
    manager.pool_classes_by_scheme = dict(_POOLS)
    return manager


class WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections (direct or through a proxy) a ``HeaderDeadline`` on
    the requesting thread watches."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watched(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        return _watched(super().proxy_manager_for(proxy, **proxy_kwargs))
