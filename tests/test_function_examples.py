"""The example edge functions in functions/, called directly with Lambda@Edge events.

These are unit checks of each example's own logic: the handler module is
imported from functions/ and called with an event built by hand in the
documented shape (cloudfront-semantics.md, section 1.5), passed through JSON
as Lambda passes it. The edge-level tests, through real workers, live with
the proxy integration.
"""

from __future__ import annotations

import ast
import base64
import copy
import importlib
import json
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from edgesim.config import load_config

REPO = Path(__file__).resolve().parent.parent
FUNCTIONS = REPO / "functions"
EXAMPLE_CONFIG = REPO / "configs" / "functions.yaml"

Event = dict[str, Any]


def example(name: str) -> ModuleType:
    """Import a handler module from functions/, as Lambda does from the package root."""
    if str(FUNCTIONS) not in sys.path:
        sys.path.insert(0, str(FUNCTIONS))
    return importlib.import_module(name)


def invoke(name: str, event: Event) -> Any:
    """Call ``name.handler`` with a JSON copy of ``event``; the result must be JSON too."""
    context = SimpleNamespace(
        function_name=f"us-east-1.{name}",
        function_version="1",
        memory_limit_in_mb="128",
        aws_request_id="8f507cfc-1111-4697-b07a-ac58fc914c95",
        get_remaining_time_in_millis=lambda: 3000,
    )
    result = example(name).handler(json.loads(json.dumps(event)), context)
    return json.loads(json.dumps(result))


# --- events, in the shape of section 1.5 ---

CONFIG = {
    "distributionDomainName": "d3edgesim0abcd.cloudfront.net",
    "distributionId": "E2EDGESIM00001",
    "requestId": "n8Qk2mVx0aP4Lw7bR1cT9yZ3uH6dE5fG0jK2lM4oN6pQ8rS0tU2vWw==",
}
CUSTOM_ORIGIN = {
    "custom": {
        "customHeaders": {
            "x-origin-verify": [{"key": "x-origin-verify", "value": "abc"}],
            "x-eu-origin-port": [{"key": "x-eu-origin-port", "value": "3101"}],
        },
        "domainName": "app.origin.test",
        "path": "",
        "port": 443,
        "protocol": "https",
        "readTimeout": 30,
        "keepaliveTimeout": 5,
        "sslProtocols": ["TLSv1.2"],
    }
}
S3_ORIGIN = {
    "s3": {
        "authMethod": "none",
        "customHeaders": {},
        "domainName": "assets-bucket.s3.us-east-1.amazonaws.com",
        "path": "",
        "region": "us-east-1",
    }
}


def headers(*pairs: tuple[str, str]) -> dict[str, list[dict[str, str]]]:
    """Event headers: keyed by lowercase name, a list of {key, value} per name."""
    result: dict[str, list[dict[str, str]]] = {}
    for key, value in pairs:
        result.setdefault(key.lower(), []).append({"key": key, "value": value})
    return result


def request(uri: str, querystring: str = "", *pairs: tuple[str, str], method: str = "GET") -> Event:
    return {
        "clientIp": "198.51.100.23",
        "method": method,
        "uri": uri,
        "querystring": querystring,
        "headers": headers(
            ("Host", "www.shop.test"), ("User-Agent", "curl/8.5.0"), ("Accept", "*/*"), *pairs
        ),
    }


def event(event_type: str, req: Event, response: Event | None = None) -> Event:
    cf: Event = {"config": {**CONFIG, "eventType": event_type}, "request": req}
    if response is not None:
        cf["response"] = response
    return {"Records": [{"cf": cf}]}


def viewer_request(uri: str, querystring: str = "", *pairs: tuple[str, str]) -> Event:
    return event("viewer-request", request(uri, querystring, *pairs))


def origin_request(uri: str, origin: Event = CUSTOM_ORIGIN, querystring: str = "") -> Event:
    req = request(uri, querystring)
    req["headers"] = headers(
        ("Host", "app.origin.test"),
        ("User-Agent", "Amazon CloudFront"),
        ("Via", "2.0 5f1c0e9a8b7d6c5f4e3d2c1b0a9f8e7d.cloudfront.net (CloudFront)"),
        ("X-Forwarded-For", "198.51.100.23"),
    )
    req["origin"] = copy.deepcopy(origin)
    return event("origin-request", req)


def response(status: str, description: str, *pairs: tuple[str, str]) -> Event:
    return {"status": status, "statusDescription": description, "headers": headers(*pairs)}


