"""Messages to a venue's groups, as OpenReview's API v2 takes them from a program chair.

openreview-py's ``post_message`` sends ``POST /messages/requests`` with ``groups``,
``subject``, ``message`` and optionally ``invitation`` (a venue's meta invitation,
``<venue>/-/Edit``), ``signature``, ``replyTo``, ``parentGroup``, ``fromName``/``fromEmail``;
the answer is the message request it queued. ``get_message_requests`` reads them back
(``GET /messages/requests?id=`` or ``?invitation=``). The older ``POST /messages`` is taken the
same way. Only a program chair of the venue may send; anyone else gets OpenReview's 403
``ForbiddenError``. Every accepted request is kept, in order, for tests to read
(``Emulator.messages``, ``GET /_emulator/messages``).
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

from orsync.emulator.venue import ApiError


class Messages:
    """The message requests one emulator accepted."""

    def __init__(self, venue_id: str) -> None:
        self.venue_id = venue_id
        self._lock = threading.Lock()
        self._sent: list[dict[str, Any]] = []

    @property
    def sent(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._sent]

    def clear(self) -> None:
        with self._lock:
            self._sent.clear()

    def _allowed(self, user: str | None, chair: str | None) -> None:
        if user is None:
            raise ApiError(403, "ForbiddenError", "Forbidden: guests cannot send messages")
        if user != chair:
            raise ApiError(
                403,
                "ForbiddenError",
                f"Forbidden: {user} is not a member of {self.venue_id}/Program_Chairs and "
                f"cannot send messages for {self.venue_id}",
                {"user": user},
            )

    def post(
        self, body: dict[str, Any], user: str | None, chair: str, numbers: set[int]
    ) -> dict[str, Any]:
        """Take a message request from ``user``; ``numbers``: the venue's submission numbers."""
        self._allowed(user, chair)
        groups = body.get("groups")
        subject = body.get("subject")
        message = body.get("message")
        if (
            not isinstance(groups, list)
            or not groups
            or not all(isinstance(g, str) for g in groups)
        ):
            raise ApiError(400, "ValidationError", "groups must be a non-empty array of strings")
        if not isinstance(subject, str) or not subject.strip():
            raise ApiError(400, "ValidationError", "subject is required", {"path": "subject"})
        if not isinstance(message, str):
            raise ApiError(400, "ValidationError", "message is required", {"path": "message"})
        invitation = body.get("invitation")
        if invitation is not None and invitation != f"{self.venue_id}/-/Edit":
            raise ApiError(404, "NotFoundError", f"Invitation Not Found: {invitation}")
        for group in groups:
            found = re.fullmatch(re.escape(self.venue_id) + r"/Submission(\d+)/Authors", group)
            if found is None or int(found.group(1)) not in numbers:
                raise ApiError(404, "NotFoundError", f"Group Not Found: {group}")
        with self._lock:
            request = {
                "id": f"msg{len(self._sent) + 1:05d}",
                "cdate": int(time.time() * 1000),
                "invitation": invitation,
                "signature": body.get("signature"),
                "groups": list(groups),
                "subject": subject,
                "message": message,
                "replyTo": body.get("replyTo"),
                "parentGroup": body.get("parentGroup"),
                "sender": user,
                "status": "queued",
            }
            self._sent.append(request)
            return dict(request)

    def requests(self, query: dict[str, str], user: str | None, chair: str) -> dict[str, Any]:
        """``GET /messages/requests?id=`` or ``?invitation=``: what was queued, oldest first."""
        self._allowed(user, chair)
        if "id" not in query and "invitation" not in query:
            raise ApiError(400, "ValidationError", "id or invitation is required")
        found = [
            m
            for m in self.sent
            if ("id" not in query or m["id"] == query["id"])
            and ("invitation" not in query or m["invitation"] == query["invitation"])
        ]
        return {"requests": found, "count": len(found)}
