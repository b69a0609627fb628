"""One load-generator process: sends the traffic of its plan and reports a Tally per second.

Two ways to offer load:

* **closed loop** (``concurrency``): each user holds a connection and sends
  its next request as soon as the last one is answered. Latency runs from
  the moment a request is written.
* **open loop** (``rate``): requests are due at fixed intended times
  (uniformly spaced at the phase's rate, ramps integrated exactly), whatever
  the server does. A due request takes an idle connection, or opens one up
  to ``max_connections``, or waits for one; its latency runs from its
  *intended* time, so a server that stalls is charged for the queue it
  causes (no coordinated omission). Requests still waiting when the stage
  ends are counted as errors (``not sent: all connections busy``).

A process runs up to two stages, ``warmup`` then ``measure``, and between
them waits until every request has finished and the coordinator says go, so
no warm-up request is counted in the measurement. Each stage stops by
itself: at the end of its phases, or when its share of ``--requests`` is
spent; requests in flight get at most ``timeout`` seconds to finish.
"""

from __future__ import annotations

import asyncio
import math
import resource
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgesim.loadtest.client import Key, LoadConnection, error_kind, now, open_connection
from edgesim.loadtest.histogram import Histogram
from edgesim.loadtest.metrics import Tally
from edgesim.loadtest.scenario import Phase, Scenario
from edgesim.loadtest.traffic import Traffic

__all__ = ["INTERVAL", "Stage", "StageResult", "run_stage"]

INTERVAL = 1.0  # seconds per Tally sent
_TICK = 0.001  # the shortest sleep of the open-loop dispatcher (uvloop timers have 1 ms steps)
_ADJUST = 0.05  # how often a closed-loop ramp adjusts its number of users
_RETRY = 0.01  # seconds a user waits after a failed connect
UNSENT = "not sent: all connections busy"


@dataclass(frozen=True, slots=True)
class Stage:
    """What one process sends in one stage (its share of the run's load)."""

    name: str  # "warmup", "measure" or "ceiling"
    phases: tuple[Phase, ...]
    requests: int | None  # this process's share of --requests, None for no limit
    timeout: float  # seconds for a connect, and between response bytes
    max_connections: int  # open loop: connections this process may open
    seed: int | None


