"""The byte-budgeted object store and CloudFront's invalidation rules."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

from edgesim.cache.entry import Entry
from edgesim.cache.key import key_target

__all__ = ["CacheStore", "validate_invalidation_path"]


def validate_invalidation_path(path: str) -> str | None:
    """Why ``path`` is not a valid invalidation path, or None if it is.

    Rules from Invalidation.html, "Invalidation paths": a leading "/" (the
    API requires it), at most 4,000 characters, "*" only as the last
    character, non-ASCII and unsafe characters URL-encoded.
    """
    if not path.startswith("/"):
        return "an invalidation path must begin with '/'"
    if len(path) > 4000:
        return "an invalidation path can have at most 4000 characters"
    if "*" in path[:-1]:
        return "'*' is allowed only as the last character of an invalidation path"
    if not path.isascii() or not path.isprintable() or " " in path:
        return "URL-encode non-ASCII and unsafe characters in an invalidation path"
    return None


class CacheStore:
    """The edge's object cache: byte-budgeted, least recently used evicted first.

    ``get`` returns entries fresh or stale (the pipeline decides between a
    hit and a revalidation) and does not count hits or misses: the pipeline
    calls ``record_hit`` / ``record_miss`` once it knows which it was.
    ``clock`` is the monotonic time source entries are stored and judged by;
    the pipeline reads it, so tests can drive TTLs.
    """

    def __init__(self, max_size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.clock = clock
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.invalidated = 0

    def get(self, key: str) -> Entry | None:
        """The entry stored under ``key``, fresh or stale; marks it recently used."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, entry: Entry) -> bool:
        """Store ``entry``, replacing any under its key; evict LRU entries to fit.

        An entry larger than the whole budget is not stored (and an older
        entry under its key is dropped, as it is outdated); returns whether
        it was stored.
        """
        old = self._entries.pop(entry.key, None)
        if old is not None:
            self._bytes -= old.size
        if entry.size > self.max_size:
            return False
        self._entries[entry.key] = entry
        self._bytes += entry.size
        while self._bytes > self.max_size:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.size
            self.evictions += 1
        return True

    def resize(self, max_size: int) -> int:
        """Change the byte budget (a reloaded config); evicts least recently used
        entries until the rest fit, and returns how many went."""
        self.max_size = max_size
        evicted = 0
        while self._bytes > self.max_size:
            _, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
            evicted += 1
        self.evictions += evicted
        return evicted

    def remove(self, key: str) -> bool:
        """Drop the entry under ``key``; returns whether there was one."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        self._bytes -= entry.size
        return True

    def invalidate(self, paths: Iterable[str]) -> int:
        """Remove what CloudFront's invalidation of ``paths`` removes; returns how many.

        A path matches the URI path plus the query string in the key exactly,
        or as a prefix when it ends in "*"; "/*" empties the cache. Every
        header, cookie, encoding and method variant goes (Invalidation.html).
        Query strings are part of what is matched: with query strings in the
        key, ``/a.jpg`` leaves ``/a.jpg?v=2`` cached and ``/a.jpg*`` removes
        both (Invalidation.html, "Forwarding query strings"). Raises
        ValueError naming the first invalid path, before removing anything.
        """
        paths = list(paths)
        for path in paths:
            problem = validate_invalidation_path(path)
            if problem is not None:
                raise ValueError(f"{path!r}: {problem}")
        if "/*" in paths:
            removed = len(self._entries)
            self._entries.clear()
            self._bytes = 0
        else:
            exact = {p for p in paths if not p.endswith("*")}
            prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))
            doomed = [
                key
                for key in self._entries
                if (target := key_target(key)) in exact or target.startswith(prefixes)
            ]
            for key in doomed:
                self.remove(key)
            removed = len(doomed)
        self.invalidated += removed
        return removed

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def record_hit(self) -> None:
        """Count a request answered from the cache (Hit or RefreshHit)."""
        self.hits += 1

    def record_miss(self) -> None:
        """Count a cacheable request that had to go to the origin."""
        self.misses += 1

    def stats(self) -> dict[str, int]:
        """Counters for the admin API and the load-test report."""
        return {
            "entries": len(self._entries),
            "bytes": self._bytes,
            "max_bytes": self.max_size,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
            "invalidated": self.invalidated,
        }

    def entries(self) -> Iterator[Entry]:
        """A snapshot of the entries, least recently used first (for the admin view)."""
        return iter(list(self._entries.values()))

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
