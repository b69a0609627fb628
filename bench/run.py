"""Throughput and latency of the edgesim edge against plain-aiohttp peers, on loopback.

One run measures four servers, each one process on uvloop pinned to core 0,
loaded by wrk (keep-alive, one thread) pinned to core 1:

    bare aiohttp          bench/peers/origin.py answering GET /obj-<size> itself
    edgesim hit           the edge (CachingOptimized), the object already cached
    ClientSession proxy   bench/peers/proxy.py forwarding every GET to the origin
    edgesim miss          the edge (CachingDisabled), every GET proxied to the origin

The origin behind both proxies is bench/peers/static_origin.py, also on core 1:
the same responses as origin.py from pre-rendered bytes, cheap enough that
core 1 (wrk and the origin) does not hold back the faster proxy. Each
server is measured with a 1 KB and a 100 KB body, in --rounds interleaved
rounds (all servers stay up, idle when not measured, so both sides of a ratio
are measured back to back); the median round is reported. It prints a table
(req/s, p50, p99, CPU used by the server, by core 1 and by anything else) and
two ratios of req/s:

    edgesim hit  / bare aiohttp          target >= 1.0x (aim 1.15x)
    edgesim miss / ClientSession proxy   target >= 2.0x

Before measuring, each server must answer 200 with the right body length (and
the edge must report a cache hit in the hit case). A wrk run that reports
socket errors or non-2xx responses is printed and makes the exit status 1. A
run during which other processes (or the hypervisor, as steal) took more
than 5% of either core is measured again (--retries) and flagged if it never
ran clean. Everything
started is stopped at the end, also on Ctrl-C, SIGTERM or an error. Only
127.0.0.1 is used.

    python bench/run.py                  # 3 rounds of 10 s runs: about 5 minutes
    python bench/run.py --quick          # 1 round of 3 s runs: under a minute
    python bench/run.py --json out.json  # also write the results as JSON
    python bench/run.py --wait-idle 60   # on a shared machine: wait for quiet cores

Needs wrk and taskset (Debian: apt-get install -y wrk util-linux) and two cores.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
PEERS = Path(__file__).resolve().parent / "peers"

SIZES = {"1k": 1024, "100k": 100 * 1024}
SERVER_CORE = "0"
LOAD_CORE = "1"
READY_TIMEOUT = 20.0  # seconds a server gets to start answering
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
NOISE = 0.05  # CPU share of foreign work above which a measurement is flagged


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    key: str  # for --cases
    name: str  # for the table
    server: str  # "origin", "proxy" or "edge"
    cache: str | None = None  # the edge's cache policy
    viewer_function: bool = False  # a no-op Python viewer-request function on the behavior


CASES = (
    Case("bare", "bare aiohttp", "origin"),
    Case("hit", "edgesim hit", "edge", "CachingOptimized"),
    Case("proxy", "ClientSession proxy", "proxy"),
    Case("miss", "edgesim miss", "edge", "CachingDisabled"),
    Case("hook", "edgesim hit + viewer-request fn", "edge", "CachingOptimized", True),
)
RATIOS = (
    # (numerator, denominator, label, minimum, aim)
    ("hit", "bare", "edgesim hit / bare aiohttp", 1.0, 1.15),
    ("miss", "proxy", "edgesim miss / ClientSession proxy", 2.0, 2.0),
    ("hook", "hit", "hit with a no-op viewer-request fn / hit without", 0.5, 0.5),
)


class BenchError(Exception):
    """A case could not be measured: a server did not start or answered wrongly."""


@dataclasses.dataclass(slots=True)
class Result:
    case: str
    name: str
    size: str
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    requests: int | None = None
    server_cpu: float | None = None  # share of one core, 1.0 = saturated
    load_core_cpu: float | None = None  # wrk plus the origin, on core 1
    other_cpu: tuple[float, float] | None = None  # CPU used by anything else on cores 0, 1
    steal: float | None = None  # CPU the hypervisor took from cores 0 and 1
    core_busy: tuple[float, float] | None = None  # cores 0, 1 busy in all, interrupts included
    origin_requests: int | None = None  # origin requests seen during the measured run
    x_cache: str | None = None  # the edge's X-Cache on the check request
    runs: int = 0  # measured runs made; more than one when foreign load spoiled a run
    rounds: list[float] = dataclasses.field(default_factory=list)  # req/s of every round
    noisy_rounds: int = 0  # rounds that never ran free of foreign load
    errors: list[str] = dataclasses.field(default_factory=list)


# --- processes -------------------------------------------------------------------------


class Processes:
    """Servers started by this run; all of them are stopped when the block exits."""

    def __init__(self, logdir: Path) -> None:
        # A folder of their own: the edge watches its config's folder for edits
        # (hot reload), and a server log written next to it would wake the
        # watcher on every line the edge prints.
        self._logdir = logdir / "logs"
        self._logdir.mkdir(exist_ok=True)
        self._running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        for name in list(self._running):
            with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C: still stop the rest
                self.stop(name)

    def start(self, name: str, argv: list[str], core: str | None) -> subprocess.Popen[bytes]:
        if core is not None:
            argv = ["taskset", "-c", core, *argv]
        log = (self._logdir / f"{name}.log").open("wb")
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        )
        # A session of its own: Ctrl-C reaches only this script, which then stops
        # the servers in order instead of racing them.
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self._running[name] = (proc, log)
        return proc

    def log_tail(self, name: str, lines: int = 15) -> str:
        text = (self._logdir / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, name: str) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT (or at once if interrupted meanwhile)."""
        proc, log = self._running.pop(name)
        try:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> list[int]:
    """The living descendants of ``pid`` (the edge's zygote and workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parents[int(entry.name)] = int(fields[1])
    tree, grown = {pid}, True
    while grown:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sorted(tree - {pid})


def thread_ns(pid: int) -> int:
    """Time on a CPU of every thread of ``pid``, in ns, from
    ``/proc/<pid>/task/<tid>/schedstat``: exact, where utime + stime are
    sampled once per tick (a worker that runs 400 times for 20 us each may be
    charged 0 ticks or 3), and counting threads (Node.js's, an executor's)
    that ``/proc/<pid>/schedstat`` leaves out."""
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return 0
    total = 0
    for thread in threads:
        try:
            total += int((thread / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """Time on a CPU of a process and its living descendants, every thread of each.

    The edge's function workers are its descendants: their CPU is the edge's;
    counted exactly, 50 short-running workers do not show up as another
    process's load on their core.
    """
    return sum(thread_ns(p) for p in (pid, *descendants(pid))) / 1e9


_TICK = os.sysconf("SC_CLK_TCK")


def user_system_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process and its living descendants, from the
    ``utime`` and ``stime`` of ``/proc/<pid>/stat``: sampled once per tick, so
    good for the split of a run of seconds, not for a single request."""
    user = system = 0
    for p in (pid, *descendants(pid)):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])
    return user / _TICK, system / _TICK


