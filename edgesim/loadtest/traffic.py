"""The next request to send: a kind of request by weight, an object by popularity, as bytes.

Each request is rendered once per distinct object and kept (up to a bound),
so a hot object costs a dict lookup, not a format.
"""

from __future__ import annotations

import bisect
import itertools
import random
from array import array

from edgesim.loadtest.scenario import RequestSpec, Scenario

__all__ = ["Traffic"]

_RENDERED_CACHE = 100_000  # rendered requests kept per kind of request
USER_AGENT = "edgesim-loadtest"


class _Kind:
    """One ``RequestSpec``, ready to pick objects from."""

    __slots__ = ("cache", "cumulative", "head", "key", "objects", "tail", "total")

    def __init__(self, spec: RequestSpec) -> None:
        self.key = spec.origin
        self.objects = spec.objects
        default_port = 443 if spec.scheme == "https" else 80
        host = spec.host if spec.port == default_port else f"{spec.host}:{spec.port}"
        lines = [f"Host: {host}", f"User-Agent: {USER_AGENT}"]
        lines += [f"{name}: {value}" for name, value in spec.headers]
        if spec.body or spec.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(spec.body)}")
        before, _, after = spec.path.partition("{n}")
        self.head = f"{spec.method} {before}".encode()
        self.tail = (f"{after} HTTP/1.1\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode() + spec.body
        self.cache: dict[int, bytes] = {}
        self.cumulative: array[float] | None = None
        self.total = 0.0
        if spec.objects > 1 and spec.popularity == "zipf":
            s = spec.zipf_exponent
            self.cumulative = array(
                "d", itertools.accumulate(1.0 / k**s for k in range(1, spec.objects + 1))
            )
            self.total = self.cumulative[-1]

    def render(self, n: int) -> bytes:
        data = self.cache.get(n)
        if data is None:
            if self.objects == 1:
                data = self.head + self.tail
            else:
                data = self.head + str(n).encode() + self.tail
            if len(self.cache) < _RENDERED_CACHE:
                self.cache[n] = data
        return data

    def pick(self, rng: random.Random) -> int:
        if self.objects == 1:
            return 0
        if self.cumulative is None:
            return rng.randrange(self.objects)
        return min(bisect.bisect_left(self.cumulative, rng.random() * self.total), self.objects - 1)


class Traffic:
    """Picks requests from a resolved ``Scenario``; ``seed`` makes the sequence repeatable."""

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self._kinds = [_Kind(spec) for spec in scenario.requests]
        self._weights = list(itertools.accumulate(spec.weight for spec in scenario.requests))
        self._rng = random.Random(seed)
        self.origins = sorted({kind.key for kind in self._kinds})

    def next(self) -> tuple[tuple[str, str, int], bytes]:
        """(scheme, host, port) to send to, and the request's bytes."""
        kinds = self._kinds
        if len(kinds) == 1:
            kind = kinds[0]
        else:
            kind = kinds[bisect.bisect_left(self._weights, self._rng.random() * self._weights[-1])]
        return kind.key, kind.render(kind.pick(self._rng))