def origin_response(status: str, description: str, *pairs: tuple[str, str]) -> Event:
    req = origin_request("/api/orders")["Records"][0]["cf"]["request"]
    return event("origin-response", req, response(status, description, *pairs))


def viewer_response(status: str, description: str, *pairs: tuple[str, str]) -> Event:
    return event(
        "viewer-response", request("/app/index.html"), response(status, description, *pairs)
    )


def header_value(message: Event, name: str) -> str:
    (entry,) = message["headers"][name]
    assert entry["key"].lower() == name
    value: str = entry["value"]
    return value


def is_request(result: Event) -> bool:
    """A generated response is told apart from a request by its status key."""
    return "status" not in result and "uri" in result


# --- the examples as a set ---

EXAMPLES = sorted(path.stem for path in FUNCTIONS.glob("*.py"))


def test_the_example_config_loads_and_uses_every_example() -> None:
    config = load_config(EXAMPLE_CONFIG)

    used = {function.handler.split(".")[0] for function in config.functions.values()}
    assert used == set(EXAMPLES)
    assert all(function.code == FUNCTIONS for function in config.functions.values())
    associated = {
        association.function
        for behavior in config.all_behaviors
        for _, association in behavior.functions
    }
    assert associated == set(config.functions)


@pytest.mark.parametrize("name", EXAMPLES)
def test_examples_use_only_the_standard_library(name: str) -> None:
    tree = ast.parse((FUNCTIONS / f"{name}.py").read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        node.module.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module
    }

    assert imported <= sys.stdlib_module_names
    assert callable(example(name).handler)


# --- security_headers (viewer-response) ---


def test_security_headers_are_added_and_override_the_origin() -> None:
    result = invoke(
        "security_headers",
        viewer_response(
            "200",
            "OK",
            ("Content-Type", "text/html; charset=utf-8"),
            ("ETag", '"9f1e"'),
            ("X-Frame-Options", "SAMEORIGIN"),
        ),
    )

    assert (result["status"], result["statusDescription"]) == ("200", "OK")
    assert header_value(result, "strict-transport-security").startswith("max-age=63072000")
    assert header_value(result, "x-content-type-options") == "nosniff"
    assert header_value(result, "x-frame-options") == "DENY"
    assert header_value(result, "referrer-policy") == "strict-origin-when-cross-origin"
    assert "default-src 'self'" in header_value(result, "content-security-policy")
    assert result["headers"]["x-frame-options"][0]["key"] == "X-Frame-Options"
    assert header_value(result, "content-type") == "text/html; charset=utf-8"
    assert header_value(result, "etag") == '"9f1e"'
    assert "body" not in result


# --- spa_rewrite (origin-request or viewer-request) ---


@pytest.mark.parametrize(
    ("uri", "rewritten"),
    [
        ("/about", "/index.html"),
        ("/account/settings", "/index.html"),
        ("/v1.2/about", "/index.html"),
        ("/", "/index.html"),
        ("/docs/", "/docs/index.html"),
        ("/docs/guide/", "/docs/guide/index.html"),
        ("/css/site.css", "/css/site.css"),
        ("/img/logo.svg", "/img/logo.svg"),
        ("/index.html", "/index.html"),
    ],
)
@pytest.mark.parametrize("event_type", ["origin-request", "viewer-request"])
def test_spa_rewrite(uri: str, rewritten: str, event_type: str) -> None:
    if event_type == "origin-request":
        incoming = origin_request(uri, S3_ORIGIN, querystring="tab=2")
    else:
        incoming = viewer_request(uri, "tab=2")

    result = invoke("spa_rewrite", incoming)

    expected = copy.deepcopy(incoming["Records"][0]["cf"]["request"])
    expected["uri"] = rewritten
    assert result == expected


# --- redirects (viewer-request) ---


@pytest.mark.parametrize(
    ("uri", "querystring", "status", "description", "location"),
    [
        ("/about-us", "", "301", "Moved Permanently", "/about"),
        ("/contact.html", "ref=footer", "301", "Moved Permanently", "/contact?ref=footer"),
        ("/sale", "utm_source=mail", "302", "Found", "/offers/summer?utm_source=mail"),
        ("/blog/2019/edge-caching", "", "301", "Moved Permanently", "/archive/2019/edge-caching"),
    ],
)
def test_redirects_answer_moved_paths(
    uri: str, querystring: str, status: str, description: str, location: str
) -> None:
    result = invoke("redirects", viewer_request(uri, querystring))

    assert result["status"] == status
    assert result["statusDescription"] == description
    assert header_value(result, "location") == location
    assert header_value(result, "cache-control") == "max-age=3600"


