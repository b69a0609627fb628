"""The one place that puts the stages of a request in order.

    viewer -> route (behavior, allowed methods) -> [viewer-request] -> cache lookup
        fresh hit -> respond from the entry
        miss/stale -> [collapse] -> [origin-request] -> origin fetch (conditional
                      if stale) -> [origin-response] -> compress -> store -> respond
    -> [viewer-response] -> edge headers (X-Cache, Via, X-Amz-Cf-Pop, X-Amz-Cf-Id, Age)

Each stage takes the Exchange, sets its response or what it decided, and
returns; ``handle`` reads top to bottom like CloudFront's diagram. Failures
come back as EdgeErrors and become CloudFront's error page in ``_fail``.
Sources: cloudfront-semantics.md sections 0 and 7.

``start`` runs what never waits; ``finish`` the rest. A miss of a behavior
without functions is sent to its origin from ``start`` when a pooled
connection is ready (``ex.direct``), so that the server can answer it from
the origin's callback with ``finish_now`` (the same stages after the fetch,
for an answer that needs no waiting) instead of a task; anything else about
that answer (a failure, a retry, a streamed body, a custom error page) is
``finish``'s, which awaits the same fetch as its first attempt.
"""

from __future__ import annotations

import os
import random
import time
from binascii import b2a_base64
from collections.abc import Callable
from email.utils import formatdate
from time import perf_counter
from typing import Protocol

from edgesim.behaviors import BehaviorMatcher
from edgesim.cache import (
    NOT_MODIFIED_HEADERS,
    CacheFill,
    CacheStore,
    Collapser,
    Entry,
    cache_key,
    collapses_requests,
    conditional_request,
    if_range_holds,
    not_modified,
    ranged,
    ttl_for,
)
from edgesim.codecs import ContinueRequest, GeneratedResponse, ModifiedResponse
from edgesim.compression import choose_encoding, compress, compressed_headers
from edgesim.config.schema import (
    Behavior,
    Config,
    CustomErrorResponse,
    CustomOrigin,
    Origin,
    OriginChain,
    OriginGroup,
)
from edgesim.errors import EdgeError, MethodNotAllowed, OriginError
from edgesim.forwarding import Forwarding, via_value
from edgesim.hooks import FUNCTION_RULES, HOOK_RULES, EventType, viewer_response_runs
from edgesim.invoker import Invoker
from edgesim.models import (
    WHOLE_BODY,
    BodyStream,
    Exchange,
    Headers,
    Request,
    Response,
    close_body,
    read_body,
)
from edgesim.origins import OriginClient, StartedFetch
from edgesim.pages import error_response
from edgesim.triggers import Triggers
from edgesim.viewer import CLOUDFRONT_HEADERS, SIMULATION_HEADER, Viewer, ViewerSimulation

__all__ = ["Clock", "Pipeline", "SystemClock", "new_request_id"]

# Origin bodies up to this size are read whole before answering, which is
# cheaper than streaming them chunk by chunk; larger ones stream through.
_INLINE_BODY_LIMIT = 256 * 1024
_GENERATED = "LambdaGeneratedResponse"
# Exchange.generated_by values (plain strings: enum .value is a property call).
_VIEWER_REQUEST = EventType.VIEWER_REQUEST.value
_ORIGIN_REQUEST = EventType.ORIGIN_REQUEST.value
_CACHED = frozenset({"Hit", "Miss", "RefreshHit"})
_CONDITIONAL_HEADERS = (
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "range",
)
# A custom error page is read whole before it replaces the error.
_MAX_ERROR_PAGE_BYTES = 1024 * 1024


class Clock(Protocol):
    """Time as the edge sees it: ``monotonic`` for ages, ``time`` (epoch) for dates."""

    def monotonic(self) -> float: ...

    def time(self) -> float: ...


class SystemClock:
    monotonic = staticmethod(time.monotonic)
    time = staticmethod(time.time)