def core_seconds() -> dict[str, tuple[float, float, float]]:
    """Per core: (time running tasks, time stolen, interrupt time), from /proc/stat.

    Interrupt and softirq time (where the kernel does much of loopback TCP) is
    kept apart, as it is charged to no process.
    """
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name in ("cpu0", "cpu1"):
            user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[:8])
            out[name] = ((user + nice + system) / tick, steal / tick, (irq + softirq) / tick)
    return out


def wait_idle(limit: float) -> tuple[float, float]:
    """Wait up to ``limit`` seconds for a second in which cores 0 and 1 are idle.

    Returns the busy share of each core over the last second sampled. Our own
    servers are idle whenever this is called, so any load seen is foreign.
    """
    deadline = time.monotonic() + limit
    told = False
    while True:
        before, started = core_seconds(), time.monotonic()
        time.sleep(1.0)
        after, elapsed = core_seconds(), time.monotonic() - started
        busy = tuple((after[c][0] - before[c][0]) / elapsed for c in ("cpu0", "cpu1"))
        if max(busy) <= NOISE or time.monotonic() >= deadline:
            return busy[0], busy[1]
        if not told:
            print(f"   waiting up to {limit:.0f} s for other processes to leave cores 0 and 1 idle")
            told = True


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- HTTP checks -----------------------------------------------------------------------


