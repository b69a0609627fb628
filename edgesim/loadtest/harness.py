"""The coordinator of a load test: starts the processes, keeps time, collects, reports.

``run_loadtest(options)`` is what ``edgesim loadtest`` calls. It

1. builds the scenario (from the URLs or ``--scenario``) and its phases;
2. with ``--config``, starts that edge in a process of its own on loopback;
3. starts ``--processes`` generator processes, each with its share of the
   load, and releases them together: warm-up, then (once every warm-up
   request has finished) the measurement;
4. reads the edge's ``/stats`` at the start, between the stages and at the
   end, so the edge's own counts can be set beside the generator's;
5. measures the generator's ceiling against a trivial server, and
6. returns the report (``edgesim.loadtest.report``), written as JSON and
   HTML when asked.

Every stage ends by itself (duration, request budget, per-request timeout),
and every process it started is stopped on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from edgesim.loadtest.driver import Stage, StageResult
from edgesim.loadtest.metrics import Tally
from edgesim.loadtest.processes import SPAWN, edge_main, generator_main, stub_main
from edgesim.loadtest.scenario import (
    Load,
    Phase,
    Scenario,
    read_scenario,
    simple_scenario,
)

__all__ = ["LoadTestError", "Options", "RunData", "StageData", "build_phases", "run_loadtest"]

DEFAULT_CONCURRENCY = 10
DEFAULT_DURATION = 10.0
DEFAULT_OPEN_CONNECTIONS = 256  # per process, when --rate is given without --connections
NO_END = 86_400.0  # a --requests run without --duration still ends within a day
START_TIMEOUT = 30.0  # seconds for the edge and the generators to come up
STOP_TIMEOUT = 5.0
CEILING_WARMUP = 0.3  # seconds of the ceiling probe not counted


class LoadTestError(Exception):
    """The load test could not run (bad options, a process that did not start)."""


@dataclass(frozen=True, slots=True)
class Options:
    urls: tuple[str, ...] = ()
    config: Path | None = None  # start this edge and load it
    scenario: Path | None = None
    concurrency: int | None = None
    rate: float | None = None
    duration: float | None = None
    requests: int | None = None
    warmup: float = 0.0
    processes: int = 1
    connections: int | None = None  # open loop: the most connections per process
    timeout: float = 10.0
    ceiling: float = 1.0  # seconds of the generator-ceiling probe; 0 skips it
    seed: int | None = None
    generator_cpus: frozenset[int] | None = None
    edge_cpus: frozenset[int] | None = None


@dataclass(slots=True)
class StageData:
    """One stage as the coordinator saw it: merged seconds and each process's result."""

    intervals: dict[int, Tally] = field(default_factory=dict)
    results: list[StageResult] = field(default_factory=list)

    def add(self, index: int, tally: Tally) -> None:
        mine = self.intervals.get(index)
        if mine is None:
            self.intervals[index] = tally
        else:
            mine.merge(tally)

    @property
    def total(self) -> Tally:
        return Tally.merged(list(self.intervals.values()))

    @property
    def elapsed(self) -> float:
        return max((r.elapsed for r in self.results), default=0.0)


@dataclass(slots=True)
class RunData:
    """Everything the report is made from."""

    options: Options
    scenario: Scenario
    phases: tuple[Phase, ...]
    target: str
    started_at: float
    warmup: StageData | None
    measure: StageData
    stats: dict[str, dict[str, Any]]  # "start", "measure", "end": the edge's /stats
    functions: dict[str, tuple[str, int]]  # name -> (runtime, memory MB)
    ceiling: dict[str, Any] | None
    interrupted: bool = False


