"""An event to start a test from: what ``edgesim event`` prints.

A Lambda@Edge event, or with ``cloudfront_function`` a CloudFront Functions
test event object (viewer events only; what TestFunction and ``edgesim
invoke`` take). Either is built the way the edge builds it for a real
request, by the codec (``edgesim.codecs.build_event``,
``edgesim.codecs.cloudfront_function.build_event``), from a ``Request`` and
``Response`` made of the options; nothing here writes event JSON itself.
Origin events show the request as CloudFront sends it to the origin
(``Forwarding``), under an origin request policy that forwards every viewer
header, query string and cookie (CloudFront's AllViewer), so every header
given appears.

Choices where AWS is silent: the client IP defaults to 203.0.113.10 (a
documentation address), ``Host`` to the distribution's domain, and the
origin of origin events to ``https://example.com``. A body makes the
association IncludeBody, and only Lambda@Edge request events take one
(CloudFront Functions never see the body).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from edgesim.codecs import build_event
from edgesim.codecs import cloudfront_function as cff
from edgesim.config.loader import quick_config
from edgesim.config.schema import (
    ALL_METHODS,
    Behavior,
    Distribution,
    Origin,
    OriginRequestPolicy,
    Selection,
)
from edgesim.errors import ConfigError
from edgesim.forwarding import Forwarding
from edgesim.hooks import FUNCTION_RULES, HOOK_RULES, EventType, is_disallowed
from edgesim.models import Headers, Request, Response
from edgesim.pipeline import new_request_id

__all__ = ["EventSpec", "parse_header", "sample_event"]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_ALL_VIEWER = OriginRequestPolicy(Selection("all"), Selection("all"), Selection("all"))
_DEFAULT_ORIGIN = "https://example.com"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """What the event describes; ``None`` fields take the defaults above."""

    uri: str = "/"
    method: str = "GET"
    querystring: str = ""
    headers: Sequence[tuple[str, str]] = ()
    client_ip: str = "203.0.113.10"
    body: bytes | None = None
    origin: str | None = None  # a URL, origin events only
    status: int | None = None  # response events only
    response_headers: Sequence[tuple[str, str]] = field(default=())


def parse_header(text: str) -> tuple[str, str]:
    """``name=value`` (or ``name: value``) as a header field; ValueError if it is not one."""
    name, sep, value = text.partition("=")
    if not sep or ":" in name:
        name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise ValueError(f"{text!r} is not a header: write name=value, like accept=text/html")
    if any(ord(ch) < 32 and ch != "\t" for ch in value):
        raise ValueError(f"the value of header {name} has control characters")
    return name, value


def sample_event(
    event_type: EventType,
    spec: EventSpec,
    distribution: Distribution | None = None,
    *,
    cloudfront_function: bool = False,
) -> dict[str, object]:
    """The event a function at ``event_type`` would receive for ``spec``: a
    Lambda@Edge one, or a CloudFront Function's with ``cloudfront_function``.

    Raises ValueError naming the option that does not fit the event or is
    malformed.
    """
    rule = HOOK_RULES[event_type]
    distribution = distribution or Distribution()
    if cloudfront_function:
        return _function_event(event_type, spec, distribution)
    if spec.body is not None and not rule.body_allowed:
        raise ValueError(f"--body is for viewer-request and origin-request, not {event_type}")
    if spec.origin is not None and not rule.exposes_origin:
        raise ValueError(f"--origin is for origin-request and origin-response, not {event_type}")
    if rule.is_request and (spec.status is not None or spec.response_headers):
        raise ValueError(
            f"--status and --response-header are for response events, not {event_type}"
        )
    request = _request(spec, distribution)
    origin = _origin(spec.origin) if rule.exposes_origin else None
    request_id = new_request_id()
    if origin is not None:
        policy = Behavior("*", origin.name, origin_request=_ALL_VIEWER)
        forwarding = Forwarding.for_behavior(policy, distribution)
        cacheable = request.method in ("GET", "HEAD")
        request = forwarding.origin_request(request, origin, request_id, cacheable=cacheable)
    response = None if rule.is_request else _response(spec)
    return build_event(
        event_type,
        request=request,
        response=response,
        distribution=distribution,
        request_id=request_id,
        origin=origin,
        include_body=spec.body is not None,
        body=spec.body,
    )


def _function_event(
    event_type: EventType, spec: EventSpec, distribution: Distribution
) -> dict[str, object]:
    if event_type not in FUNCTION_RULES:
        raise ValueError(
            f"CloudFront Functions run only at viewer-request and viewer-response, not {event_type}"
        )
    if spec.body is not None:
        raise ValueError("--body: CloudFront Functions can't read the request body")
    if spec.origin is not None:
        raise ValueError("--origin is for Lambda@Edge origin-request and origin-response events")
    rule = FUNCTION_RULES[event_type]
    if rule.is_request and (spec.status is not None or spec.response_headers):
        raise ValueError("--status and --response-header are for viewer-response")
    return cff.build_event(
        event_type,
        request=_request(spec, distribution),
        response=None if rule.is_request else _response(spec),
        distribution=distribution,
        request_id=new_request_id(),
    )


def _response(spec: EventSpec) -> Response:
    status = 200 if spec.status is None else spec.status
    if not 100 <= status <= 599:
        raise ValueError(f"--status must be an HTTP status from 100 to 599, not {status}")
    return Response(status, Headers(_shown(spec.response_headers, "--response-header")))


def _request(spec: EventSpec, distribution: Distribution) -> Request:
    if not spec.uri.startswith("/"):
        raise ValueError(f"--uri must start with '/', not {spec.uri!r}")
    method = spec.method.upper()
    if method not in ALL_METHODS:
        raise ValueError(f"--method must be one of {', '.join(sorted(ALL_METHODS))}")
    try:
        client_ip = str(ipaddress.ip_address(spec.client_ip))
    except ValueError:
        raise ValueError(f"--client-ip {spec.client_ip!r} is not an IP address") from None
    query = spec.querystring.removeprefix("?")
    if any(ch in query for ch in " #") or not query.isprintable():
        raise ValueError("--querystring can't contain spaces, '#' or control characters")
    headers = Headers(_shown(spec.headers, "--header"))
    if "host" not in headers:
        headers = Headers((("Host", distribution.domain), *headers))
    if spec.body is not None:
        headers = headers.set("Content-Length", str(len(spec.body)))
    return Request(
        method,
        quote(spec.uri, safe="/%:@!$&'()*+,;=-._~"),
        query,
        headers,
        client_ip,
        body=spec.body,
    )


def _shown(fields: Sequence[tuple[str, str]], option: str) -> list[tuple[str, str]]:
    for name, _ in fields:
        if is_disallowed(name):
            raise ValueError(
                f"{option} {name}: CloudFront never shows this header to functions "
                "(a disallowed header, edge-functions-restrictions.md)"
            )
    return list(fields)


def _origin(url: str | None) -> Origin:
    try:
        config = quick_config(url or _DEFAULT_ORIGIN)
    except ConfigError as error:
        raise ValueError(f"--origin: {error.message}") from None
    return config.origins["origin"]
