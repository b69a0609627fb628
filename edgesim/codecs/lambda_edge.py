"""Lambda@Edge event JSON, in and out.

``build_event`` writes the event a function receives at one of the four
triggers; ``apply_result`` reads what the function returned, validates it as
CloudFront does and gives back an ``Outcome``: the request to continue with,
a generated response, or the modified response. Anything CloudFront would
refuse raises ``LambdaValidationError`` (502) with a reason naming the rule.
The per-event rules come from ``edgesim.hooks.HOOK_RULES``.

Sources (CloudFront Developer Guide): lambda-event-structure.md,
lambda-generating-http-responses-in-requests.md, lambda-updating-http-
responses.md, edge-functions-restrictions.md; cloudfront-semantics.md
sections 1 and 2.

Choices where AWS is silent, or where a local simulator must differ:

- A field missing from a result keeps its current value (only ``status`` is
  required, and only for responses). Read-only request fields (``clientIp``,
  ``method``) are ignored if changed, as AWS's "read-only" suggests.
- A viewer-response function that changes the status fails validation (502):
  AWS says it "cannot modify the HTTP status code", and a change it cannot
  make is a validation error everywhere else (read-only headers).
- Headers CloudFront hides from functions (``DISALLOWED_HEADERS``) are carried
  over unchanged from the original; a function cannot remove what it never saw.
- Content-Length and Transfer-Encoding of a response are CloudFront's: they
  are recomputed for a new body and restored from the original otherwise.
- A ``uri`` or ``querystring`` a function sets is sent UTF-8 percent-encoded
  (AWS: "CloudFront forwards the UTF-8 encoded values").
- Origins: a custom ``domainName`` may be an IP address or ``localhost``
  (CloudFront refuses IPs; local origins need them). A directory origin
  appears as an S3 origin ``<name>.s3.us-east-1.amazonaws.com``; a function
  that points it anywhere else gets a custom origin ``https://<domainName>``,
  which a real public bucket answers and anything else fails at fetch (502).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from edgesim.codecs.lambda_fields import (
    FRAMING,
    Json,
    check_response_size,
    checked_headers,
    checked_target,
    decode_headers,
    encode_headers,
    framed,
    replacement_request_body,
    response_body,
    restore_framing,
    status_code,
    status_description,
)
from edgesim.codecs.lambda_origin import (
    LAMBDA_ORIGIN_NAME,
    AnyOrigin,
    checked_origin,
    encode_origin,
    s3_domain,
)
from edgesim.config.schema import Distribution, OriginChain
from edgesim.errors import LambdaValidationError
from edgesim.hooks import HOOK_RULES, EventType, HookRule, is_disallowed
from edgesim.models import Headers, Request, Response, slot_init
from edgesim.wire import reason_phrase

__all__ = [
    "LAMBDA_ORIGIN_NAME",
    "ContinueRequest",
    "GeneratedResponse",
    "ModifiedResponse",
    "Outcome",
    "apply_result",
    "build_event",
    "s3_domain",
]


@slot_init
@dataclass(frozen=True, slots=True)
class ContinueRequest:
    """A request event's result: go on with ``request`` (to ``origin`` at origin-request).

    ``origins`` is what a viewer-request CloudFront Function's origin helpers
    chose for this request, if it called one.
    """

    request: Request
    origin: AnyOrigin | None
    origins: OriginChain | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class GeneratedResponse:
    """A request event's result was a response: answer the viewer with it."""

    response: Response
    # X-Cache and log result type: a CloudFront Function's is FunctionGeneratedResponse.
    result_type: str = "LambdaGeneratedResponse"


@slot_init
@dataclass(frozen=True, slots=True)
class ModifiedResponse:
    """A response event's result: the response as the function left it."""

    response: Response


Outcome = ContinueRequest | GeneratedResponse | ModifiedResponse


# -- building events -----------------------------------------------------------


def build_event(
    event_type: EventType,
    *,
    request: Request,
    response: Response | None,
    distribution: Distribution,
    request_id: str,
    origin: AnyOrigin | None,
    include_body: bool,
    body: bytes | None,
) -> Json:
    """The ``{"Records": [{"cf": ...}]}`` event a function at ``event_type`` receives.

    ``request`` is the request as this event sees it (the viewer's at viewer
    events, the one going to the origin at origin events); ``response`` is
    required at response events. ``origin`` appears at origin events.
    ``body`` is the request body read so far: pass at least one byte more
    than the event exposes so truncation shows as ``inputTruncated``.
    """
    rule = HOOK_RULES[event_type]
    req: Json = {
        "clientIp": request.client_ip,
        "method": request.method,
        # The server only accepts ASCII targets, so the URI and query string are
        # passed as received; CloudFront does the same for UTF-8 values.
        "uri": request.path,
        "querystring": request.query,
        "headers": encode_headers(request.headers),
    }
    if include_body and rule.body_allowed:
        req["body"] = _encode_body(body or b"", rule.max_body_exposed_bytes or 0)
    if rule.exposes_origin and origin is not None:
        req["origin"] = encode_origin(origin)
    cf: Json = {
        "config": {
            "distributionDomainName": distribution.domain,
            "distributionId": distribution.id,
            "eventType": str(rule.event),  # the plain value, without Enum.value's calls
            "requestId": request_id,
        },
        "request": req,
    }
    if not rule.is_request:
        if response is None:
            raise ValueError(f"a {event_type} event needs a response")
        cf["response"] = {
            "status": str(response.status),
            "statusDescription": response.reason or reason_phrase(response.status),
            "headers": encode_headers(response.headers),
        }
    return {"Records": [{"cf": cf}]}


