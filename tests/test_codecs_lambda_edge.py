"""Lambda@Edge event JSON: the documented event shapes, and CloudFront's validation of results.

Events are built from Request/Response values and compared with the example
events of cloudfront-semantics.md section 1.5; results go through a JSON round
trip, as they do coming back from a worker.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edgesim.codecs import (
    ContinueRequest,
    GeneratedResponse,
    ModifiedResponse,
    Outcome,
    apply_result,
    build_event,
)
from edgesim.codecs.lambda_edge import LAMBDA_ORIGIN_NAME
from edgesim.config.schema import CustomOrigin, DirectoryOrigin, Distribution
from edgesim.errors import (
    EdgeError,
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
)
from edgesim.hooks import HOOK_RULES, EventType
from edgesim.models import Headers, Request, Response

VR, OQ, OS, VS = (
    EventType.VIEWER_REQUEST,
    EventType.ORIGIN_REQUEST,
    EventType.ORIGIN_RESPONSE,
    EventType.VIEWER_RESPONSE,
)
DIST = Distribution(id="E2EDGESIM00001", domain="d3edgesim0abcd.cloudfront.net")
CONFIG = {
    "distributionDomainName": "d3edgesim0abcd.cloudfront.net",
    "distributionId": "E2EDGESIM00001",
}
REQUEST_ID = "n8Qk2mVx0aP4Lw7bR1cT9yZ3uH6dE5fG0jK2lM4oN6pQ8rS0tU2vWw=="
VIA = "2.0 5f1c0e9a8b7d6c5f4e3d2c1b0a9f8e7d.cloudfront.net (CloudFront)"

Json = dict[str, Any]


def h(*fields: tuple[str, str]) -> Headers:
    return Headers(fields)


# -- the example events of section 1.5 ------------------------------------------

VIEWER_REQUEST = Request(
    "GET",
    "/app/index.html",
    "lang=en&v=2",
    h(
        ("Host", "www.shop.test"),
        ("User-Agent", "curl/8.5.0"),
        ("Accept", "*/*"),
        ("Cookie", "sid=abc123; theme=dark"),
    ),
    client_ip="198.51.100.23",
)
ORIGIN_REQUEST = Request(
    "POST",
    "/api/orders",
    "",
    h(
        ("Host", "api.origin.test"),
        ("X-Forwarded-For", "198.51.100.23"),
        ("User-Agent", "Amazon CloudFront"),
        ("Via", VIA),
        ("Content-Type", "application/json"),
        ("Content-Length", "10"),
    ),
    client_ip="198.51.100.23",
)
API_ORIGIN = CustomOrigin(
    "api", "https", "api.origin.test", 443, "/v1", (("X-Origin-Token", "t0k"),)
)
ASSETS = DirectoryOrigin("assets-bucket", Path("/srv/assets"))
S3_REQUEST = Request(
    "GET",
    "/img/logo.png",
    "",
    h(("Host", "assets-bucket.s3.us-east-1.amazonaws.com"), ("User-Agent", "Amazon CloudFront")),
    client_ip="203.0.113.9",
)
NOT_FOUND = Response(
    404,
    h(
        ("Content-Type", "application/xml"),
        ("Server", "AmazonS3"),
        ("Date", "Tue, 03 Mar 2026 10:00:00 GMT"),
    ),
    b"<Error/>",
    "Not Found",
)
CACHED = Response(
    200,
    h(
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "5120"),
        ("ETag", '"9f1e"'),
        ("Age", "120"),
    ),
    b"x" * 5120,
    "OK",
)
VIEWER_REQUEST_2 = Request(
    "GET",
    "/app/index.html",
    "lang=en&v=2",
    h(("Host", "www.shop.test"), ("Accept", "*/*")),
    client_ip="198.51.100.23",
)


def cf(event: EventType, **kw: Any) -> Json:
    args: Json = {
        "response": None,
        "distribution": DIST,
        "request_id": REQUEST_ID,
        "origin": None,
        "include_body": False,
        "body": None,
    }
    args.update(kw)
    record: Json = build_event(event, **args)
    assert list(record) == ["Records"] and len(record["Records"]) == 1
    return record["Records"][0]["cf"]  # type: ignore[no-any-return]


def config(event: EventType) -> Json:
    return {**CONFIG, "eventType": event.value, "requestId": REQUEST_ID}


def test_viewer_request_event_matches_the_example() -> None:
    assert cf(VR, request=VIEWER_REQUEST) == {
        "config": config(VR),
        "request": {
            "clientIp": "198.51.100.23",
            "method": "GET",
            "uri": "/app/index.html",
            "querystring": "lang=en&v=2",
            "headers": {
                "host": [{"key": "Host", "value": "www.shop.test"}],
                "user-agent": [{"key": "User-Agent", "value": "curl/8.5.0"}],
                "accept": [{"key": "Accept", "value": "*/*"}],
                "cookie": [{"key": "Cookie", "value": "sid=abc123; theme=dark"}],
            },
        },
    }


def test_origin_request_event_with_body_matches_the_example() -> None:
    event = cf(OQ, request=ORIGIN_REQUEST, origin=API_ORIGIN, include_body=True, body=b'{"id":1}xx')
    assert event == {
        "config": config(OQ),
        "request": {
            "clientIp": "198.51.100.23",
            "method": "POST",
            "uri": "/api/orders",
            "querystring": "",
            "headers": {
                "host": [{"key": "Host", "value": "api.origin.test"}],
                "x-forwarded-for": [{"key": "X-Forwarded-For", "value": "198.51.100.23"}],
                "user-agent": [{"key": "User-Agent", "value": "Amazon CloudFront"}],
                "via": [{"key": "Via", "value": VIA}],
                "content-type": [{"key": "Content-Type", "value": "application/json"}],
                "content-length": [{"key": "Content-Length", "value": "10"}],
            },
            "body": {
                "inputTruncated": False,
                "action": "read-only",
                "encoding": "base64",
                "data": base64.b64encode(b'{"id":1}xx').decode(),
            },
            "origin": {
                "custom": {
                    "customHeaders": {
                        "x-origin-token": [{"key": "X-Origin-Token", "value": "t0k"}]
                    },
                    "domainName": "api.origin.test",
                    "path": "/v1",
                    "port": 443,
                    "protocol": "https",
                    "readTimeout": 30,
                    "keepaliveTimeout": 5,
                    "sslProtocols": ["TLSv1.2"],
                }
            },
        },
    }


def test_origin_response_event_for_a_directory_origin_matches_the_s3_example() -> None:
    assert cf(OS, request=S3_REQUEST, response=NOT_FOUND, origin=ASSETS) == {
        "config": config(OS),
        "request": {
            "clientIp": "203.0.113.9",
            "method": "GET",
            "uri": "/img/logo.png",
            "querystring": "",
            "headers": {
                "host": [{"key": "Host", "value": "assets-bucket.s3.us-east-1.amazonaws.com"}],
                "user-agent": [{"key": "User-Agent", "value": "Amazon CloudFront"}],
            },
            "origin": {
                "s3": {
                    "authMethod": "none",
                    "customHeaders": {},
                    "domainName": "assets-bucket.s3.us-east-1.amazonaws.com",
                    "path": "",
                    "region": "us-east-1",
                }
            },
        },
        "response": {
            "status": "404",
            "statusDescription": "Not Found",
            "headers": {
                "content-type": [{"key": "Content-Type", "value": "application/xml"}],
                "server": [{"key": "Server", "value": "AmazonS3"}],
                "date": [{"key": "Date", "value": "Tue, 03 Mar 2026 10:00:00 GMT"}],
            },
        },
    }


def test_viewer_response_event_matches_the_example() -> None:
    assert cf(VS, request=VIEWER_REQUEST_2, response=CACHED, origin=API_ORIGIN) == {
        "config": config(VS),
        "request": {
            "clientIp": "198.51.100.23",
            "method": "GET",
            "uri": "/app/index.html",
            "querystring": "lang=en&v=2",
            "headers": {
                "host": [{"key": "Host", "value": "www.shop.test"}],
                "accept": [{"key": "Accept", "value": "*/*"}],
            },
        },
        "response": {
            "status": "200",
            "statusDescription": "OK",
            "headers": {
                "content-type": [{"key": "Content-Type", "value": "text/html; charset=utf-8"}],
                "content-length": [{"key": "Content-Length", "value": "5120"}],
                "etag": [{"key": "ETag", "value": '"9f1e"'}],
                "age": [{"key": "Age", "value": "120"}],
            },
        },
    }


def test_events_are_json_serialisable() -> None:
    event = build_event(
        OS,
        request=S3_REQUEST,
        response=NOT_FOUND,
        distribution=DIST,
        request_id=REQUEST_ID,
        origin=ASSETS,
        include_body=False,
        body=None,
    )
    assert json.loads(json.dumps(event)) == event


# -- event details ----------------------------------------------------------------


def test_repeated_headers_are_one_list_in_order_with_original_case() -> None:
    request = Request("GET", "/", "", h(("X-Tag", "a"), ("x-tag", "b"), ("Host", "s.test")))
    assert cf(VR, request=request)["request"]["headers"]["x-tag"] == [
        {"key": "X-Tag", "value": "a"},
        {"key": "x-tag", "value": "b"},
    ]


def test_disallowed_headers_are_not_exposed() -> None:
    request = Request(
        "GET",
        "/",
        "",
        h(
            ("Host", "s.test"),
            ("Connection", "keep-alive"),
            ("X-Forwarded-Proto", "https"),
            ("X-Amz-Cf-Id", "abc"),
            ("X-Edge-Location", "LHR"),
        ),
    )
    response = Response(200, h(("X-Cache", "Hit from cloudfront"), ("ETag", '"1"')), b"")
    event = cf(VS, request=request, response=response)
    assert list(event["request"]["headers"]) == ["host"]
    assert list(event["response"]["headers"]) == ["etag"]


def test_status_is_a_string_and_the_description_defaults_to_the_reason_phrase() -> None:
    response = Response(302, h(("Location", "/x")), b"")
    assert cf(OS, request=S3_REQUEST, response=response, origin=ASSETS)["response"] == {
        "status": "302",
        "statusDescription": "Found",
        "headers": {"location": [{"key": "Location", "value": "/x"}]},
    }


def test_uri_and_query_are_passed_as_received() -> None:
    request = Request("GET", "/caf%C3%A9/a%20b", "q=%E2%9C%93&x", h(("Host", "s.test")))
    event = cf(VR, request=request)["request"]
    assert (event["uri"], event["querystring"]) == ("/caf%C3%A9/a%20b", "q=%E2%9C%93&x")


def test_viewer_events_have_no_origin_even_when_one_is_given() -> None:
    assert "origin" not in cf(VR, request=VIEWER_REQUEST, origin=API_ORIGIN)["request"]
    assert "origin" in cf(OQ, request=VIEWER_REQUEST, origin=API_ORIGIN)["request"]


@pytest.mark.parametrize("event", [OS, VS])
def test_response_events_never_carry_the_request_body(event: EventType) -> None:
    got = cf(event, request=VIEWER_REQUEST, response=CACHED, include_body=True, body=b"abc")
    assert "body" not in got["request"]


def test_no_body_object_without_include_body() -> None:
    assert "body" not in cf(VR, request=ORIGIN_REQUEST, body=b"abc")["request"]


def test_include_body_without_a_body_shows_empty_data() -> None:
    assert cf(VR, request=VIEWER_REQUEST, include_body=True, body=None)["request"]["body"] == {
        "inputTruncated": False,
        "action": "read-only",
        "encoding": "base64",
        "data": "",
    }


@pytest.mark.parametrize(("event", "limit"), [(VR, 40 * 1024), (OQ, 1024 * 1024)])
def test_exposed_body_is_truncated_at_the_event_limit(event: EventType, limit: int) -> None:
    body = bytes(range(256)) * (limit // 256) + b"tail"
    exposed = cf(event, request=ORIGIN_REQUEST, include_body=True, body=body)["request"]["body"]
    assert exposed["inputTruncated"] is True
    assert base64.b64decode(exposed["data"]) == body[:limit]
    exact = cf(event, request=ORIGIN_REQUEST, include_body=True, body=body[:limit])
    assert exact["request"]["body"]["inputTruncated"] is False
    assert base64.b64decode(exact["request"]["body"]["data"]) == body[:limit]


def test_read_timeout_keeps_fractions() -> None:
    origin = CustomOrigin("o", "http", "o.test", 8080, read_timeout=7.5)
    custom = cf(OQ, request=VIEWER_REQUEST, origin=origin)["request"]["origin"]["custom"]
    assert (custom["readTimeout"], custom["port"], custom["protocol"]) == (7.5, 8080, "http")


def test_directory_origin_names_become_bucket_names() -> None:
    origin = DirectoryOrigin("Static_Files", Path("/srv"))
    s3 = cf(OQ, request=VIEWER_REQUEST, origin=origin)["request"]["origin"]["s3"]
    assert s3["domainName"] == "static-files.s3.us-east-1.amazonaws.com"


def test_a_response_event_needs_a_response() -> None:
    with pytest.raises(ValueError, match="needs a response"):
        cf(VS, request=VIEWER_REQUEST)


# -- results: helpers -----------------------------------------------------------------


def run(
    event: EventType,
    mutate: Callable[[Json], Any] | None = None,
    *,
    request: Request = VIEWER_REQUEST,
    response: Response | None = None,
    origin: CustomOrigin | DirectoryOrigin | None = None,
) -> Outcome:
    """Build the event, let ``mutate`` edit what the function returns (or return a
    dict to return instead), and apply the result."""
    event_cf = cf(event, request=request, response=response, origin=origin)
    result = event_cf["response"] if response is not None else event_cf["request"]
    if mutate is not None:
        replaced = mutate(result)
        if isinstance(replaced, dict):
            result = replaced
    result = json.loads(json.dumps(result))  # as it comes back from a worker
    return apply_result(event, result, request=request, response=response, origin=origin)


def invalid(event: EventType, mutate: Callable[[Json], Any], **kw: Any) -> str:
    """The reason the result is refused (fails the test if it is accepted)."""
    with pytest.raises(LambdaValidationError) as info:
        run(event, mutate, **kw)
    return info.value.detail


def continued(outcome: Outcome) -> Request:
    assert isinstance(outcome, ContinueRequest)
    return outcome.request


def modified(outcome: Outcome) -> Response:
    assert isinstance(outcome, ModifiedResponse)
    return outcome.response


def generated(outcome: Outcome) -> Response:
    assert isinstance(outcome, GeneratedResponse)
    return outcome.response


def set_header(name: str, *values: str, key: str | None = None) -> Callable[[Json], None]:
    def mutate(result: Json) -> None:
        entries = [{"value": v} if key is None else {"key": key, "value": v} for v in values]
        result["headers"][name] = entries

    return mutate


def drop_header(name: str) -> Callable[[Json], None]:
    return lambda result: result["headers"].pop(name)


# -- results: requests ---------------------------------------------------------------


@pytest.mark.parametrize("event", [VR, OQ])
def test_an_unchanged_request_is_the_same_object(event: EventType) -> None:
    outcome = run(event, origin=API_ORIGIN if event is OQ else None)
    assert isinstance(outcome, ContinueRequest)
    assert outcome.request is VIEWER_REQUEST
    assert outcome.origin is (API_ORIGIN if event is OQ else None)


def test_uri_and_querystring_changes() -> None:
    def mutate(r: Json) -> None:
        r["uri"] = "/en/index.html"
        r["querystring"] = "v=3"

    request = continued(run(VR, mutate))
    assert (request.path, request.query) == ("/en/index.html", "v=3")
    assert request.headers is VIEWER_REQUEST.headers


@pytest.mark.parametrize("uri", ["index.html", "", 5, None])
def test_uri_must_start_with_a_slash(uri: object) -> None:
    reason = invalid(VR, lambda r: r.update(uri=uri))
    assert "uri" in reason and "slash" in reason


def test_uri_with_control_characters_is_invalid() -> None:
    assert "control" in invalid(VR, lambda r: r.update(uri="/a\r\nX-Evil: 1"))


def test_uri_set_by_a_function_is_sent_utf8_percent_encoded() -> None:
    request = continued(run(VR, lambda r: r.update(uri="/café menu#1?")))
    assert request.path == "/caf%C3%A9%20menu%231%3F"


@pytest.mark.parametrize("query", ["a=b c", "a=b#frag", "a=\x01", "a=\x7f"])
def test_querystring_without_spaces_controls_or_fragment(query: str) -> None:
    assert "querystring" in invalid(VR, lambda r: r.update(querystring=query))


def test_querystring_must_be_a_string() -> None:
    assert "querystring" in invalid(VR, lambda r: r.update(querystring=["a"]))


def test_querystring_non_ascii_is_percent_encoded() -> None:
    assert continued(run(VR, lambda r: r.update(querystring="q=✓"))).query == "q=%E2%9C%93"


def test_uri_and_querystring_together_stay_under_8192_characters() -> None:
    def target(total: int) -> Callable[[Json], None]:
        return lambda r: r.update(uri="/" + "a" * (total - 11), querystring="q=" + "b" * 8)

    assert len(continued(run(VR, target(8191))).path) + 10 == 8191
    assert "8192" in invalid(VR, target(8192))


def test_read_only_request_fields_are_ignored() -> None:
    def mutate(r: Json) -> None:
        r["method"] = "DELETE"
        r["clientIp"] = "10.0.0.1"

    assert continued(run(VR, mutate)) is VIEWER_REQUEST


def test_missing_fields_keep_their_values() -> None:
    assert continued(run(VR, lambda r: {"uri": "/x"})) == VIEWER_REQUEST.replace(path="/x")


# -- headers ------------------------------------------------------------------------------


def test_added_header_keeps_its_key_and_order() -> None:
    request = continued(run(VR, set_header("x-my-hdr", "1", key="x-MY-hdr")))
    assert request.headers.fields[-1] == ("x-MY-hdr", "1")
    assert request.headers.fields[:-1] == VIEWER_REQUEST.headers.fields


@pytest.mark.parametrize(
    ("name", "key"),
    [("x-my-hdr", "X-My-Hdr"), ("user-agent", "User-Agent"), ("etag", "Etag"), ("X-UP", "X-Up")],
)
def test_missing_key_is_title_cased_per_hyphen_part(name: str, key: str) -> None:
    request = continued(run(VR, set_header(name, "v")))
    assert (key, "v") in request.headers.fields


def test_multiple_values_and_removal() -> None:
    def mutate(r: Json) -> None:
        r["headers"]["x-tag"] = [{"value": "a"}, {"value": "b"}]
        del r["headers"]["cookie"]

    headers = continued(run(VR, mutate)).headers
    assert headers.get_all("x-tag") == ["a", "b"]
    assert "cookie" not in headers


def test_key_must_match_the_header_name() -> None:
    reason = invalid(VR, set_header("x-a", "1", key="X-B"))
    assert "X-B" in reason and "x-a" in reason


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ([], "object"),
        ({"x-a": "1"}, "array"),
        ({"x-a": ["1"]}, "array"),
        ({"x-a": [{"key": "X-A"}]}, "string"),
        ({"x-a": [{"value": 1}]}, "string"),
        ({"x-a": [{"value": "a\r\nX-Evil: 1"}]}, "control"),
        ({"x a": [{"value": "1"}]}, "header name"),
        ({"x-a": [{"key": 5, "value": "1"}]}, "match"),
    ],
)
def test_malformed_headers_are_invalid(headers: object, words: str) -> None:
    def mutate(r: Json) -> None:
        r["headers"] = {**r["headers"], **headers} if isinstance(headers, dict) else headers

    assert words in invalid(VR, mutate)


def test_tab_is_allowed_in_values() -> None:
    assert ("X-A", "a\tb") in continued(run(VR, set_header("x-a", "a\tb"))).headers.fields


@pytest.mark.parametrize("event", [VR, OQ])
@pytest.mark.parametrize("name", ["X-Cache", "x-amz-cf-pop", "X-Edge-Origin", "Connection"])
def test_adding_a_disallowed_request_header_is_invalid(event: EventType, name: str) -> None:
    reason = invalid(event, set_header(name.lower(), "1", key=name))
    assert "disallowed" in reason and name in reason


@pytest.mark.parametrize("event", [OS, VS])
def test_adding_a_disallowed_response_header_is_invalid(event: EventType) -> None:
    reason = invalid(event, set_header("x-real-ip", "1"), response=CACHED)
    assert "disallowed" in reason


def test_hidden_headers_survive_a_change_they_could_not_see() -> None:
    request = VIEWER_REQUEST.replace(
        headers=VIEWER_REQUEST.headers.add("Connection", "keep-alive").add("X-Real-IP", "1.2.3.4")
    )
    headers = continued(run(VR, set_header("x-new", "1"), request=request)).headers
    assert headers.get("connection") == "keep-alive"
    assert headers.get("x-real-ip") == "1.2.3.4"
    assert headers.get("x-new") == "1"


def test_viewer_country_may_not_be_added_at_viewer_request_only() -> None:
    country = set_header("cloudfront-viewer-country", "FR", key="CloudFront-Viewer-Country")
    assert "CloudFront-Viewer-Country" in invalid(VR, country)
    added = continued(run(OQ, country, origin=API_ORIGIN))
    assert added.headers.get("cloudfront-viewer-country") == "FR"
    sent = VIEWER_REQUEST.replace(
        headers=VIEWER_REQUEST.headers.add("CloudFront-Viewer-Country", "GB")
    )
    assert (
        continued(run(VR, set_header("x-a", "1"), request=sent)).headers.get(
            "cloudfront-viewer-country"
        )
        == "GB"
    )


# Read-only headers at every event: adding, changing and removing each is refused.
READ_ONLY_CASES = [(e, n) for e, r in HOOK_RULES.items() for n in sorted(r.read_only_headers)]


def _with_all(event: EventType, present: bool) -> tuple[Request, Response | None]:
    """A request (request events) or response (response events) carrying every
    read-only header of ``event`` (or none of them)."""
    names = sorted(HOOK_RULES[event].read_only_headers)
    fields = [("X-Other", "1")] + ([(n.title(), f"v-{n}") for n in names] if present else [])
    if HOOK_RULES[event].is_request:
        return Request("POST", "/", "", Headers(fields)), None
    return VIEWER_REQUEST, Response(200, Headers(fields), b"body", "OK")


@pytest.mark.parametrize(("event", "name"), READ_ONLY_CASES)
def test_read_only_header_cannot_be_added(event: EventType, name: str) -> None:
    request, response = _with_all(event, present=False)
    reason = invalid(event, set_header(name, "new"), request=request, response=response)
    assert "read-only" in reason and "added" in reason


@pytest.mark.parametrize(("event", "name"), READ_ONLY_CASES)
def test_read_only_header_cannot_be_changed(event: EventType, name: str) -> None:
    request, response = _with_all(event, present=True)
    reason = invalid(event, set_header(name, "changed"), request=request, response=response)
    assert "read-only" in reason and "changed" in reason


@pytest.mark.parametrize(("event", "name"), READ_ONLY_CASES)
def test_read_only_header_cannot_be_removed(event: EventType, name: str) -> None:
    request, response = _with_all(event, present=True)
    reason = invalid(event, drop_header(name), request=request, response=response)
    assert "read-only" in reason and "removed" in reason


@pytest.mark.parametrize("event", list(EventType))
def test_read_only_headers_left_alone_pass(event: EventType) -> None:
    request, response = _with_all(event, present=True)
    outcome = run(event, set_header("x-other", "2"), request=request, response=response)
    value = outcome.request if isinstance(outcome, ContinueRequest) else modified(outcome)
    assert value.headers.get("x-other") == "2"
    for name in HOOK_RULES[event].read_only_headers:
        assert value.headers.get(name) == f"v-{name}"


def test_a_header_read_only_elsewhere_is_writable_here() -> None:
    # Host is read-only at viewer-request but not at origin-request.
    request = continued(run(OQ, set_header("host", "other.test"), origin=API_ORIGIN))
    assert request.headers.get("host") == "other.test"


# -- request bodies -------------------------------------------------------------------------

POST = Request("POST", "/api", "", h(("Host", "s.test"), ("Content-Length", "5")), body=b"hello")


def body_result(**body: object) -> Callable[[Json], Json]:
    return lambda r: {**r, "body": body}


def test_read_only_body_keeps_the_original_even_if_data_changed() -> None:
    outcome = run(VR, body_result(action="read-only", data="Y2hhbmdlZA=="), request=POST)
    assert continued(outcome) is POST


@pytest.mark.parametrize(
    ("encoding", "data", "expected"),
    [("text", "plain ✓", "plain ✓".encode()), ("base64", "aGk=", b"hi"), (None, "aGk=", b"hi")],
)
def test_replaced_body(encoding: str | None, data: str, expected: bytes) -> None:
    body: Json = {"action": "replace", "data": data}
    if encoding is not None:
        body["encoding"] = encoding
    request = continued(run(VR, body_result(**body), request=POST))
    assert request.body == expected
    assert request.headers is POST.headers  # Content-Length is read-only; framing is the client's


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("text", "not a string, is not an object"),
        ({"action": "replace", "data": 5}, "not a string, is not an object"),
        ({"action": "rewrite", "data": ""}, "action"),
        ({"action": "replace", "encoding": "hex", "data": ""}, "encoding"),
        ({"action": "replace", "encoding": "base64", "data": "not*base64"}, "base64"),
    ],
)
def test_invalid_request_bodies(body: object, words: str) -> None:
    assert words in invalid(VR, lambda r: {**r, "body": body}, request=POST)


@pytest.mark.parametrize("event", [VR, OQ])
def test_replacement_text_body_is_truncated_at_the_event_limit(event: EventType) -> None:
    limit = HOOK_RULES[event].max_body_replace_text_bytes
    assert limit is not None
    outcome = run(event, body_result(action="replace", encoding="text", data="z" * (limit + 10)))
    assert continued(outcome).body == b"z" * limit


def test_replacement_base64_body_is_truncated_at_53_2_kb_of_text() -> None:
    raw = bytes(range(256)) * 250  # 64000 bytes, 85336 base64 characters
    data = base64.b64encode(raw).decode()
    outcome = run(VR, body_result(action="replace", encoding="base64", data=data))
    assert continued(outcome).body == raw[: 54476 // 4 * 3]


def test_base64_body_may_contain_line_breaks() -> None:
    data = base64.encodebytes(b"x" * 100).decode()  # wrapped every 76 characters
    outcome = run(VR, body_result(action="replace", data=data), request=POST)
    assert continued(outcome).body == b"x" * 100


# -- generated responses ------------------------------------------------------------------------

REDIRECT: Json = {
    "status": "302",
    "statusDescription": "Found",
    "headers": {
        "location": [{"key": "Location", "value": "https://www.shop.test/en/"}],
        "cache-control": [{"value": "max-age=60"}],
    },
}


@pytest.mark.parametrize("event", [VR, OQ])
def test_request_events_may_generate_a_response(event: EventType) -> None:
    response = generated(run(event, lambda r: REDIRECT, origin=API_ORIGIN))
    assert (response.status, response.reason, response.body) == (302, "Found", b"")
    assert response.headers.fields == (
        ("Location", "https://www.shop.test/en/"),
        ("Cache-Control", "max-age=60"),
        ("Content-Length", "0"),
    )


@pytest.mark.parametrize("event", [OS, VS])
def test_response_events_never_generate_a_response(event: EventType) -> None:
    outcome = run(event, lambda r: {"status": "200", "body": "new"}, response=CACHED)
    assert isinstance(outcome, ModifiedResponse)


@pytest.mark.parametrize("status", [200, "200", 599, "599"])
def test_status_as_int_or_numeric_string(status: object) -> None:
    response = generated(run(VR, lambda r: {"status": status}))
    assert response.status == int(str(status))
    assert response.reason in ("OK", "Unknown", "")


@pytest.mark.parametrize("status", [199, "600", 0, "2OO", "", " 200", 200.0, True, None, "²००"])
def test_invalid_statuses(status: object) -> None:
    assert "status" in invalid(VR, lambda r: {"status": status})


def test_generated_description_defaults_to_the_reason_phrase() -> None:
    assert generated(run(VR, lambda r: {"status": 404})).reason == "Not Found"


def test_generated_text_and_base64_bodies() -> None:
    text = generated(run(VR, lambda r: {"status": "200", "body": "héllo"}))
    assert text.body == "héllo".encode()
    assert text.headers.get("content-length") == str(len("héllo".encode()))
    png = generated(
        run(VR, lambda r: {"status": "200", "body": "iVBORw0KGgo=", "bodyEncoding": "base64"})
    )
    assert png.body == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("result", "words"),
    [
        ({"status": "200", "body": "%%%", "bodyEncoding": "base64"}, "base64"),
        ({"status": "200", "body": "x", "bodyEncoding": "gzip"}, "bodyEncoding"),
        ({"status": "200", "body": {"a": 1}}, "The body is not a string"),
        ({"status": "200", "body": None}, "The body is not a string"),
        ({"status": "200", "statusDescription": 5}, "statusDescription"),
        ({"status": "200", "headers": {"x-cache": [{"value": "Hit"}]}}, "disallowed"),
        ({"status": "200", "headers": {"x-a": "1"}}, "array"),
    ],
)
def test_invalid_generated_responses(result: Json, words: str) -> None:
    assert words in invalid(VR, lambda r: result)


def test_a_generated_204_with_a_body_is_invalid_at_viewer_request() -> None:
    assert "204" in invalid(VR, lambda r: {"status": 204, "body": "x"})
    assert generated(run(VR, lambda r: {"status": 204, "body": ""})).status == 204
    assert (
        generated(run(OQ, lambda r: {"status": 204, "body": "x"}, origin=API_ORIGIN)).body == b"x"
    )


def test_generated_204_has_no_content_length() -> None:
    assert "content-length" not in generated(run(VR, lambda r: {"status": 204})).headers


def test_a_function_content_length_is_replaced_by_the_real_one() -> None:
    result = {"status": 200, "body": "abc", "headers": {"content-length": [{"value": "99"}]}}
    assert generated(run(VR, lambda r: result)).headers.get_all("content-length") == ["3"]


@pytest.mark.parametrize(("event", "limit"), [(VR, 40 * 1024), (OQ, 1024 * 1024)])
def test_generated_response_size_limit_counts_headers_and_body(
    event: EventType, limit: int
) -> None:
    headers = {"x-a": [{"key": "X-A", "value": "v"}]}  # "X-A: v" and CRLF: 8 bytes
    fits: Json = {"status": 200, "headers": headers, "body": "b" * (limit - 8)}
    assert generated(run(event, lambda r: fits, origin=API_ORIGIN)).body == b"b" * (limit - 8)
    over = {**fits, "body": "b" * (limit - 7)}
    reason = invalid(event, lambda r: over, origin=API_ORIGIN)
    assert "exceeds the maximum size" in reason and str(limit) in reason


def test_non_object_results_are_invalid_json() -> None:
    results: list[object] = [None, [], "response", 200]
    for result in results:
        with pytest.raises(LambdaValidationError) as info:
            apply_result(VR, result, request=VIEWER_REQUEST, response=None, origin=None)
        assert info.value.invalid_json
        assert info.value.reason.startswith(
            "The Lambda function returned invalid JSON: The JSON output must be an object type."
        )


# -- origin changes -----------------------------------------------------------------------------


def set_origin(origin: Json) -> Callable[[Json], None]:
    return lambda r: r.update(origin=origin)


def custom(**changes: object) -> Json:
    spec: Json = {
        "customHeaders": {},
        "domainName": "other.origin.test",
        "path": "/v2",
        "port": 8443,
        "protocol": "https",
        "readTimeout": 20,
        "keepaliveTimeout": 5,
        "sslProtocols": ["TLSv1.2"],
    }
    spec.update(changes)
    return {"custom": spec}


def route(origin: Json, current: CustomOrigin | DirectoryOrigin = API_ORIGIN) -> ContinueRequest:
    outcome = run(OQ, set_origin(origin), origin=current)
    assert isinstance(outcome, ContinueRequest)
    return outcome


def test_origin_request_may_pick_another_custom_origin() -> None:
    origin = route(custom(customHeaders={"x-key": [{"value": "k"}]})).origin
    assert origin == CustomOrigin(
        LAMBDA_ORIGIN_NAME,
        "https",
        "other.origin.test",
        8443,
        "/v2",
        (("X-Key", "k"),),
        connect_timeout=API_ORIGIN.connect_timeout,
        read_timeout=20.0,
    )


def test_changing_only_the_path_keeps_the_origin_name() -> None:
    event_origin = cf(OQ, request=VIEWER_REQUEST, origin=API_ORIGIN)["request"]["origin"]
    event_origin["custom"]["path"] = "/v9"
    origin = route(event_origin).origin
    assert isinstance(origin, CustomOrigin)
    assert (origin.name, origin.path, origin.headers) == ("api", "/v9", API_ORIGIN.headers)


def test_a_new_origin_with_only_the_required_fields() -> None:
    origin = route({"custom": {"domainName": "x.test", "port": 80, "protocol": "http"}}).origin
    assert isinstance(origin, CustomOrigin)
    assert (origin.scheme, origin.host, origin.port, origin.path) == ("http", "x.test", 80, "")
    assert origin.read_timeout == 30.0


@pytest.mark.parametrize("domain", ["127.0.0.1", "localhost", "a-b.c.test", "x" * 63])
def test_local_origin_names_are_accepted(domain: str) -> None:
    origin = route(custom(domainName=domain)).origin
    assert isinstance(origin, CustomOrigin) and origin.host == domain


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"domainName": ""}, "empty"),
        ({"domainName": "a.test:8080"}, "colon"),
        ({"domainName": "::1"}, "colon"),
        ({"domainName": "-a.test"}, "DNS"),
        ({"domainName": "a..test"}, "DNS"),
        ({"domainName": "a" * 64 + ".test"}, "DNS"),
        ({"domainName": ("a" * 60 + ".") * 5 + "test"}, "253"),
        ({"port": 1000}, "port"),
        ({"port": 0}, "port"),
        ({"port": 70000}, "port"),
        ({"port": "443"}, "port"),
        ({"protocol": "ftp"}, "protocol"),
        ({"path": "v2"}, "path"),
        ({"path": "/v2/"}, "path"),
        ({"path": "/a b"}, "URL-encoded"),
        ({"path": "/" + "a" * 255}, "255"),
        ({"readTimeout": 3}, "readTimeout"),
        ({"readTimeout": 121}, "readTimeout"),
        ({"readTimeout": "30"}, "readTimeout"),
        ({"keepaliveTimeout": 0}, "keepaliveTimeout"),
        ({"keepaliveTimeout": 61}, "keepaliveTimeout"),
        ({"sslProtocols": []}, "sslProtocols"),
        ({"sslProtocols": ["TLSv1.3"]}, "sslProtocols"),
        ({"customHeaders": {"x-forwarded-proto": [{"value": "http"}]}}, "disallowed"),
        ({"customHeaders": {"host": [{"value": "h"}]}}, "also in the request headers"),
        ({"customHeaders": {"x-a": "1"}}, "array"),
    ],
)
def test_invalid_custom_origins(changes: Json, words: str) -> None:
    reason = invalid(OQ, set_origin(custom(**changes)), origin=API_ORIGIN)
    assert words in reason


@pytest.mark.parametrize(("timeout", "port"), [(4, 80), (60, 443), (120, 1024), (7.5, 65535)])
def test_valid_custom_origin_limits(timeout: float, port: int) -> None:
    origin = route(custom(readTimeout=timeout, port=port)).origin
    assert isinstance(origin, CustomOrigin)
    assert (origin.read_timeout, origin.port) == (timeout, port)


@pytest.mark.parametrize(
    "origin",
    [{}, {"custom": {}, "s3": {}}, {"http": {}}, {"custom": "x.test"}, "x.test", None],
)
def test_origin_must_be_exactly_one_of_custom_or_s3(origin: object) -> None:
    assert "origin" in invalid(OQ, lambda r: r.update(origin=origin), origin=API_ORIGIN)


def test_an_unchanged_directory_origin_is_kept() -> None:
    assert (
        route(cf(OQ, request=VIEWER_REQUEST, origin=ASSETS)["request"]["origin"], ASSETS).origin
        is ASSETS
    )


def test_custom_headers_added_to_a_directory_origin_keep_it_local() -> None:
    spec = cf(OQ, request=VIEWER_REQUEST, origin=ASSETS)["request"]["origin"]
    spec["s3"]["customHeaders"] = {"x-key": [{"key": "X-Key", "value": "k"}]}
    assert route(spec, ASSETS).origin == DirectoryOrigin(
        "assets-bucket", Path("/srv/assets"), (("X-Key", "k"),)
    )


def test_another_s3_bucket_becomes_an_https_origin() -> None:
    spec = {
        "s3": {"domainName": "real.s3.eu-west-1.amazonaws.com", "path": "/p", "region": "eu-west-1"}
    }
    assert route(spec, ASSETS).origin == CustomOrigin(
        LAMBDA_ORIGIN_NAME, "https", "real.s3.eu-west-1.amazonaws.com", 443, "/p"
    )


def test_a_directory_origin_may_be_replaced_by_a_custom_one() -> None:
    origin = route(custom(), ASSETS).origin
    assert isinstance(origin, CustomOrigin) and origin.name == LAMBDA_ORIGIN_NAME


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"domainName": "Upper.s3.amazonaws.com"}, "lowercase"),
        ({"domainName": ""}, "empty"),
        ({"domainName": "b.s3.amazonaws.com", "path": "p"}, "path"),
        ({"domainName": "b.s3.amazonaws.com", "authMethod": "oac"}, "authMethod"),
        ({"domainName": "b.s3.amazonaws.com", "authMethod": "origin-access-identity"}, "region"),
    ],
)
def test_invalid_s3_origins(spec: Json, words: str) -> None:
    assert words in invalid(OQ, set_origin({"s3": spec}), origin=ASSETS)


def test_origin_changes_are_ignored_at_viewer_request() -> None:
    outcome = run(VR, set_origin(custom()))
    assert isinstance(outcome, ContinueRequest) and outcome.origin is None


# -- response events ----------------------------------------------------------------------------


def test_an_unchanged_response_is_the_same_object() -> None:
    cached = CACHED.replace(head=b"HTTP/1.1 200 OK\r\n")
    unnamed = CACHED.replace(reason="")  # the event shows "OK"; returned as is, still unchanged
    for event in (OS, VS):
        assert modified(run(event, response=cached)) is cached
        assert modified(run(event, response=unnamed)) is unnamed


def test_origin_response_may_change_the_status() -> None:
    response = modified(run(OS, lambda r: r.update(status=200), response=NOT_FOUND, origin=ASSETS))
    # The description is the function's too: left alone, it still says Not Found.
    assert (response.status, response.reason, response.body) == (200, "Not Found", b"<Error/>")
    bare = modified(run(OS, lambda r: {"status": 200}, response=NOT_FOUND, origin=ASSETS))
    assert (bare.status, bare.reason) == (200, "OK")
    described = modified(
        run(
            OS,
            lambda r: r.update(status="302", statusDescription="Moved"),
            response=NOT_FOUND,
            origin=ASSETS,
        )
    )
    assert (described.status, described.reason) == (302, "Moved")


def test_origin_response_status_must_be_in_range() -> None:
    assert "599" in invalid(OS, lambda r: r.update(status="600"), response=NOT_FOUND)


def test_viewer_response_may_not_change_the_status() -> None:
    reason = invalid(VS, lambda r: r.update(status="302"), response=CACHED)
    assert "viewer-response" in reason and "status" in reason
    assert modified(run(VS, lambda r: r.update(status=200), response=CACHED)) is CACHED


def test_a_response_result_needs_a_status() -> None:
    assert "status" in invalid(VS, lambda r: r.pop("status"), response=CACHED)


@pytest.mark.parametrize("event", [OS, VS])
def test_body_replacement_in_response_events(event: EventType) -> None:
    response = modified(run(event, lambda r: r.update(body="<p>new</p>"), response=CACHED))
    assert response.body == b"<p>new</p>"
    assert response.headers.get_all("content-length") == ["10"]
    assert response.headers.get("etag") == '"9f1e"'


def test_empty_body_removes_the_origin_body() -> None:
    response = modified(run(OS, lambda r: r.update(body=""), response=CACHED))
    assert (response.body, response.headers.get("content-length")) == (b"", "0")


def test_unset_body_keeps_the_origin_body() -> None:
    response = modified(run(OS, set_header("x-a", "1"), response=CACHED))
    assert response.body is CACHED.body
    assert response.headers.get("x-a") == "1"


def test_base64_response_body() -> None:
    def mutate(r: Json) -> None:
        r.update(body=base64.b64encode(b"\x00\x01").decode(), bodyEncoding="base64")

    assert modified(run(OS, mutate, response=CACHED)).body == b"\x00\x01"


@pytest.mark.parametrize(("event", "limit"), [(VS, 40 * 1024), (OS, 1024 * 1024)])
def test_replaced_response_body_size_limit(event: EventType, limit: int) -> None:
    reason = invalid(event, lambda r: r.update(body="b" * limit), response=CACHED)
    assert "exceeds the maximum size" in reason


def test_framing_is_restored_when_a_function_drops_content_length() -> None:
    response = modified(run(VS, drop_header("content-length"), response=CACHED))
    assert response.headers.get("content-length") == "5120"
    assert response.body is CACHED.body


def test_hidden_response_headers_are_kept() -> None:
    response = CACHED.replace(headers=CACHED.headers.add("X-Cache", "Hit from cloudfront"))
    out = modified(run(VS, set_header("x-frame-options", "DENY"), response=response))
    assert out.headers.get("x-cache") == "Hit from cloudfront"
    assert out.headers.get("x-frame-options") == "DENY"


def test_changed_headers_drop_the_pre_rendered_head() -> None:
    cached = CACHED.replace(head=b"HTTP/1.1 200 OK\r\n")
    assert modified(run(VS, set_header("x-a", "1"), response=cached)).head is None


# -- the errors CloudFront answers with -----------------------------------------------------------


def test_validation_error_page_and_headers() -> None:
    error = LambdaValidationError("The uri must start with a slash (/).")
    assert isinstance(error, EdgeError)
    assert (error.status, error.x_cache, error.result_type) == (
        502,
        "LambdaValidationError from cloudfront",
        "LambdaValidationError",
    )
    assert error.reason.startswith(
        "The Lambda function result failed validation: The uri must start with a slash (/)."
    )
    assert LambdaValidationError.unparsable().reason.startswith(
        "The Lambda function returned invalid JSON: The JSON output is not parsable."
    )


def test_execution_and_throttling_errors() -> None:
    execution, throttled = LambdaExecutionError("boom"), LambdaLimitExceeded()
    assert (execution.status, execution.x_cache, execution.result_type) == (
        503,
        "LambdaExecutionError from cloudfront",
        "LambdaExecutionError",
    )
    assert "invalid or doesn't have the required permissions" in execution.reason
    assert (throttled.status, throttled.x_cache, throttled.result_type) == (
        503,
        "LambdaLimitExceeded from cloudfront",
        "LambdaLimitExceeded",
    )
    assert "was throttled" in throttled.reason


def test_headers_returned_as_given_are_the_given_headers_in_their_order() -> None:
    """The event groups repeated headers under one name; a function that returns
    them as it got them leaves the request as it came, interleaved order and all.
    Changed ones are regrouped and checked."""
    request = VIEWER_REQUEST.replace(
        headers=h(("Host", "d.example"), ("X-A", "1"), ("X-B", "2"), ("x-a", "3"))
    )
    event = build_event(
        VR,
        request=request,
        response=None,
        distribution=DIST,
        request_id=REQUEST_ID,
        origin=None,
        include_body=False,
        body=None,
    )
    returned = json.loads(json.dumps(event["Records"][0]["cf"]["request"]))
    kept = apply_result(VR, returned, request=request, response=None, origin=None, event=event)
    assert isinstance(kept, ContinueRequest) and kept.request is request
    returned["headers"]["x-b"][0]["value"] = "changed"
    changed = apply_result(VR, returned, request=request, response=None, origin=None, event=event)
    assert isinstance(changed, ContinueRequest)
    assert list(changed.request.headers) == [
        ("Host", "d.example"), ("X-A", "1"), ("x-a", "3"), ("X-B", "changed")
    ]  # fmt: skip
