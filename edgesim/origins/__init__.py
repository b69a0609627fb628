"""Origins: where a cache miss is fetched from.

The pipeline depends only on the ``OriginClient`` protocol: give it an origin
from the config and the origin-facing request, get back a response whose body
streams. Failures are raised as ``edgesim.errors.OriginError`` subclasses
(connect -> 502, timeout -> 504); a body cut off mid-way raises
``OriginReadError`` from the body stream, so the pipeline can refuse to cache it.
"""

from __future__ import annotations

from typing import Protocol

from edgesim.config.schema import Origin
from edgesim.models import Request, Response

__all__ = ["OriginClient"]


class OriginClient(Protocol):
    async def fetch(self, origin: Origin, request: Request) -> Response:
        """Send ``request`` (already origin-facing: path prefixed, headers chosen) to ``origin``.

        ``request.path`` excludes the origin path prefix; the client adds it.
        The returned ``Response.body`` is a ``BodyStream`` (or ``None`` for
        HEAD and bodiless statuses) that the caller reads once or closes.
        """
        ...

    async def close(self) -> None: ...
