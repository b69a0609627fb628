"""Cache behaviors from a config file: path patterns, methods, cache and origin request policies.

Called by the loader with the origins, origin groups and functions already
read, so a behavior naming an unknown origin or function, or a function too
big for its event, is an error at its own line.
Each rule names the CloudFront Developer Guide page it comes from.
"""

from __future__ import annotations

import dataclasses
import re

from edgesim.config.functions import EdgeFunctions
from edgesim.config.node import Node, did_you_mean
from edgesim.config.schema import (
    ALL_METHODS,
    GET_HEAD,
    GET_HEAD_OPTIONS,
    LEGACY_TTLS,
    MANAGED_CACHE_POLICIES,
    Behavior,
    CachePolicy,
    FunctionAssociation,
    Origin,
    OriginGroup,
    OriginRequestPolicy,
    Selection,
)
from edgesim.hooks import HOOK_RULES, EventType
from edgesim.viewer import NOT_IN_CACHE_POLICY

__all__ = ["read_behaviors", "read_default_behavior"]

_BEHAVIOR_KEYS = (
    "path",
    "origin",
    "allowed_methods",
    "cached_methods",
    "compress",
    "cache",
    "origin_request",
    "functions",
)
_CACHE_POLICY_KEYS = (
    "min_ttl",
    "default_ttl",
    "max_ttl",
    "query_strings",
    "headers",
    "cookies",
    "accept_encoding_gzip",
    "accept_encoding_brotli",
)
_ORIGIN_REQUEST_KEYS = ("query_strings", "headers", "cookies")
_EVENTS = tuple(event.value for event in EventType)
_ASSOCIATION_KEYS = ("function", "include_body")

# Quotas (cloudfront-limits.md).
_MAX_BEHAVIORS = 75
_MAX_POLICY_NAMES = 10  # headers, cookies or query strings per cache/origin request policy

# Path pattern characters (distribution-web-values-specify.md, "Path pattern").
_PATH_PATTERN = re.compile(r"[A-Za-z0-9_\-.*$/~\"'@:+&?]*")
_MAX_PATH_PATTERN = 255


def read_behaviors(
    node: Node | None,
    origins: dict[str, Origin],
    groups: dict[str, OriginGroup],
    functions: EdgeFunctions,
) -> tuple[Behavior, ...]:
    """The ``behaviors:`` list, in order; path patterns must be unique.

    A behavior's ``origin`` names one of ``origins`` or of ``groups``.
    """
    if node is None or node.value is None:
        return ()
    items = node.sequence()
    if len(items) > _MAX_BEHAVIORS:
        raise node.error(
            f"at most {_MAX_BEHAVIORS} cache behaviors per distribution (CloudFront quota)"
        )
    behaviors: list[Behavior] = []
    first: dict[str, str] = {}
    for item in items:
        behavior = _behavior(item, origins, groups, functions, default=False)
        pattern = behavior.path_pattern
        if pattern in first:
            where = item.mapping()["path"]
            raise where.error(f"duplicate path pattern {pattern!r} (also at {first[pattern]})")
        first[pattern] = item.path
        behaviors.append(behavior)
    return tuple(behaviors)


def read_default_behavior(
    node: Node,
    origins: dict[str, Origin],
    groups: dict[str, OriginGroup],
    functions: EdgeFunctions,
) -> Behavior:
    """The ``default_behavior:`` (CloudFront's ``*``): a behavior without ``path``."""
    return _behavior(node, origins, groups, functions, default=True)


