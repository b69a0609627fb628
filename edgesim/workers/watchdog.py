"""The memory and deadline watch over a pool's busy workers.

Lambda kills an environment that goes over its memory size
(Runtime.OutOfMemory) or its timeout (Sandbox.Timedout). Here the kernel
cannot do the memory part for us (no cgroup v2 memory controller is
delegated on the machines edgesim targets, and ``RLIMIT_AS`` counts reserved
address space, not use), so the proxy samples each busy worker's resident
memory from /proc every ``WATCH_INTERVAL`` and kills it when over.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .process import WorkerProcess

__all__ = ["WATCH_INTERVAL", "Watchdog"]

WATCH_INTERVAL = 0.004  # seconds between samples of a busy worker


class Watchdog:
    """One timer for every busy worker of a pool, armed only while one is busy.

    Each tick checks each busy worker's resident memory and deadline. A timer
    per invocation would cost more than the rest of a warm round trip; a
    shared tick costs the same at any invocation rate.
    """

    def __init__(self) -> None:
        self._busy: set[WorkerProcess] = set()
        self._timer: asyncio.TimerHandle | None = None
        # Kept: asyncio.get_running_loop() makes a getpid system call each time.
        self._loop: asyncio.AbstractEventLoop | None = None

    def watch(self, worker: WorkerProcess) -> None:
        self._busy.add(worker)
        if self._timer is None:
            loop = self._loop
            if loop is None or loop.is_closed():
                loop = self._loop = asyncio.get_running_loop()
            self._timer = loop.call_later(WATCH_INTERVAL, self._tick)

    def unwatch(self, worker: WorkerProcess) -> None:
        self._busy.discard(worker)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        self._timer = None
        for worker in list(self._busy):
            worker.check()
        if self._busy and self._loop is not None:
            self._timer = self._loop.call_later(WATCH_INTERVAL, self._tick)