@pytest.mark.parametrize("uri", ["/about", "/blog/2020/new", "/about-us/team", "/sales"])
def test_redirects_pass_other_requests_unchanged(uri: str) -> None:
    incoming = viewer_request(uri, "a=1")

    assert invoke("redirects", incoming) == incoming["Records"][0]["cf"]["request"]


# --- basic_auth (viewer-request) ---


def basic(user: str, password: str, scheme: str = "Basic") -> tuple[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ("Authorization", f"{scheme} {token}")


@pytest.mark.parametrize("scheme", ["Basic", "basic", "BASIC"])
def test_basic_auth_lets_the_right_password_through(scheme: str) -> None:
    incoming = viewer_request("/admin/", "", basic("edge", "let-me-in", scheme))

    result = invoke("basic_auth", incoming)

    assert is_request(result)
    assert result == incoming["Records"][0]["cf"]["request"]


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        basic("edge", "wrong"),
        basic("admin", "let-me-in"),
        ("Authorization", "Bearer ZWRnZTpsZXQtbWUtaW4="),
        ("Authorization", "Basic"),
        ("Authorization", "Basic \u00e9\u00e9\u00e9"),
    ],
    ids=["none", "wrong-password", "wrong-user", "bearer", "empty", "not-ascii"],
)
def test_basic_auth_answers_401_otherwise(authorization: tuple[str, str] | None) -> None:
    pairs = (authorization,) if authorization else ()

    result = invoke("basic_auth", viewer_request("/admin/", "", *pairs))

    assert (result["status"], result["statusDescription"]) == ("401", "Unauthorized")
    assert header_value(result, "www-authenticate") == 'Basic realm="edgesim", charset="UTF-8"'
    assert header_value(result, "content-type") == "text/html; charset=utf-8"
    assert header_value(result, "cache-control") == "no-store"
    assert "401 Unauthorized" in result["body"]


# --- ab_testing (viewer-request) ---


@pytest.mark.parametrize(
    ("cookie", "variant"),
    [
        ("ab-variant=a", "a"),
        ("ab-variant=b", "b"),
        ("sid=abc123; ab-variant=b; theme=dark", "b"),
    ],
)
def test_ab_testing_keeps_the_variant_in_the_cookie(cookie: str, variant: str) -> None:
    incoming = viewer_request("/shop/cart", "", ("Cookie", cookie))

    result = invoke("ab_testing", incoming)

    assert result["uri"] == f"/{variant}/shop/cart"
    assert result["headers"]["cookie"] == [{"key": "Cookie", "value": cookie}]


def test_ab_testing_reads_every_cookie_header() -> None:
    incoming = viewer_request("/shop/", "", ("Cookie", "sid=abc123"), ("Cookie", "ab-variant=a"))

    assert invoke("ab_testing", incoming)["uri"] == "/a/shop/"


@pytest.mark.parametrize("cookie", [None, "sid=abc123", "ab-variant=c"])
def test_ab_testing_assigns_new_viewers_at_random(cookie: str | None) -> None:
    pairs = (("Cookie", cookie),) if cookie else ()
    seen = set()
    for _ in range(200):
        result = invoke("ab_testing", viewer_request("/shop/", "", *pairs))

        variant = result["uri"].split("/")[1]
        seen.add(variant)
        assert result["uri"] == f"/{variant}/shop/"
        # The choice travels to the origin in the request's one cookie header.
        expected = f"ab-variant={variant}" if cookie is None else f"{cookie}; ab-variant={variant}"
        assert result["headers"]["cookie"] == [{"key": "Cookie", "value": expected}]
    assert seen == {"a", "b"}


# --- normalize_query (viewer-request) ---


@pytest.mark.parametrize(
    ("querystring", "normalized"),
    [
        ("b=2&a=1", "a=1&b=2"),
        ("a=1&b=2&utm_source=news&utm_medium=email", "a=1&b=2"),
        ("Page=2&SORT=price&fbclid=IwAR0x&gclid=Cj0K", "page=2&sort=price"),
        ("tag=new&b=1&tag=sale", "b=1&tag=new&tag=sale"),
        ("q=hello+world", "q=hello%20world"),
        ("q=caf%C3%A9&lang=fr", "lang=fr&q=caf%C3%A9"),
        ("flag=&x=1", "flag=&x=1"),
        ("utm_campaign=spring&msclkid=1", ""),
        ("", ""),
    ],
)
def test_normalize_query(querystring: str, normalized: str) -> None:
    incoming = viewer_request("/api/items", querystring)

    result = invoke("normalize_query", incoming)

    expected = copy.deepcopy(incoming["Records"][0]["cf"]["request"])
    expected["querystring"] = normalized
    assert result == expected