def _behavior(
    node: Node,
    origins: dict[str, Origin],
    groups: dict[str, OriginGroup],
    functions: EdgeFunctions,
    *,
    default: bool,
) -> Behavior:
    raw = node.mapping()
    if default and "path" in raw:
        raise raw["path"].error("the default behavior has no path: it takes every request ('*')")
    entries = node.mapping(_BEHAVIOR_KEYS[1:] if default else _BEHAVIOR_KEYS)
    pattern = "*" if default else _path_pattern(node.required("path"))
    origin = _target(node.required("origin"), origins, groups)
    behavior = Behavior(pattern, origin)
    if "allowed_methods" in entries:
        allowed = _allowed_methods(entries["allowed_methods"])
        # CreateDistribution refuses it: "The parameter AllowedMethods cannot
        # include POST, PUT, PATCH, or DELETE for a cached behavior associated
        # with an origin group" (InvalidArgument); failover itself is only for
        # GET, HEAD and OPTIONS (high_availability_origin_failover.md).
        if origin in groups and allowed == ALL_METHODS:
            raise entries["allowed_methods"].error(
                f"the origin is the origin group {origin!r}, and CloudFront allows only "
                "[GET, HEAD] or [GET, HEAD, OPTIONS] with an origin group; send other "
                "methods through a behavior whose origin is a single origin"
            )
        behavior = dataclasses.replace(behavior, allowed_methods=allowed)
    if "cached_methods" in entries:
        cached = _cached_methods(entries["cached_methods"], behavior.allowed_methods)
        behavior = dataclasses.replace(behavior, cached_methods=cached)
    if "compress" in entries:
        behavior = dataclasses.replace(behavior, compress=entries["compress"].boolean())
    if "cache" in entries:
        behavior = dataclasses.replace(behavior, cache=_cache_policy(entries["cache"]))
    if "origin_request" in entries:
        policy = _origin_request_policy(entries["origin_request"])
        behavior = dataclasses.replace(behavior, origin_request=policy)
    if "functions" in entries:
        associations = _associations(entries["functions"], functions)
        behavior = dataclasses.replace(behavior, functions=associations)
    return behavior


def _target(node: Node, origins: dict[str, Origin], groups: dict[str, OriginGroup]) -> str:
    """The origin or origin group a behavior sends its requests to."""
    name = node.string()
    if name in origins or name in groups:
        return name
    if not groups:
        raise node.error(f"no origin named {name!r}{did_you_mean(name, list(origins))}")
    choices = [*origins, *groups]
    raise node.error(f"no origin or origin group named {name!r}{did_you_mean(name, choices)}")


def _path_pattern(node: Node) -> str:
    """A behavior's path pattern, with its optional leading '/' added.

    Rules from distribution-web-values-specify.md, "Path pattern".
    """
    pattern = node.string()
    if not pattern:
        raise node.error("a path pattern can't be empty")
    if len(pattern) > _MAX_PATH_PATTERN:
        raise node.error(f"a path pattern is at most {_MAX_PATH_PATTERN} characters")
    if not _PATH_PATTERN.fullmatch(pattern):
        bad = "".join(sorted({ch for ch in pattern if not _PATH_PATTERN.fullmatch(ch)}))
        raise node.error(
            f"{bad!r} not allowed in a path pattern "
            "(allowed: A-Z a-z 0-9 _ - . * $ / ~ \" ' @ : + & and the ? wildcard)"
        )
    return pattern if pattern.startswith("/") else f"/{pattern}"


# CloudFront accepts only these method sets (distribution-web-values-specify.md,
# "Allowed HTTP methods" and "Cached HTTP methods").
_METHOD_SETS = "[GET, HEAD], [GET, HEAD, OPTIONS] or all"


def _methods(node: Node) -> frozenset[str]:
    methods: set[str] = set()
    for item in node.sequence():
        method = item.string().upper()
        if method not in ALL_METHODS:
            raise item.error(
                f"unknown method {item.value!r}{did_you_mean(method, sorted(ALL_METHODS))}"
            )
        methods.add(method)
    return frozenset(methods)


def _allowed_methods(node: Node) -> frozenset[str]:
    if node.value == "all":
        return ALL_METHODS
    if not isinstance(node.value, list):
        raise node.error(f"allowed_methods must be {_METHOD_SETS}")
    methods = _methods(node)
    if methods not in (GET_HEAD, GET_HEAD_OPTIONS, ALL_METHODS):
        raise node.error(f"allowed_methods must be {_METHOD_SETS}, not {sorted(methods)}")
    return methods


def _cached_methods(node: Node, allowed: frozenset[str]) -> frozenset[str]:
    methods = _methods(node)
    if methods not in (GET_HEAD, GET_HEAD_OPTIONS):
        raise node.error("cached_methods must be [GET, HEAD] or [GET, HEAD, OPTIONS]")
    if not methods <= allowed:
        raise node.error("OPTIONS can be cached only if allowed_methods allows it")
    return methods


