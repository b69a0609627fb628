"""What a function changed: a request or response before and after, as a list of changes.

Each change is ``{"field": ..., "before": ..., "after": ...}``: ``field`` is
``uri``, ``querystring``, ``status``, ``statusDescription`` or ``body`` (the
names of the Lambda@Edge event), or ``header`` with the header's ``name``.
A header that appears only after was added (``before`` is None), one that
appears only before was removed (``after`` is None); repeated fields are
compared as the list of their values, joined with ", " for display.
Used by the trace (edgesim.trace) only when someone looks at a request.
"""

from __future__ import annotations

from typing import Any

from edgesim.models import Headers, Request, Response

__all__ = ["header_changes", "headers_json", "request_changes", "response_changes"]

Change = dict[str, Any]


def headers_json(headers: Headers) -> list[list[str]]:
    """Header fields as ``[name, value]`` pairs, in order."""
    return [[name, value] for name, value in headers]


def _grouped(headers: Headers) -> dict[str, tuple[str, list[str]]]:
    """lowercase name -> (the name as first written, its values in order)."""
    groups: dict[str, tuple[str, list[str]]] = {}
    for name, value in headers:
        groups.setdefault(name.lower(), (name, []))[1].append(value)
    return groups


def header_changes(before: Headers, after: Headers) -> list[Change]:
    """Headers added, removed or changed, in the order they appear (after's first)."""
    if before is after or before == after:
        return []
    old, new = _grouped(before), _grouped(after)
    changes: list[Change] = []
    for lower, (name, values) in new.items():
        was = old.get(lower)
        if was is None:
            changes.append(_header(name, None, values))
        elif was[1] != values:
            changes.append(_header(name, was[1], values))
    for lower, (name, values) in old.items():
        if lower not in new:
            changes.append(_header(name, values, None))
    return changes


def _header(name: str, before: list[str] | None, after: list[str] | None) -> Change:
    return {
        "field": "header",
        "name": name,
        "before": None if before is None else ", ".join(before),
        "after": None if after is None else ", ".join(after),
    }


def _body(before: object, after: object) -> list[Change]:
    if after is before:
        return []
    size = len(after) if isinstance(after, bytes) else None
    shown = f"replaced ({size} bytes)" if size is not None else "replaced"
    return [{"field": "body", "before": None, "after": shown}]


def request_changes(before: Request, after: Request) -> list[Change]:
    """What a request-event function changed (``uri``, ``querystring``, headers, body)."""
    if before is after:
        return []
    changes: list[Change] = []
    if after.path != before.path:
        changes.append({"field": "uri", "before": before.path, "after": after.path})
    if after.query != before.query:
        changes.append({"field": "querystring", "before": before.query, "after": after.query})
    changes += header_changes(before.headers, after.headers)
    return changes + _body(before.body, after.body)


def response_changes(before: Response, after: Response) -> list[Change]:
    """What a response-event function changed (status, description, headers, body)."""
    if before is after:
        return []
    changes: list[Change] = []
    if after.status != before.status:
        changes.append({"field": "status", "before": before.status, "after": after.status})
    if after.reason != before.reason and after.reason:
        changes.append(
            {"field": "statusDescription", "before": before.reason, "after": after.reason}
        )
    changes += header_changes(before.headers, after.headers)
    return changes + _body(before.body, after.body)
