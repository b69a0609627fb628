"""Request collapsing: concurrent misses for one object share one origin fetch."""

from __future__ import annotations

import asyncio

from edgesim.config.schema import Behavior

__all__ = ["Collapser", "collapses_requests"]


def collapses_requests(behavior: Behavior) -> bool:
    """Whether concurrent misses under ``behavior`` wait for one origin fetch.

    Request collapsing is off with a policy that caches nothing (such as
    CachingDisabled) and when cookies are forwarded to the origin
    (RequestAndResponseBehaviorCustomOrigin.html, "Simultaneous requests for
    the same object"). Per object it is also off when the response turns out
    uncacheable; the ``Collapser`` handles that by letting followers fetch.
    """
    return (
        behavior.cache.max_ttl > 0
        and behavior.cache.cookies.mode == "none"
        and behavior.origin_request.cookies.mode == "none"
    )


class Collapser:
    """Concurrent misses for one key wait for the first one's origin fetch.

    CloudFront sends one request to the origin for simultaneous requests for
    the same object and answers all of them with its response
    (RequestAndResponseBehaviorCustomOrigin.html, "Simultaneous requests for
    the same object"). Usage, for each miss::

        waiter = collapser.join(key)
        if waiter is None:                      # leader
            try:
                ...fetch, maybe store...
            finally:
                collapser.finish(key)
        else:                                   # follower
            await waiter
            ...look the key up again; if nothing fresh is stored (the response
            was uncacheable or failed), fetch from the origin without joining...

    Each follower gets its own future, so cancelling one waiting viewer never
    disturbs the others.
    """

    def __init__(self) -> None:
        self._groups: dict[str, list[asyncio.Future[None]]] = {}
        self.collapsed = 0

    def join(self, key: str) -> asyncio.Future[None] | None:
        """None if the caller is now the leader for ``key``; else a future to await."""
        waiters = self._groups.get(key)
        if waiters is None:
            self._groups[key] = []
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters.append(future)
        self.collapsed += 1
        return future

    def in_flight(self, key: str) -> bool:
        """Whether a leader is fetching ``key`` now (joining would wait for it)."""
        return key in self._groups

    def finish(self, key: str) -> None:
        """The leader is done (stored, uncacheable or failed): release every follower."""
        for future in self._groups.pop(key, ()):
            if not future.done():
                future.set_result(None)

    def __len__(self) -> int:
        """Keys with an origin fetch in flight."""
        return len(self._groups)