def _associations(
    node: Node, functions: EdgeFunctions
) -> tuple[tuple[str, FunctionAssociation], ...]:
    """Which function runs at which event, in the order the events happen.

    One function per event (cloudfront-limits.html: 4 associations per
    behavior), and only one that fits the event's limits.
    """
    entries = node.mapping(_EVENTS)
    if entries and not functions.configs:
        raise node.error("no functions are configured: define them under the top-level functions:")
    found: dict[str, FunctionAssociation] = {}
    for event, child in entries.items():
        if isinstance(child.value, dict):
            fields = child.mapping(_ASSOCIATION_KEYS)
            name_node = child.required("function")
            include_body = fields["include_body"].boolean() if "include_body" in fields else False
        else:
            name_node, include_body = child, False
        name = name_node.string()
        if name not in functions.configs:
            raise name_node.error(
                f"no function named {name!r}{did_you_mean(name, sorted(functions.configs))}"
            )
        # The body is exposed to request events only (lambda-include-body-access.md).
        if include_body and not HOOK_RULES[EventType(event)].body_allowed:
            raise child.error("include_body is only for viewer-request and origin-request")
        if include_body and functions.configs[name].is_cloudfront_function:
            raise child.error(
                "CloudFront Functions cannot access the request body"
                " (edge-functions-restrictions.md)"
            )
        # Viewer events take smaller functions (lambda-at-edge-function-restrictions.html).
        problem = functions.event_problem(name, event)
        if problem is not None:
            raise child.error(problem)
        found[event] = FunctionAssociation(name, include_body)
    # "You cannot combine CloudFront Functions and Lambda@Edge in viewer events"
    # (edge-functions-restrictions.md, "Combining CloudFront Functions with Lambda@Edge").
    viewer = [e for e in ("viewer-request", "viewer-response") if e in found]
    kinds = {functions.configs[found[e].function].is_cloudfront_function for e in viewer}
    if len(kinds) > 1:
        raise entries[viewer[-1]].error(
            "a behavior can't have a CloudFront Function and a Lambda@Edge function at viewer"
            " events; use one kind for both (edge-functions-restrictions.md)"
        )
    return tuple((event, found[event]) for event in _EVENTS if event in found)


# --- cache and origin request policies ---


def _cache_policy(node: Node) -> CachePolicy:
    if isinstance(node.value, str):
        # Managed cache policies (using-managed-cache-policies.md).
        policy = MANAGED_CACHE_POLICIES.get(node.value)
        if policy is None:
            suggestion = did_you_mean(node.value, list(MANAGED_CACHE_POLICIES))
            raise node.error(f"no managed cache policy named {node.value!r}{suggestion}")
        return policy
    if not isinstance(node.value, dict):
        raise node.error("expected a mapping of cache settings or a managed cache policy name")
    entries = node.mapping(_CACHE_POLICY_KEYS)
    min_ttl, default_ttl, max_ttl = _ttls(entries)
    policy = CachePolicy(min_ttl, default_ttl, max_ttl)
    if "query_strings" in entries:
        policy = dataclasses.replace(policy, query_strings=_selection(entries["query_strings"]))
    if "headers" in entries:
        headers = entries["headers"]
        # A cache policy keys on no headers or a list (cache-key-understand-cache-policy.md).
        if headers.value == "all" or isinstance(headers.value, dict):
            raise headers.error(
                "a cache policy can include only listed headers (at most 10); to forward "
                "all headers without caching on them use origin_request: {headers: all}"
            )
        selection = _selection(headers, header_names=True)
        # adding-cloudfront-headers.md: these "can be added in an origin request
        # policy, but not in a cache policy".
        for name in sorted(selection.names & NOT_IN_CACHE_POLICY):
            raise headers.error(
                f"{name} can't be in a cache policy; forward it with origin_request: headers"
            )
        policy = dataclasses.replace(policy, headers=selection)
    if "cookies" in entries:
        policy = dataclasses.replace(policy, cookies=_selection(entries["cookies"]))
    if "accept_encoding_gzip" in entries:
        gzip = entries["accept_encoding_gzip"].boolean()
        policy = dataclasses.replace(policy, accept_encoding_gzip=gzip)
    if "accept_encoding_brotli" in entries:
        brotli = entries["accept_encoding_brotli"].boolean()
        policy = dataclasses.replace(policy, accept_encoding_brotli=brotli)
    return policy


