"""The Lambda@Edge rules table and firing rules against CloudFront's documentation.

Expected values are copied from the AWS pages (edge-functions-restrictions.md,
cloudfront-limits.md, lambda-cloudfront-trigger-events.md), not from hooks.py.
"""

from __future__ import annotations

import pytest

from edgesim.hooks import (
    DISALLOWED_BY_NAME,
    DISALLOWED_HEADERS,
    HOOK_RULES,
    EventType,
    is_disallowed,
    origin_request_runs,
    origin_response_runs,
    viewer_request_runs,
    viewer_response_runs,
)

VR, OQ, OS, VS = (
    EventType.VIEWER_REQUEST,
    EventType.ORIGIN_REQUEST,
    EventType.ORIGIN_RESPONSE,
    EventType.VIEWER_RESPONSE,
)


def test_event_types_are_spelled_as_in_config_event_type() -> None:
    assert [e.value for e in EventType] == [
        "viewer-request",
        "origin-request",
        "origin-response",
        "viewer-response",
    ]
    assert EventType("origin-response") is OS


def test_every_event_has_exactly_one_rule_naming_it() -> None:
    assert set(HOOK_RULES) == set(EventType)
    for event, rule in HOOK_RULES.items():
        assert rule.event is event


@pytest.mark.parametrize(
    ("event", "timeout", "memory", "package", "generated"),
    [
        (VR, 5, 128, 1_048_576, 40_960),
        (OQ, 30, 10_240, 52_428_800, 1_048_576),
        (OS, 30, 10_240, 52_428_800, 1_048_576),
        (VS, 5, 128, 1_048_576, 40_960),
    ],
)
def test_quotas_per_event(
    event: EventType, timeout: float, memory: int, package: int, generated: int
) -> None:
    rule = HOOK_RULES[event]
    assert rule.max_timeout_s == timeout
    assert rule.max_memory_mb == memory
    assert rule.max_package_bytes == package
    assert rule.max_generated_response_bytes == generated


@pytest.mark.parametrize(
    ("event", "exposed", "text", "base64_chars"),
    [(VR, 40_960, 40_960, 54_476), (OQ, 1_048_576, 1_048_576, 1_394_606)],
)
def test_request_body_limits(event: EventType, exposed: int, text: int, base64_chars: int) -> None:
    rule = HOOK_RULES[event]
    assert rule.body_allowed
    assert rule.max_body_exposed_bytes == exposed
    assert rule.max_body_replace_text_bytes == text
    assert rule.max_body_replace_base64_chars == base64_chars


@pytest.mark.parametrize("event", [OS, VS])
def test_response_events_have_no_request_body(event: EventType) -> None:
    rule = HOOK_RULES[event]
    assert not rule.body_allowed
    assert rule.max_body_exposed_bytes is None


@pytest.mark.parametrize(
    ("event", "headers"),
    [
        (VR, {"content-length", "host", "transfer-encoding", "via"}),
        (
            OQ,
            {
                "accept-encoding",
                "content-length",
                "if-modified-since",
                "if-none-match",
                "if-range",
                "if-unmodified-since",
                "transfer-encoding",
                "via",
            },
        ),
        (OS, {"transfer-encoding", "via"}),
        (VS, {"warning", "via"}),
    ],
)
def test_read_only_headers_per_event(event: EventType, headers: set[str]) -> None:
    assert HOOK_RULES[event].read_only_headers == headers


def test_what_each_event_may_do() -> None:
    table = {
        e: (
            r.is_viewer,
            r.is_request,
            r.may_generate_response,
            r.generated_response_cached,
            r.may_change_status,
            r.exposes_origin,
            r.may_change_origin,
        )
        for e, r in HOOK_RULES.items()
    }
    assert table == {
        VR: (True, True, True, False, False, False, False),
        OQ: (False, True, True, True, False, True, True),
        OS: (False, False, False, False, True, True, False),
        VS: (True, False, False, False, False, False, False),
    }


def test_only_viewer_request_refuses_an_added_viewer_country() -> None:
    assert HOOK_RULES[VR].not_addable_headers == {"cloudfront-viewer-country"}
    assert all(not HOOK_RULES[e].not_addable_headers for e in (OQ, OS, VS))


def test_firing_descriptions_exist_for_docs() -> None:
    for rule in HOOK_RULES.values():
        assert rule.fires
        assert rule.skipped_when
    assert any("400" in s for s in HOOK_RULES[VS].skipped_when)


