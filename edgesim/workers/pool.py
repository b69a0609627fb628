"""A function's execution environments, managed the way Lambda scales a function.

Rules emulated (Lambda Developer Guide: lambda-runtime-environment.md,
lambda-concurrency.md; Lambda@Edge quotas in cloudfront-semantics.md section 4):

* One invocation at a time per environment. A free warm environment is
  reused (the most recently used first, so the others can age out); module
  state survives between its invocations.
* No warm environment: a new one is started (a cold start, reported once as
  Init Duration). The Init phase may take up to 10 s.
* Except when the environments are busy waiting for the CPU rather than
  running the function: when there are as many as the CPUs the edge may use
  and the function's recent runs (their Duration) took under a quarter of
  their round trips from the edge (``_QUEUE_SHARE``), or before its first
  answer, the invocation waits for the first environment to free (one in
  its Init phase included). On AWS each environment has a CPU of its own;
  here they share the machine's, so another environment would wait for the
  same CPUs, cost a cold start, and make a busy edge rotate dozens of
  processes through its caches (bench/README.md, "The cost of a hook").
  Concurrency so counts invocations whose functions run at once, not
  requests queued for the CPU. If no environment frees for ``_STALL``
  seconds while none is in Init and the edge's loop kept time (the function
  got slow), every waiting invocation starts an environment, as it would
  have on AWS.
* A waiting invocation may be queued on a busy environment instead (up to
  ``_QUEUE_DEPTH`` at once on one for Python, ``_CLOUDFRONT_QUEUE_DEPTH`` for
  CloudFront Functions; the Node.js runtime takes none): the environment
  runs them one after another without a round trip to the edge between them
  (``WorkerProcess.invoke``). Still one at a time: each one's time left runs
  from its start and its output is its own. A stall takes back those it has
  not started, which then start environments as above; so does an
  environment that ends (a crash, a timeout) for those it never started.
* When ``config.concurrency`` environments exist and all are busy, the
  invocation is throttled (at once, or when a stall ends its wait): Lambda
  throttles, it does not queue.
* An environment idle for ``config.idle_timeout`` is shut down, except that
  ``config.prewarm`` environments (started by ``start``, like provisioned
  concurrency) are kept.
* An environment whose invocation timed out, crashed, ran out of memory or
  broke the protocol is killed and never reused; the next invocation gets a
  new one. An environment whose module import failed is discarded too.
* An invocation whose viewer went away runs to its end, as Lambda has no way
  to stop one once it runs (AWS does not say CloudFront tries): it is logged
  and counted as any, and its environment stays warm.

A CloudFront Function (``config.is_cloudfront_function``) runs in the same
kind of environment, with the QuickJS runtime (``cff_runtime``) inside. It
has no concurrency, cold starts or warm state a user can see (CloudFront
scales it on its own), so the pool keeps at most ``CLOUDFRONT_ENVIRONMENTS``
and an invocation waits for a free one rather than starting another: on a
busy edge, one process per invocation in flight would rotate dozens of
processes through the CPU caches for no observable difference. Waiting
invocations are queued on busy environments as above; a run is short (its
compute budget), so none waits long behind another. Its
results carry compute utilization; when it keeps running over its compute
budget (``CLOUDFRONT_FUNCTION_LIMITS.throttle_after_overruns`` runs in a
row) it is throttled for ``throttle_seconds``: invocations come back
``throttled`` without running. Its logs are CloudFront's (``<id> START
DistributionID: ...``), in ``/aws/cloudfront/function/<name>``.

Function faults come back as ``InvokeResult`` values, never as exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..config.schema import FunctionConfig
from ..hooks import CLOUDFRONT_FUNCTION_LIMITS
from . import logs
from .limits import lambda_environment, log_stream_name, nproc_cap, sandbox_spec
from .process import Outcome, WorkerProcess
from .result import (
    InvokeResult,
    build_cloudfront_result,
    build_result,
    new_request_id,
    output_lines,
    throttled,
)
from .spawner import Spawner, SpawnError
from .watchdog import Watchdog

__all__ = ["CLOUDFRONT_ENVIRONMENTS", "INIT_TIMEOUT", "FunctionPool", "InvokeResult"]

INIT_TIMEOUT = 10.0  # Lambda's Init phase limit for on-demand functions
TERM_GRACE = 0.2  # seconds between SIGTERM and SIGKILL for a timed-out worker
VERSION = "1"  # Lambda@Edge runs a numbered version, never $LATEST
ACCOUNT = "123456789012"
_RECENT = 10_000  # durations kept for stats()
_RUNTIME_DIR = str(Path(__file__).resolve().parent)
# Environments of one CloudFront Function: enough to keep the cores beside the
# edge's busy, few enough to stay in their caches (bench/README.md, "The cost of
# a hook": 4 cost 18% less CPU per invocation than one per request in flight).
CLOUDFRONT_ENVIRONMENTS = 4
# Lambda@Edge: wait for a busy environment when the function's run is under this
# share of its round trip (the rest is IPC and waiting for the CPU) ...
_QUEUE_SHARE = 0.25
# ... unless no environment has freed for this long (seconds): then start one.
# Long enough for the first, JIT-compiling runs of a few Node.js environments
# sharing one core with a busy edge; short against any AWS cold start.
_STALL = 0.1
_SMOOTHING = 0.125  # weight of the newest invocation in the running averages
# A waiting invocation may be queued on a busy environment, up to this many at
# once on one (WorkerProcess.invoke), which then runs them back to back
# (bench/README.md, "The cost of a hook"). A stall takes them back (_check_stall).
# Each the depth that measured least CPU per invocation (bench/README.md, the
# 2026-12-02 parts): 12 for Python; 4 for a CloudFront Function, which 12 did
# not make cheaper.
_QUEUE_DEPTH = 12
_CLOUDFRONT_QUEUE_DEPTH = 4


class _NoRoom(Exception):
    """A waiting invocation found the function at its concurrency limit: throttled."""


class FunctionPool:
    """The execution environments of one function.

    ``invoke`` starts the pool on first use; ``start`` does it up front and
    starts ``config.prewarm`` environments. ``close`` kills everything.
    """

    def __init__(
        self,
        config: FunctionConfig,
        *,
        region: str = "us-east-1",
        log_dir: Path | None = None,
        console: logs.Batched | None = None,
    ) -> None:
        """``console`` also gets each invocation's lines, after ``[name]``."""
        self.config = config
        self.region = region
        # Lambda@Edge replicas are named for us-east-1 wherever they run; CloudFront
        # Functions log to /aws/cloudfront/function/<name> (edge-functions-logs.md).
        self.function_name = f"us-east-1.{config.name}"
        self._cloudfront = config.is_cloudfront_function
        if self._cloudfront:
            self.function_name = config.name
        self.arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}:{VERSION}"
        code = Path(config.code).resolve()
        # A CloudFront Function is one file; its folder is the working directory.
        self._task_root = str(code.parent if config.is_cloudfront_function else code)
        self._node = ""
        if config.engine == "node":
            self._node = shutil.which("node") or "node"
        log_file = f"cloudfront-function.{config.name}.log" if self._cloudfront else None
        log_file = log_file or f"{self.function_name}.log"
        self._log = logs.LogGroup(Path(log_dir) / log_file) if log_dir else None
        self._console = console
        self._prefix = f"[{config.name}] "
        self._overruns = 0  # CloudFront Functions: runs in a row over the compute budget
        self._throttled_until = 0.0
        # How many invocations one busy environment may hold (_QUEUE_DEPTH): the
        # Node.js runtime takes none.
        self._queue_depth = _CLOUDFRONT_QUEUE_DEPTH if self._cloudfront else _QUEUE_DEPTH
        if config.engine == "node":
            self._queue_depth = 0
        self._spawner = Spawner(config.engine)
        self._watchdog = Watchdog()
        self._idle: list[WorkerProcess] = []  # a stack: most recently used last
        # Invocations waiting for an environment, oldest first; each is handed a
        # worker, or None to start one in a slot taken for it.
        self._waiting: deque[asyncio.Future[WorkerProcess | None]] = deque()
        # Lambda@Edge: the running average of the share of an invocation's round
        # trip (dispatch to answer) that the function itself ran (None before the
        # first), when the last environment freed, and the timer that looks for a
        # stall while invocations wait.
        self._run_share: float | None = None
        self._last_freed = 0.0
        self._stall: asyncio.TimerHandle | None = None
        self._capacity = CLOUDFRONT_ENVIRONMENTS if self._cloudfront else config.concurrency
        self._envs: set[WorkerProcess] = set()
        self._slots = 0  # environments alive or being created
        self._starting = 0  # environments in their Init phase
        self._busy = 0
        self._nproc = 0
        self._cpus = len(os.sched_getaffinity(0))  # the CPUs this edge, so its workers, may use
        self._booted: asyncio.Future[None] | None = None
        # The loop, kept: asyncio.get_running_loop() makes a getpid system call
        # each time (Python 3.11), and every invocation that waits would ask.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = False
        self._counts = dict.fromkeys(
            ("invocations", "errors", "throttles", "cold_starts", "timeouts", "crashes"), 0
        )
        # queued: invocations given to an environment running another (_QUEUE_DEPTH).
        self._counts.update(oom=0, invalid=0, queued=0)
        self._durations: deque[float] = deque(maxlen=_RECENT)
        self._inits: deque[float] = deque(maxlen=_RECENT)

    async def start(self) -> None:
        """Start the pool and its ``prewarm`` environments."""
        await self._boot()
        count = min(self.config.prewarm, self._capacity)
        await asyncio.gather(*(self._prewarm() for _ in range(count)))

    async def invoke(self, event: Any, *, timeout: float | None = None) -> InvokeResult:
        """Run the function on ``event``; ``timeout`` (seconds) overrides the config's."""
        if self._closed:
            raise RuntimeError(f"{self.function_name}: pool is closed")
        if self._reaper is None:  # not booted yet
            await self._boot()
        request_id = new_request_id()
        limit = self.config.timeout if timeout is None else timeout
        if self._cloudfront and time.monotonic() < self._throttled_until:
            self._counts["throttles"] += 1
            return throttled(request_id)
        return await self._dispatch(request_id, event, limit)

    async def _dispatch(
        self, request_id: str, event: Any, limit: float, wait: bool = True
    ) -> InvokeResult:
        """To a free environment, one that frees, or a new one (``wait``: may wait
        for one to free; not after a stall took it back from one)."""
        worker = self._idle.pop() if self._idle else None
        reserved = False  # a slot freed for this invocation and already taken
        if worker is None and wait and self._waits():
            try:
                worker = await self._wait_for_environment()
            except _NoRoom:
                self._counts["throttles"] += 1
                return throttled(request_id)
            reserved = worker is None
        elif worker is None and self._slots >= self._capacity:
            self._counts["throttles"] += 1
            return throttled(request_id)
        if worker is None:
            # A cold start runs in a task of its own: a viewer that leaves
            # meanwhile leaves it to finish, Init phase and invocation.
            self._counts["cold_starts"] += 1
            if not reserved:
                self._slots += 1
            cold = asyncio.ensure_future(self._cold_start(request_id, event, limit))
            self._tasks.add(cold)
            cold.add_done_callback(self._cold_started)
            return await asyncio.shield(cold)
        return await self._run(worker, request_id, event, limit, None)

    def _waits(self) -> bool:
        """No environment is free: wait for one to free rather than start one?"""
        if self._cloudfront:
            return self._slots >= self._capacity
        # Lambda@Edge: when the busy ones are waiting for the CPU (module docstring),
        # or may be (before the first answer the stall check decides), and there
        # are as many as CPUs to run them: more could only wait for a CPU too.
        share = self._run_share
        return self._slots >= self._cpus and (share is None or share < _QUEUE_SHARE)

    def _cold_started(self, cold: asyncio.Future[InvokeResult]) -> None:
        self._tasks.discard(cold)
        if not cold.cancelled():
            cold.exception()  # retrieved: its caller may have gone (it is raised to it if not)

    async def _cold_start(self, request_id: str, event: Any, limit: float) -> InvokeResult:
        self._busy += 1
        try:
            created, init = await self._create("on-demand")
        finally:
            self._busy -= 1
        if created is None or init.kind != "ok":
            if created is not None:
                self._retire(created)
            return self._finish(request_id, init, init=None, limit=INIT_TIMEOUT, failed_init=True)
        return await self._run(created, request_id, event, limit, init)

    async def _run(
        self,
        worker: WorkerProcess,
        request_id: str,
        event: Any,
        limit: float,
        init: Outcome | None,
    ) -> InvokeResult:
        self._busy += 1
        started = time.monotonic()
        if worker.pending:
            self._counts["queued"] += 1
        try:
            exchange = worker.invoke(request_id, event, limit)
            if self._waiting and worker.pending < self._queue_depth - 1:
                # The next waiting invocation is queued behind this one (its task
                # runs after this one's frame is written), up to the depth.
                self._offer(worker)
            outcome = await exchange
        except asyncio.CancelledError:
            # The viewer went away. The invocation runs on, as on Lambda, and
            # its environment stays warm; only its answer is not wanted.
            running = worker.abandoned
            if running is None:
                self._busy -= 1
                self._retire(worker)
            else:
                self._tasks.add(running)
                running.add_done_callback(
                    functools.partial(self._abandoned, worker, request_id, init, limit)
                )
            raise
        except BaseException:
            self._busy -= 1
            self._retire(worker)
            raise
        self._busy -= 1
        if outcome.kind == "unstarted":
            if not self._closed:  # never ran: as on AWS, it runs in another environment
                stalled = outcome.reason == "stall"
                return await self._dispatch(request_id, event, limit, wait=not stalled)
            outcome = Outcome("crash")
        if outcome.kind in ("ok", "error"):
            # A share per invocation: one slow run (a GC pause) moves it by 1/8 at most.
            round_trip = max(time.monotonic() - started - outcome.queued_s, 1e-6)
            share = min(outcome.duration_ms / 1000 / round_trip, 1.0)
            last = share if self._run_share is None else self._run_share
            self._run_share = last + (share - last) * _SMOOTHING
        return self._settle(worker, request_id, outcome, init, limit)

    def _settle(
        self,
        worker: WorkerProcess,
        request_id: str,
        outcome: Outcome,
        init: Outcome | None,
        limit: float,
    ) -> InvokeResult:
        """Back to the pool or out of service, by how the invocation ended."""
        # Logged first, while the invocation the environment goes to next still
        # waits for it: its lines are coming, so these are batched with them.
        result = self._finish(request_id, outcome, init=init, limit=limit)
        if outcome.kind in ("ok", "error") and worker.alive and not self._closed:
            worker.last_used = time.monotonic()
            self._release(worker)
        else:
            self._retire(worker, graceful=outcome.kind == "timeout")
        return result

    def _abandoned(
        self,
        worker: WorkerProcess,
        request_id: str,
        init: Outcome | None,
        limit: float,
        running: asyncio.Future[Outcome],
    ) -> None:
        """An invocation whose caller went away has ended: counted and logged as any."""
        self._tasks.discard(running)
        self._busy -= 1
        if running.cancelled() or running.exception() is not None:
            self._retire(worker)
        elif running.result().kind == "unstarted":
            pass  # its viewer is gone and it never ran: nothing to do
        else:
            self._settle(worker, request_id, running.result(), init, limit)

    async def _wait_for_environment(self) -> WorkerProcess | None:
        """This invocation's turn, oldest first: a free worker, or None when a slot
        was taken for this invocation (it starts an environment); raises ``_NoRoom``
        when a stall found the function at its concurrency limit."""
        loop = self._loop
        assert loop is not None  # booted
        while True:
            waiter: asyncio.Future[WorkerProcess | None] = loop.create_future()
            self._waiting.append(waiter)  # a cancelled one is skipped when its turn comes
            if self._stall is None and not self._cloudfront:
                self._stall = loop.call_later(_STALL, self._check_stall)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                # Handed over as it was cancelled: pass it on.
                if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                    self._pass_on(waiter.result())
                raise
            if handed is None or handed in self._envs:
                return handed
            # The worker died before this invocation ran: a freed slot, or wait on.
            if self._slots < self._capacity:
                self._slots += 1
                return None

    def _check_stall(self) -> None:
        """Lambda@Edge: while invocations wait, no environment has freed for
        ``_STALL``? The function got slow: each waiter starts an environment (or is
        throttled at the concurrency limit), as it would have on AWS."""
        assert self._stall is not None
        loop = self._loop
        assert loop is not None  # booted: invocations wait
        late = loop.time() - self._stall.when()
        self._stall = None
        queued = any(worker.pending > 1 for worker in self._envs)
        if all(waiter.done() for waiter in self._waiting) and not queued:
            self._waiting.clear()
            return
        quiet = time.monotonic() - self._last_freed
        # An environment in Init frees after it; a check that runs late found the
        # edge's own loop busy, which kept answers unread, not the function slow.
        if quiet < _STALL or self._starting or late > _STALL / 2:
            delay = _STALL - quiet if quiet < _STALL else _STALL
            self._stall = loop.call_later(delay, self._check_stall)
            return
        # Those queued on the busy environments, as the waiting ones, start their own.
        for worker in list(self._envs):
            worker.withdraw()
        while self._waiting:
            waiter = self._waiting.popleft()
            if waiter.done():
                continue
            if self._slots < self._capacity:
                self._slots += 1
                waiter.set_result(None)
            else:
                waiter.set_exception(_NoRoom())

    def _pass_on(self, handed: WorkerProcess | None) -> None:
        """What a cancelled waiter was handed goes to the next one."""
        if handed is None:
            self._slots -= 1
            self._slot_freed()
        elif handed in self._envs:
            self._release(handed)

    def _release(self, worker: WorkerProcess) -> None:
        """``worker`` is free: to the invocation waiting longest, or warm and idle."""
        self._last_freed = time.monotonic()
        if self._offer(worker):
            return
        # Else it is released again as its queue ends. Two that ended in one pass
        # of the loop both find it with nothing pending: idle once.
        if worker.pending == 0 and worker not in self._idle:
            self._idle.append(worker)

    def _offer(self, worker: WorkerProcess) -> bool:
        """``worker`` to the invocation waiting longest, if one is (True). Called
        alone for a busy worker that takes queued invocations: not a release, so
        the stall check still waits for one."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(worker)
                return True
        return False

    def _slot_freed(self) -> None:
        """An environment is gone: its slot is taken for the invocation waiting
        longest, which starts one."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                self._slots += 1
                waiter.set_result(None)
                return

    async def close(self) -> None:
        """Kill every environment and the zygote; wait until they are gone."""
        self._closed = True
        if self._stall is not None:
            self._stall.cancel()
        for waiter in self._waiting:
            if not waiter.done():
                waiter.set_exception(RuntimeError(f"{self.function_name}: pool is closed"))
        self._waiting.clear()
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for worker in list(self._envs):
            self._retire(worker)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._spawner.close()
        self._watchdog.close()
        if self._log is not None:
            self._log.close()
        if self._console is not None:
            self._console.flush()

    @property
    def busy(self) -> int:
        """Invocations running now."""
        return self._busy

    def stats(self) -> dict[str, Any]:
        """Counters since the pool started, environments now, and recent durations."""
        return {
            "function": self.function_name,
            **self._counts,
            "environments": len(self._envs),
            "warm": len(self._idle),
            "busy": self._busy,
            "durations_ms": list(self._durations),
            "init_durations_ms": list(self._inits),
        }

    # -- environments --------------------------------------------------------

    async def _boot(self) -> None:
        booted = self._booted
        if (
            booted is not None
            and booted.done()
            and not booted.cancelled()
            and not booted.exception()
        ):
            return  # the hot path: no shield, no new future
        if booted is None or booted.done():  # first use, or the last attempt failed
            booted = self._booted = asyncio.ensure_future(self._boot_once())
        try:
            await asyncio.shield(booted)
        except Exception:
            if booted.done() and self._booted is booted:
                self._booted = None  # let the next call try again
            raise

    async def _boot_once(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._nproc = nproc_cap()
        await self._spawner.start()
        self._reaper = asyncio.create_task(self._reap_loop())

    async def _create(self, initialization_type: str) -> tuple[WorkerProcess | None, Outcome]:
        """A new environment through its Init phase, in a slot the caller took (before
        any await, so that concurrent invocations see it), which the worker then owns."""
        self._starting += 1
        try:
            return await self._start_environment(initialization_type)
        finally:
            self._starting -= 1

    async def _start_environment(
        self, initialization_type: str
    ) -> tuple[WorkerProcess | None, Outcome]:
        cfg = self.config
        tmp_dir = tempfile.mkdtemp(prefix="edgesim-env-")
        env = lambda_environment(
            function_name=self.function_name,
            region=self.region,
            memory=cfg.memory,
            runtime=cfg.runtime,
            handler=cfg.handler,
            task_root=self._task_root,
            runtime_dir=_RUNTIME_DIR,
            log_stream=log_stream_name(VERSION),
            version=VERSION,
            initialization_type=initialization_type,
            node=cfg.engine == "node",
        )
        spec = sandbox_spec(
            env,
            task_root=self._task_root,
            handler=cfg.handler,
            tmp_dir=tmp_dir,
            nproc=self._nproc,
            arn=self.arn,
            engine=cfg.engine,
            node=self._node,
            options=self._engine_options(),
        )
        try:
            worker = await self._spawner.spawn(spec, memory_mb=cfg.memory, watchdog=self._watchdog)
        except BaseException as exc:
            self._slots -= 1
            self._slot_freed()
            shutil.rmtree(tmp_dir, ignore_errors=True)
            if isinstance(exc, SpawnError):
                return None, Outcome("crash", reason=str(exc))
            raise
        self._envs.add(worker)
        worker.on_lost = self._retire
        try:
            init = await worker.ready(INIT_TIMEOUT)
        except BaseException:
            self._retire(worker)
            raise
        if init.kind == "ok":
            self._inits.append(init.duration_ms)
        return worker, init

    def _engine_options(self) -> dict[str, Any]:
        """What the CloudFront Functions runtime needs: code, budget, key value store."""
        cfg = self.config
        if not self._cloudfront:
            return {}
        limits = CLOUDFRONT_FUNCTION_LIMITS
        budget = cfg.compute_budget_ms
        return {
            "code": str(Path(cfg.code).resolve()),
            "runtime": cfg.runtime,
            "budget_ms": budget,
            "stop_ms": max(budget * limits.stop_after_budgets, limits.min_stop_ms),
            "kvs": str(cfg.key_value_store) if cfg.key_value_store else None,
        }

    async def _prewarm(self) -> None:
        self._slots += 1
        worker, init = await self._create("provisioned-concurrency")
        if worker is None:
            return
        if init.kind != "ok" or self._closed:
            self._retire(worker)
        else:
            worker.last_used = time.monotonic()
            self._release(worker)
        if self._log is not None and init.output:
            self._log.write(tuple(output_lines(init)))

    def _retire(self, worker: WorkerProcess, graceful: bool = False) -> None:
        """Take ``worker`` out of service for good and dispose of it in the background."""
        if worker not in self._envs:
            return
        self._envs.discard(worker)
        self._slots -= 1
        if worker in self._idle:
            self._idle.remove(worker)
        self._slot_freed()
        worker.on_lost = None
        task = asyncio.ensure_future(self._dispose(worker, graceful))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispose(self, worker: WorkerProcess, graceful: bool) -> None:
        try:
            if graceful:
                await worker.terminate(TERM_GRACE)
            else:
                worker.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(worker.exited), 2.0)
            worker.kill()  # whatever is left in its process group
        finally:
            worker.close()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, shutil.rmtree, worker.tmp_dir, True)

    async def _reap_loop(self) -> None:
        idle_timeout = self.config.idle_timeout
        limit_kb = self.config.memory * 1024
        interval = min(max(idle_timeout / 4, 0.01), 1.0)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for worker in list(self._idle):  # oldest first
                if worker.rss_kb() > limit_kb:  # grew while idle (a background thread)
                    self._retire(worker)
                elif (
                    len(self._envs) > self.config.prewarm and now - worker.last_used >= idle_timeout
                ):
                    self._retire(worker, graceful=True)

    # -- results -------------------------------------------------------------

    def _watch_budget(self, result: InvokeResult) -> None:
        """Throttle a CloudFront Function that keeps running over its compute budget."""
        limits = CLOUDFRONT_FUNCTION_LIMITS
        if result.kind == "ok" and (result.compute_utilization or 0) < 100:
            self._overruns = 0
            return
        if result.compute_utilization is not None and result.compute_utilization >= 100:
            self._overruns += 1
        if self._overruns >= limits.throttle_after_overruns:
            self._overruns = 0
            self._throttled_until = time.monotonic() + limits.throttle_seconds

    def _finish(
        self,
        request_id: str,
        outcome: Outcome,
        *,
        init: Outcome | None,
        limit: float,
        failed_init: bool = False,
    ) -> InvokeResult:
        """Count, log and return one invocation's result."""
        if self._cloudfront:
            result = build_cloudfront_result(request_id, outcome)
            self._watch_budget(result)
        else:
            result = build_result(
                request_id,
                outcome,
                init=init,
                limit=limit,
                memory_mb=self.config.memory,
                version=VERSION,
                failed_init=failed_init,
            )
        self._counts["invocations"] += 1
        if result.kind != "ok":
            self._counts["errors"] += 1
            key = {"timeout": "timeouts", "crash": "crashes"}.get(result.kind, result.kind)
            if key in self._counts:
                self._counts[key] += 1
        self._durations.append(result.duration_ms)
        # More lines are coming while others run or wait to: batch these with them.
        busy = self._busy > 0 or any(not waiter.done() for waiter in self._waiting)
        if self._log is not None:
            self._log.write(result.logs, busy=busy)
        if self._console is not None and result.logs:
            prefix = self._prefix
            self._console.write(prefix + f"\n{prefix}".join(result.logs), busy=busy)
        return result
