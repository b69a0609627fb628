"""Origins: where a cache miss is fetched from.

The pipeline depends only on the ``OriginClient`` protocol: give it an origin
from the config and the origin-facing request, get back a response whose body
streams. Failures are raised as ``edgesim.errors.OriginError`` subclasses
(connect -> 502, timeout -> 504); a body cut off mid-way raises
``OriginReadError`` from the body stream, so the pipeline can refuse to cache it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from edgesim.config.schema import Origin
from edgesim.models import Request, Response

__all__ = ["OriginClient", "StartedFetch"]


class StartedFetch(Protocol):
    """A request already sent to its origin, whose answer nobody has waited for yet."""

    def on_head(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the response head (or the failure) is in."""
        ...

    def abandon(self) -> None:
        """Nobody will read the answer: release what it holds."""
        ...


class OriginClient(Protocol):
    async def fetch(
        self, origin: Origin, request: Request, started: StartedFetch | None = None
    ) -> Response:
        """Send ``request`` (already origin-facing: path prefixed, headers chosen) to ``origin``.

        ``request.path`` excludes the origin path prefix; the client adds it.
        The returned ``Response.body`` is bytes (when it came whole with the
        head), a ``BodyStream`` that the caller reads once or closes, or
        ``None`` for HEAD and bodiless statuses. ``started`` is the same
        request already sent by ``start_fetch``: its answer is the first attempt.
        """
        ...

    def start_fetch(self, origin: Origin, request: Request) -> StartedFetch | None:
        """Send ``request`` now, if that needs no waiting (a connection is ready);
        else None."""
        ...

    def started_response(self, started: StartedFetch) -> Response | None:
        """A started fetch's response once its head is in, taken once; None while
        it is not, or when it failed (``fetch(..., started=...)`` says why)."""
        ...

    async def close(self) -> None: ...
