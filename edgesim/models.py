"""Wire values: headers, requests, responses, and the one mutable Exchange.

Requests and responses are frozen; a stage that changes one builds a new one
with ``dataclasses.replace`` (or the ``with_*`` helpers) and puts it on the
Exchange. Bodies are either ``bytes`` (small, generated, or cached) or a
``BodyStream`` that is read once, so large bodies pass through without being
held in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar

if TYPE_CHECKING:
    from edgesim.config.schema import Behavior

__all__ = [
    "WHOLE_BODY",
    "BodyStream",
    "Exchange",
    "Headers",
    "Request",
    "Response",
    "body_length",
    "close_body",
    "read_body",
    "slot_init",
]


# The types of a body that is all there (bytes, or none), for isinstance: one
# tuple kept, where ``bytes | None`` would build a union at every check.
WHOLE_BODY: Final = (bytes, type(None))


class BodyStream(Protocol):
    """A body read once, chunk by chunk. ``length`` is None when unknown (chunked)."""

    length: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None:
        """Stop reading early and release what feeds the stream."""


_INDEXES: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}
_INDEXES_LIMIT = 1024


class Headers:
    """An ordered, immutable list of header fields, looked up case-insensitively.

    Names keep the case they arrived with (Lambda@Edge shows it as ``key``);
    repeated fields stay separate entries, as on the wire.
    """

    __slots__ = ("_fields", "_index")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: tuple[tuple[str, str], ...] = tuple(fields)
        self._index: dict[str, str] | None = None

    def _lookup(self) -> dict[str, str]:
        index = self._index
        if index is None:
            # Equal fields have equal indexes, and a keep-alive client sends the
            # same fields again: one index each, shared (an index is never written).
            index = _INDEXES.get(self._fields)
            if index is None:
                index = {}
                for name, value in self._fields:
                    index.setdefault(name.lower(), value)
                if len(_INDEXES) >= _INDEXES_LIMIT:
                    _INDEXES.clear()
                _INDEXES[self._fields] = index
            self._index = index
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name`` (lowercase), or ``default``."""
        # The index is built once; later lookups skip the call (they run per request).
        return (self._index or self._lookup()).get(name, default)

    def get_all(self, name: str) -> list[str]:
        return [v for n, v in self._fields if n.lower() == name]

    def __contains__(self, name: object) -> bool:
        return name in (self._index or self._lookup())

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return self._fields

    def without(self, *names: str) -> Headers:
        """A copy without any field named in ``names`` (lowercase)."""
        drop = set(names)
        return Headers(f for f in self._fields if f[0].lower() not in drop)

    def keep(self, predicate: Callable[[str], bool]) -> Headers:
        """A copy with the fields whose lowercase name satisfies ``predicate``."""
        return Headers(f for f in self._fields if predicate(f[0].lower()))

    def set(self, name: str, value: str) -> Headers:
        """A copy where ``name`` has exactly one field, ``value`` (added last if new)."""
        lower = name.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._fields:
            if n.lower() == lower:
                if not placed:
                    out.append((n, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((name, value))
        return Headers(out)

    def add(self, name: str, value: str) -> Headers:
        return Headers((*self._fields, (name, value)))


async def read_body(body: bytes | BodyStream | None, limit: int | None = None) -> bytes:
    """Read a whole body into memory (for small bodies only; ``limit`` guards size)."""
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    chunks: list[bytes] = []
    size = 0
    async for chunk in body:
        size += len(chunk)
        if limit is not None and size > limit:
            await body.aclose()
            raise ValueError(f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def body_length(body: bytes | BodyStream | None) -> int:
    """Bytes in a body: a stream's as long as it said (0 when it did not say)."""
    if isinstance(body, bytes):
        return len(body)
    return (body.length or 0) if body is not None else 0


async def close_body(body: bytes | BodyStream | None) -> None:
    """Stop a streamed body nobody will read, releasing what feeds it."""
    if body is not None and not isinstance(body, bytes):
        await body.aclose()


_T = TypeVar("_T")


def slot_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass an ``__init__`` that stores each field
    through its slot's descriptor.

    A frozen dataclass's own ``__init__`` calls ``object.__setattr__`` once per
    field, which costs about twice as much (1.7 against 0.8 us for a Request);
    for values made several times per request (requests, responses,
    invocation results) that shows. They stay frozen: assignment raises. The signature is the
    dataclass's: the fields in order, with their defaults. Apply it above
    ``@dataclass``; a field with ``default_factory`` or ``init=False``, and
    ``__post_init__``, are not supported (they raise ``TypeError``).
    """
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: __post_init__ is not supported")
    namespace: dict[str, Any] = {}
    params, body = [], []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default_factory is not dataclasses.MISSING or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: only plain fields and defaults")
        namespace[f"_set_{f.name}"] = cls.__dict__[f.name].__set__
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body)
    exec(source, namespace)  # as dataclasses makes its __init__
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


@slot_init
@dataclass(frozen=True, slots=True)
class Request:
    """A viewer request as CloudFront sees it.

    ``path`` is the URI path as received (percent-encoded, no query);
    ``query`` is the raw query string without the ``?`` ("" when absent).
    ``head`` is an optional pre-rendered form of ``headers`` for the origin
    (``wire.render_request_fields``: framing fields left out, Host among
    them); ``replace`` drops it with any change of headers.
    """

    method: str
    path: str
    query: str
    headers: Headers
    client_ip: str = "127.0.0.1"
    client_port: int = 0
    http_version: str = "1.1"
    body: bytes | BodyStream | None = None
    head: bytes | None = field(default=None, compare=False)

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def head_size(self) -> int:
        """Bytes of the request line and header fields on the wire, blank line included
        (for logs: counted when asked, not when the request arrives)."""
        fields = sum(len(name) + len(value) + 4 for name, value in self.headers)
        return len(self.method) + len(self.target) + fields + 14

    def size(self) -> int:
        """Bytes the viewer sent: the head and the body (as long as it said)."""
        return self.head_size() + body_length(self.body)

    def replace(self, **changes: Any) -> Request:
        # Spelled out: dataclasses.replace introspects the fields on every call,
        # and this runs several times per request.
        return Request(
            changes.get("method", self.method),
            changes.get("path", self.path),
            changes.get("query", self.query),
            changes.get("headers", self.headers),
            changes.get("client_ip", self.client_ip),
            changes.get("client_port", self.client_port),
            changes.get("http_version", self.http_version),
            changes.get("body", self.body),
            changes.get("head", None if "headers" in changes else self.head),
        )


@slot_init
@dataclass(frozen=True, slots=True)
class Response:
    """A response on its way to the viewer.

    ``head`` is an optional pre-rendered status line and headers (cache hits
    keep one with the entry); any change to status or headers through
    ``replace`` drops it, so it can never disagree with the fields.
    """

    status: int
    headers: Headers
    body: bytes | BodyStream | None = None
    reason: str = ""
    head: bytes | None = field(default=None, compare=False)

    def replace(self, **changes: object) -> Response:
        if "head" not in changes and ("status" in changes or "headers" in changes):
            changes["head"] = None
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


@dataclass(slots=True)
class Exchange:
    """The one mutable carrier that flows through the pipeline, stage by stage.

    Stages replace ``request`` or ``response`` and record what they decided
    (``x_cache``, ``result_type``, the cache key) for headers, logs and traces.
    """

    request: Request
    request_id: str
    viewer_request: Request
    behavior: Behavior | None = None
    response: Response | None = None
    cache_key: str | None = None
    cached: object | None = None  # the cache entry found at lookup, fresh or stale
    x_cache: str = "Miss from cloudfront"
    result_type: str = "Miss"
    detailed_result_type: str = "Miss"
    age: int | None = None
    # Tuples, not lists, until something is added: an Exchange per request.
    edge_headers: Sequence[tuple[str, str]] = ()
    generated_by: str | None = None  # the event whose function generated the response
    pending: bool = False  # start() left stages for finish()
    error_page_request: bool = False  # the edge's own fetch of a custom error page
    custom_error_page: bool = False  # the response is a custom error page
    hook_runs: tuple[Any, ...] = ()  # what each function did
    # The origins a viewer-request CloudFront Function chose (config.schema.OriginChain).
    origin_override: Any = None
    # A miss start() already sent to its origin, not yet answered (pipeline._DirectFetch).
    direct: Any = None
    viewer: Any = None  # the simulated viewer (edgesim.viewer.Viewer), if any
    notes: tuple[str, ...] = ()
    # What the trace, the access log and the metrics read (edgesim.trace): numbers
    # and references to values the stages made anyway, formatted only when asked.
    started: float = 0.0  # time.perf_counter() when the pipeline took the request
    first_byte: float = 0.0  # ... when a streamed response's head was written
    finished: float = 0.0  # ... when the last byte was handed to the transport
    bytes_out: int = 0  # everything written to the viewer, head included
    # One tuple per origin attempt, in order: (origin, request sent, started,
    # ended, status, response headers), or for a failed attempt status 0 and
    # the OriginError. Not the Response: its body holds the connection.
    origin_fetches: tuple[tuple[Any, Request, float, float, int, Any], ...] = ()
    ttl: float | None = None  # the TTL decided for the origin's response
    # What it was decided from (cache.ttl_for's status, headers, time and error
    # caching minimum), so that the trace's why is about the same inputs.
    ttl_basis: tuple[int, Headers, float, int] | None = None
    stored: object | None = None  # the cache entry this response was stored as
    aborted: bool = False  # the viewer went away before the response was complete

    @property
    def sent_status(self) -> int:
        """The status the viewer got; 0 when not even the head was written (it
        went away first, or nothing was answered)."""
        response = self.response
        return response.status if response is not None and self.bytes_out else 0
