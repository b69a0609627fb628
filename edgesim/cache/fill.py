"""Filling the cache from a body that streams to the viewer at the same time."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from edgesim.models import BodyStream

__all__ = ["CacheFill"]


class CacheFill:
    """Streams an origin body to the viewer while keeping a copy for the cache.

    The copy is stored only if the whole body arrived and fits the object
    size limit; a body cut off by the origin or abandoned by the viewer is not
    cached (Expiration.md: incomplete objects are not cached).
    """

    def __init__(
        self,
        source: BodyStream,
        limit: int,
        store: Callable[[bytes], object],
        release: Callable[[], None],
    ) -> None:
        self.length = source.length
        self._source = source
        self._limit = limit
        self._store = store
        self._release = release
        self._chunks: list[bytes] | None = [] if (source.length or 0) <= limit else None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        size = 0
        try:
            async for chunk in self._source:
                if self._chunks is not None:
                    size += len(chunk)
                    if size > self._limit:
                        self._chunks = None
                    else:
                        self._chunks.append(chunk)
                yield chunk
            if self._chunks is not None:
                self._store(b"".join(self._chunks))
        finally:
            self._chunks = None
            self._release()

    async def aclose(self) -> None:
        self._chunks = None
        self._release()
        await self._source.aclose()