def fetch(port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def wait_ready(
    procs: Processes,
    name: str,
    proc: subprocess.Popen[bytes],
    port: int,
    timeout: float = READY_TIMEOUT,
    fetch_timeout: float = 1.0,
) -> None:
    """Wait until ``proc`` answers GET /obj-1k (longer ``timeout``s under valgrind)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError(
                f"{name} exited with status {proc.returncode}:\n{procs.log_tail(name)}"
            )
        try:
            fetch(port, "/obj-1k", timeout=fetch_timeout)
            return
        except (OSError, http.client.HTTPException):
            if time.monotonic() > deadline:
                raise BenchError(
                    f"{name} did not answer on 127.0.0.1:{port} within {timeout:.0f} s:\n"
                    f"{procs.log_tail(name)}"
                ) from None
            time.sleep(0.1)


def check_answer(port: int, path: str, size: int) -> dict[str, str]:
    status, headers, body = fetch(port, path)
    if status != 200 or len(body) != size:
        raise BenchError(f"GET {path}: status {status}, {len(body)} bytes (want 200, {size})")
    return headers


def origin_count(port: int) -> int:
    status, _, body = fetch(port, "/_count")
    if status != 200:
        raise BenchError(f"origin /_count answered {status}")
    return int(body)


# --- wrk -------------------------------------------------------------------------------

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50/p99 (ms), request count and error lines from wrk --latency output."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    total = re.search(r"^\s*(\d+) requests in", output, re.M)
    percentiles = dict(
        (p, _ms(v, u))
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    )
    if rate is None or total is None or "50" not in percentiles or "99" not in percentiles:
        raise BenchError(f"could not parse wrk output:\n{output}")
    errors = []
    sockets = re.search(r"Socket errors: (.*)$", output, re.M)
    if sockets and any(int(n) for n in re.findall(r"\d+", sockets.group(1))):
        errors.append(f"socket errors: {sockets.group(1)}")
    statuses = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if statuses:
        errors.append(f"non-2xx/3xx responses: {statuses.group(1)}")
    return {
        "requests_per_s": float(rate.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": percentiles["50"],
        "p99_ms": percentiles["99"],
        "errors": errors,
    }


def wrk_argv(port: int, path: str, seconds: int, connections: int) -> list[str]:
    return [
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
        f"http://127.0.0.1:{port}{path}",
    ]


def run_wrk(port: int, path: str, seconds: int, connections: int) -> dict[str, Any]:
    argv = wrk_argv(port, path, seconds, connections)
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 30, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"wrk did not finish within {seconds + 30} s") from error
    if done.returncode != 0:
        raise BenchError(f"wrk exited with status {done.returncode}: {done.stderr.strip()}")
    return parse_wrk(done.stdout)


# --- the cases -------------------------------------------------------------------------


def edge_config(
    path: Path, port: int, admin_port: int, origin_port: int, cache: str, function: bool
) -> None:
    text = (
        f"listen: 127.0.0.1:{port}\n"
        f"admin_listen: 127.0.0.1:{admin_port}\n"
        "origins:\n"
        "  app:\n"
        f"    url: http://127.0.0.1:{origin_port}\n"
        "default_behavior:\n"
        "  origin: app\n"
        f"  cache: {cache}\n"
    )
    if function:
        text += (
            "  functions: {viewer-request: noop}\n"
            "functions:\n"
            "  noop:\n"
            "    runtime: python3.12\n"
            f"    code: {PEERS}\n"
            "    handler: noop_function.handler\n"
            "    prewarm: 4\n"
        )
    path.write_text(text)


def start_server(
    procs: Processes, case: Case, origin_port: int, workdir: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    python = sys.executable
    if case.server == "origin":
        argv = [python, str(PEERS / "origin.py"), "--port", str(port)]
    elif case.server == "proxy":
        origin = f"http://127.0.0.1:{origin_port}"
        argv = [python, str(PEERS / "proxy.py"), "--port", str(port), "--origin", origin]
    else:
        assert case.cache is not None
        admin_port = free_port()
        config = workdir / f"edge-{case.key}.yaml"
        edge_config(config, port, admin_port, origin_port, case.cache, case.viewer_function)
        argv = [
            python,
            "-m",
            "edgesim.cli",
            "serve",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
            "--admin-listen",
            f"127.0.0.1:{admin_port}",
        ]
    proc = procs.start(case.key, argv, SERVER_CORE)
    wait_ready(procs, case.key, proc, port)
    return proc, port


def noise(result: Result) -> float:
    """The largest share of a core that something else took: other processes or steal."""
    if result.other_cpu is None or result.steal is None:
        return 0.0
    return max(*result.other_cpu, result.steal)


def measure(
    result: Result,
    case: Case,
    server: subprocess.Popen[bytes],
    port: int,
    origin: subprocess.Popen[bytes],
    origin_port: int,
    args: argparse.Namespace,
) -> Result:
    """Check the answer, warm up, then measure until a run is free of foreign load.

    A run during which other processes used more than NOISE of a core is
    repeated, up to ``args.retries`` times; the quietest run is kept.
    """
    path, size = f"/obj-{result.size}", SIZES[result.size]
    headers = check_answer(port, path, size)  # for the hit case this also warms the cache
    if case.server == "edge":
        headers = check_answer(port, path, size)
        result.x_cache = headers.get("x-cache")
        if case.cache == "CachingOptimized" and "hit" not in (result.x_cache or "").lower():
            raise BenchError(f"second GET {path} was not a cache hit (X-Cache: {result.x_cache})")

    if args.wait_idle:
        wait_idle(args.wait_idle)
    warm = run_wrk(port, path, args.warmup, args.connections)
    result.errors += [f"warm-up: {e}" for e in warm["errors"]]
    samples: list[Result] = []
    for attempt in range(1 + args.retries):
        if attempt:
            print(
                f"   {result.name} {result.size}: other processes or the hypervisor took "
                f"{noise(samples[-1]):.0%} of a core; measuring again",
                flush=True,
            )
            if args.wait_idle:
                wait_idle(args.wait_idle)
        sample = dataclasses.replace(result, errors=[])
        sample_run(sample, server, port, path, origin, origin_port, args)
        samples.append(sample)
        result.errors += sample.errors
        if noise(sample) <= NOISE:
            break
    best = min(samples, key=noise)
    best.runs = len(samples)
    best.errors = result.errors
    check_answer(port, path, size)  # still answering correctly after the load
    return best


def sample_run(
    result: Result,
    server: subprocess.Popen[bytes],
    port: int,
    path: str,
    origin: subprocess.Popen[bytes],
    origin_port: int,
    args: argparse.Namespace,
) -> None:
    """One measured wrk run, with the CPU used by each side and by anything else."""
    count_before = origin_count(origin_port)
    server_cpu, origin_cpu = cpu_seconds(server.pid), cpu_seconds(origin.pid)
    wrk_cpu, cores = children_cpu_seconds(), core_seconds()
    started = time.monotonic()
    stats = run_wrk(port, path, args.duration, args.connections)
    elapsed = time.monotonic() - started
    cores_after = core_seconds()
    result.server_cpu = (cpu_seconds(server.pid) - server_cpu) / elapsed
    wrk_share = (children_cpu_seconds() - wrk_cpu) / elapsed
    origin_share = 0.0 if origin is server else (cpu_seconds(origin.pid) - origin_cpu) / elapsed
    result.load_core_cpu = wrk_share + origin_share
    used = {c: (cores_after[c][0] - cores[c][0]) / elapsed for c in cores}
    interrupts = {c: (cores_after[c][2] - cores[c][2]) / elapsed for c in cores}
    result.core_busy = (
        used["cpu0"] + interrupts["cpu0"],
        used["cpu1"] + interrupts["cpu1"],
    )
    result.other_cpu = (
        max(0.0, used["cpu0"] - result.server_cpu),
        max(0.0, used["cpu1"] - result.load_core_cpu),
    )
    result.steal = sum(cores_after[c][1] - cores[c][1] for c in cores) / elapsed
    # In the bare case the origin is the server under test: nothing to count.
    if origin is not server:
        result.origin_requests = origin_count(origin_port) - count_before
    result.requests_per_s = stats["requests_per_s"]
    result.requests = stats["requests"]
    result.p50_ms = stats["p50_ms"]
    result.p99_ms = stats["p99_ms"]
    result.errors += stats["errors"]


def run_all(
    procs: Processes,
    origin: subprocess.Popen[bytes],
    origin_port: int,
    workdir: Path,
    args: argparse.Namespace,
) -> list[Result]:
    """Start every server, then measure them in rounds; one summarized Result per case and size.

    All servers stay up (idle when not measured) so that, in each round, the
    two sides of a ratio are measured back to back and drift in the machine's
    speed hits both alike.
    """
    cases = [c for c in CASES if c.key in args.cases]
    servers: dict[str, tuple[subprocess.Popen[bytes], int, subprocess.Popen[bytes], int]] = {}
    samples: dict[tuple[str, str], list[Result]] = {
        (c.key, size): [] for size in args.sizes for c in cases
    }
    for case in cases:
        try:
            proc, port = start_server(procs, case, origin_port, workdir)
        except BenchError as error:
            print(f"{case.name}: not measured: {error}", flush=True)
            for size in args.sizes:
                failed = Result(case.key, case.name, size, errors=[f"not measured: {error}"])
                samples[case.key, size].append(failed)
            continue
        # The bare case measures its own origin.py on core 0, not the shared origin.
        servers[case.key] = (
            (proc, port, proc, port)
            if case.server == "origin"
            else (proc, port, origin, origin_port)
        )
    for round_ in range(1, args.rounds + 1):
        if args.rounds > 1:
            print(f"\n== round {round_} of {args.rounds}", flush=True)
        for size in args.sizes:
            for case in cases:
                if case.key not in servers:  # it did not start, or it died earlier
                    if not samples[case.key, size]:
                        samples[case.key, size].append(
                            Result(case.key, case.name, size, errors=["not measured"])
                        )
                    continue
                server, port, case_origin, case_origin_port = servers[case.key]
                planned = Result(case.key, case.name, size)
                try:
                    sample = measure(
                        planned, case, server, port, case_origin, case_origin_port, args
                    )
                except (BenchError, OSError, http.client.HTTPException) as error:
                    # OSError: the server went away (crashed) while being measured.
                    planned.errors.append(f"not measured: {error!r}")
                    sample = planned
                    if server.poll() is not None:
                        planned.errors.append(
                            f"{case.key} exited with status {server.returncode}:\n"
                            + procs.log_tail(case.key)
                        )
                        del servers[case.key]
                samples[case.key, size].append(sample)
                print(f"   {case.name} " + describe(sample), flush=True)
    if args.together:
        print("\n== both sides of each ratio loaded at once", flush=True)
        up = {key: (server, port) for key, (server, port, _, _) in servers.items()}
        args.together_rows = together_rows(up, args)
    return [summarize(samples[c.key, size]) for size in args.sizes for c in cases]


def summarize(samples: list[Result]) -> Result:
    """The round with the median req/s stands for the case; errors of every round are kept."""
    measured = sorted(
        (s for s in samples if s.requests_per_s is not None), key=lambda s: s.requests_per_s or 0
    )
    errors = [e for s in samples for e in s.errors]
    if not measured:
        return dataclasses.replace(samples[0], errors=errors)
    median = measured[(len(measured) - 1) // 2]
    rates = [s.requests_per_s for s in samples if s.requests_per_s is not None]  # round order
    noisy = sum(1 for s in measured if noise(s) > NOISE)
    return dataclasses.replace(median, errors=errors, rounds=rates, noisy_rounds=noisy)


def measure_together(
    a: tuple[subprocess.Popen[bytes], int],
    b: tuple[subprocess.Popen[bytes], int],
    size: str,
    args: argparse.Namespace,
) -> tuple[float, float, float]:
    """Load both servers of a ratio at once, each with its own wrk (half the
    connections each, both on core 1), and return (ratio, a's CPU share, b's):
    the ratio of requests per CPU-second of the two servers. They share core 0
    in turns of a few milliseconds, so a change in the machine's speed during
    the run slows both alike, which back-to-back runs cannot promise."""
    path = f"/obj-{size}"
    connections = max(1, args.connections // 2)
    for warm in (True, False):
        seconds = args.warmup if warm else args.duration
        before = [cpu_seconds(proc.pid) for proc, _ in (a, b)]
        started = time.monotonic()
        wrks = [
            subprocess.Popen(
                wrk_argv(port, path, seconds, connections),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _, port in (a, b)
        ]
        outputs = [w.communicate(timeout=seconds + 30) for w in wrks]
        elapsed = time.monotonic() - started
        used = [cpu_seconds(proc.pid) - t for (proc, _), t in zip((a, b), before, strict=True)]
    stats = [parse_wrk(out) for out, _ in outputs]
    for w, st, (_, err) in zip(wrks, stats, outputs, strict=True):
        if w.returncode != 0 or st["errors"]:
            raise BenchError(f"wrk (together): status {w.returncode}, {st['errors']} {err.strip()}")
    per_cpu = [st["requests"] / cpu for st, cpu in zip(stats, used, strict=True)]
    return per_cpu[0] / per_cpu[1], used[0] / elapsed, used[1] / elapsed


def together_line(
    label: str, size: str, ratios: list[float], shares: list[tuple[float, float]]
) -> str:
    """The log line of one ratio's together rounds."""
    rounds = ", ".join(f"{r:.2f}x" for r in ratios)
    cpu = ", ".join(f"{a:.0%}/{b:.0%}" for a, b in shares)
    return f"   together {label} {size}: {rounds} (CPU shares {cpu})"


def together_rows(
    servers: dict[str, tuple[subprocess.Popen[bytes], int]], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """``args.together`` rounds of ``measure_together`` for every ratio whose servers are up."""
    rows = []
    for top, bottom, label, minimum, aim in RATIOS:
        if top not in servers or bottom not in servers:
            continue
        for size in args.sizes:
            per_round, shares = [], []
            for _ in range(args.together):
                ratio, share_a, share_b = measure_together(
                    servers[top], servers[bottom], size, args
                )
                per_round.append(ratio)
                shares.append((share_a, share_b))
            print(together_line(label, size, per_round, shares), flush=True)
            rows.append(
                {
                    "ratio": label,
                    "size": size,
                    "value": statistics.median(per_round),
                    "minimum": minimum,
                    "aim": aim,
                    "noisy": False,
                    "per_round": per_round,
                    "cpu_shares": shares,
                }
            )
    return rows


def describe(result: Result) -> str:
    if result.requests_per_s is None:
        return f"{result.size}: " + "; ".join(result.errors)
    text = (
        f"{result.size}: {result.requests_per_s:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms, server CPU {result.server_cpu:.0%}, "
        f"core 1 CPU {result.load_core_cpu:.0%}"
    )
    if result.core_busy is not None:
        text += ", cores busy {:.0%}/{:.0%} with interrupts".format(*result.core_busy)
    if result.origin_requests is not None:
        text += f", origin requests {result.origin_requests:,}"
    if result.x_cache:
        text += f", X-Cache: {result.x_cache}"
    if result.other_cpu is not None and max(result.other_cpu) > NOISE:
        text += (
            f"\n      NOTE other processes used {result.other_cpu[0]:.0%} of core 0 and "
            f"{result.other_cpu[1]:.0%} of core 1: this number is not reliable"
        )
    if result.steal is not None and result.steal > NOISE:
        text += f"\n      NOTE the hypervisor stole {result.steal:.0%} of a core"
    return text + "".join(f"\n      ERROR {e}" for e in result.errors)


# --- report ----------------------------------------------------------------------------


def machine() -> dict[str, str]:
    from importlib.metadata import version

    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    edgesim = "unknown"
    with contextlib.suppress(OSError):
        git = ["git", "-C", str(ROOT)]
        head = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        )
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "edgesim"],
            capture_output=True,
            text=True,
            check=False,
        )
        if head.returncode == 0:
            edgesim = head.stdout.strip() + (" + uncommitted changes" if dirty.stdout else "")
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": version("aiohttp"),
        "uvloop": version("uvloop"),
        "edgesim": edgesim,
        "wrk": (wrk.stdout or wrk.stderr).split(" [")[0].removeprefix("wrk ").strip(),
    }


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(results: list[Result]) -> str:
    lines = [
        "| case | body | req/s | p50 ms | p99 ms | server CPU | core 1 CPU "
        "| other CPU c0/c1 | steal | origin req/resp |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        per_response = (
            None if r.origin_requests is None or not r.requests else r.origin_requests / r.requests
        )
        other = "-" if r.other_cpu is None else "{:.0%}/{:.0%}".format(*r.other_cpu)
        rate = _fmt(r.requests_per_s, ",.0f")
        if len(r.rounds) > 1:
            rate += f" ({min(r.rounds):,.0f}-{max(r.rounds):,.0f})"
        if r.noisy_rounds:
            rate += " *"
        lines.append(
            f"| {r.name} | {r.size.upper().replace('K', ' KB')} | {rate} "
            f"| {_fmt(r.p50_ms, '.2f')} | {_fmt(r.p99_ms, '.2f')} | {_fmt(r.server_cpu, '.0%')} "
            f"| {_fmt(r.load_core_cpu, '.0%')} | {other} | {_fmt(r.steal, '.0%')} "
            f"| {_fmt(per_response, '.2f')} |"
        )
    if any(r.noisy_rounds for r in results):
        lines.append(
            f"\n* in some rounds, other processes or the hypervisor (steal) took more than "
            f"{NOISE:.0%} of a core, in every retry: those rounds' numbers are too low."
        )
    return "\n".join(lines)