# Request ids need to be unique and look random, not to be secret: a PRNG seeded
# from the OS costs no system call per request, unlike os.urandom.
_ids = random.Random(os.urandom(32))
_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def _viewer_request_sees_cloudfront_headers(config: Config, behavior: Behavior) -> bool:
    """Whether the behavior's viewer-request function (if any) runs after CloudFront
    adds its CloudFront-Viewer-* headers."""
    for event, association in behavior.functions:
        if event == EventType.VIEWER_REQUEST.value:
            function = config.functions[association.function]
            rules = FUNCTION_RULES if function.is_cloudfront_function else HOOK_RULES
            return rules[EventType.VIEWER_REQUEST].sees_cloudfront_headers
    return False


def new_request_id() -> str:
    """A 56-character URL-safe id ending in ``==``, the shape of ``X-Amz-Cf-Id``."""
    # base64.urlsafe_b64encode(randbytes(40)), without its three Python-level calls.
    raw = _ids.getrandbits(320).to_bytes(40, "little")
    return b2a_base64(raw, newline=False).translate(_URL_SAFE).decode("ascii")


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


class _DirectFetch:
    """A miss sent to its origin from ``start``, because nothing before the fetch
    can wait: the server takes its answer without a task when ``finish_now``
    can, and ``finish`` awaits the same fetch when it cannot."""

    __slots__ = ("began", "origin", "outgoing", "release", "response", "sent", "started")

    def __init__(
        self,
        origin: Origin,
        outgoing: Request,
        sent: Request,
        started: StartedFetch,
        release: _Release,
    ) -> None:
        self.origin = origin
        self.outgoing = outgoing  # before the origin's custom headers (for functions)
        self.sent = sent
        self.started = started
        self.release = release
        self.began = perf_counter()
        self.response: Response | None = None  # taken from ``started`` once its head is in

    def on_answer(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the origin's response head (or its failure) is in."""
        self.started.on_head(callback)


class Pipeline:
    """Runs one viewer request through the edge and returns its Exchange."""

    def __init__(
        self,
        config: Config,
        origins: OriginClient,
        *,
        invoker: Invoker | None = None,
        store: CacheStore | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.origins = origins
        self.clock = clock or SystemClock()
        self.store = store or CacheStore(config.cache.max_size, self.clock.monotonic)
        self.collapser = Collapser()
        self.date = _HttpDate(self.clock)
        self.triggers = Triggers(config, invoker)
        self._matcher = BehaviorMatcher(config.all_behaviors)
        # Keyed by id(): a frozen Behavior rehashes every field on each lookup.
        self._forwarding = {
            id(b): Forwarding.for_behavior(b, config.distribution) for b in config.all_behaviors
        }
        # Per behavior: the origins to try, in order, and when to fail over.
        self._origins = {id(b): config.origins_for(b.origin) for b in config.all_behaviors}
        self._collapsing = {id(b) for b in config.all_behaviors if collapses_requests(b)}
        # Behaviors whose misses need no waiting before the origin fetch (no
        # functions, one HTTP origin): ``start`` sends them at once.
        self._direct = {
            id(b)
            for b in config.all_behaviors
            if not self.triggers.of(b)
            and len(self._origins[id(b)].origins) == 1
            and isinstance(self._origins[id(b)].origins[0], CustomOrigin)
        }
        self._static_edge_headers = (
            ("Via", via_value(config.distribution)),
            ("X-Amz-Cf-Pop", config.distribution.pop),
        )
        self._retired = False
        self._viewers = ViewerSimulation(config.viewers)
        # The CloudFront headers each behavior's policies ask for, by name (only
        # behaviors that ask for some are in the tables): added at the cache
        # lookup, or before the viewer-request function when it is one that
        # sees them (a CloudFront Function; hooks.py, sees_cloudfront_headers).
        self._cloudfront_headers: dict[int, tuple[str, ...]] = {}
        self._cloudfront_headers_first: dict[int, tuple[str, ...]] = {}
        for b in config.all_behaviors:
            listed = b.cache.headers.union(b.origin_request.headers)
            if listed.mode == "allow":
                names = tuple(sorted(listed.names & CLOUDFRONT_HEADERS.keys()))
                if names and _viewer_request_sees_cloudfront_headers(config, b):
                    self._cloudfront_headers_first[id(b)] = names
                elif names:
                    self._cloudfront_headers[id(b)] = names

    def retire(self) -> None:
        """A reload replaced this generation: the exchanges still on it finish, but
        store nothing more in the cache they share with the next one, whose
        behaviors may have made what this one fetches meaningless."""
        self._retired = True

    async def handle(
        self, request: Request, *, error_page: bool = False, viewer: Viewer | None = None
    ) -> Exchange:
        """Run every stage for ``request``. ``error_page`` marks the edge's own fetch
        of a custom error page, which gets no custom error page of its own;
        ``viewer`` is the viewer it is fetched for."""
        ex = self.start(request, error_page=error_page, viewer=viewer)
        if ex.pending:
            await self.finish(ex)
        return ex

    def start(
        self, request: Request, *, error_page: bool = False, viewer: Viewer | None = None
    ) -> Exchange:
        """The stages that never wait: routing and, without viewer functions, the lookup.

        A fresh hit (or a refusal) comes back answered; otherwise ``ex.pending``
        is set and the caller awaits ``finish``. The server answers hits from
        here without a task.
        """
        ex = Exchange(request, new_request_id(), request)
        ex.started = perf_counter()
        ex.error_page_request = error_page
        self._route(ex)
        if viewer is not None:
            ex.viewer = viewer
        elif self._viewers.active or SIMULATION_HEADER in request.headers:
            self._simulate(ex)
        behavior = self._behavior(ex)
        if ex.response is None and not self.triggers.has_viewer_functions(behavior):
            self._lookup(ex)
            if ex.response is None and id(behavior) in self._direct:
                self._send_now(ex)
        response = ex.response
        if response is None or self._custom_error_for(ex, response) is not None:
            ex.pending = True
        else:
            self._add_edge_headers(ex)
        return ex

    async def finish(self, ex: Exchange) -> None:
        """The stages that wait: functions, the origin fetch (collapsed per key),
        storing, custom error pages."""
        behavior = self._behavior(ex)
        hooks = self.triggers.of(behavior)
        if ex.response is None and self.triggers.has_viewer_functions(behavior):
            if EventType.VIEWER_REQUEST in hooks:
                first = self._cloudfront_headers_first.get(id(behavior))
                if first is not None:
                    self._add_cloudfront_headers(ex, first)
                await self._viewer_request(ex)
            if ex.response is None:
                self._lookup(ex)
        if ex.response is None:
            await self._fetch_missing(ex)
        if self.config.custom_error_responses:  # else a coroutine for nothing
            await self._custom_error_page(ex)
        if EventType.VIEWER_RESPONSE in hooks:
            await self._viewer_response(ex)
        self._add_edge_headers(ex)
        ex.pending = False

    def finish_now(self, ex: Exchange) -> bool:
        """The stages after the origin fetch, without waiting, for a miss ``start``
        sent (``ex.direct``) once its answer is in: answered (True) when the body
        came whole with the head and no custom error page applies; otherwise
        False, and ``finish`` takes over, awaiting the same fetch."""
        direct = ex.direct
        assert direct is not None
        response = direct.response
        if response is None:
            response = direct.response = self.origins.started_response(direct.started)
        if (
            response is None
            or not isinstance(response.body, WHOLE_BODY)
            or self._custom_error_for(ex, response) is not None
        ):
            return False
        ex.direct = None
        fetched = (direct.origin, direct.sent, direct.began, perf_counter(), response.status)
        ex.origin_fetches += ((*fetched, response.headers),)
        key = ex.cache_key
        stale = ex.cached if isinstance(ex.cached, Entry) else None
        if not self._revalidated(ex, key, stale, response):
            headers, encoding = self._for_viewer(ex, response)
            self._answer_from_origin(ex, key, stale, response, headers, encoding, response.body)
        direct.release()
        self._add_edge_headers(ex)
        ex.pending = False
        return True

    def abandon(self, ex: Exchange) -> None:
        """The viewer went away while a miss ``start`` sent was at the origin."""
        direct, ex.direct = ex.direct, None
        if direct is not None:
            direct.started.abandon()
            direct.release()

    # -- stages ---------------------------------------------------------

    def _route(self, ex: Exchange) -> None:
        """Pick the cache behavior; refuse methods it does not allow (403)."""
        ex.behavior = self._matcher.match(ex.request.path)
        if ex.request.method not in ex.behavior.allowed_methods:
            self._fail(ex, MethodNotAllowed())

    async def _viewer_request(self, ex: Exchange) -> None:
        """Viewer-request: change the request, or answer it (not cached, nothing else runs)."""
        outcome = await self.triggers.run(ex, EventType.VIEWER_REQUEST, request=ex.request)
        if isinstance(outcome, EdgeError):
            self._fail(ex, outcome)
        elif isinstance(outcome, GeneratedResponse):
            ex.generated_by = _VIEWER_REQUEST
            self._generated(ex, outcome.response, outcome.result_type)
        elif isinstance(outcome, ContinueRequest):
            # A changed URI keeps the behavior and origin chosen for the viewer's
            # URI (lambda-event-structure.md, "uri"); a CloudFront Function's origin
            # helpers change the origin for this request only.
            ex.request = outcome.request
            if outcome.origins is not None:
                ex.origin_override = outcome.origins

    def _simulate(self, ex: Exchange) -> None:
        """Where the viewer is (``edgesim.viewer``): the simulation header goes, the
        client IP may change; a malformed header gets 400."""
        if ex.response is not None:
            return
        try:
            request, ex.viewer = self._viewers.locate(ex.request)
        except EdgeError as error:
            self._fail(ex, error)
            return
        ex.request = ex.viewer_request = request

    def _add_cloudfront_headers(self, ex: Exchange, names: tuple[str, ...]) -> None:
        """The CloudFront headers the policies ask for, before the cache key
        (adding-cloudfront-headers.md): after a Lambda@Edge viewer-request
        function, before a CloudFront Function. They replace any the viewer sent,
        and one without a value is not sent. What a CloudFront Function then
        does to them stands, as with any header it changes (AWS says nothing of
        CloudFront adding them again after the function)."""
        viewer = ex.viewer
        if viewer is None:
            viewer = Viewer(ex.viewer_request.client_ip, ex.viewer_request.client_port)
        headers = ex.request.headers
        for lower in names:
            name, value_of = CLOUDFRONT_HEADERS[lower]
            value = value_of(viewer, ex)
            if value is None:
                if lower in headers:
                    headers = headers.without(lower)
            else:
                headers = headers.set(name, value)
        ex.request = ex.request.replace(headers=headers)

    def _lookup(self, ex: Exchange) -> None:
        """Find the object in the cache; answer if it is fresh."""
        behavior = self._behavior(ex)
        if self._cloudfront_headers and id(behavior) in self._cloudfront_headers:
            self._add_cloudfront_headers(ex, self._cloudfront_headers[id(behavior)])
        if ex.request.method not in behavior.cached_methods:
            return
        key = ex.cache_key = cache_key(behavior, ex.request)
        entry = ex.cached = self.store.get(key)
        if entry is not None and entry.is_fresh(self.clock.monotonic()):
            self._from_entry(ex, entry, "Hit")

    def _send_now(self, ex: Exchange) -> None:
        """Send a miss to its origin now, when a pooled connection is ready and no
        other viewer is already fetching its key (``ex.direct``); else ``finish``
        fetches it."""
        key = ex.cache_key
        behavior = self._behavior(ex)
        collapsing = key is not None and id(behavior) in self._collapsing
        if key is not None and collapsing and self.collapser.in_flight(key):
            return  # wait for that fetch: finish() joins it
        stale = ex.cached if isinstance(ex.cached, Entry) else None
        origin = self._origins[id(behavior)].origins[0]
        outgoing = self._forwarding[id(behavior)].origin_request(
            ex.request, origin, ex.request_id, cacheable=key is not None
        )
        if stale is not None:
            outgoing = conditional_request(outgoing, stale)
        sent = Forwarding.with_origin_headers(outgoing, origin)
        started = self.origins.start_fetch(origin, sent)
        if started is None:
            return
        release = _Release(None)
        if collapsing:
            assert key is not None
            self.collapser.join(key)  # the leader: nobody else is fetching it
            release = _Release(lambda: self.collapser.finish(key))
        ex.direct = _DirectFetch(origin, outgoing, sent, started, release)

    async def _fetch_missing(self, ex: Exchange) -> None:
        """Fetch from the origin; concurrent misses on one key wait for the first."""
        key = ex.cache_key
        if ex.direct is not None:  # sent from start(), collapsing already decided
            stale = ex.cached if isinstance(ex.cached, Entry) else None
            await self._fetch(ex, key, stale, ex.direct.release)
            return
        if key is None:
            await self._fetch(ex, None)
            return
        stale = ex.cached if isinstance(ex.cached, Entry) else None
        if id(self._behavior(ex)) not in self._collapsing:
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
        """Go to the origin and store what may be cached. ``key`` is None for
        methods that are never cached; ``release`` ends this key's collapsing
        once the body is stored or abandoned, however the fetch ends."""
        release = release or _Release(None)
        try:
            response = await self._origin_response(ex, key, stale)
            if response is not None:
                await self._store_and_answer(ex, key, stale, response, release)
        finally:
            if not isinstance(ex.response and ex.response.body, CacheFill):
                release()

    async def _origin_response(
        self, ex: Exchange, key: str | None, stale: Entry | None
    ) -> Response | None:
        """The origin's response after the origin-facing functions, or None when the
        exchange was answered already (an error, or a stale object served)."""
        behavior = self._behavior(ex)
        hooks = self.triggers.of(behavior)
        plan: OriginChain = ex.origin_override or self._origins[id(behavior)]
        chain = plan.origins
        failover = plan.failover_statuses
        if not failover or ex.request.method not in OriginGroup.FAILOVER_METHODS:
            chain = chain[:1]
        for attempt, planned in enumerate(chain, 1):
            origin = planned
            can_fail_over = attempt < len(chain)
            started: StartedFetch | None = None
            answered: Response | None = None
            direct, ex.direct = ex.direct, None
            if direct is not None:
                # Sent from start(): its answer, or the wait for it, is this attempt.
                outgoing, sent, began = direct.outgoing, direct.sent, direct.began
                started, answered = direct.started, direct.response
            else:
                outgoing = self._forwarding[id(behavior)].origin_request(
                    ex.request, origin, ex.request_id, cacheable=key is not None
                )
                if stale is not None:
                    outgoing = conditional_request(outgoing, stale)
                if EventType.ORIGIN_REQUEST in hooks:
                    # Runs once per origin tried (high_availability_origin_failover.md).
                    outcome = await self.triggers.run(
                        ex, EventType.ORIGIN_REQUEST, request=outgoing, origin=origin
                    )
                    if isinstance(outcome, EdgeError):
                        self._fail(ex, outcome)
                        return None
                    if isinstance(outcome, GeneratedResponse):
                        # Answered and cached like an origin response; origin-response does
                        # not run for it (lambda-generating-http-responses-in-requests.md).
                        ex.generated_by = _ORIGIN_REQUEST
                        return outcome.response
                    assert isinstance(outcome, ContinueRequest)
                    outgoing, origin = outcome.request, outcome.origin or origin
                sent = Forwarding.with_origin_headers(outgoing, origin)
                began = perf_counter()
            try:
                response = answered or await self.origins.fetch(origin, sent, started)
            except OriginError as error:
                if self._origin_failed(ex, origin, sent, began, error, stale, can_fail_over):
                    continue
                return None
            fetched = (origin, sent, began, perf_counter(), response.status, response.headers)
            ex.origin_fetches += (fetched,)
            if can_fail_over and response.status in failover:
                ex.notes += (f"failover after status {response.status}",)
                await close_body(response.body)
                continue
            return await self._after_origin(ex, key, stale, outgoing, origin, response)
        raise AssertionError("an origin chain is never empty")

    def _origin_failed(
        self,
        ex: Exchange,
        origin: Origin,
        sent: Request,
        began: float,
        error: OriginError,
        stale: Entry | None,
        can_fail_over: bool,
    ) -> bool:
        """An origin gave no answer: True to try the next origin of the group; else
        the exchange is answered (the stale object, or CloudFront's error)."""
        ex.origin_fetches += ((origin, sent, began, perf_counter(), 0, error),)
        if can_fail_over:
            ex.notes += (f"failover after {error.detailed_result_type}: {error}",)
            return True
        if stale is not None:
            self._serve_stale(ex, stale)
        else:
            self._fail(ex, error)
        return False

    async def _after_origin(
        self,
        ex: Exchange,
        key: str | None,
        stale: Entry | None,
        outgoing: Request,
        origin: Origin,
        response: Response,
    ) -> Response | None:
        """Revalidation results, then the origin-response function."""
        hooks = self.triggers.of(self._behavior(ex))
        if self._revalidated(ex, key, stale, response):
            await close_body(response.body)
            return None
        if EventType.ORIGIN_RESPONSE in hooks:
            outcome = await self.triggers.run(
                ex, EventType.ORIGIN_RESPONSE, request=outgoing, response=response, origin=origin
            )
            if isinstance(outcome, EdgeError):
                await close_body(response.body)
                self._fail(ex, outcome)
                return None
            assert isinstance(outcome, ModifiedResponse)
            changed = outcome.response
            if changed.body is not response.body:
                # The function replaced the body: the origin's is not sent.
                await close_body(response.body)
                changed = changed.replace(headers=changed.headers.without("content-length"))
            response = changed
        return response

    def _revalidated(
        self, ex: Exchange, key: str | None, stale: Entry | None, response: Response
    ) -> bool:
        """Count the miss; True when the answer is the stale object's: a 304
        refreshes it, a 5xx keeps it served a while longer (Expiration.md,
        "stale objects"). The caller closes the response's body then."""
        if key is not None and response.status != 304:
            self.store.record_miss()
        if stale is None or not (response.status == 304 or response.status >= 500):
            return False
        if response.status == 304:
            self._refresh(ex, stale, response.headers)
        else:
            self._serve_stale(ex, stale)
        return True

    async def _store_and_answer(
        self,
        ex: Exchange,
        key: str | None,
        stale: Entry | None,
        response: Response,
        release: _Release,
    ) -> None:
        """Compress, store what may be cached, and set the viewer's response; a
        body to compress or a small one is read whole first."""
        headers, encoding = self._for_viewer(ex, response)
        body = response.body
        if (
            body is not None
            and not isinstance(body, bytes)
            and (
                encoding is not None
                or (body.length is not None and body.length <= _INLINE_BODY_LIMIT)
            )
        ):
            try:
                body = await read_body(body)
            except OriginError as error:
                self._fail(ex, error)
                return
        self._answer_from_origin(ex, key, stale, response, headers, encoding, body, release)

    def _for_viewer(self, ex: Exchange, response: Response) -> tuple[Headers, str | None]:
        """The origin's headers as the viewer gets them, and the compression to apply."""
        behavior = self._behavior(ex)
        headers = self._forwarding[id(behavior)].viewer_headers(response.headers)
        if response.body is None:
            return headers, None
        return headers, choose_encoding(behavior, ex.request, response.status, headers)

    def _answer_from_origin(
        self,
        ex: Exchange,
        key: str | None,
        stale: Entry | None,
        response: Response,
        headers: Headers,
        encoding: str | None,
        body: bytes | BodyStream | None,
        release: _Release | None = None,
    ) -> None:
        """Compress, store and answer; ``body`` is bytes, None, or a stream too large
        to hold, which fills the cache as it goes to the viewer (``release`` ends
        its key's collapsing when it is done)."""
        if encoding is not None:
            assert isinstance(body, bytes)
            body = compress(body, encoding)
            headers = compressed_headers(headers, encoding, len(body))
        ttl = None
        if key is not None and ex.request.method == "GET":
            ttl = self._decide_ttl(ex, response.status, headers)
        if key is None or ttl is None or body is None:
            if key is not None and stale is not None:
                self.store.remove(key)
            ex.response = Response(response.status, headers, body, response.reason)
            if ex.generated_by:
                self._generated(ex, ex.response)
            return
        if isinstance(body, bytes):
            status, reason = response.status, response.reason
            entry = ex.stored = self._store(key, status, reason, headers, body, ttl)
            if entry is None:
                ex.response = Response(response.status, headers, body, response.reason)
            else:
                self._from_entry(ex, entry, _GENERATED if ex.generated_by else "Miss")
            return
        fill = CacheFill(
            body,
            self.config.cache.max_object_size,
            lambda data: self._store(key, response.status, response.reason, headers, data, ttl),
            release or _Release(None),
        )
        ex.response = Response(response.status, headers, fill, response.reason)

    def _custom_error_for(self, ex: Exchange, response: Response) -> CustomErrorResponse | None:
        """The custom error response configured for this status, if it applies."""
        customs = self.config.custom_error_responses
        if not customs or ex.error_page_request or ex.generated_by == _VIEWER_REQUEST:
            return None
        custom = customs.get(response.status)
        if custom is None or custom.response_page_path is None:
            return None
        return custom

    async def _custom_error_page(self, ex: Exchange) -> None:
        """Replace an error with its custom page, fetched through the behavior that
        matches the page's path (GeneratingCustomErrorResponses.md). If the page
        itself cannot be had, the original error goes to the viewer."""
        response = ex.response
        assert response is not None
        custom = self._custom_error_for(ex, response)
        if custom is None or custom.response_page_path is None:
            return
        page_request = Request(
            "GET",
            custom.response_page_path,
            "",
            ex.viewer_request.headers.without(*_CONDITIONAL_HEADERS),
            ex.viewer_request.client_ip,
            ex.viewer_request.client_port,
            ex.viewer_request.http_version,
        )
        page = (await self.handle(page_request, error_page=True, viewer=ex.viewer)).response
        assert page is not None
        if page.status >= 400:
            await close_body(page.body)
            ex.notes += (f"custom error page {custom.response_page_path}: {page.status}",)
            return
        try:
            body = await read_body(page.body, _MAX_ERROR_PAGE_BYTES)
        except (OriginError, ValueError) as error:
            ex.notes += (f"custom error page {custom.response_page_path}: {error}",)
            return
        await close_body(response.body)
        status = custom.response_code or response.status
        ex.response = Response(status, page.headers.without("content-length"), body)
        ex.custom_error_page = True
        ex.x_cache = "Error from cloudfront"
        ex.result_type = "Error"
        ex.age = None

    async def _viewer_response(self, ex: Exchange) -> None:
        """Viewer-response: only for statuses below 400 and not for responses the
        viewer-request function generated (edge-functions-restrictions.md)."""
        response = ex.response
        assert response is not None
        if not viewer_response_runs(
            response.status,
            generated_by_viewer_request=ex.generated_by == _VIEWER_REQUEST,
            custom_error_page=ex.custom_error_page,
        ):
            return
        shown = response
        if ex.age is not None:
            # The event shows the Age of a cached object; the edge adds it itself.
            shown = response.replace(headers=response.headers.add("Age", str(ex.age)))
        outcome = await self.triggers.run(
            ex, EventType.VIEWER_RESPONSE, request=ex.request, response=shown
        )
        if isinstance(outcome, EdgeError):
            await close_body(response.body)
            self._fail(ex, outcome)
            return
        assert isinstance(outcome, ModifiedResponse)
        changed = outcome.response
        if changed.body is not shown.body:
            await close_body(response.body)
            changed = changed.replace(headers=changed.headers.without("content-length"))
        ex.response = changed.replace(headers=changed.headers.without("age"))

    def _decide_ttl(self, ex: Exchange, status: int, headers: Headers) -> float | None:
        """The TTL for a response to store, its inputs kept for the trace to say
        which rule decided (``ex.ttl_basis``)."""
        basis = (status, headers, self.clock.time(), self._error_caching_min_ttl(status))
        ex.ttl_basis = basis
        ttl = ex.ttl = ttl_for(self._behavior(ex).cache, *basis)
        return ttl

    def _error_caching_min_ttl(self, status: int) -> int:
        """The error caching minimum TTL: per status if a custom error response sets
        one (custom-error-pages-expiration.html), else the distribution's."""
        custom = self.config.custom_error_responses.get(status)
        if custom is not None:
            return custom.error_caching_min_ttl
        return self.config.cache.error_caching_min_ttl

    def _store(
        self, key: str, status: int, reason: str, headers: Headers, body: bytes, ttl: float
    ) -> Entry | None:
        if len(body) > self.config.cache.max_object_size or self._retired:
            return None
        entry = Entry.create(key, status, reason, headers, body, self.clock.monotonic(), ttl)
        self.store.put(entry)
        return entry

    def _refresh(self, ex: Exchange, stale: Entry, headers: Headers) -> None:
        """A 304 from the origin: the stored object is fresh again (RefreshHit)."""
        merged = stale.headers_after_304(headers)
        ttl = self._decide_ttl(ex, stale.status, merged)
        entry = ex.stored = stale.refreshed(self.clock.monotonic(), ttl or 0.0, merged)
        if not self._retired:
            self.store.put(entry)
        self._from_entry(ex, entry, "RefreshHit")

    def _serve_stale(self, ex: Exchange, stale: Entry) -> None:
        entry = ex.stored = stale.refreshed(
            self.clock.monotonic(), float(self.config.cache.error_caching_min_ttl), stale.headers
        )
        if not self._retired:
            self.store.put(entry)
        self._from_entry(ex, entry, "RefreshHit")

    def _from_entry(self, ex: Exchange, entry: Entry, result: str) -> None:
        """Answer from a cache entry: 304 for a matching viewer conditional, 206 for
        a range, HEAD without body. ``result`` is the X-Cache/log result type."""
        ex.x_cache = f"{result} from cloudfront"
        ex.result_type = ex.detailed_result_type = result
        if result in ("Hit", "RefreshHit"):
            self.store.record_hit()
            ex.age = entry.age(self.clock.monotonic())
        headers = ex.request.headers
        if entry.status == 200 and not_modified(headers, entry):
            kept = entry.headers.keep(NOT_MODIFIED_HEADERS.__contains__)
            ex.response = Response(304, kept, None, "Not Modified")
            return
        spec = headers.get("range")
        if spec is not None and entry.status == 200 and if_range_holds(headers, entry):
            partial = ranged(entry, spec)
            if partial is not None:
                ex.response = partial
                return
        ex.response = entry.response

    def _generated(self, ex: Exchange, response: Response, label: str = _GENERATED) -> None:
        """A response a function generated: CloudFront marks it and names itself."""
        ex.x_cache = f"{label} from cloudfront"
        ex.result_type = ex.detailed_result_type = label
        headers = response.headers
        if "server" not in headers:
            headers = headers.add("Server", "CloudFront")
        if "date" not in headers:
            headers = headers.add("Date", self.date())
        ex.response = response.replace(headers=headers)

    def _fail(self, ex: Exchange, error: EdgeError) -> None:
        ex.response = error_response(error, ex.request_id, self.date())
        ex.x_cache = error.x_cache
        ex.result_type = error.result_type
        ex.detailed_result_type = error.detailed_result_type
        ex.notes += (str(error),)

    def _add_edge_headers(self, ex: Exchange) -> None:
        if ex.response is not None and ex.response.status >= 400 and ex.result_type in _CACHED:
            # CloudFront reports any 4xx/5xx it passes on as an Error, cached or not
            # (AccessLogs.md, x-edge-result-type "Error").
            ex.x_cache = "Error from cloudfront"
            ex.result_type = "Error"
        headers = [("X-Cache", ex.x_cache), *self._static_edge_headers]
        headers.append(("X-Amz-Cf-Id", ex.request_id))
        if ex.age is not None:
            headers.append(("Age", str(ex.age)))
        ex.edge_headers = headers

    @staticmethod
    def _behavior(ex: Exchange) -> Behavior:
        assert ex.behavior is not None
        return ex.behavior
