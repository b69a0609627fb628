"""Why the edge did what it did with one request: for the trace (edgesim.trace).

``why_not_run`` says why a function attached to an event did not run, from
what the Exchange recorded; the rules themselves are hooks.py's, this tells
which one applied. ``cache_decision`` tells what the cache did (Hit, Miss,
RefreshHit, not cached), with the key, the TTL and the rule that set it
(``describe_ttl``). Both run only when someone looks at a trace.
"""

from __future__ import annotations

from typing import Any

from edgesim.cache import CacheStore, Entry, describe_ttl, key_parts
from edgesim.config.schema import Behavior
from edgesim.errors import EdgeError
from edgesim.hooks import ORIGIN_EVENTS, EventType
from edgesim.models import Exchange

__all__ = ["cache_decision", "why_not_run"]

Json = dict[str, Any]


def why_not_run(ex: Exchange, event: EventType) -> str:
    """Why a function attached to ``event`` did not run, from what the exchange
    recorded (the rules are hooks.py's; this tells which one applied)."""
    if ex.detailed_result_type == "InvalidRequestMethod" and not ex.hook_runs:
        return f"the behavior does not allow {ex.viewer_request.method}: CloudFront answered 403"
    failed = next((r for r in ex.hook_runs if isinstance(r.returned, EdgeError)), None)
    if failed is not None:
        return f"the {failed.event.value} function failed ({failed.outcome})"
    generated = ex.generated_by
    if generated == EventType.VIEWER_REQUEST.value:
        return "the viewer-request function generated a response"
    if event is EventType.VIEWER_REQUEST:
        return "not run"
    if event in ORIGIN_EVENTS:
        if event is EventType.ORIGIN_RESPONSE and generated == EventType.ORIGIN_REQUEST.value:
            return "the origin-request function generated a response"
        if not ex.origin_fetches:
            if ex.result_type in ("Hit", "RefreshHit"):
                return "a cache hit: the origin was not contacted"
            return "the origin was not contacted"
        *_, status, last = ex.origin_fetches[-1]
        if isinstance(last, EdgeError):
            return f"no HTTP response from the origin ({last.detailed_result_type})"
        if ex.result_type == "RefreshHit":
            return f"the origin answered {status} to a revalidation: the stored copy served"
        return "not run"
    response = ex.response
    if ex.custom_error_page:
        return "a custom error page was returned"
    if response is not None and response.status >= 400:
        return f"the status is {response.status}: viewer-response runs only below 400"
    return "not run"


def cache_decision(ex: Exchange, behavior: Behavior, store: CacheStore) -> Json:
    """The cache stage of ``ex``'s trip; ``store`` tells whether a streamed
    object was kept."""
    step: Json = {"stage": "cache", "key": None, "key_parts": [], "decision": "not looked up"}
    key = ex.cache_key
    method = ex.request.method
    if key is None:
        if ex.generated_by == EventType.VIEWER_REQUEST.value:
            step["why"] = "the viewer-request function generated a response (never cached)"
        elif ex.origin_fetches or method not in behavior.cached_methods:
            methods = ", ".join(sorted(behavior.cached_methods))
            step["why"] = f"{method} is not cached by this behavior (cached methods: {methods})"
        else:
            step["why"] = f"answered before the lookup: {why_not_run(ex, EventType.ORIGIN_REQUEST)}"
        return step
    step["key"] = key
    step["key_parts"] = [list(part) for part in key_parts(key)]
    found = ex.cached if isinstance(ex.cached, Entry) else None
    stored = ex.stored if isinstance(ex.stored, Entry) else None
    result = ex.result_type
    if result == "Hit" or (result == "Error" and not ex.origin_fetches and found is not None):
        entry = found if found is not None else stored
        step["decision"] = "Hit"
        if entry is None:
            step["why"] = "served from the object a concurrent request fetched (collapsed)"
            return step
        age = ex.age if ex.age is not None else 0
        step.update(ttl=entry.ttl, age=age, ttl_left=max(0.0, entry.ttl - age))
        step["why"] = (
            "a fresh stored copy"
            if found is not None
            else "served from the object a concurrent request fetched (collapsed)"
        )
        return step
    if result == "RefreshHit" and stored is not None:
        step.update(decision="RefreshHit", ttl=stored.ttl, age=0, ttl_left=stored.ttl)
        status = ex.origin_fetches[-1][4] if ex.origin_fetches else 0
        if status == 304:
            why = _ttl_why(ex, behavior)
            step["why"] = f"the stored copy was stale; the origin answered 304: fresh again ({why})"
        else:
            failure = status or "no response"
            step["why"] = (
                f"the stored copy was stale and revalidation failed ({failure}): "
                "it is served for ErrorCachingMinTTL"
            )
        return step
    step["decision"] = "Miss" if found is None else "Miss (stale copy replaced)"
    if ex.generated_by == EventType.VIEWER_REQUEST.value:
        step["decision"] = "not cached"
        step["why"] = "a response generated at viewer-request is never cached"
        return step
    if ex.ttl_basis is None:
        step["stored"] = False
        step["why"] = (
            f"{method} responses are not stored"
            if method != "GET"
            else "no origin response to store (CloudFront does not cache its own errors)"
        )
        return step
    step["ttl"] = ex.ttl
    why = _ttl_why(ex, behavior)
    if ex.ttl is None:
        step["stored"] = False
        step["why"] = f"not stored: {why}"
    elif stored is not None:
        step["stored"] = True
        step["why"] = f"stored for {ex.ttl:g} s: {why}"
    elif ex.response is not None and isinstance(ex.response.body, bytes):
        step["stored"] = False
        step["why"] = f"not stored: the object is larger than the cache's max_object_size ({why})"
    else:
        kept = key in store
        step["stored"] = kept
        state = "kept: the whole body arrived" if kept else "not kept (cut off, too large, or gone)"
        step["why"] = f"stored while streaming for {ex.ttl:g} s, {state}; {why}"
    return step


def _ttl_why(ex: Exchange, behavior: Behavior) -> str:
    if ex.ttl_basis is None:
        return "no TTL decided"
    return describe_ttl(behavior.cache, *ex.ttl_basis)
