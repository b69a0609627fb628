"""The four edge events and CloudFront's rules for each function kind, as data.

``HOOK_RULES`` is the one table that says what a function at each event may
do (generate a response, change the status, pick another origin), which
headers it may not touch, its quotas, and when it fires. The codec
(``edgesim.codecs.lambda_edge``) and the pipeline read this table instead of
testing the event type; docs and test matrices can be generated from it.

``FUNCTION_RULES`` is the same for CloudFront Functions (viewer events only),
and ``CLOUDFRONT_FUNCTION_LIMITS`` their runtime's quotas.

Sources (CloudFront Developer Guide): edge-functions-restrictions.md
(disallowed and read-only headers, status codes), lambda-at-edge-function-
restrictions.html, cloudfront-limits.md (quotas), lambda-cloudfront-trigger-
events.md and lambda-generating-http-responses-in-requests.md (when each
trigger fires; which generated responses are cached). Summarised in
cloudfront-semantics.md sections 2, 4 and 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CLOUDFRONT_FUNCTION_LIMITS",
    "DISALLOWED_BY_NAME",
    "DISALLOWED_HEADERS",
    "DISALLOWED_PREFIXES",
    "FUNCTION_RULES",
    "HOOK_RULES",
    "ORIGIN_EVENTS",
    "CloudFrontFunctionLimits",
    "EventType",
    "FunctionRule",
    "HookRule",
    "is_disallowed",
    "origin_request_runs",
    "origin_response_runs",
    "viewer_request_runs",
    "viewer_response_runs",
]

KB = 1024
MB = 1024 * KB


class EventType(StrEnum):
    """A Lambda@Edge trigger, spelled as in ``config.eventType``."""

    VIEWER_REQUEST = "viewer-request"
    ORIGIN_REQUEST = "origin-request"
    ORIGIN_RESPONSE = "origin-response"
    VIEWER_RESPONSE = "viewer-response"


# The events that fire only when CloudFront goes to the origin, in their order.
ORIGIN_EVENTS = (EventType.ORIGIN_REQUEST, EventType.ORIGIN_RESPONSE)

# Not exposed to functions at any event, and a function may not add them:
# adding one fails validation, 502 (edge-functions-restrictions.md,
# "Disallowed headers"). Lowercase.
DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-amzn-auth",
        "x-amzn-cf-billing",
        "x-amzn-cf-id",
        "x-amzn-cf-xff",
        "x-amzn-errortype",
        "x-amzn-fle-profile",
        "x-amzn-header-count",
        "x-amzn-header-order",
        "x-amzn-lambda-integration-tag",
        "x-amzn-requestid",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
# ``X-Amz-Cf-*`` and ``X-Edge-*`` in the same list.
DISALLOWED_PREFIXES = ("x-amz-cf-", "x-edge-")
_DECIDED_LIMIT = 1024


class _DisallowedByName(dict[str, bool]):
    """``DISALLOWED_BY_NAME[lower]``: ``is_disallowed`` of a lowercase name as one
    dict lookup, for the codecs that check every header of every event. Names
    are remembered up to a bound; beyond it each is decided afresh."""

    def __missing__(self, lower: str) -> bool:
        disallowed = lower in DISALLOWED_HEADERS or lower.startswith(DISALLOWED_PREFIXES)
        if len(self) < _DECIDED_LIMIT:
            self[lower] = disallowed
        return disallowed


DISALLOWED_BY_NAME = _DisallowedByName()


def is_disallowed(name: str) -> bool:
    """Whether CloudFront hides header ``name`` from functions and refuses it from them."""
    return DISALLOWED_BY_NAME[name.lower()]


@dataclass(frozen=True, slots=True)
class HookRule:
    """What a Lambda@Edge function at one event sees, may return, and may use.

    Sizes are bytes (AWS's KB and MB are 1024-based here). A ``None`` limit
    means the event has no such thing (no request body at response events).
    """

    event: EventType
    is_viewer: bool
    is_request: bool
    # Request events: returning an object with a "status" key answers the viewer.
    may_generate_response: bool
    # An origin-request generated response is cached; a viewer-request one is not.
    generated_response_cached: bool
    # Response events: may the function change ``response.status``?
    may_change_status: bool
    # ``request.origin`` is in the event, and (origin-request only) may be changed.
    exposes_origin: bool
    may_change_origin: bool
    # IncludeBody may be set on the association (request events only).
    body_allowed: bool
    # Readable, but adding, changing or removing one fails validation (502).
    read_only_headers: frozenset[str]
    # Visible if the viewer sent them, but a function may not add them here.
    not_addable_headers: frozenset[str]
    # The CloudFront-Viewer-* headers a policy asks for are in the function's
    # request: CloudFront adds them after viewer-request, so every event but
    # that one sees them (edge-functions.md, "Access to geolocation and device
    # data"; lambda-at-edge-function-restrictions.html, "CloudFront headers").
    sees_cloudfront_headers: bool
    max_timeout_s: float
    max_memory_mb: int
    max_package_bytes: int
    # A generated response (or a replaced response body), headers plus body.
    max_generated_response_bytes: int
    # IncludeBody: the body is truncated to this before the function sees it.
    max_body_exposed_bytes: int | None
    # A replacement request body is truncated to this (text / base64 text).
    max_body_replace_text_bytes: int | None
    max_body_replace_base64_chars: int | None
    # When the trigger fires, and when it does not (for docs and tables).
    fires: str
    skipped_when: tuple[str, ...]


# Quotas: cloudfront-limits.md, "Quotas on Lambda@Edge" (viewer events: 5 s,
# 128 MB, 1 MB package, 40 KB generated response; origin events: 30 s,
# Lambda's memory range, 50 MB, 1 MB). Body sizes: lambda-at-edge-function-
# restrictions.html, "Restrictions on the request body with the include body
# option" (expose 40 KB / 1 MB; replace text 40 KB / 1 MB, base64 53.2 KB / 1.33 MB).
HOOK_RULES: dict[EventType, HookRule] = {
    EventType.VIEWER_REQUEST: HookRule(
        event=EventType.VIEWER_REQUEST,
        is_viewer=True,
        is_request=True,
        may_generate_response=True,
        generated_response_cached=False,
        may_change_status=False,
        exposes_origin=False,
        may_change_origin=False,
        body_allowed=True,
        read_only_headers=frozenset({"content-length", "host", "transfer-encoding", "via"}),
        not_addable_headers=frozenset({"cloudfront-viewer-country"}),
        sees_cloudfront_headers=False,
        max_body_exposed_bytes=40 * KB,
        max_body_replace_text_bytes=40 * KB,
        max_body_replace_base64_chars=int(53.2 * KB),
        fires="every viewer request matching the behavior, before the cache lookup",
        skipped_when=("the HTTP to HTTPS redirect answers first",),
        max_timeout_s=5.0,
        max_memory_mb=128,
        max_package_bytes=1 * MB,
        max_generated_response_bytes=40 * KB,
    ),
    EventType.ORIGIN_REQUEST: HookRule(
        event=EventType.ORIGIN_REQUEST,
        is_viewer=False,
        is_request=True,
        may_generate_response=True,
        generated_response_cached=True,
        may_change_status=False,
        exposes_origin=True,
        may_change_origin=True,
        body_allowed=True,
        read_only_headers=frozenset(
            {
                "accept-encoding",
                "content-length",
                "if-modified-since",
                "if-none-match",
                "if-range",
                "if-unmodified-since",
                "transfer-encoding",
                "via",
            }
        ),
        not_addable_headers=frozenset(),
        sees_cloudfront_headers=True,
        max_body_exposed_bytes=1 * MB,
        max_body_replace_text_bytes=1 * MB,
        max_body_replace_base64_chars=int(1.33 * MB),
        fires="only when CloudFront goes to the origin (a miss, or revalidating a stale object)",
        skipped_when=(
            "a cache hit",
            "the viewer-request function generated a response",
            "the origin's DNS name does not resolve (502, not invoked)",
        ),
        max_timeout_s=30.0,
        max_memory_mb=10_240,
        max_package_bytes=50 * MB,
        max_generated_response_bytes=1 * MB,
    ),
    EventType.ORIGIN_RESPONSE: HookRule(
        event=EventType.ORIGIN_RESPONSE,
        is_viewer=False,
        is_request=False,
        may_generate_response=False,
        generated_response_cached=False,
        may_change_status=True,
        exposes_origin=True,
        may_change_origin=False,
        body_allowed=False,
        read_only_headers=frozenset({"transfer-encoding", "via"}),
        not_addable_headers=frozenset(),
        sees_cloudfront_headers=True,
        max_body_exposed_bytes=None,
        max_body_replace_text_bytes=None,
        max_body_replace_base64_chars=None,
        fires="after the origin answers, before caching, for every status including 4xx/5xx",
        skipped_when=(
            "a fresh cache hit",
            "the origin-request function generated a response",
            "no HTTP response from the origin (connect failure or timeout)",
        ),
        max_timeout_s=30.0,
        max_memory_mb=10_240,
        max_package_bytes=50 * MB,
        max_generated_response_bytes=1 * MB,
    ),
    EventType.VIEWER_RESPONSE: HookRule(
        event=EventType.VIEWER_RESPONSE,
        is_viewer=True,
        is_request=False,
        may_generate_response=False,
        generated_response_cached=False,
        # "Lambda@Edge functions for viewer response events cannot modify the
        # HTTP status code" (lambda-at-edge-function-restrictions.html). The
        # codec treats a changed status as a validation error (502).
        may_change_status=False,
        exposes_origin=False,
        may_change_origin=False,
        body_allowed=False,
        read_only_headers=frozenset({"warning", "via"}),
        not_addable_headers=frozenset(),
        sees_cloudfront_headers=True,
        max_body_exposed_bytes=None,
        max_body_replace_text_bytes=None,
        max_body_replace_base64_chars=None,
        fires="before the response goes to the viewer, for cache hits and misses",
        skipped_when=(
            "the status is 400 or higher",
            "a custom error page was returned",
            "the viewer-request function generated the response",
            "the HTTP to HTTPS redirect",
        ),
        max_timeout_s=5.0,
        max_memory_mb=128,
        max_package_bytes=1 * MB,
        max_generated_response_bytes=40 * KB,
    ),
}


@dataclass(frozen=True, slots=True)
class FunctionRule:
    """What a CloudFront Function at one event sees and may return.

    Only viewer events exist for CloudFront Functions (edge-functions.md);
    read-only and disallowed headers are those of all edge functions
    (edge-functions-restrictions.md), and the viewer-response exclusions too.
    """

    event: EventType
    is_request: bool
    may_generate_response: bool
    # Unlike Lambda@Edge, a viewer-response function may change the status
    # (functions-event-structure.md, "Status code and body").
    may_change_status: bool
    # cloudfront-js-2.0 origin helpers, at viewer-request only
    # (helper-functions-origin-modification.html).
    may_change_origin: bool
    read_only_headers: frozenset[str]
    # Unlike Lambda@Edge at viewer-request, a CloudFront Function sees the
    # CloudFront-Viewer-* headers a cache or origin request policy asks for:
    # CloudFront adds them before it runs (edge-functions.md, "Access to
    # geolocation and device data": yes; example-function-redirect-url.md:
    # the country header must be in a policy "so that it's added to the
    # incoming request").
    sees_cloudfront_headers: bool
    # AWS publishes no size for a function's response; edgesim applies the
    # viewer-event limit of Lambda@Edge (40 KB), the nearest documented one.
    max_generated_response_bytes: int
    fires: str
    skipped_when: tuple[str, ...]


FUNCTION_RULES: dict[EventType, FunctionRule] = {
    EventType.VIEWER_REQUEST: FunctionRule(
        event=EventType.VIEWER_REQUEST,
        is_request=True,
        may_generate_response=True,
        may_change_status=False,
        may_change_origin=True,
        read_only_headers=HOOK_RULES[EventType.VIEWER_REQUEST].read_only_headers,
        sees_cloudfront_headers=True,
        max_generated_response_bytes=40 * KB,
        fires=HOOK_RULES[EventType.VIEWER_REQUEST].fires,
        skipped_when=HOOK_RULES[EventType.VIEWER_REQUEST].skipped_when,
    ),
    EventType.VIEWER_RESPONSE: FunctionRule(
        event=EventType.VIEWER_RESPONSE,
        is_request=False,
        may_generate_response=False,
        may_change_status=True,
        may_change_origin=False,
        read_only_headers=HOOK_RULES[EventType.VIEWER_RESPONSE].read_only_headers,
        sees_cloudfront_headers=True,
        max_generated_response_bytes=40 * KB,
        fires=HOOK_RULES[EventType.VIEWER_RESPONSE].fires,
        skipped_when=HOOK_RULES[EventType.VIEWER_RESPONSE].skipped_when,
    ),
}


@dataclass(frozen=True, slots=True)
class CloudFrontFunctionLimits:
    """The CloudFront Functions runtime's quotas (cloudfront-limits.html, "Quotas on
    CloudFront Functions"; kvs-with-functions-create-s3-kvp.html; edge-functions-
    restrictions.md) and edgesim's choices where AWS publishes no number."""

    max_code_bytes: int = 10 * KB
    max_memory_bytes: int = 2 * MB
    max_log_bytes: int = 10 * KB  # function logs are truncated at 10 KB per run
    # The CPU one invocation may use before compute utilization is 100. AWS
    # publishes none ("sub-millisecond"); third parties measure about 1 ms.
    default_compute_budget_ms: float = 1.0
    max_compute_budget_ms: float = 1000.0
    # An invocation is stopped (503 FunctionExecutionError) once it has used
    # this many budgets of CPU, and never before ``min_stop_ms``: a runaway.
    stop_after_budgets: float = 100.0
    min_stop_ms: float = 20.0
    # "Continuous" overruns throttle (503 FunctionThrottledError): after this
    # many invocations in a row over the budget, the function is not run for
    # ``throttle_seconds``; then it gets a fresh start.
    throttle_after_overruns: int = 5
    throttle_seconds: float = 1.0
    kvs_max_file_bytes: int = 5 * MB
    kvs_max_key_chars: int = 512
    kvs_max_value_chars: int = 1024


