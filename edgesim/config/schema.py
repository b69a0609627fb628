"""The validated shape of an edgesim config, as frozen values.

Only ``edgesim.config.loader`` builds these from files; everything else reads
them. Names follow CloudFront's (cache behavior, cache policy, origin request
policy); defaults are CloudFront's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Literal

from edgesim.viewer import ViewerRule

__all__ = [
    "ALL_METHODS",
    "LEGACY_TTLS",
    "MANAGED_CACHE_POLICIES",
    "AccessLogSettings",
    "Behavior",
    "CachePolicy",
    "CacheSettings",
    "Config",
    "CustomErrorResponse",
    "CustomOrigin",
    "DirectoryOrigin",
    "Distribution",
    "FunctionAssociation",
    "FunctionConfig",
    "InspectorSettings",
    "Listen",
    "Origin",
    "OriginChain",
    "OriginGroup",
    "OriginRequestPolicy",
    "Selection",
]

ALL_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"})
GET_HEAD = frozenset({"GET", "HEAD"})
GET_HEAD_OPTIONS = frozenset({"GET", "HEAD", "OPTIONS"})

# CloudFront's legacy cache settings when no cache policy is attached
# (Expiration.md: min 0, default 24 h, max 1 year).
LEGACY_TTLS = (0, 86_400, 31_536_000)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which query strings, headers or cookies a policy selects.

    ``mode`` is ``none``, ``all``, ``allow`` (only ``names``) or ``except``
    (all but ``names``). Header names are stored lowercase; query string and
    cookie names are case-sensitive, as in CloudFront.
    """

    mode: Literal["none", "all", "allow", "except"] = "none"
    names: frozenset[str] = frozenset()

    def selects(self, name: str) -> bool:
        if self.mode == "none":
            return False
        if self.mode == "all":
            return True
        if self.mode == "allow":
            return name in self.names
        return name not in self.names

    def union(self, other: Selection) -> Selection:
        """What either selection selects (cache key + origin request policy)."""
        if self.mode == "all" or other.mode == "all":
            return Selection("all")
        if self.mode == "none":
            return other
        if other.mode == "none":
            return self
        if self.mode == "allow" and other.mode == "allow":
            return Selection("allow", self.names | other.names)
        if self.mode == "except" and other.mode == "except":
            return Selection("except", self.names & other.names)
        allow, exc = (self, other) if self.mode == "allow" else (other, self)
        return Selection("except", exc.names - allow.names)


NONE = Selection()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """TTLs and cache-key settings of a cache policy (controlling-the-cache-key.md)."""

    min_ttl: int = LEGACY_TTLS[0]
    default_ttl: int = LEGACY_TTLS[1]
    max_ttl: int = LEGACY_TTLS[2]
    query_strings: Selection = NONE
    headers: Selection = NONE
    cookies: Selection = NONE
    accept_encoding_gzip: bool = False
    accept_encoding_brotli: bool = False
    name: str | None = None


# AWS's managed cache policies (using-managed-cache-policies.md).
MANAGED_CACHE_POLICIES: dict[str, CachePolicy] = {
    "CachingOptimized": CachePolicy(
        1,
        86_400,
        31_536_000,
        accept_encoding_gzip=True,
        accept_encoding_brotli=True,
        name="CachingOptimized",
    ),
    "CachingDisabled": CachePolicy(0, 0, 0, name="CachingDisabled"),
    "CachingOptimizedForUncompressedObjects": CachePolicy(
        1, 86_400, 31_536_000, name="CachingOptimizedForUncompressedObjects"
    ),
}


@dataclass(frozen=True, slots=True)
class OriginRequestPolicy:
    """Values forwarded to the origin without being part of the cache key."""

    query_strings: Selection = NONE
    headers: Selection = NONE
    cookies: Selection = NONE


@dataclass(frozen=True, slots=True)
class CustomOrigin:
    """An HTTP origin. ``path`` is the origin path prefix ("" or "/v1", no trailing slash)."""

    name: str
    scheme: Literal["http", "https"]
    host: str
    port: int
    path: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    connection_attempts: int = 3


@dataclass(frozen=True, slots=True)
class DirectoryOrigin:
    """A local folder served the way a private S3 bucket answers CloudFront."""

    name: str
    directory: Path
    headers: tuple[tuple[str, str], ...] = ()


Origin = CustomOrigin | DirectoryOrigin


@dataclass(frozen=True, slots=True)
class OriginChain:
    """The origins one request may go to, in order, and the primary's statuses
    that fail over to the next (empty: no failover). A behavior's origin or
    origin group gives one; a viewer-request CloudFront Function may choose
    another for its request (helper-functions-origin-modification.html)."""

    origins: tuple[Origin, ...]
    failover_statuses: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class OriginGroup:
    """Two origins tried in turn (origin failover, high_availability_origin_failover.md).

    A behavior names the group as its ``origin``. On a cache miss the request
    goes to ``primary``, and again to ``secondary`` when the primary answers
    with one of ``failover_statuses``, can't be connected to, or times out;
    CloudFront fails over only for GET, HEAD and OPTIONS requests.
    """

    name: str
    primary: str  # an origin's name
    secondary: str  # another origin's name
    failover_statuses: frozenset[int]

    # The viewer methods that fail over.
    FAILOVER_METHODS: ClassVar[frozenset[str]] = GET_HEAD_OPTIONS