# -- disallowed headers --------------------------------------------------------

DOC_DISALLOWED = [
    "Connection",
    "Expect",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Proxy-Connection",
    "Trailer",
    "Upgrade",
    "X-Accel-Buffering",
    "X-Accel-Charset",
    "X-Accel-Limit-Rate",
    "X-Accel-Redirect",
    "X-Amzn-Auth",
    "X-Amzn-Cf-Billing",
    "X-Amzn-Cf-Id",
    "X-Amzn-Cf-Xff",
    "X-Amzn-Errortype",
    "X-Amzn-Fle-Profile",
    "X-Amzn-Header-Count",
    "X-Amzn-Header-Order",
    "X-Amzn-Lambda-Integration-Tag",
    "X-Amzn-RequestId",
    "X-Cache",
    "X-Forwarded-Proto",
    "X-Real-IP",
]


@pytest.mark.parametrize("name", DOC_DISALLOWED)
def test_documented_disallowed_headers(name: str) -> None:
    assert is_disallowed(name)
    assert is_disallowed(name.upper())
    assert name.lower() in DISALLOWED_HEADERS


def test_disallowed_set_is_exactly_the_documented_list() -> None:
    assert {n.lower() for n in DOC_DISALLOWED} == DISALLOWED_HEADERS


@pytest.mark.parametrize("name", ["X-Amz-Cf-Id", "x-amz-cf-pop", "X-Edge-Location", "x-edge-x"])
def test_disallowed_prefixes(name: str) -> None:
    assert is_disallowed(name)


@pytest.mark.parametrize(
    "name",
    ["Host", "Via", "CloudFront-Viewer-Country", "X-Amz-Date", "X-Amzn-Trace-Id", "X-Edgy", "Age"],
)
def test_ordinary_headers_are_not_disallowed(name: str) -> None:
    assert not is_disallowed(name)


def test_names_decided_once_stay_decided_and_never_grow_past_the_bound() -> None:
    invented = [f"x-invented-{i}" for i in range(3000)] + [f"x-edge-{i}" for i in range(3000)]
    assert [DISALLOWED_BY_NAME[n] for n in invented] == [n.startswith("x-edge-") for n in invented]
    assert len(DISALLOWED_BY_NAME) <= 1024
    assert DISALLOWED_BY_NAME["x-amz-cf-id"] and not DISALLOWED_BY_NAME["host"]


# -- when triggers fire ----------------------------------------------------------


def test_viewer_request_runs_unless_the_https_redirect_answered() -> None:
    assert viewer_request_runs()
    assert not viewer_request_runs(redirected_to_https=True)


@pytest.mark.parametrize(
    ("forwards", "generated", "dns_failed", "runs"),
    [
        (True, False, False, True),
        (False, False, False, False),  # a cache hit
        (True, True, False, False),  # the viewer-request function answered
        (True, False, True, False),  # the origin's name did not resolve
    ],
)
def test_origin_request_runs(forwards: bool, generated: bool, dns_failed: bool, runs: bool) -> None:
    assert (
        origin_request_runs(
            forwards_to_origin=forwards,
            generated_by_viewer_request=generated,
            origin_dns_failed=dns_failed,
        )
        is runs
    )


@pytest.mark.parametrize(
    ("responded", "generated", "runs"),
    [(True, False, True), (False, False, False), (True, True, False)],
)
def test_origin_response_runs(responded: bool, generated: bool, runs: bool) -> None:
    assert (
        origin_response_runs(origin_responded=responded, generated_by_origin_request=generated)
        is runs
    )


@pytest.mark.parametrize(
    ("status", "runs"),
    [(200, True), (304, True), (399, True), (400, False), (404, False), (503, False)],
)
def test_viewer_response_skips_error_statuses(status: int, runs: bool) -> None:
    assert (
        viewer_response_runs(status, generated_by_viewer_request=False, custom_error_page=False)
        is runs
    )


def test_viewer_response_skips_generated_custom_error_and_redirect() -> None:
    base = {"generated_by_viewer_request": False, "custom_error_page": False}
    assert viewer_response_runs(200, **base)
    assert not viewer_response_runs(200, **{**base, "generated_by_viewer_request": True})
    assert not viewer_response_runs(200, **{**base, "custom_error_page": True})
    assert not viewer_response_runs(301, **base, redirected_to_https=True)