def _split_int(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def build_phases(options: Options, scenario: Scenario) -> tuple[Phase, ...]:
    """The phases of the run: the scenario's, or one steady phase from the flags."""
    if scenario.phases:
        if options.rate is not None or options.concurrency is not None or options.duration:
            raise LoadTestError(
                f"{scenario.source} defines phases: leave out --rate, --concurrency and "
                "--duration (--connections caps the connections of open-loop phases)"
            )
        return scenario.phases
    if options.rate is not None and options.concurrency is not None:
        raise LoadTestError("give --rate (open loop) or --concurrency (closed loop), not both")
    duration = options.duration or (NO_END if options.requests else DEFAULT_DURATION)
    if options.rate is not None:
        return (Phase("steady", duration, rate=Load(options.rate, options.rate)),)
    concurrency = float(options.concurrency or DEFAULT_CONCURRENCY)
    return (Phase("steady", duration, concurrency=Load(concurrency, concurrency)),)


def _share(phases: tuple[Phase, ...], parts: int, index: int) -> tuple[Phase, ...]:
    """Process ``index``'s share of each phase's load."""
    out = []
    for phase in phases:
        if phase.rate is not None:
            rate = Load(phase.rate.start / parts, phase.rate.end / parts)
            out.append(Phase(phase.name, phase.duration, rate=rate))
        else:
            assert phase.concurrency is not None
            start = _split_int(round(phase.concurrency.start), parts)[index]
            end = _split_int(round(phase.concurrency.end), parts)[index]
            out.append(Phase(phase.name, phase.duration, concurrency=Load(start, end)))
    return tuple(out)


def _warmup_phase(first: Phase, seconds: float) -> Phase:
    """Warm-up offers the first phase's load (its end, if it ramps up from nothing)."""
    if first.rate is not None:
        rate = first.rate.start or first.rate.end
        return Phase("warm-up", seconds, rate=Load(rate, rate))
    assert first.concurrency is not None
    concurrency = first.concurrency.start or first.concurrency.end
    return Phase("warm-up", seconds, concurrency=Load(concurrency, concurrency))


class _Children:
    """The processes of one run; all are stopped when the block exits."""

    def __init__(self) -> None:
        self.procs: list[Any] = []
        self.pipes: list[Connection] = []

    def start(self, target: Callable[..., None], *args: Any) -> Connection:
        mine, theirs = SPAWN.Pipe()
        proc = SPAWN.Process(target=target, args=(theirs, *args), daemon=True)
        proc.start()
        theirs.close()
        self.procs.append(proc)
        self.pipes.append(mine)
        return mine

    def __enter__(self) -> _Children:
        return self

    def __exit__(self, *_: object) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError, ValueError):
                pipe.send(("stop",))
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for pipe in self.pipes:
            pipe.close()


def _expect(pipe: Connection, what: str, timeout: float = START_TIMEOUT) -> tuple[Any, ...]:
    """The next message from a child; LoadTestError for an error, a timeout or an exit."""
    if not pipe.poll(timeout):
        raise LoadTestError(f"{what} did not start within {timeout:.0f} s")
    try:
        message: tuple[Any, ...] = pipe.recv()
    except EOFError:
        raise LoadTestError(f"{what} exited before it was ready") from None
    if message[0] == "error":
        raise LoadTestError(f"{what}: {message[1]}")
    return message


class _Collector:
    """Reads the generators' messages into StageData until each has ended the stage."""

    def __init__(self, pipes: list[Connection], on_tick: Callable[[str, StageData], None]) -> None:
        self.pipes = pipes
        self.on_tick = on_tick

    def stage(self, name: str, deadline: float) -> StageData:
        data = StageData()
        for pipe in self.pipes:
            pipe.send(("go",))
        waiting = set(range(len(self.pipes)))
        last_tick = 0.0
        while waiting:
            if time.monotonic() > deadline:
                raise LoadTestError(f"the {name} stage did not end in time")
            ready = wait([self.pipes[i] for i in waiting], timeout=0.25)
            for index in [i for i in waiting if self.pipes[i] in ready]:
                try:
                    message = self.pipes[index].recv()
                except EOFError:
                    raise LoadTestError(f"generator {index} exited during {name}") from None
                kind = message[0]
                if kind == "interval":
                    data.add(message[2], Tally.from_dict(message[3]))
                elif kind == "stage":
                    data.results.append(StageResult.from_dict(message[2]))
                    waiting.discard(index)
                elif kind == "error":
                    raise LoadTestError(f"generator {index} failed:\n{message[1]}")
            if time.monotonic() - last_tick >= 0.25:
                last_tick = time.monotonic()
                self.on_tick(name, data)
        self.on_tick(name, data)
        return data


def _scenario(options: Options) -> Scenario:
    relative = options.config is not None
    if options.scenario is not None:
        if options.urls:
            raise LoadTestError("give URLs or --scenario, not both")
        return read_scenario(options.scenario, relative=relative)
    if not options.urls:
        raise LoadTestError("give at least one URL (or --scenario FILE)")
    try:
        return simple_scenario(list(options.urls), relative=relative)
    except ValueError as error:
        raise LoadTestError(str(error)) from None


def _function_specs(config_path: Path) -> dict[str, tuple[str, int]]:
    from edgesim.config.loader import load_config

    config = load_config(config_path)
    return {name: (f.runtime, f.memory) for name, f in config.functions.items()}


def run_loadtest(
    options: Options, on_tick: Callable[[str, StageData, RunData], None] | None = None
) -> RunData:
    """Run the load test ``options`` describe; ``on_tick`` sees progress a few times a second.

    Raises LoadTestError or ConfigError when it cannot run.
    """
    if options.processes < 1:
        raise LoadTestError("--processes must be at least 1")
    scenario = _scenario(options)
    phases = build_phases(options, scenario)
    functions: dict[str, tuple[str, int]] = {}
    if options.config is not None:
        functions = _function_specs(options.config)  # ConfigError names file and line
    seed = options.seed if options.seed is not None else scenario.seed
    with _Children() as children:
        admin_url = None
        if options.config is not None:
            edge_pipe = children.start(edge_main, str(options.config), options.edge_cpus)
            _, target, admin_url = _expect(edge_pipe, "the edge")
            scenario = scenario.resolve(target)
        else:
            target = ", ".join(
                sorted({f"{s.scheme}://{s.host}:{s.port}" for s in scenario.requests})
            )
        run = RunData(
            options, scenario, phases, target, time.time(), None, StageData(), {}, functions, None
        )
        _generate(children, run, seed, admin_url, on_tick)
    run.ceiling = probe_ceiling(options, run) if options.ceiling > 0 else None
    return run