@dataclass(frozen=True, slots=True)
class CustomErrorResponse:
    """How CloudFront answers one error status (GeneratingCustomErrorResponses.md).

    With ``response_page_path`` (and then always ``response_code``) the viewer
    gets that page, fetched through the behavior whose pattern matches the
    path, with status ``response_code`` instead of ``error_code``. The error is
    cached for at least ``error_caching_min_ttl`` seconds
    (custom-error-pages-expiration.html).
    """

    error_code: int
    response_page_path: str | None = None
    response_code: int | None = None
    error_caching_min_ttl: int = 10


@dataclass(frozen=True, slots=True)
class FunctionConfig:
    """An edge function: its deployment package, handler and limits.

    ``runtime`` names a Lambda runtime (``python3.12``); the package is the
    folder ``code`` and ``handler`` is ``module.function`` inside it, as in
    Lambda. Limits are Lambda@Edge's (lambda-at-edge-function-restrictions.html).
    """

    name: str
    runtime: str
    code: Path
    handler: str
    memory: int = 128  # MB
    timeout: float = 3.0  # seconds (Lambda's default)
    concurrency: int = 1000  # execution environments (AWS: the Regional quota)
    prewarm: int = 0  # environments started up front (a simulator convenience)
    idle_timeout: float = 300.0  # seconds before an idle environment is reaped
    # CloudFront Functions only: CPU per invocation that counts as 100% compute
    # utilization, and the key value store file (CloudFront's import format).
    compute_budget_ms: float = 1.0
    key_value_store: Path | None = None

    @property
    def engine(self) -> str:
        """The inner runtime: ``python``, ``node`` (Lambda@Edge) or ``cloudfront-js``."""
        if self.runtime.startswith("nodejs"):
            return "node"
        if self.runtime.startswith("cloudfront-js-"):
            return "cloudfront-js"
        return "python"

    @property
    def is_cloudfront_function(self) -> bool:
        return self.runtime.startswith("cloudfront-js-")


@dataclass(frozen=True, slots=True)
class FunctionAssociation:
    """A function attached to one event of a behavior."""

    function: str
    include_body: bool = False


@dataclass(frozen=True, slots=True)
class Behavior:
    """A cache behavior: which requests it takes and how it caches and forwards them."""

    path_pattern: str
    origin: str
    allowed_methods: frozenset[str] = GET_HEAD
    cached_methods: frozenset[str] = GET_HEAD
    cache: CachePolicy = field(default_factory=CachePolicy)
    origin_request: OriginRequestPolicy = field(default_factory=OriginRequestPolicy)
    compress: bool = False
    functions: tuple[tuple[str, FunctionAssociation], ...] = ()


@dataclass(frozen=True, slots=True)
class Distribution:
    id: str = "E2EDGESIM00001"
    domain: str = "d111111abcdef8.cloudfront.net"
    pop: str = "LHR62-C2"


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class CacheSettings:
    max_size: int = 512 * 1024 * 1024
    # Objects larger than this stream through without being cached.
    max_object_size: int = 64 * 1024 * 1024
    # CloudFront's default error caching minimum TTL (custom-error-pages-expiration.html).
    error_caching_min_ttl: int = 10


@dataclass(frozen=True, slots=True)
class AccessLogSettings:
    """Where the edge writes CloudFront's standard access log (AccessLogs.md).

    ``include_cookies`` is CloudFront's "Cookie logging": the viewer's Cookie
    header goes into the ``cs(Cookie)`` field instead of ``-``.
    """

    path: Path
    include_cookies: bool = False


@dataclass(frozen=True, slots=True)
class InspectorSettings:
    """How many of the latest requests the edge keeps a trace of, for the
    inspector page and ``GET /requests`` (0 keeps none).

    Each trace keeps the request's values alive (about 5 KB for a pass-through
    miss: its requests and headers as received and sent), and every request
    then works in memory the caches have lost: with 250 kept, a miss cost
    about an eighth more CPU than with none (bench/README.md). The default is
    what a page load or two makes."""

    requests: int = 100


@dataclass(frozen=True, slots=True)
class Config:
    origins: dict[str, Origin]
    default_behavior: Behavior
    behaviors: tuple[Behavior, ...] = ()
    listen: Listen = Listen("127.0.0.1", 8080)
    admin_listen: Listen | None = Listen("127.0.0.1", 8081)
    distribution: Distribution = field(default_factory=Distribution)
    cache: CacheSettings = field(default_factory=CacheSettings)
    functions: dict[str, FunctionConfig] = field(default_factory=dict)
    origin_groups: dict[str, OriginGroup] = field(default_factory=dict)
    custom_error_responses: dict[int, CustomErrorResponse] = field(default_factory=dict)
    viewers: tuple[ViewerRule, ...] = ()  # simulated viewer locations (edgesim.viewer)
    access_log: AccessLogSettings | None = None
    inspector: InspectorSettings = field(default_factory=InspectorSettings)
    source: Path | None = None

    @property
    def all_behaviors(self) -> tuple[Behavior, ...]:
        """Behaviors in CloudFront's evaluation order, the default (``*``) last."""
        return (*self.behaviors, self.default_behavior)

    def origin_chain(self, name: str) -> tuple[Origin, ...]:
        """The origins to try, in order, for a behavior whose ``origin`` is ``name``.

        ``(origin,)`` for an origin, ``(primary, secondary)`` for an origin
        group. A name that is neither raises KeyError (the loader never lets
        a behavior name one).
        """
        return self.origins_for(name).origins

    def origins_for(self, name: str) -> OriginChain:
        """``origin_chain`` with the group's failover statuses."""
        group = self.origin_groups.get(name)
        if group is None:
            return OriginChain((self.origins[name],))
        return OriginChain(
            (self.origins[group.primary], self.origins[group.secondary]),
            group.failover_statuses,
        )
