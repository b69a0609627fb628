"""What the edge does when an origin fails: origin groups and custom error responses.

``read_origin_groups`` reads ``origin_groups:`` (try a primary origin, then a
secondary); ``read_custom_error_responses`` reads ``custom_error_responses:``
(answer an error status with a page of your own, and cache the error for a
chosen time). The loader calls them after reading the origins, and passes the
groups on to the cache behaviors, whose ``origin:`` may name one.

Rules from high_availability_origin_failover.md, GeneratingCustomErrorResponses.md,
custom-error-pages-expiration.html and the API reference (OriginGroup,
CustomErrorResponse); quotas from cloudfront-limits.html.
"""

from __future__ import annotations

import re

from edgesim.config.node import Node, did_you_mean
from edgesim.config.schema import CustomErrorResponse, Origin, OriginGroup

__all__ = [
    "CUSTOM_ERROR_CODES",
    "CUSTOM_RESPONSE_CODES",
    "FAILOVER_STATUSES",
    "read_custom_error_responses",
    "read_origin_groups",
]

# The statuses an origin group can fail over on (high_availability_origin_failover.md,
# "Create an origin group": the failover criteria).
FAILOVER_STATUSES = frozenset({400, 403, 404, 416, 500, 502, 503, 504})
# The statuses a custom error response can be set for, and the ones it can
# answer with (GeneratingCustomErrorResponses.md).
CUSTOM_ERROR_CODES = frozenset({400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504})
CUSTOM_RESPONSE_CODES = CUSTOM_ERROR_CODES | {200}

_ORIGIN_GROUP_KEYS = ("primary", "secondary", "failover_statuses")
_CUSTOM_ERROR_KEYS = (
    "error_code",
    "response_page_path",
    "response_code",
    "error_caching_min_ttl",
)
_MAX_ORIGIN_GROUPS = 10  # per distribution (cloudfront-limits.html)
_NOT_A_PATH = re.compile(r"[\s\x00-\x1f\x7f]")


def read_origin_groups(node: Node | None, origins: dict[str, Origin]) -> dict[str, OriginGroup]:
    """The ``origin_groups:`` mapping: each group's two origins and failover statuses.

    A group's name shares the namespace of origin names (a behavior's
    ``origin:`` names either); its members must be two different origins.
    """
    if node is None or node.value is None:
        return {}
    entries = node.mapping()
    if len(entries) > _MAX_ORIGIN_GROUPS:
        raise node.error(
            f"at most {_MAX_ORIGIN_GROUPS} origin groups per distribution (CloudFront quota)"
        )
    groups: dict[str, OriginGroup] = {}
    for name, child in entries.items():
        if not name.strip():
            raise child.error("an origin group name can't be empty")
        if name in origins:
            raise child.error(
                f"{name!r} is already an origin's name; a behavior's origin: names either, "
                "so an origin group needs a name of its own"
            )
        child.mapping(_ORIGIN_GROUP_KEYS, kind="an origin group")
        primary_node = child.required("primary")
        primary = _member(primary_node, origins, entries)
        secondary_node = child.required("secondary")
        secondary = _member(secondary_node, origins, entries)
        if secondary == primary:
            raise secondary_node.error(
                f"the secondary must be a different origin from the primary ({primary!r})"
            )
        statuses = _failover_statuses(child.required("failover_statuses"))
        groups[name] = OriginGroup(name, primary, secondary, statuses)
    return groups


def _member(node: Node, origins: dict[str, Origin], groups: dict[str, Node]) -> str:
    """The name of an origin in a group; groups don't nest (API reference, OriginGroupMember)."""
    name = node.string()
    if name in groups:
        raise node.error(f"{name!r} is an origin group; a group's members must be origins")
    if name not in origins:
        raise node.error(f"no origin named {name!r}{did_you_mean(name, list(origins))}")
    return name


def _failover_statuses(node: Node) -> frozenset[int]:
    items = node.sequence()
    if not items:
        raise node.error(f"list at least one status to fail over on: {_codes(FAILOVER_STATUSES)}")
    statuses: set[int] = set()
    for item in items:
        status = item.integer()
        if status not in FAILOVER_STATUSES:
            raise item.error(
                f"CloudFront can't fail over on {status}; "
                f"failover statuses are {_codes(FAILOVER_STATUSES)}"
            )
        if status in statuses:
            raise item.error(f"{status} is listed twice")
        statuses.add(status)
    return frozenset(statuses)


def read_custom_error_responses(
    node: Node | None, default_ttl: int
) -> dict[int, CustomErrorResponse]:
    """The ``custom_error_responses:`` list, keyed by error code (each code at most once).

    An entry without ``error_caching_min_ttl`` takes ``default_ttl`` (the
    edge's ``cache.error_caching_min_ttl``, CloudFront's 10 s unless changed).
    """
    if node is None or node.value is None:
        return {}
    responses: dict[int, CustomErrorResponse] = {}
    first: dict[int, str] = {}
    for item in node.sequence():
        response = _custom_error_response(item, default_ttl)
        code = response.error_code
        if code in first:
            raise item.required("error_code").error(
                f"error_code {code} is given twice (also at {first[code]})"
            )
        first[code] = item.path
        responses[code] = response
    return responses


def _custom_error_response(node: Node, default_ttl: int) -> CustomErrorResponse:
    entries = node.mapping(_CUSTOM_ERROR_KEYS, kind="a custom error response")
    code_node = node.required("error_code")
    code = code_node.integer()
    if code not in CUSTOM_ERROR_CODES:
        raise code_node.error(
            f"CloudFront can't customize the response to {code}; "
            f"error_code must be one of {_codes(CUSTOM_ERROR_CODES)}"
        )
    page = _page_path(entries["response_page_path"]) if "response_page_path" in entries else None
    response_code = None
    if "response_code" in entries:
        response_code = entries["response_code"].integer()
        if response_code not in CUSTOM_RESPONSE_CODES:
            raise entries["response_code"].error(
                f"CloudFront can't answer with {response_code}; "
                f"response_code must be one of {_codes(CUSTOM_RESPONSE_CODES)}"
            )
    # Both or neither (API reference, CustomErrorResponse: "If you specify a
    # value for ResponsePagePath, you must also specify a value for
    # ResponseCode", and the other way round).
    if page is not None and response_code is None:
        raise entries["response_page_path"].error(
            "response_page_path needs response_code too: the status to answer with the page "
            f"(e.g. {code}, or 200)"
        )
    if response_code is not None and page is None:
        raise entries["response_code"].error(
            "response_code needs response_page_path too: the page to answer with"
        )
    ttl = default_ttl
    if "error_caching_min_ttl" in entries:
        ttl = entries["error_caching_min_ttl"].integer(minimum=0)
    return CustomErrorResponse(code, page, response_code, ttl)


def _page_path(node: Node) -> str:
    """A custom error page's path, like ``/4xx-errors/403-forbidden.html``.

    It is requested through the behavior whose path pattern matches it, so it
    is a URL path: it starts with '/' and, being sent as is, holds no spaces.
    """
    path = node.string()
    if not path.startswith("/"):
        raise node.error(
            f"a response page path starts with '/', like /errors/404.html, not {path!r}"
        )
    if _NOT_A_PATH.search(path):
        raise node.error(
            "a response page path can't hold spaces or control characters; percent-encode them"
        )
    return path


def _codes(codes: frozenset[int]) -> str:
    return ", ".join(str(code) for code in sorted(codes))
