"""CloudFront Functions event JSON, in and out.

``build_event`` writes the event a CloudFront Function receives at
viewer-request or viewer-response (functions-event-structure.md; rules in
``edgesim.hooks.FUNCTION_RULES``); ``apply_result`` reads what it returned and
gives the same ``Outcome`` values as the Lambda@Edge codec, or raises
``FunctionValidationError`` (502) naming the rule. Event objects written by
hand for CloudFront's TestFunction API are read by ``cloudfront_test_event``.

Shapes: headers, cookies and query strings are objects keyed by name of
``{value}`` with ``multiValue`` when a name occurs more than once; response
cookies carry ``attributes``; ``statusCode`` is an integer; ``body`` is a
string or ``{encoding: text|base64, data}``.

Choices where AWS is silent:

- Query string names and values are passed as received (percent-encoded),
  and a function's are sent as it wrote them; an unchanged ``querystring``
  (or header, or cookie) object keeps the request's own bytes.
- A header name a function adds must be lowercase, as the event structure
  page says it "must" be; anything else fails validation.
- A non-integer ``statusCode`` fails validation ("an integer, not a string").
- ``multiValue`` rules as documented: a changed ``multiValue`` wins, else a
  changed ``value`` replaces the first occurrence only.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from edgesim.codecs.lambda_edge import ContinueRequest, GeneratedResponse, ModifiedResponse, Outcome
from edgesim.codecs.lambda_fields import FRAMING, framed, restore_framing, title_case
from edgesim.config.schema import Distribution
from edgesim.errors import FunctionValidationError
from edgesim.hooks import (
    DISALLOWED_BY_NAME,
    FUNCTION_RULES,
    EventType,
    FunctionRule,
    is_disallowed,
)
from edgesim.models import Headers, Request, Response
from edgesim.wire import reason_phrase

__all__ = ["apply_result", "build_event"]

Json = dict[str, Any]
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


# -- building events -----------------------------------------------------------------


def build_event(
    event_type: EventType,
    *,
    request: Request,
    response: Response | None,
    distribution: Distribution,
    request_id: str,
) -> Json:
    """The event object a CloudFront Function at ``event_type`` receives."""
    rule = FUNCTION_RULES[event_type]
    event: Json = {
        "version": "1.0",
        "context": {
            "distributionDomainName": distribution.domain,
            "distributionId": distribution.id,
            "eventType": str(event_type),  # the plain value, without Enum.value's calls
            "requestId": request_id,
        },
        "viewer": {"ip": request.client_ip},
        "request": {
            "method": request.method,
            "uri": request.path,
            "querystring": _query_object(request.query),
            "headers": _headers_object(request.headers),
            "cookies": _request_cookies(request.headers),
        },
    }
    if not rule.is_request:
        if response is None:
            raise ValueError(f"a {event_type} event needs a response")
        event["response"] = {
            "statusCode": response.status,
            "statusDescription": response.reason or reason_phrase(response.status),
            "headers": _headers_object(response.headers),
            "cookies": _response_cookies(response.headers),
        }
    return event


def _multi(values: list[str]) -> Json:
    entry: Json = {"value": values[0]}
    if len(values) > 1:
        entry["multiValue"] = [{"value": v} for v in values]
    return entry


def _query_object(query: str) -> Json:
    grouped: dict[str, list[str]] = {}
    for part in query.split("&") if query else ():
        if part:
            name, _, value = part.partition("=")
            grouped.setdefault(name, []).append(value)
    return {name: _multi(values) for name, values in grouped.items()}


def _headers_object(headers: Headers) -> Json:
    grouped: dict[str, list[str]] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in _COOKIE_HEADERS or DISALLOWED_BY_NAME[lower]:
            continue
        grouped.setdefault(lower, []).append(value)
    return {name: _multi(values) for name, values in grouped.items()}


def _request_cookies(headers: Headers) -> Json:
    grouped: dict[str, list[str]] = {}
    for header in headers.get_all("cookie"):
        for pair in header.split(";"):
            name, _, value = pair.strip().partition("=")
            if name:
                grouped.setdefault(name, []).append(value)
    return {name: _multi(values) for name, values in grouped.items()}


def _response_cookies(headers: Headers) -> Json:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for header in headers.get_all("set-cookie"):
        pair, _, attributes = header.partition(";")
        name, _, value = pair.strip().partition("=")
        grouped.setdefault(name, []).append((value, attributes.strip()))
    out: Json = {}
    for name, items in grouped.items():
        entry: Json = {"value": items[0][0]}
        if items[0][1]:
            entry["attributes"] = items[0][1]
        if len(items) > 1:
            entry["multiValue"] = [
                {"value": v, **({"attributes": a} if a else {})} for v, a in items
            ]
        out[name] = entry
    return out


# -- reading results ---------------------------------------------------------------------


def apply_result(
    event_type: EventType,
    result: object,
    *,
    event: Json,
    request: Request,
    response: Response | None,
) -> Outcome:
    """What the function's returned value means at ``event_type``.

    ``event`` is the event the function was given: what the result leaves as
    it was is taken from ``request`` / ``response`` unchanged.
    """
    rule = FUNCTION_RULES[event_type]
    if not isinstance(result, dict):
        raise FunctionValidationError("The function must return the request or a response object.")
    if rule.is_request:
        if "statusCode" in result:
            return GeneratedResponse(_generated(rule, result), "FunctionGeneratedResponse")
        return ContinueRequest(_request(rule, result, event["request"], request), None)
    assert response is not None
    return ModifiedResponse(_response(rule, result, event["response"], response))


def _request(rule: FunctionRule, result: Json, sent: Json, request: Request) -> Request:
    changes: dict[str, object] = {}
    uri = result.get("uri", sent["uri"])
    if uri != sent["uri"]:
        if not isinstance(uri, str) or not uri.startswith("/") or len(uri) >= 8192:
            raise FunctionValidationError("The uri must be a string that starts with a slash (/).")
        changes["path"] = uri
    query = result.get("querystring", sent["querystring"])
    if query != sent["querystring"]:
        changes["query"] = "&".join(
            f"{name}={value}" if value != "" else name
            for name, value in _entries(query, "querystring", sent["querystring"])
        )
    headers_obj = result.get("headers", sent["headers"])
    cookies_obj = result.get("cookies", sent["cookies"])
    if headers_obj != sent["headers"] or cookies_obj != sent["cookies"]:
        fields = _header_fields(rule, headers_obj, sent["headers"], request.headers)
        if cookies_obj == sent["cookies"]:
            fields += [(n, v) for n, v in request.headers if n.lower() == "cookie"]
        else:
            pairs = _entries(cookies_obj, "cookies", sent["cookies"])
            if pairs:
                fields.append(("Cookie", "; ".join(f"{n}={v}" for n, v in pairs)))
        changes["headers"] = Headers(fields)
    return request.replace(**changes) if changes else request


def _entries(obj: object, what: str, sent: Json) -> list[tuple[str, str]]:
    """(name, value) pairs of a querystring/headers/cookies object, multiValue rules applied."""
    if not isinstance(obj, dict):
        raise FunctionValidationError(f"The {what} must be an object keyed by name.")
    out: list[tuple[str, str]] = []
    for name, entry in obj.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("value", ""), str):
            raise FunctionValidationError(f"{what}.{name} must be an object with a string value.")
        before = sent.get(name) if isinstance(sent.get(name), dict) else None
        multi = entry.get("multiValue")
        if multi is not None and (before is None or multi != before.get("multiValue")):
            if not isinstance(multi, list) or not all(
                isinstance(m, dict) and isinstance(m.get("value"), str) for m in multi
            ):
                raise FunctionValidationError(f"{what}.{name}.multiValue must be a list of values.")
            out += [(name, m["value"]) for m in multi]
            continue
        value = str(entry.get("value", ""))
        rest = [m["value"] for m in (before or {}).get("multiValue", [])[1:]]
        out += [(name, value)] + [(name, v) for v in rest]
    return out


def _header_fields(
    rule: FunctionRule, obj: object, sent: Json, original: Headers
) -> list[tuple[str, str]]:
    """The headers the result describes, checked against the event's header rules."""
    pairs = _entries(obj, "headers", sent)
    case = {name.lower(): name for name, _ in original}
    for name, _ in pairs:
        if name in _COOKIE_HEADERS:
            raise FunctionValidationError(f"Use the cookies object, not the {name} header.")
        if name != name.lower() or not set(name) <= _TOKEN:
            raise FunctionValidationError(f"The header name {name!r} must be lowercase.")
        if is_disallowed(name):
            raise FunctionValidationError(f"The function adds the disallowed header {name}.")
    for name in rule.read_only_headers:
        before = [v for n, v in original if n.lower() == name]
        after = [v for n, v in pairs if n == name]
        if before != after:
            raise FunctionValidationError(f"The function changes the read-only header {name}.")
    fields = [(case.get(n, title_case(n)), v) for n, v in pairs]
    # What the function never saw (disallowed headers, Cookie) is carried over.
    hidden = [(n, v) for n, v in original if is_disallowed(n.lower())]
    return fields + hidden