CLOUDFRONT_FUNCTION_LIMITS = CloudFrontFunctionLimits()


# When each trigger fires (cloudfront-semantics.md section 5). Tiny pure
# functions beside the table so the pipeline asks, rather than decides.


def viewer_request_runs(*, redirected_to_https: bool = False) -> bool:
    """Viewer-request fires for every request, unless the HTTPS redirect answered
    first ([unconfirmed] whether it runs before the redirect; assumed not)."""
    return not redirected_to_https


def origin_request_runs(
    *,
    forwards_to_origin: bool,
    generated_by_viewer_request: bool = False,
    origin_dns_failed: bool = False,
) -> bool:
    """Origin-request fires only when CloudFront goes to the origin (a miss or a
    stale object); not on hits, not after a viewer-request generated response,
    and not when the origin's name does not resolve (CloudFront resolves it
    before invoking; lambda-at-edge-function-restrictions.html, "DNS resolution")."""
    return forwards_to_origin and not generated_by_viewer_request and not origin_dns_failed


def origin_response_runs(*, origin_responded: bool, generated_by_origin_request: bool) -> bool:
    """Origin-response fires for every HTTP response from the origin, 4xx/5xx
    included; not for a response the origin-request function generated. When no
    response arrived (connect failure, timeout) it does not fire ([unconfirmed])."""
    return origin_responded and not generated_by_origin_request


def viewer_response_runs(
    status: int,
    *,
    generated_by_viewer_request: bool,
    custom_error_page: bool,
    redirected_to_https: bool = False,
) -> bool:
    """Viewer-response fires unless the status is 400 or higher, a custom error
    page replaced the response, the viewer-request function generated it, or it
    is the HTTPS redirect (edge-functions-restrictions.md, "HTTP status codes").

    ``status`` is the response's status as it stands before this trigger (after
    any origin-response function).
    """
    return (
        status < 400
        and not generated_by_viewer_request
        and not custom_error_page
        and not redirected_to_https
    )
