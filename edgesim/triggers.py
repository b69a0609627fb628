"""Running the function associated with an event: the one place hooks are invoked.

``Triggers.run`` builds the event, invokes the function in its worker pool,
and turns what came back into an ``Outcome`` (a request to continue with, a
generated response, a modified response) or into the EdgeError CloudFront
would answer with: 503 LambdaExecutionError for a function that raised,
crashed, ran out of memory or time; 503 LambdaLimitExceeded when throttled;
502 LambdaValidationError for a result CloudFront would refuse
(cloudfront-semantics.md section 3). A CloudFront Function goes through
its own codec and its own errors: 503 FunctionExecutionError, 503
FunctionThrottledError, 502 FunctionValidationError; the origin it picks
with the cloudfront-js-2.0 helpers comes back on the ContinueRequest.
Failures are values, never raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from time import perf_counter
from typing import Any

from edgesim.codecs import ContinueRequest, Outcome, apply_result, build_event
from edgesim.codecs import cloudfront_function as cff
from edgesim.codecs.origin_change import changed_origins
from edgesim.config.schema import Behavior, Config, FunctionAssociation, Origin
from edgesim.errors import (
    EdgeError,
    FunctionExecutionError,
    FunctionThrottledError,
    FunctionValidationError,
    LambdaExecutionError,
    LambdaLimitExceeded,
    LambdaValidationError,
)
from edgesim.hooks import EventType
from edgesim.invoker import Invoker
from edgesim.models import Exchange, Request, Response, read_body, slot_init

__all__ = ["HookRun", "Triggers"]

_VIEWER_EVENTS = (EventType.VIEWER_REQUEST, EventType.VIEWER_RESPONSE)


@slot_init
@dataclass(frozen=True, slots=True)
class HookRun:
    """What one hook did, kept on the Exchange for logs and the inspector."""

    event: EventType
    function: str
    result: Any  # the worker's InvokeResult
    # What came of it; for the trace also what the function was given (the
    # response at response events, and the origin at origin events) and when
    # the edge sent the event and got the result back (time.perf_counter()).
    returned: Outcome | EdgeError
    given: Request | Response | None = None
    given_origin: Origin | None = None
    started: float = 0.0
    ended: float = 0.0

    @property
    def outcome(self) -> str:
        """The Outcome's class name, or the error's result type."""
        returned = self.returned
        return returned.result_type if isinstance(returned, EdgeError) else type(returned).__name__


class Triggers:
    """The functions associated with each behavior, and the code that runs them."""

    def __init__(self, config: Config, invoker: Invoker | None) -> None:
        self._config = config
        self._invoker = invoker
        # Keyed by id(): a frozen Behavior rehashes every field on each lookup,
        # and the config holds its behaviors for as long as the edge runs.
        self._by_behavior: dict[int, dict[EventType, FunctionAssociation]] = {
            id(b): {EventType(event): a for event, a in b.functions} for b in config.all_behaviors
        }
        self._cloudfront_functions = {
            name for name, function in config.functions.items() if function.is_cloudfront_function
        }
        self._with_viewer_functions = {
            key
            for key, hooks in self._by_behavior.items()
            if any(event in hooks for event in _VIEWER_EVENTS)
        }
        if invoker is None and any(self._by_behavior.values()):
            raise ValueError("behaviors have functions but no invoker was given")

    def of(self, behavior: Behavior) -> Mapping[EventType, FunctionAssociation]:
        return self._by_behavior[id(behavior)]

    def has_viewer_functions(self, behavior: Behavior) -> bool:
        return id(behavior) in self._with_viewer_functions

    async def run(
        self,
        ex: Exchange,
        event: EventType,
        *,
        request: Request,
        response: Response | None = None,
        origin: Origin | None = None,
    ) -> Outcome | EdgeError:
        """Run the function associated with ``event`` on ``ex.behavior`` (there must be one).

        With IncludeBody the request body is read whole first, so the event can
        expose it and the origin still gets every byte afterwards.
        """
        assert ex.behavior is not None and self._invoker is not None
        association = self._by_behavior[id(ex.behavior)][event]
        if association.function in self._cloudfront_functions:
            return await self._run_cloudfront_function(
                ex, event, association.function, request, response
            )
        body = None
        if association.include_body and request.body is not None:
            body = await read_body(request.body)
            request = request.replace(body=body)
        payload = build_event(
            event,
            request=request,
            response=response,
            distribution=self._config.distribution,
            request_id=ex.request_id,
            origin=origin,
            include_body=association.include_body,
            body=body,
        )
        started = perf_counter()
        result = await self._invoker.invoke(association.function, payload)
        ended = perf_counter()
        outcome: Outcome | EdgeError
        if result.kind == "throttled":
            outcome = LambdaLimitExceeded(f"{association.function} was throttled")
        elif result.kind != "ok":
            error = result.error or {}
            detail = f"{error.get('errorType', result.kind)}: {error.get('errorMessage', '')}"
            outcome = LambdaExecutionError(detail)
        else:
            try:
                outcome = apply_result(
                    event,
                    result.payload,
                    request=request,
                    response=response,
                    origin=origin,
                    event=payload,
                )
            except LambdaValidationError as invalid:
                outcome = invalid
        given = response if response is not None else request
        ex.hook_runs += (
            HookRun(event, association.function, result, outcome, given, origin, started, ended),
        )
        return outcome

    async def _run_cloudfront_function(
        self,
        ex: Exchange,
        event: EventType,
        function: str,
        request: Request,
        response: Response | None,
    ) -> Outcome | EdgeError:
        assert ex.behavior is not None and self._invoker is not None
        payload = cff.build_event(
            event,
            request=request,
            response=response,
            distribution=self._config.distribution,
            request_id=ex.request_id,
        )
        started = perf_counter()
        result = await self._invoker.invoke(function, payload)
        ended = perf_counter()
        outcome: Outcome | EdgeError
        if result.kind == "throttled":
            outcome = FunctionThrottledError(f"{function} kept exceeding its compute budget")
        elif result.kind != "ok":
            error = result.error or {}
            detail = f"{error.get('errorType', result.kind)}: {error.get('errorMessage', '')}"
            outcome = FunctionExecutionError(detail)
        else:
            try:
                outcome = cff.apply_result(
                    event,
                    result.payload.get("output"),
                    event=payload,
                    request=request,
                    response=response,
                )
                change = result.payload.get("origin")
                if change is not None and isinstance(outcome, ContinueRequest):
                    current = self._config.origins_for(ex.behavior.origin)
                    origins = changed_origins(change, current, self._config)
                    outcome = ContinueRequest(outcome.request, None, origins)
            except FunctionValidationError as invalid:
                outcome = invalid
        given = response if response is not None else request
        ex.hook_runs += (HookRun(event, function, result, outcome, given, None, started, ended),)
        return outcome
