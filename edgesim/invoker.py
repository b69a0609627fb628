"""The function invoker: one worker pool per configured function.

The pipeline depends only on the ``Invoker`` protocol (give it a function
name and an event, get an ``InvokeResult``); ``FunctionInvoker`` is the real
one, backed by sandboxed worker processes. Each invocation's log lines go to
the function's log file and, when ``echo`` is given, to the console (each
line after ``[function]``), by its pool as the invocation ends, also one
whose viewer went away: one call per invocation with its lines joined, or,
while other invocations are still running, one call per batch of them at
most ``FLUSH_DELAY`` later (``edgesim.workers.logs.Batched``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edgesim.config.schema import FunctionConfig

if TYPE_CHECKING:
    from edgesim.workers.logs import Batched
    from edgesim.workers.pool import FunctionPool, InvokeResult

__all__ = ["FunctionInvoker", "Invoker"]


class Invoker(Protocol):
    async def invoke(self, function: str, event: Any) -> InvokeResult:
        """Run ``function`` on ``event``; function faults come back as results, never raised."""
        ...

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per function: invocations, errors, throttles, cold starts, environments."""
        ...


class FunctionInvoker:
    """Worker pools for every function of a config, started and closed together."""

    def __init__(
        self,
        functions: dict[str, FunctionConfig],
        *,
        log_dir: Path | None = None,
        echo: Callable[[str], None] | None = None,
        reuse: Mapping[str, FunctionPool] | None = None,
    ) -> None:
        """``reuse`` holds pools to carry over by name (a reload keeps the warm
        environments of functions that did not change)."""
        # Imported here: an edge without functions never loads the worker machinery.
        from edgesim.workers.logs import Batched
        from edgesim.workers.pool import FunctionPool

        self.log_dir = log_dir
        kept = reuse or {}
        # Lines of invocations that ran together reach ``echo`` in one call.
        self._console: Batched | None = Batched(echo, sep="\n") if echo is not None else None
        self.pools = {
            name: kept.get(name) or FunctionPool(cfg, log_dir=log_dir, console=self._console)
            for name, cfg in functions.items()
        }

    async def start(self) -> None:
        """Start each function's ``prewarm`` environments."""
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

    def invoke(self, function: str, event: Any) -> Coroutine[Any, Any, InvokeResult]:
        return self.pools[function].invoke(event)

    async def close(self) -> None:
        if self._console is not None:
            self._console.flush()
        await asyncio.gather(*(pool.close() for pool in self.pools.values()))

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: pool.stats() for name, pool in self.pools.items()}
