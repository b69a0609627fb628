"""CloudFront Functions test event objects: what CloudFront's TestFunction API takes.

``complete_test_event`` checks an event object written by hand (or one of the
test objects AWS ships with its examples) and completes it into the event the
edge would give the function (``cloudfront_function.build_event`` writes those
for real requests). What test-function.md lets a test object leave out is
filled in: ``distributionDomainName``, ``distributionId`` and ``requestId``
from the config, and edgesim's choices where AWS is silent: ``method`` GET,
``uri`` ``/``, empty ``querystring``, ``headers`` and ``cookies``, ``version``
1.0, ``viewer.ip`` 127.0.0.1 and, for viewer-response, ``statusCode`` 200.
AWS's own samples spell ``multiValue`` as ``multivalue``; both are read as
``multiValue``.

Anything the function could not have been given by CloudFront is refused with
a ValueError naming the field (``request.headers.host: ...``): entries that
are not ``{"value": "..."}`` objects, a header name that is not lowercase
(test-function.md: "make sure the names of headers ... are lowercase", as they
always are in production), a ``uri`` without its leading slash, a
``statusCode`` that is not an integer, and an event object over the 40,960
bytes TestFunction accepts (API_TestFunction, ``EventObject``; counted as
compact JSON, the file's own whitespace aside).
"""

from __future__ import annotations

import json
from typing import Any

from edgesim.config.schema import Distribution
from edgesim.hooks import FUNCTION_RULES

__all__ = ["MAX_EVENT_OBJECT_BYTES", "complete_test_event"]

Json = dict[str, Any]
MAX_EVENT_OBJECT_BYTES = 40_960
_EVENT_TYPES = tuple(event.value for event in FUNCTION_RULES)


def complete_test_event(obj: object, *, distribution: Distribution, request_id: str) -> Json:
    """The event ``obj`` describes, as the function would receive it; ValueError if bad."""
    if not isinstance(obj, dict):
        raise ValueError(
            'a test event object is a JSON object with "version", "context", "viewer"'
            ' and "request" (functions-event-structure.md)'
        )
    size = len(json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    if size > MAX_EVENT_OBJECT_BYTES:
        raise ValueError(
            f"the event object is {size:,} bytes; TestFunction takes at most "
            f"{MAX_EVENT_OBJECT_BYTES:,}"
        )
    context = dict(_object(obj.get("context"), "context"))
    event_type = context.get("eventType")
    if event_type not in _EVENT_TYPES:
        given = "" if event_type is None else f", not {event_type!r}"
        raise ValueError(
            f"context.eventType must be {' or '.join(map(repr, _EVENT_TYPES))}{given}"
            " (CloudFront Functions run at viewer events only)"
        )
    context.setdefault("distributionDomainName", distribution.domain)
    context.setdefault("distributionId", distribution.id)
    context.setdefault("requestId", request_id)
    viewer = dict(_object(obj.get("viewer"), "viewer"))
    viewer.setdefault("ip", "127.0.0.1")
    _string(viewer["ip"], "viewer.ip")
    if "request" not in obj:
        raise ValueError('the event object has no "request"')
    request = dict(_object(obj["request"], "request"))
    request.setdefault("method", "GET")
    request.setdefault("uri", "/")
    _string(request["method"], "request.method")
    if not _string(request["uri"], "request.uri").startswith("/"):
        raise ValueError(f"request.uri must start with '/', not {request['uri']!r}")
    for key in ("querystring", "headers", "cookies"):
        request[key] = _fields(request.get(key), f"request.{key}")
    event: Json = {
        "version": obj.get("version", "1.0"),
        "context": context,
        "viewer": viewer,
        "request": request,
    }
    if event_type == "viewer-response":
        response = dict(_object(obj.get("response"), "response"))
        status = response.setdefault("statusCode", 200)
        if isinstance(status, bool) or not isinstance(status, int):
            raise ValueError(f"response.statusCode must be an integer, not {status!r}")
        for key in ("headers", "cookies"):
            response[key] = _fields(response.get(key), f"response.{key}")
        event["response"] = response
    return event


def _object(value: object, where: str) -> Json:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object, not {json.dumps(value)}")
    return value


def _string(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string, not {json.dumps(value)}")
    return value


def _fields(value: object, where: str) -> Json:
    """A querystring, headers or cookies object, ``multivalue`` read as ``multiValue``."""
    out: Json = {}
    for name, given in _object(value, where).items():
        path = f"{where}.{name}"
        if where.endswith(".headers") and name != name.lower():
            raise ValueError(
                f"{where}: {name!r} must be lowercase ({name.lower()!r}), as header names"
                " always are in CloudFront Functions events"
            )
        if not isinstance(given, dict):
            shown = json.dumps(given)
            raise ValueError(f'{path} must be an object like {{"value": "..."}}, not {shown}')
        entry = given
        if "multivalue" in given and "multiValue" not in given:
            entry = {("multiValue" if k == "multivalue" else k): v for k, v in given.items()}
        _string(entry.get("value"), f"{path}.value")
        multi = entry.get("multiValue", [])
        if not isinstance(multi, list):
            raise ValueError(f'{path}.multiValue must be a list of {{"value": ...}} objects')
        for index, item in enumerate(multi):
            _string(_object(item, f"{path}.multiValue[{index}]").get("value"),
                    f"{path}.multiValue[{index}].value")  # fmt: skip
        out[name] = entry
    return out
