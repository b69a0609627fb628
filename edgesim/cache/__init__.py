"""CloudFront's cache: the cache key, TTL rules, a byte-budgeted store, collapsing.

Four pieces, used by the pipeline in this order on every cacheable request:

    cache_key(behavior, request)      what identifies the object (runs on every request)
    CacheStore.get(key)               the stored Entry, fresh or stale (every request)
    Collapser.join(key) / finish      concurrent misses for one key wait for one fetch
    ttl_for(policy, status, ...)      whether and how long an origin response is kept

Modules: ``key`` (the cache key, Accept-Encoding, query and cookie
selection), ``ttl`` (Cache-Control and the TTL rules), ``entry`` (a stored
object), ``store`` (the byte-budgeted store and invalidation), ``collapse``
(request collapsing), ``conditional`` (304s, ranges and revalidation from a
stored object) and ``fill`` (storing a body while it streams to the viewer).

Each rule names the CloudFront Developer Guide page it comes from; choices
where AWS documents nothing are marked as edgesim's.
"""

from edgesim.cache.collapse import Collapser, collapses_requests
from edgesim.cache.conditional import (
    NOT_MODIFIED_HEADERS,
    conditional_request,
    if_range_holds,
    not_modified,
    ranged,
)
from edgesim.cache.entry import Entry, merge_304_headers
from edgesim.cache.fill import CacheFill
from edgesim.cache.key import (
    cache_key,
    key_parts,
    key_target,
    normalize_accept_encoding,
    select_cookies,
    select_query,
)
from edgesim.cache.store import CacheStore, validate_invalidation_path
from edgesim.cache.ttl import describe_ttl, parse_cache_control, ttl_for

__all__ = [
    "NOT_MODIFIED_HEADERS",
    "CacheFill",
    "CacheStore",
    "Collapser",
    "Entry",
    "cache_key",
    "collapses_requests",
    "conditional_request",
    "describe_ttl",
    "if_range_holds",
    "key_parts",
    "key_target",
    "merge_304_headers",
    "normalize_accept_encoding",
    "not_modified",
    "parse_cache_control",
    "ranged",
    "select_cookies",
    "select_query",
    "ttl_for",
    "validate_invalidation_path",
]