def _encode_body(body: bytes, limit: int) -> Json:
    return {
        "inputTruncated": len(body) > limit,
        "action": "read-only",
        "encoding": "base64",
        "data": base64.b64encode(body[:limit]).decode("ascii"),
    }


# -- reading results -------------------------------------------------------------


def apply_result(
    event_type: EventType,
    result: object,
    *,
    request: Request,
    response: Response | None,
    origin: AnyOrigin | None,
    event: Json | None = None,
) -> Outcome:
    """What a function's ``result`` means at ``event_type``, or LambdaValidationError.

    ``request``, ``response`` and ``origin`` are the values the event was built
    from: read-only headers are compared with them, and whatever the result
    leaves alone is taken from them unchanged (the same objects when nothing
    changed). ``event``, the event itself, lets headers returned as they were
    given be recognised without decoding them. At request events a result
    with a ``status`` key is a generated response; anything else is the
    request to continue with.
    """
    rule = HOOK_RULES[event_type]
    if not isinstance(result, dict):
        raise LambdaValidationError("The JSON output must be an object type.", invalid_json=True)
    given = event["Records"][0]["cf"] if event is not None else None
    if rule.is_request:
        if rule.may_generate_response and "status" in result:
            return GeneratedResponse(_generated_response(rule, result))
        sent = given["request"]["headers"] if given else None
        return _continue_request(rule, result, request, origin, sent)
    if response is None:
        raise ValueError(f"a {event_type} result needs the response the event was built from")
    sent = given["response"]["headers"] if given else None
    return ModifiedResponse(_modified_response(rule, result, response, sent))


def _continue_request(
    rule: HookRule,
    result: Json,
    request: Request,
    origin: AnyOrigin | None,
    sent_headers: Json | None,
) -> ContinueRequest:
    changes: dict[str, object] = {}
    uri = result.get("uri", request.path)
    query = result.get("querystring", request.query)
    if uri != request.path or query != request.query:
        path, query = checked_target(uri, query)
        if path != request.path:
            changes["path"] = path
        if query != request.query:
            changes["query"] = query
    headers = request.headers
    if "headers" in result and result["headers"] != sent_headers:
        fields = decode_headers(result["headers"], "request headers")
        headers = checked_headers(rule, fields, request.headers)
        if headers is not request.headers:
            changes["headers"] = headers
    if "body" in result:
        body = replacement_request_body(rule, result["body"])
        if body is not None:
            changes["body"] = body
    if rule.may_change_origin and origin is not None and "origin" in result:
        origin = checked_origin(result["origin"], origin, headers)
    return ContinueRequest(request.replace(**changes) if changes else request, origin)


def _generated_response(rule: HookRule, result: Json) -> Response:
    status = status_code(result["status"])
    reason = status_description(result, reason_phrase(status))
    fields: list[tuple[str, str]] = []
    if "headers" in result:
        fields = decode_headers(result["headers"], "response headers")
        for name, _ in fields:
            if is_disallowed(name):
                raise LambdaValidationError(f"The response adds the disallowed header {name}.")
    body = response_body(result) or b""
    if status == 204 and body and rule.is_viewer:
        raise LambdaValidationError("A generated 204 (No Content) response can't have a body.")
    check_response_size(rule, fields, body)
    return Response(status, Headers(framed(fields, status, len(body))), body, reason)


def _modified_response(
    rule: HookRule, result: Json, response: Response, sent_headers: Json | None
) -> Response:
    if "status" not in result:
        raise LambdaValidationError("The response has no status.")
    status = status_code(result["status"])
    if status != response.status and not rule.may_change_status:
        raise LambdaValidationError(
            f"A {rule.event} function can't change the status code"
            f" (from {response.status} to {status})."
        )
    same = status == response.status
    shown = response.reason or reason_phrase(response.status)  # as the event showed it
    reason = status_description(result, shown if same else reason_phrase(status))
    if same and reason == shown:
        reason = response.reason
    headers = response.headers
    if "headers" in result and result["headers"] != sent_headers:
        fields = decode_headers(result["headers"], "response headers")
        headers = checked_headers(rule, fields, response.headers)
    body = response_body(result)
    if body is None:
        if headers is not response.headers:
            headers = restore_framing(headers, response.headers)
        elif same and reason == response.reason:
            return response
        return response.replace(status=status, reason=reason, headers=headers)
    fields = [f for f in headers if f[0].lower() not in FRAMING]
    check_response_size(rule, fields, body)
    headers = Headers(framed(fields, status, len(body)))
    return response.replace(status=status, reason=reason, headers=headers, body=body)
