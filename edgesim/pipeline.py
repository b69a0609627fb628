"""The one place that puts the stages of a request in order.

    viewer -> route (behavior, allowed methods) -> cache lookup
        fresh hit -> respond from the entry
        miss/stale -> [collapse] -> origin fetch (conditional if stale) -> store -> respond
    -> edge headers (X-Cache, Via, X-Amz-Cf-Pop, X-Amz-Cf-Id, Age)

Each stage takes the Exchange, sets its response or what it decided, and
returns; ``handle`` reads top to bottom like CloudFront's diagram. Failures
come back as EdgeErrors and become CloudFront's error page in ``_fail``.
Sources: cloudfront-semantics.md sections 0 and 7.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator, Callable
from email.utils import formatdate, parsedate_to_datetime
from typing import Protocol

from edgesim.behaviors import BehaviorMatcher
from edgesim.cache import (
    CacheStore,
    Collapser,
    Entry,
    cache_key,
    collapses_requests,
    ttl_for,
)
from edgesim.compression import choose_encoding, compress, compressed_headers
from edgesim.config.schema import Behavior, Config
from edgesim.errors import EdgeError, MethodNotAllowed, OriginError
from edgesim.forwarding import Forwarding, via_value
from edgesim.models import BodyStream, Exchange, Headers, Request, Response, read_body
from edgesim.origins import OriginClient
from edgesim.pages import error_response
from edgesim.wire import parse_range

__all__ = ["Clock", "Pipeline", "SystemClock", "new_request_id"]

# Origin bodies up to this size are read whole before answering, which is
# cheaper than streaming them chunk by chunk; larger ones stream through.
_INLINE_BODY_LIMIT = 256 * 1024
_NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "last-modified", "vary"}
)


class Clock(Protocol):
    """Time as the edge sees it: ``monotonic`` for ages, ``time`` (epoch) for dates."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


def new_request_id() -> str:
    """A 56-character URL-safe id ending in ``==``, the shape of ``X-Amz-Cf-Id``."""
    return base64.urlsafe_b64encode(os.urandom(40)).decode("ascii")