def _generate(
    children: _Children,
    run: RunData,
    seed: int | None,
    admin_url: str | None,
    on_tick: Callable[[str, StageData, RunData], None] | None,
) -> None:
    from edgesim.loadtest.edge_stats import fetch_stats

    options, phases = run.options, run.phases
    parts = options.processes
    budgets = _split_int(options.requests, parts) if options.requests else [None] * parts
    connections = options.connections or (
        DEFAULT_OPEN_CONNECTIONS if phases[0].rate is not None else 0
    )
    pipes = []
    for i in range(parts):
        mine = _share(phases, parts, i)
        stages = []
        if options.warmup > 0:
            warm = (_warmup_phase(mine[0], options.warmup),)
            stages.append(
                Stage("warmup", warm, None, options.timeout, connections, _seed(seed, i, 1))
            )
        stages.append(
            Stage("measure", mine, budgets[i], options.timeout, connections, _seed(seed, i, 0))
        )
        pipes.append(children.start(generator_main, run.scenario, stages, options.generator_cpus))
    for i, pipe in enumerate(pipes):
        _expect(pipe, f"generator {i}")

    def tick(name: str, data: StageData) -> None:
        if on_tick is not None:
            on_tick(name, data, run)

    collector = _Collector(pipes, tick)
    slack = 2 * options.timeout + 30
    if admin_url:
        run.stats["start"] = fetch_stats(admin_url)
    if options.warmup > 0:
        run.warmup = collector.stage("warmup", time.monotonic() + options.warmup + slack)
    if admin_url:
        run.stats["measure"] = fetch_stats(admin_url)
    total = sum(p.duration for p in phases)
    try:
        run.measure = collector.stage("measure", time.monotonic() + total + slack)
    except KeyboardInterrupt:
        run.interrupted = True
        raise
    if admin_url:
        run.stats["end"] = fetch_stats(admin_url)


def _seed(seed: int | None, process: int, stage: int) -> int | None:
    return None if seed is None else seed * 1000 + process * 2 + stage


def probe_ceiling(options: Options, run: RunData) -> dict[str, Any]:
    """The generator's own ceiling: the same processes and connections against a trivial server.

    The stub answers with a body the size of the run's average response, so
    the generator does the same work per response as in the run.
    """
    total = run.measure.total
    size = max(0, (total.bytes // total.answered_count if total.answered_count else 1024) - 120)
    if run.phases[0].rate is not None:
        connections = (
            max(r.peak_connections for r in run.measure.results) if run.measure.results else 16
        )
        connections = max(connections, 16 * options.processes)
    else:
        connections = max(
            round(max(p.concurrency.start, p.concurrency.end)) for p in run.phases if p.concurrency
        )
    probe = Options(ceiling=0, processes=options.processes, generator_cpus=options.generator_cpus)
    with _Children() as children:
        stub = children.start(stub_main, size, options.edge_cpus)
        _, port = _expect(stub, "the ceiling stub")
        scenario = simple_scenario([f"http://127.0.0.1:{port}/ceiling"], relative=False)
        phase = Phase("ceiling", options.ceiling, concurrency=Load(connections, connections))
        pipes = []
        for i in range(options.processes):
            share = _share((phase,), options.processes, i)
            stages = [  # a short warm-up first: connections, caches, the first second's jitter
                Stage(
                    "warmup",
                    (_warmup_phase(share[0], CEILING_WARMUP),),
                    None,
                    options.timeout,
                    0,
                    None,
                ),
                Stage("ceiling", share, None, options.timeout, 0, None),
            ]
            pipes.append(children.start(generator_main, scenario, stages, probe.generator_cpus))
        for i, pipe in enumerate(pipes):
            _expect(pipe, f"ceiling generator {i}")
        collector = _Collector(pipes, lambda *_: None)
        slack = 2 * options.timeout + 30
        collector.stage("warmup", time.monotonic() + CEILING_WARMUP + slack)
        data = collector.stage("ceiling", time.monotonic() + options.ceiling + slack)
    answered = data.total.answered_count
    elapsed = data.elapsed
    return {
        "requests_per_s": answered / elapsed if elapsed > 0 else 0.0,
        "connections": connections,
        "processes": options.processes,
        "body_bytes": size,
        "seconds": elapsed,
        "cpu": [r.cpu / r.elapsed if r.elapsed else 0.0 for r in data.results],
    }