@dataclass(slots=True)
class StageResult:
    elapsed: float  # seconds from the stage's start until its last request finished
    cpu: float  # CPU seconds this process used during the stage
    connections: int  # connections opened
    peak_connections: int  # most connections open at once
    lag: Histogram  # open loop: how late requests were sent after their intended time (us)

    def to_dict(self) -> dict[str, Any]:
        return {
            "elapsed_s": self.elapsed,
            "cpu_s": self.cpu,
            "connections": self.connections,
            "peak_connections": self.peak_connections,
            "lag": self.lag.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageResult:
        return cls(
            data["elapsed_s"],
            data["cpu_s"],
            data["connections"],
            data["peak_connections"],
            Histogram.from_dict(data["lag"]),
        )


def intended_time(phase: Phase, k: float) -> float:
    """Seconds into ``phase`` at which its k-th request (from 0) is due, for a linear rate."""
    assert phase.rate is not None
    r0, r1 = phase.rate.start, phase.rate.end
    slope = (r1 - r0) / phase.duration
    if abs(slope) < 1e-12:
        return k / r0
    # Solve r0*t + slope*t^2/2 = k for the smallest t >= 0.
    disc = r0 * r0 + 2 * slope * k
    if disc < 0:
        return math.inf  # a falling ramp that never reaches k requests
    return (-r0 + math.sqrt(disc)) / slope


class _User:
    """A closed-loop user: one connection per origin, one request at a time."""

    __slots__ = ("conns", "retired")

    def __init__(self) -> None:
        self.conns: dict[Key, LoadConnection] = {}
        self.retired = False


class _Engine:
    """The state of one stage in one process (the ``Owner`` of its connections)."""

    def __init__(
        self, stage: Stage, scenario: Scenario, send: Callable[[int, Tally], None]
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.stage = stage
        self.traffic = Traffic(scenario, stage.seed)
        self.send_interval = send
        self.tally = Tally()
        self.interval_index = 0
        self.inflight = 0
        self.issued = 0  # attempts started (for the --requests budget)
        self.stopping = False
        self.idle = asyncio.Event()  # set when stopping and nothing is in flight
        self.users: list[_User] = []
        self.open_conns = 0
        self.opened = 0
        self.peak = 0
        self.free: dict[Key, list[LoadConnection]] = {}  # open loop: idle connections
        self.backlog: dict[Key, deque[tuple[float, bytes]]] = {}
        self.lag = Histogram()
        self.timeout = stage.timeout
        self.closed_mode = stage.phases[0].rate is None
        self._dialing = 0
        self.started = now()

    # -- budget ------------------------------------------------------------

    def take(self) -> bool:
        """Claim one attempt of the budget; False when the stage is over."""
        if self.stopping:
            return False
        budget = self.stage.requests
        if budget is not None and self.issued >= budget:
            self.stop()
            return False
        self.issued += 1
        self.inflight += 1
        return True

    def stop(self) -> None:
        self.stopping = True
        if self.inflight == 0:
            self.idle.set()

    def _finished(self) -> None:
        self.inflight -= 1
        if self.stopping and self.inflight == 0:
            self.idle.set()

    # -- intervals ---------------------------------------------------------

    def flush(self) -> None:
        self.send_interval(self.interval_index, self.tally)
        self.interval_index += 1
        self.tally = Tally()

    async def ticker(self) -> None:
        while True:
            due = self.started + (self.interval_index + 1) * INTERVAL
            await asyncio.sleep(max(0.0, due - now()))
            self.flush()

    # -- Owner callbacks -----------------------------------------------------

    def answered(self, conn: LoadConnection, status: int, x_cache: str | None) -> None:
        finished = now()
        self.tally.answered(status, x_cache, conn.received, int((finished - conn.started) * 1e6))
        self._finished()
        self._after(conn)

    def failed(self, conn: LoadConnection, kind: str) -> None:
        self.tally.failed(kind)
        self._finished()
        self._after(conn)

    def idle_lost(self, conn: LoadConnection) -> None:
        self._forget(conn)

    def _after(self, conn: LoadConnection) -> None:
        user = conn.user
        if conn.closed:
            self._forget(conn)
        if self.closed_mode:
            if user is not None:
                self.user_step(user)
        elif not conn.closed:
            self._reuse(conn)

    def _forget(self, conn: LoadConnection) -> None:
        """A connection closed: it no longer counts, and its late callbacks are ignored."""
        if conn.user is not None:
            conn.user.conns.pop(conn.key, None)
            conn.user = None
        conn.owner = _DROPPED
        self.open_conns -= 1

    def _count_open(self) -> None:
        self.open_conns += 1
        self.opened += 1
        self.peak = max(self.peak, self.open_conns)

    # -- closed loop ---------------------------------------------------------

    def user_step(self, user: _User) -> None:
        """Send the user's next request, or let its connections go once it is retired."""
        if user.retired or not self.take():
            for conn in list(user.conns.values()):
                if not conn.busy:
                    conn.close()
            return
        key, data = self.traffic.next()
        held = user.conns.get(key)
        if held is not None and not held.closed:
            held.send(data, now(), self.timeout)
        else:
            self.loop.create_task(self._dial_and_send(user, key, data, now()))

    async def _dial_and_send(self, user: _User, key: Key, data: bytes, started: float) -> None:
        try:
            conn = await open_connection(self.loop, key, self, self.timeout)
        except (OSError, TimeoutError) as exc:
            self.tally.failed(error_kind(exc))
            self._finished()
            await asyncio.sleep(_RETRY)  # a refusing server must not spin the generator
            self.user_step(user)
            return
        self._count_open()
        conn.user = user
        user.conns[key] = conn
        conn.send(data, started, self.timeout)

    async def closed_loop(self) -> None:
        offset = 0.0
        for phase in self.stage.phases:
            assert phase.concurrency is not None
            end = self.started + offset + phase.duration
            while not self.stopping:
                t = now()
                if t >= end:
                    break
                fraction = (t - self.started - offset) / phase.duration
                self._set_users(max(0, round(phase.concurrency.at(fraction))))
                await asyncio.sleep(min(_ADJUST, end - t))
            offset += phase.duration
        self.stop()

    def _set_users(self, target: int) -> None:
        active = [u for u in self.users if not u.retired]
        for user in active[target:]:
            user.retired = True
        for _ in range(target - len(active)):
            user = _User()
            self.users.append(user)
            self.user_step(user)
        self.users = [u for u in self.users if not u.retired]

    # -- open loop -----------------------------------------------------------

    async def open_loop(self) -> None:
        offset = 0.0
        for phase in self.stage.phases:
            assert phase.rate is not None
            start = self.started + offset
            end = start + phase.duration
            k = 0
            while not self.stopping:
                due = start + intended_time(phase, k)
                if due >= end:
                    break
                t = now()
                if due > t:
                    await asyncio.sleep(max(due - t, _TICK))
                    continue
                self._dispatch(due)
                k += 1
            offset += phase.duration
        self.stop()
        for queue in self.backlog.values():
            while queue:  # intended, never sent: the server could not keep up
                queue.popleft()
                self.tally.failed(UNSENT)
                self._finished()

    def _dispatch(self, intended: float) -> None:
        if not self.take():
            return
        key, data = self.traffic.next()
        free = self.free.get(key)
        while free:
            conn = free.pop()
            if not conn.closed:
                self.lag.record(int((now() - intended) * 1e6))
                conn.send(data, intended, self.timeout)
                return
        self.backlog.setdefault(key, deque()).append((intended, data))
        if self.open_conns + self._dialing < self.stage.max_connections:
            self._dialing += 1
            self.loop.create_task(self._dial(key))

    async def _dial(self, key: Key) -> None:
        try:
            conn = await open_connection(self.loop, key, self, self.timeout)
        except (OSError, TimeoutError) as exc:
            self._dialing -= 1
            queue = self.backlog.get(key)
            if queue:  # the oldest waiting request fails with the connect
                queue.popleft()
                self.tally.failed(error_kind(exc))
                self._finished()
            return
        self._dialing -= 1
        self._count_open()
        self._reuse(conn)

    def _reuse(self, conn: LoadConnection) -> None:
        queue = self.backlog.get(conn.key)
        if queue:
            intended, data = queue.popleft()
            self.lag.record(int((now() - intended) * 1e6))
            conn.send(data, intended, self.timeout)
        elif self.stopping:
            conn.close()
        else:
            self.free.setdefault(conn.key, []).append(conn)

    # -- the stage -------------------------------------------------------------

    def close_all(self) -> None:
        for conns in self.free.values():
            for conn in conns:
                conn.close()
        for user in self.users:
            for conn in user.conns.values():
                conn.close()


class _Dropped:
    """The owner of a connection the engine has let go: late callbacks are ignored."""

    def answered(self, conn: LoadConnection, status: int, x_cache: str | None) -> None:
        pass

    def failed(self, conn: LoadConnection, kind: str) -> None:
        pass

    def idle_lost(self, conn: LoadConnection) -> None:
        pass


_DROPPED = _Dropped()


async def run_stage(
    stage: Stage,
    scenario: Scenario,
    send: Callable[[int, Tally], None],
    abort: asyncio.Event | None = None,
) -> StageResult:
    """Run one stage; ``send(index, tally)`` gets each second's Tally (the last one partial).

    Setting ``abort`` ends the stage early, as if its phases were over.
    """
    engine = _Engine(stage, scenario, send)
    cpu = _cpu()
    ticker = asyncio.ensure_future(engine.ticker())
    watcher = asyncio.ensure_future(abort.wait()) if abort is not None else None
    if watcher is not None:
        watcher.add_done_callback(lambda _: engine.stop())
    try:
        if engine.closed_mode:
            await engine.closed_loop()
        else:
            await engine.open_loop()
        # Every request in flight ends within the timeout: answered, or failed by
        # the connection's read timer; the margin covers a connect in progress.
        try:
            async with asyncio.timeout(2 * stage.timeout + 1):
                await engine.idle.wait()
        except TimeoutError:
            pass
        elapsed = now() - engine.started
    finally:
        ticker.cancel()
        if watcher is not None:
            watcher.cancel()
        engine.close_all()
    engine.flush()
    return StageResult(
        elapsed=elapsed,
        cpu=_cpu() - cpu,
        connections=engine.opened,
        peak_connections=engine.peak,
        lag=engine.lag,
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