def _status(result: Json) -> int:
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int):
        raise FunctionValidationError("The statusCode must be an integer.")
    if not 200 <= status <= 599:
        raise FunctionValidationError(f"The statusCode {status} is not between 200 and 599.")
    return status


def _body(result: Json) -> bytes | None:
    if "body" not in result:
        return None
    body = result["body"]
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, dict) and isinstance(body.get("data"), str):
        encoding = body.get("encoding", "text")
        if encoding == "text":
            return str(body["data"]).encode("utf-8")
        if encoding == "base64":
            try:
                return base64.b64decode(body["data"], validate=True)
            except (binascii.Error, ValueError):
                raise FunctionValidationError("The body is not valid base64.") from None
    raise FunctionValidationError('The body must be a string or {"encoding", "data"}.')


def _set_cookies(obj: object, sent: Json) -> list[tuple[str, str]]:
    if not isinstance(obj, dict):
        raise FunctionValidationError("The cookies must be an object keyed by name.")
    out: list[tuple[str, str]] = []
    for name, entry in obj.items():
        if not isinstance(entry, dict):
            raise FunctionValidationError(f"cookies.{name} must be an object with a value.")
        items = entry.get("multiValue") or [entry]
        if entry.get("multiValue") == (sent.get(name) or {}).get("multiValue") and items:
            items = [entry, *items[1:]]
        for item in items:
            text = f"{name}={item.get('value', '')}"
            if item.get("attributes"):
                text += f"; {item['attributes']}"
            out.append(("Set-Cookie", text))
    return out