def _ttls(entries: dict[str, Node]) -> tuple[int, int, int]:
    """Min, default and max TTL (Expiration.md).

    A TTL left out takes CloudFront's legacy value, moved as far as needed to
    keep min <= default <= max: ``min_ttl: 100000`` alone raises the default
    to 100000; ``max_ttl: 60`` alone lowers it to 60.
    """
    given = {
        key: entries[key].integer(minimum=0)
        for key in ("min_ttl", "default_ttl", "max_ttl")
        if key in entries
    }
    legacy_min, legacy_default, legacy_max = LEGACY_TTLS
    min_ttl = given.get("min_ttl", legacy_min)
    default_ttl = given.get("default_ttl", max(legacy_default, min_ttl))
    if "default_ttl" not in given and "max_ttl" in given:
        default_ttl = max(min(default_ttl, given["max_ttl"]), min_ttl)
    max_ttl = given.get("max_ttl", max(legacy_max, default_ttl))
    if default_ttl < min_ttl:
        raise entries["default_ttl"].error(
            f"default_ttl ({default_ttl}) is less than min_ttl ({min_ttl}); "
            "CloudFront needs min_ttl <= default_ttl <= max_ttl"
        )
    if max_ttl < default_ttl:
        other = "default_ttl" if "default_ttl" in given else "min_ttl"
        raise entries["max_ttl"].error(
            f"max_ttl ({max_ttl}) is less than {other} ({default_ttl}); "
            "CloudFront needs min_ttl <= default_ttl <= max_ttl"
        )
    return min_ttl, default_ttl, max_ttl


def _origin_request_policy(node: Node) -> OriginRequestPolicy:
    """Values forwarded without being keyed on (controlling-origin-requests.md)."""
    entries = node.mapping(_ORIGIN_REQUEST_KEYS)
    policy = OriginRequestPolicy()
    if "query_strings" in entries:
        policy = dataclasses.replace(policy, query_strings=_selection(entries["query_strings"]))
    if "headers" in entries:
        headers = _selection(entries["headers"], header_names=True)
        # Authorization must be in the cache key, so an origin request policy
        # can't forward it (repost.aws knowledge-center/cloudfront-authorization-header).
        if headers.mode == "allow" and "authorization" in headers.names:
            raise entries["headers"].error(
                "an origin request policy can't forward Authorization; "
                "list it in cache.headers instead"
            )
        policy = dataclasses.replace(policy, headers=headers)
    if "cookies" in entries:
        policy = dataclasses.replace(policy, cookies=_selection(entries["cookies"]))
    return policy


def _selection(node: Node, *, header_names: bool = False) -> Selection:
    """``none``, ``all``, a list of names, or ``{except: [names]}``.

    Header names are lowercased; query string and cookie names are
    case-sensitive and kept as written.
    """
    value = node.value
    if value is None or value == "none":
        return Selection("none")
    if value == "all":
        return Selection("all")
    if isinstance(value, list):
        names = _names(node, header_names)
        return Selection("allow", names) if names else Selection("none")
    if isinstance(value, dict):
        node.mapping(("except",))
        names = _names(node.required("except"), header_names)
        return Selection("except", names) if names else Selection("all")
    raise node.error("expected none, all, a list of names, or {except: [names]}")


def _names(node: Node, header_names: bool) -> frozenset[str]:
    items = node.sequence()
    # At most 10 names per list (cloudfront-limits.md, cache and origin request policies).
    if len(items) > _MAX_POLICY_NAMES:
        raise node.error(f"at most {_MAX_POLICY_NAMES} names (CloudFront quota), not {len(items)}")
    names: set[str] = set()
    for item in items:
        names.add(item.header_name().lower() if header_names else item.single_line("a name"))
    return frozenset(names)