def test_normalized_queries_are_one_cache_key() -> None:
    variants = ["a=1&b=2", "b=2&a=1", "B=2&a=1&utm_source=x", "gclid=1&a=1&b=2"]

    keys = {invoke("normalize_query", viewer_request("/p", q))["querystring"] for q in variants}

    assert keys == {"a=1&b=2"}


# --- choose_origin (origin-request) ---


def assert_valid_custom_origin(origin: Event) -> None:
    """The constraints CloudFront puts on a custom origin a function returns (section 1.4)."""
    (kind,) = origin
    assert kind == "custom"
    custom = origin["custom"]
    domain = custom["domainName"]
    assert domain and ":" not in domain and not domain.replace(".", "").isdigit()
    assert custom["port"] in (80, 443) or 1024 <= custom["port"] <= 65535
    assert custom["protocol"] in ("http", "https")
    assert custom["path"] == "" or (
        custom["path"].startswith("/") and not custom["path"].endswith("/")
    )
    assert 4 <= custom["readTimeout"] <= 60
    assert 1 <= custom["keepaliveTimeout"] <= 60
    assert set(custom["sslProtocols"]) <= {"TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"}


def test_choose_origin_sends_eu_requests_to_the_port_in_the_custom_header() -> None:
    result = invoke("choose_origin", origin_request("/eu/products/42"))

    assert_valid_custom_origin(result["origin"])
    custom = result["origin"]["custom"]
    assert (custom["domainName"], custom["port"], custom["protocol"]) == ("localhost", 3101, "http")
    assert custom["customHeaders"] == {
        "x-origin-verify": [{"key": "x-origin-verify", "value": "abc"}]
    }
    assert header_value(result, "host") == "localhost"
    assert result["uri"] == "/eu/products/42"


def test_choose_origin_switches_an_s3_origin_to_the_default_eu_port() -> None:
    module = example("choose_origin")

    result = invoke("choose_origin", origin_request("/eu/", S3_ORIGIN))

    assert_valid_custom_origin(result["origin"])
    custom = result["origin"]["custom"]
    assert (custom["domainName"], custom["port"]) == ("localhost", module.EU_ORIGIN_PORT)
    assert custom["customHeaders"] == {}


@pytest.mark.parametrize("uri", ["/products/42", "/europe/", "/eu"])
def test_choose_origin_leaves_other_requests_alone(uri: str) -> None:
    incoming = origin_request(uri)

    assert invoke("choose_origin", incoming) == incoming["Records"][0]["cf"]["request"]


# --- custom_error_page (origin-response) ---


@pytest.mark.parametrize(
    ("status", "description"),
    [("500", "Internal Server Error"), ("502", "Bad Gateway"), ("504", "Gateway Timeout")],
)
def test_custom_error_page_replaces_server_errors(status: str, description: str) -> None:
    incoming = origin_response(
        status,
        description,
        ("Content-Type", "text/plain"),
        ("Content-Length", "1234"),
        ("Content-Encoding", "gzip"),
        ("Server", "nginx"),
    )

    result = invoke("custom_error_page", incoming)

    assert (result["status"], result["statusDescription"]) == ("503", "Service Unavailable")
    assert header_value(result, "content-type") == "text/html; charset=utf-8"
    assert header_value(result, "cache-control") == "max-age=30"
    assert header_value(result, "retry-after") == "30"
    assert header_value(result, "server") == "nginx"
    assert "content-length" not in result["headers"]
    assert "content-encoding" not in result["headers"]
    assert result["bodyEncoding"] == "text"
    assert "We'll be right back" in result["body"]


@pytest.mark.parametrize(
    ("status", "description"),
    [("200", "OK"), ("304", "Not Modified"), ("404", "Not Found"), ("499", "Client Closed")],
)
def test_custom_error_page_passes_other_responses(status: str, description: str) -> None:
    incoming = origin_response(status, description, ("Content-Type", "application/json"))

    result = invoke("custom_error_page", incoming)

    assert result == incoming["Records"][0]["cf"]["response"]
    assert "body" not in result