def ratios(results: list[Result], sizes: list[str]) -> list[dict[str, Any]]:
    by_key = {(r.case, r.size): r for r in results}
    out = []
    for top, bottom, label, minimum, aim in RATIOS:
        for size in sizes:
            a, b = by_key.get((top, size)), by_key.get((bottom, size))
            value, per_round = None, []
            if a and b and a.requests_per_s and b.requests_per_s:
                # Rounds measure both sides back to back: the median of the
                # paired ratios is steadier than the ratio of two medians.
                if len(a.rounds) == len(b.rounds):
                    per_round = [x / y for x, y in zip(a.rounds, b.rounds, strict=True)]
                    value = statistics.median(per_round)
                else:  # a round failed on one side: pairs are lost
                    value = a.requests_per_s / b.requests_per_s
            noisy = any(r.noisy_rounds for r in (a, b) if r is not None)
            out.append(
                {
                    "ratio": label,
                    "size": size,
                    "value": value,
                    "minimum": minimum,
                    "aim": aim,
                    "noisy": noisy,
                    "per_round": per_round,
                }
            )
    return out


def ratio_table(rows: list[dict[str, Any]], what: str = "ratio of req/s") -> str:
    lines = [
        f"| {what} | body | median of rounds (range) | target | verdict |",
        "|---|---|---:|---|---|",
    ]
    for row in rows:
        target = f">= {row['minimum']:.2f}x"
        if row["aim"] > row["minimum"]:
            target += f" (aim {row['aim']:.2f}x)"
        value = row["value"]
        if value is None:
            verdict = "not measured"
        elif value >= row["aim"]:
            verdict = "met"
        elif value >= row["minimum"]:
            verdict = "minimum met, below aim"
        else:
            verdict = "NOT met"
        if value is not None and row["noisy"]:
            verdict += " (unreliable: foreign load)"
        size = row["size"].upper().replace("K", " KB")
        shown = "-" if value is None else f"{value:.2f}x"
        if len(row["per_round"]) > 1:
            shown += " ({:.2f}-{:.2f})".format(min(row["per_round"]), max(row["per_round"]))
        lines.append(f"| {row['ratio']} | {size} | {shown} | {target} | {verdict} |")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, help="seconds per measurement (10; quick: 3)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load first (2; quick: 1)")
    parser.add_argument(
        "--connections", type=int, default=50, help="wrk keep-alive connections (50)"
    )
    parser.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    parser.add_argument(
        "--wait-idle",
        type=float,
        default=0,
        metavar="S",
        help="before each measurement, wait up to S seconds for cores 0 and 1 to be idle (0)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="measure again, up to N times, when other processes took a core's CPU (2)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        metavar="N",
        help="measure every case N times, interleaved; the median round is reported (3; quick: 1)",
    )
    parser.add_argument(
        "--together",
        type=int,
        default=0,
        metavar="N",
        help="then N rounds with both sides of each ratio loaded at once: requests per "
        "CPU-second, immune to the machine's speed drifting between runs (0)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument(
        "--cases",
        default=",".join(c.key for c in CASES),
        help="comma-separated subset of " + ",".join(c.key for c in CASES),
    )
    parser.add_argument(
        "--sizes", default=",".join(SIZES), help="comma-separated subset of 1k,100k"
    )
    args = parser.parse_args(argv)
    for name, normal, quick in (("duration", 10, 3), ("warmup", 2, 1), ("rounds", 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else normal)
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    for key in args.cases:
        if key not in {c.key for c in CASES}:
            parser.error(f"unknown case {key!r}")
    for size in args.sizes:
        if size not in SIZES:
            parser.error(f"unknown size {size!r}")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be between 1 and 10")
    if not 0 <= args.together <= 20:
        parser.error("--together must be between 0 and 20")
    args.together_rows = []
    if not 0 <= args.retries <= 10:
        parser.error("--retries must be between 0 and 10")
    if not 0 <= args.wait_idle <= 600:
        parser.error("--wait-idle must be between 0 and 600")
    if not (1 <= args.duration <= 300 and 1 <= args.warmup <= 60):
        parser.error("--duration must be 1 to 300 seconds, --warmup 1 to 60")
    if not 1 <= args.connections <= 10_000:
        parser.error("--connections must be 1 to 10000")
    return args


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(
                f"bench: {tool} not found (Debian: apt-get install -y wrk util-linux)",
                file=sys.stderr,
            )
            return 2
    if len(os.sched_getaffinity(0)) < 2 or not {0, 1} <= os.sched_getaffinity(0):
        print("bench: needs cores 0 and 1 (server on 0, load on 1)", file=sys.stderr)
        return 2
    # Ctrl-C and SIGTERM both unwind through the finally blocks that stop the
    # servers, even when this script was started with SIGINT ignored (as `&` does).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)

    info = machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    print(
        f"method: server on core {SERVER_CORE}; wrk -t1 -c{args.connections} -d{args.duration}s "
        f"(after {args.warmup} s warm-up) and the origin on core {LOAD_CORE}; "
        f"{args.rounds} round(s)"
    )
    runs = args.rounds * len(args.cases) * len(args.sizes)
    typical = runs * (args.warmup + args.duration + 1)
    typical += args.together * len(RATIOS) * len(args.sizes) * (args.warmup + args.duration + 1)
    worst = runs * (args.warmup + (1 + args.retries) * (args.duration + 1 + args.wait_idle))
    print(f"time: about {typical / 60:.0f} min, at most {worst / 60:.0f} min (plus start-up)")
    busy = wait_idle(args.wait_idle)
    if max(busy) > NOISE:
        print(
            f"WARNING: the machine is not idle (core 0 {busy[0]:.0%}, core 1 {busy[1]:.0%} busy); "
            "numbers will be low and noisy"
        )
    results: list[Result] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="edgesim-bench-") as tmp,
            Processes(Path(tmp)) as procs,
        ):
            origin_port = free_port()
            origin = procs.start(
                "origin",
                [sys.executable, str(PEERS / "static_origin.py"), "--port", str(origin_port)],
                LOAD_CORE,
            )
            wait_ready(procs, "origin", origin, origin_port)
            results = run_all(procs, origin, origin_port, Path(tmp), args)
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        return 130
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1

    rows = ratios(results, args.sizes)
    print("\n" + table(results) + "\n\n" + ratio_table(rows))
    if args.together_rows:
        what = "requests per CPU-second, both loaded at once"
        print("\n" + ratio_table(args.together_rows, what))
    failed = [r for r in results if r.errors]
    for r in failed:
        print(f"\n{r.name} {r.size}:" + "".join(f"\n  {e}" for e in r.errors))
    if args.json:
        document = {
            "machine": info,
            "method": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "connections": args.connections,
                "rounds": args.rounds,
                "retries": args.retries,
                "together_rounds": args.together,
                "wait_idle_s": args.wait_idle,
                "server_core": SERVER_CORE,
                "load_core": LOAD_CORE,
            },
            "results": [dataclasses.asdict(r) for r in results],
            "ratios": rows,
            "together": args.together_rows,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