def _generated(rule: FunctionRule, result: Json) -> Response:
    status = _status(result)
    reason = result.get("statusDescription") or reason_phrase(status)
    if not isinstance(reason, str):
        raise FunctionValidationError("The statusDescription must be a string.")
    fields = _header_fields(rule, result.get("headers", {}), {}, Headers())
    fields += _set_cookies(result.get("cookies", {}), {})
    body = _body(result) or b""
    size = len(body) + sum(len(n) + len(v) + 4 for n, v in fields)
    if size > rule.max_generated_response_bytes:
        raise FunctionValidationError(
            f"The response is {size} bytes; at most {rule.max_generated_response_bytes}."
        )
    return Response(status, Headers(framed(fields, status, len(body))), body, reason)


def _response(rule: FunctionRule, result: Json, sent: Json, response: Response) -> Response:
    status = _status(result) if "statusCode" in result else response.status
    reason = result.get("statusDescription", sent["statusDescription"])
    if not isinstance(reason, str):
        raise FunctionValidationError("The statusDescription must be a string.")
    if status != response.status and reason == sent["statusDescription"]:
        reason = reason_phrase(status)
    headers_obj = result.get("headers", sent["headers"])
    cookies_obj = result.get("cookies", sent["cookies"])
    headers = response.headers
    if headers_obj != sent["headers"] or cookies_obj != sent["cookies"]:
        visible = Headers(f for f in response.headers if f[0].lower() not in FRAMING)
        fields = _header_fields(rule, headers_obj, sent["headers"], visible)
        if cookies_obj == sent["cookies"]:
            fields += [(n, v) for n, v in response.headers if n.lower() == "set-cookie"]
        else:
            fields += _set_cookies(cookies_obj, sent["cookies"])
        headers = restore_framing(Headers(fields), response.headers)
    body = _body(result)
    if body is None:
        if status == response.status and reason == sent["statusDescription"]:
            if headers is response.headers:
                return response
            reason = response.reason
        return response.replace(status=status, reason=reason, headers=headers)
    fields = [f for f in headers if f[0].lower() not in FRAMING]
    return response.replace(
        status=status, reason=reason, headers=Headers(framed(fields, status, len(body))), body=body
    )