class _HttpDate:
    """``Date`` header text, formatted at most once per second."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        now = int(self._clock.time())
        if now != self._second:
            self._second = now
            self._text = formatdate(now, usegmt=True)
        return self._text


class _Release:
    """Calls ``action`` once, however many paths try to."""

    __slots__ = ("_action",)

    def __init__(self, action: Callable[[], None] | None) -> None:
        self._action = action

    def __call__(self) -> None:
        action, self._action = self._action, None
        if action is not None:
            action()


class Pipeline:
    """Runs one viewer request through the edge and returns its Exchange."""

    def __init__(
        self,
        config: Config,
        origins: OriginClient,
        *,
        store: CacheStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.origins = origins
        self.clock = clock or SystemClock()
        self.store = store or CacheStore(config.cache.max_size, self.clock.monotonic)
        self.collapser = Collapser()
        self.date = _HttpDate(self.clock)
        self._matcher = BehaviorMatcher(config.all_behaviors)
        self._forwarding = {
            b: Forwarding.for_behavior(b, config.distribution) for b in config.all_behaviors
        }
        self._static_edge_headers = (
            ("Via", via_value(config.distribution)),
            ("X-Amz-Cf-Pop", config.distribution.pop),
        )

    async def handle(self, request: Request) -> Exchange:
        """Run every stage for ``request``."""
        ex = self.start(request)
        if ex.response is None:
            await self.finish(ex)
        return ex

    def start(self, request: Request) -> Exchange:
        """The stages that never wait: routing and the cache lookup.

        A fresh hit (or a refusal) comes back answered; otherwise the caller
        awaits ``finish``. The server answers hits from here without a task.
        """
        ex = Exchange(request=request, request_id=new_request_id(), viewer_request=request)
        self._route(ex)
        if ex.response is None:
            self._lookup(ex)
        if ex.response is not None:
            self._add_edge_headers(ex)
        return ex

    async def finish(self, ex: Exchange) -> None:
        """The stages that wait: the origin fetch (collapsed per key) and storing."""
        await self._fetch_missing(ex)
        self._add_edge_headers(ex)

    # -- stages ---------------------------------------------------------

    def _route(self, ex: Exchange) -> None:
        """Pick the cache behavior; refuse methods it does not allow (403)."""
        ex.behavior = self._matcher.match(ex.request.path)
        if ex.request.method not in ex.behavior.allowed_methods:
            self._fail(ex, MethodNotAllowed())

    def _lookup(self, ex: Exchange) -> None:
        """Find the object in the cache; answer if it is fresh."""
        behavior = self._behavior(ex)
        if ex.request.method not in behavior.cached_methods:
            return
        key = ex.cache_key = cache_key(behavior, ex.request)
        entry = ex.cached = self.store.get(key)
        if entry is not None and entry.is_fresh(self.clock.monotonic()):
            self._from_entry(ex, entry, "Hit")

    async def _fetch_missing(self, ex: Exchange) -> None:
        """Fetch from the origin; concurrent misses on one key wait for the first."""
        key = ex.cache_key
        if key is None:
            await self._fetch(ex, None)
            return
        stale = ex.cached if isinstance(ex.cached, Entry) else None
        if not collapses_requests(self._behavior(ex)):
            await self._fetch(ex, key, stale)
            return
        waiter = self.collapser.join(key)
        if waiter is None:
            await self._fetch(ex, key, stale, _Release(lambda: self.collapser.finish(key)))
            return
        await waiter
        entry = self.store.get(key)
        if entry is not None and entry.is_fresh(self.clock.monotonic()):
            self._from_entry(ex, entry, "Hit")
        else:
            await self._fetch(ex, key, entry)

    async def _fetch(
        self,
        ex: Exchange,
        key: str | None,
        stale: Entry | None = None,
        release: _Release | None = None,
    ) -> None:
        """Forward to the origin; store what may be cached. ``key`` is None for
        methods that are never cached. ``release`` ends this key's collapsing
        once the body is stored or abandoned."""
        release = release or _Release(None)
        behavior = self._behavior(ex)
        forwarding = self._forwarding[behavior]
        origin = self.config.origins[behavior.origin]
        outgoing = forwarding.origin_request(
            ex.request, origin, ex.request_id, cacheable=key is not None
        )
        if stale is not None:
            outgoing = _conditional(outgoing, stale)
        try:
            response = await self.origins.fetch(origin, outgoing)
        except OriginError as error:
            release()
            if stale is not None:
                self._serve_stale(ex, stale)
            else:
                self._fail(ex, error)
            return
        except BaseException:
            release()
            raise
        ex.origin_status = response.status
        if key is not None and response.status != 304:
            self.store.record_miss()
        if stale is not None and (response.status == 304 or response.status >= 500):
            await _discard(response.body)
            release()
            if response.status == 304:
                self._refresh(ex, stale, response.headers)
            else:
                # An expired object is served a while longer when revalidation
                # gets a 5xx (Expiration.md, "stale objects").
                self._serve_stale(ex, stale)
            return
        headers = forwarding.viewer_headers(response.headers)
        body = response.body
        encoding = None
        if body is not None:
            encoding = choose_encoding(behavior, ex.request, response.status, headers)
        if encoding is not None:
            try:
                plain = await read_body(body)
            except OriginError as error:
                release()
                self._fail(ex, error)
                return
            except BaseException:
                release()
                raise
            body = compress(plain, encoding)
            headers = compressed_headers(headers, encoding, len(body))
        ttl = None
        if key is not None and ex.request.method == "GET":
            ttl = ttl_for(
                behavior.cache,
                response.status,
                headers,
                self.clock.time(),
                self.config.cache.error_caching_min_ttl,
            )
        if ttl is None or body is None:
            if key is not None and stale is not None:
                self.store.remove(key)
            release()
            ex.response = Response(response.status, headers, body, response.reason)
            return
        assert key is not None
        if isinstance(body, bytes) or (
            body.length is not None and body.length <= _INLINE_BODY_LIMIT
        ):
            try:
                data = await read_body(body)
                entry = self._store(key, response.status, response.reason, headers, data, ttl)
            except OriginError as error:
                self._fail(ex, error)
                return
            finally:
                release()
            if entry is None:
                ex.response = Response(response.status, headers, data, response.reason)
            else:
                self._from_entry(ex, entry, "Miss")
            return
        stream = _CachingStream(
            body,
            self.config.cache.max_object_size,
            lambda data: self._store(key, response.status, response.reason, headers, data, ttl),
            release,
        )
        ex.response = Response(response.status, headers, stream, response.reason)

    def _store(
        self, key: str, status: int, reason: str, headers: Headers, body: bytes, ttl: float
    ) -> Entry | None:
        if len(body) > self.config.cache.max_object_size:
            return None
        headers = headers.without("content-length").add("Content-Length", str(len(body)))
        entry = Entry.create(key, status, reason, headers, body, self.clock.monotonic(), ttl)
        self.store.put(entry)
        return entry

    def _refresh(self, ex: Exchange, stale: Entry, headers: Headers) -> None:
        """A 304 from the origin: the stored object is fresh again (RefreshHit)."""
        behavior = self._behavior(ex)
        merged = stale.headers_after_304(headers)
        ttl = ttl_for(
            behavior.cache,
            stale.status,
            merged,
            self.clock.time(),
            self.config.cache.error_caching_min_ttl,
        )
        entry = stale.refreshed(self.clock.monotonic(), ttl or 0.0, merged)
        self.store.put(entry)
        self._from_entry(ex, entry, "RefreshHit")

    def _serve_stale(self, ex: Exchange, stale: Entry) -> None:
        entry = stale.refreshed(
            self.clock.monotonic(), float(self.config.cache.error_caching_min_ttl), stale.headers
        )
        self.store.put(entry)
        self._from_entry(ex, entry, "RefreshHit")

    def _from_entry(self, ex: Exchange, entry: Entry, result: str) -> None:
        """Answer from a cache entry: 304 for a matching viewer conditional, HEAD without body."""
        ex.x_cache = f"{result} from cloudfront"
        ex.result_type = ex.detailed_result_type = result
        if result != "Miss":
            self.store.record_hit()
            ex.age = entry.age(self.clock.monotonic())
        headers = ex.request.headers
        if entry.status == 200 and _not_modified(headers, entry):
            kept = entry.headers.keep(_NOT_MODIFIED_HEADERS.__contains__)
            ex.response = Response(304, kept, None, "Not Modified")
            return
        spec = headers.get("range")
        if spec is not None and entry.status == 200 and _if_range_holds(headers, entry):
            ranged = _ranged(entry, spec)
            if ranged is not None:
                ex.response = ranged
                return
        ex.response = Response(entry.status, entry.headers, entry.body, entry.reason, entry.head)

    def _fail(self, ex: Exchange, error: EdgeError) -> None:
        ex.response = error_response(error, ex.request_id, self.date())
        ex.x_cache = error.x_cache
        ex.result_type = error.result_type
        ex.detailed_result_type = error.detailed_result_type
        ex.notes.append(str(error))

    def _add_edge_headers(self, ex: Exchange) -> None:
        headers = [("X-Cache", ex.x_cache), *self._static_edge_headers]
        headers.append(("X-Amz-Cf-Id", ex.request_id))
        if ex.age is not None:
            headers.append(("Age", str(ex.age)))
        ex.edge_headers = headers

    @staticmethod
    def _behavior(ex: Exchange) -> Behavior:
        assert ex.behavior is not None
        return ex.behavior


def _conditional(request: Request, stale: Entry) -> Request:
    headers = request.headers
    if stale.etag:
        headers = headers.set("If-None-Match", stale.etag)
    if stale.last_modified:
        headers = headers.set("If-Modified-Since", stale.last_modified)
    return request.replace(headers=headers)


def _not_modified(headers: Headers, entry: Entry) -> bool:
    """Whether a viewer's conditional GET is satisfied by the cached object (RFC 9110 13.2.2)."""
    inm = headers.get("if-none-match")
    if inm is not None:
        if entry.etag is None:
            return False
        tags = {t.strip().removeprefix("W/") for t in inm.split(",")}
        return "*" in tags or entry.etag.removeprefix("W/") in tags
    ims = headers.get("if-modified-since")
    if ims is not None and entry.last_modified is not None:
        try:
            return parsedate_to_datetime(entry.last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def _if_range_holds(headers: Headers, entry: Entry) -> bool:
    """A Range applies unless If-Range names another version (RFC 9110 13.1.5)."""
    condition = headers.get("if-range")
    return condition is None or condition in (entry.etag, entry.last_modified)


def _ranged(entry: Entry, spec: str) -> Response | None:
    """A 206 (or 416) for one byte range of a cached object; None to send it whole."""
    size = len(entry.body)
    parsed = parse_range(spec, size)
    if parsed is None:
        return None
    base = entry.headers.without("content-length", "content-range")
    if isinstance(parsed, str):  # unsatisfiable
        fields = base.keep(_NOT_MODIFIED_HEADERS.__contains__)
        fields = fields.add("Content-Range", f"bytes */{size}").add("Content-Length", "0")
        return Response(416, fields, b"", "Requested Range Not Satisfiable")
    start, end = parsed
    fields = base.add("Content-Range", f"bytes {start}-{end}/{size}")
    fields = fields.add("Content-Length", str(end - start + 1))
    return Response(206, fields, entry.body[start : end + 1], "Partial Content")


async def _discard(body: bytes | BodyStream | None) -> None:
    if body is not None and not isinstance(body, bytes):
        await body.aclose()


class _CachingStream:
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
        release: _Release,
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
