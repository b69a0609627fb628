"""Edge functions in sandboxed worker processes: Lambda's execution model, locally.

Layers, each importing only those above it:

    protocol      message framing, shared by both sides of the sandbox wall
    limits        rlimits, Lambda's environment variables, a private /tmp
    runtime       the Lambda Python runtime (runs inside the worker)
    bootstrap     the zygote and the workers it forks (runs inside the sandbox)
    logs          Lambda's START/END/REPORT lines and platform error payloads
    watchdog      one timer sampling busy workers' memory and deadlines
    process       the proxy's handle on one worker: invoke, kill
    result        InvokeResult: an invocation's outcome as Lambda reports it
    spawner       the proxy's handle on the zygote: fork workers, hear exits
    pool          one function's environments: cold start, reuse, reaping,
                  throttling; the API the pipeline calls

``runtime``, ``bootstrap`` and what they import (``protocol``, ``limits``) use
the standard library only: they are all that is loaded where user code runs.
"""

from .pool import FunctionPool, InvokeResult

__all__ = ["FunctionPool", "InvokeResult"]
