"""The work one request costs the edge and its function workers: CPU time and instructions.

Wall-clock req/s moves with whatever else the machine runs; the work done
per request does not. For each case the edge (pinned to core 0, its
workers inherit the pin) serves a fixed number of cache hits of /obj-1k to
a small closed-loop client on core 1, and the script reports:

* CPU per request (the default): time on a CPU of every thread, from
  ``/proc/<pid>/task/<tid>/schedstat`` (exact, where utime + stime are
  sampled per tick; ``run.thread_ns``) of the edge process and,
  apart, of its descendants (the zygote and the workers), over
  ``--requests`` requests after a warm-up, median of ``--rounds`` rounds;
  with their context switches, the edge's read and write calls and the
  number of worker processes;
* instructions per request (``--callgrind``): the edge and its workers run
  under ``valgrind --tool=callgrind``; the counters are dumped after the
  warm-up and after ``--requests`` requests, and the second dump divided by
  the request count (user space only; deterministic to ~0.1% at one
  connection, which is what ``--callgrind`` uses unless told otherwise).

Cases (``--cases``): ``hit`` (no function), ``miss`` (no function,
``CachingDisabled``: every request proxied to the origin), ``lae`` (a no-op Python
viewer-request function, ``bench/peers/noop_function.py``), ``node`` (the
same in Node.js), ``cff`` (a no-op CloudFront Function, cloudfront-js-2.0).
Each function case has 4 prewarmed environments, as in bench/run.py.
``--floor N`` measures instead what the same invoke frames cost a uvloop
parent and N bare Python children (no edge, sandbox or runtime), with
``--connections`` of them in flight: the floor of any worker IPC.

    PYTHONPATH=. python bench/hookcost.py                       # CPU us per request
    PYTHONPATH=. python bench/hookcost.py --callgrind --requests 2000
    PYTHONPATH=. python bench/hookcost.py --cases lae --connections 50 --rounds 5
    PYTHONPATH=. python bench/hookcost.py --floor 4      # bare children: the IPC floor

Only 127.0.0.1 is used; everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import peers  # noqa: E402  (bench/peers.py: the Node.js and CloudFront Function configs)
import run as base  # noqa: E402  (bench/run.py: processes, configs, CPU accounting)

from edgesim.hooks import CLOUDFRONT_FUNCTION_LIMITS  # noqa: E402

CASES = ("hit", "miss", "lae", "node", "cff")
# vgdb's pipes, outside /tmp: a worker sees a private /tmp of its own.
VGDB_PREFIX = f"/dev/shm/edgesim-hookcost-{os.getpid()}-vgdb"


def config(
    case: str, path: Path, port: int, origin_port: int, tmp: Path, slow: bool = False
) -> None:
    """The edge's config for ``case``: a cached /obj-1k (proxied, for ``miss``),
    behind the case's function (bench/peers.py's configs for Node.js and CFF).

    ``slow`` (under valgrind, ~50 times slower) gives a CloudFront Function the
    largest compute budget, so that it is not throttled for going over it."""
    admin = base.free_port()
    if case == "node":
        peers.node_config(path, port, admin, origin_port, tmp)
    elif case == "cff":
        budget = CLOUDFRONT_FUNCTION_LIMITS.max_compute_budget_ms if slow else None
        peers.cff_config(path, port, admin, origin_port, tmp, budget)
    else:
        cache = "CachingDisabled" if case == "miss" else "CachingOptimized"
        base.edge_config(path, port, admin, origin_port, cache, case == "lae")


# --- the client ------------------------------------------------------------------------

REQUEST = b"GET /obj-1k HTTP/1.1\r\nHost: bench\r\nUser-Agent: hookcost\r\nAccept: */*\r\n\r\n"
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.I)


def drive(port: int, total: int, connections: int) -> None:
    """``total`` keep-alive GETs over ``connections`` connections, each one in flight
    at a time (closed loop); raises on any answer that is not 200."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(min(connections, total)):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        socks.append(sock)
        sel.register(sock, selectors.EVENT_READ, bytearray())
    sent = done = 0
    for sock in socks:
        sock.send(REQUEST)
        sent += 1
    deadline = time.monotonic() + 600
    while done < total:
        if time.monotonic() > deadline:
            raise RuntimeError("the edge stopped answering")
        for key, _ in sel.select(5.0):
            conn, buf = key.fileobj, key.data
            assert isinstance(conn, socket.socket)
            data = conn.recv(1 << 20)
            if not data:
                raise RuntimeError("the edge closed a connection")
            buf += data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                if not buf.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"unexpected answer: {bytes(buf[:200])!r}")
                match = _LENGTH.search(buf, 0, end + 2)
                size = end + 4 + (int(match.group(1)) if match else 0)
                if len(buf) < size:
                    break
                del buf[:size]
                done += 1
                if sent < total:
                    conn.send(REQUEST)
                    sent += 1
    for sock in socks:
        sel.unregister(sock)
        sock.close()


def client(port: int, total: int, connections: int) -> None:
    """``drive`` in a child process on the load core, so the measured core does only the edge."""
    subprocess.run(
        ["taskset", "-c", base.LOAD_CORE, sys.executable, __file__, "--drive",
         str(port), str(total), str(connections)],
        check=True,
        timeout=3600,
    )  # fmt: skip


# --- CPU per request ----------------------------------------------------------------------


def io_calls(pid: int) -> int:
    """Read and write system calls of ``pid`` so far (``syscr`` + ``syscw``), from /proc."""
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return 0
    return sum(int(n) for n in re.findall(r"^sysc[rw]:\s+(\d+)", text, re.M))


def switches(pid: int) -> int:
    """Context switches (voluntary and not) of ``pid`` so far, from /proc."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return sum(int(n) for n in re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", text, re.M))


def tree_usage(pid: int) -> tuple[int, int, int, int, int]:
    """Of ``pid`` and, apart, of its living descendants: CPU time (ns), then
    context switches; last the read and write calls of ``pid``."""
    others = base.descendants(pid)
    return (
        base.thread_ns(pid),
        sum(base.thread_ns(p) for p in others),
        switches(pid),
        sum(switches(p) for p in others),
        io_calls(pid),
    )


def measure_cpu(case: str, args: argparse.Namespace, origin_port: int, tmp: Path) -> str:
    port = base.free_port()
    path = tmp / f"edge-{case}.yaml"
    config(case, path, port, origin_port, tmp)
    with base.Processes(tmp) as procs:
        argv = [sys.executable, "-m", "edgesim.cli", "serve", "--config", str(path)]
        proc = procs.start(case, argv, base.SERVER_CORE)
        base.wait_ready(procs, case, proc, port)
        client(port, args.warmup, args.connections)
        edge, workers, walls, edge_cs, worker_cs, edge_io = [], [], [], [], [], []
        for _ in range(args.rounds):
            before = tree_usage(proc.pid)
            started = time.monotonic()
            client(port, args.requests, args.connections)
            walls.append(args.requests / (time.monotonic() - started))
            after = tree_usage(proc.pid)
            edge.append((after[0] - before[0]) / 1e3 / args.requests)
            workers.append((after[1] - before[1]) / 1e3 / args.requests)
            edge_cs.append((after[2] - before[2]) / args.requests)
            worker_cs.append((after[3] - before[3]) / args.requests)
            edge_io.append((after[4] - before[4]) / args.requests)
        processes = len(base.descendants(proc.pid))
    total = [e + w for e, w in zip(edge, workers, strict=True)]
    return (
        f"{case:5} CPU per request: edge {statistics.median(edge):6.1f} us + workers "
        f"{statistics.median(workers):6.1f} us = {statistics.median(total):6.1f} us "
        f"(rounds: {', '.join(f'{t:.0f}' for t in total)}; context switches per request: "
        f"edge {statistics.median(edge_cs):.2f}, workers {statistics.median(worker_cs):.2f}; "
        f"edge reads + writes per request {statistics.median(edge_io):.2f}; "
        f"{processes} worker processes; "
        f"{statistics.median(walls):,.0f} req/s wall, load {base_load()})"
    )


def base_load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


# --- instructions per request -------------------------------------------------------------


def callgrind_totals(files: list[Path]) -> int:
    total = 0
    for file in files:
        if not file.exists():  # the process ended (or did not answer the dump)
            continue
        for line in file.read_text(errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total += int(line.split()[1])
                break
    return total


def measure_instructions(case: str, args: argparse.Namespace, origin_port: int, tmp: Path) -> str:
    port = base.free_port()
    path = tmp / f"edge-{case}.yaml"
    config(case, path, port, origin_port, tmp, slow=True)
    # Outside /tmp, like vgdb's pipes: a worker's /tmp is its own.
    out = Path(tempfile.mkdtemp(prefix=f"edgesim-hookcost-{case}-", dir=args.keep or "/dev/shm"))
    # Valgrind keeps fds of its own above the client's hard limit and refuses a
    # setrlimit that would reach them: the sandbox's 1024 must be the hard limit.
    argv = [
        "prlimit", "--nofile=1024:1024", "valgrind", "--tool=callgrind", "--trace-children=yes",
        f"--callgrind-out-file={out}/cg.%p", f"--vgdb-prefix={VGDB_PREFIX}",
        "--dump-instr=no", "--compress-strings=no",
        # No hot reload: its file watcher wakes up several times a second, which
        # under valgrind (~50 times slower) would count as work per request.
        sys.executable, "-m", "edgesim.cli", "serve", "--config", str(path), "--no-reload",
    ]  # fmt: skip
    try:
        with base.Processes(tmp) as procs:
            proc = procs.start(case, argv, base.SERVER_CORE)
            base.wait_ready(procs, case, proc, port, timeout=300, fetch_timeout=30)
            client(port, args.warmup, args.connections)
            pids = [proc.pid, *base.descendants(proc.pid)]
            dump(pids)
            client(port, args.requests, args.connections)
            dump(pids)
            # The second dump of each process is the measured part.
            counts = {p: callgrind_totals([out / f"cg.{p}.2"]) for p in pids}
            procs.stop(case)
    finally:
        # A process killed at the end leaves its vgdb pipes behind.
        for leftover in Path(VGDB_PREFIX).parent.glob(Path(VGDB_PREFIX).name + "*"):
            leftover.unlink(missing_ok=True)
        if args.keep:
            print(f"  callgrind files of {case} kept in {out}", flush=True)
        else:
            shutil.rmtree(out, ignore_errors=True)
    edge = counts[proc.pid] / args.requests
    workers = sum(counts[p] for p in pids[1:]) / args.requests
    return (
        f"{case:5} instructions per request: edge {edge:10,.0f} + workers {workers:10,.0f}"
        f" = {edge + workers:10,.0f}"
    )


def dump(pids: list[int]) -> None:
    """Ask each process's callgrind to write its counters so far and zero them."""
    for pid in pids:
        try:
            subprocess.run(
                ["callgrind_control", f"--vgdb-prefix={VGDB_PREFIX}", "--dump", str(pid)],
                capture_output=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            print(f"  callgrind_control --dump {pid} did not answer: not counted", flush=True)


# --- the floor: the same frames, bare Python children ------------------------------------

FLOOR_EVENT = {
    "Records": [
        {
            "cf": {
                "config": {
                    "distributionDomainName": "d111111abcdef8.cloudfront.net",
                    "distributionId": "EDFDVBD6EXAMPLE",
                    "eventType": "viewer-request",
                    "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                },
                "request": {
                    "clientIp": "127.0.0.1",
                    "headers": {
                        "host": [{"key": "Host", "value": "bench"}],
                        "user-agent": [{"key": "User-Agent", "value": "hookcost"}],
                        "accept": [{"key": "Accept", "value": "*/*"}],
                    },
                    "method": "GET",
                    "querystring": "",
                    "uri": "/obj-1k",
                },
            }
        }
    ]
}


def _bounce(sock: socket.socket) -> None:
    """A bare child: answer each invoke frame with its event's request."""
    from edgesim.workers.protocol import BlockingChannel, encode

    channel = BlockingChannel(sock)
    while (msg := channel.recv()) is not None:
        request = msg["event"]["Records"][0]["cf"]["request"]
        reply = {
            "t": "result",
            "id": msg["id"],
            "duration_ms": 0.01,
            "rss_kb": 1,
            "payload": request,
        }
        channel.send(encode(reply))


def measure_floor(children: int, in_flight: int, total: int) -> str:
    """CPU per round trip of a uvloop parent bouncing invoke frames off ``children``
    bare Python children, ``in_flight`` at a time: what any worker IPC costs,
    without the edge, the sandbox or the runtime."""
    import asyncio

    import uvloop

    from edgesim.workers.protocol import FrameDecoder, encode

    os.sched_setaffinity(0, {int(base.SERVER_CORE)})
    pids, socks = [], []
    for _ in range(children):
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            ours.close()
            _bounce(theirs)
            os._exit(0)
        theirs.close()
        pids.append(pid)
        socks.append(ours)

    class Answers(asyncio.Protocol):
        def __init__(self) -> None:
            self.decoder = FrameDecoder()
            self.waiter: asyncio.Future[object] | None = None

        def data_received(self, data: bytes) -> None:
            for msg in self.decoder.feed(data):
                assert self.waiter is not None
                self.waiter.set_result(msg)

    async def run() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        free: asyncio.Queue[tuple[asyncio.Transport, Answers]] = asyncio.Queue()
        for sock in socks:
            transport, answers = await loop.create_unix_connection(Answers, sock=sock)
            free.put_nowait((transport, answers))

        async def client(count: int) -> None:
            for i in range(count):
                transport, answers = await free.get()
                answers.waiter = loop.create_future()
                frame = {"t": "invoke", "id": str(i), "timeout_ms": 3000, "event": FLOOR_EVENT}
                transport.write(encode(frame))
                await answers.waiter
                free.put_nowait((transport, answers))

        await asyncio.gather(*(client(2000 // in_flight) for _ in range(in_flight)))
        before = [base.thread_ns(p) for p in (os.getpid(), *pids)]
        await asyncio.gather(*(client(total // in_flight) for _ in range(in_flight)))
        after = [base.thread_ns(p) for p in (os.getpid(), *pids)]
        while not free.empty():
            free.get_nowait()[0].close()
        spent = [(b - a) / 1e3 / total for a, b in zip(before, after, strict=True)]
        return spent[0], sum(spent[1:])

    parent, kids = uvloop.run(run())
    for pid in pids:
        os.waitpid(pid, 0)
    return (
        f"floor CPU per round trip: parent {parent:6.1f} us + {children} children "
        f"{kids:6.1f} us = {parent + kids:6.1f} us ({in_flight} in flight)"
    )


# --- main ------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--drive":
        drive(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--requests", type=int, help="measured requests (20000; callgrind 1000)")
    parser.add_argument("--warmup", type=int, help="requests first (5000; callgrind 300)")
    parser.add_argument("--connections", type=int, help="client connections (50; callgrind 1)")
    parser.add_argument("--rounds", type=int, default=3, help="CPU rounds, median shown (3)")
    parser.add_argument("--callgrind", action="store_true", help="count instructions instead")
    parser.add_argument(
        "--keep", metavar="DIR", help="keep the callgrind files in DIR (not under /tmp)"
    )
    parser.add_argument(
        "--floor",
        type=int,
        metavar="N",
        help="instead: the frames bounced off N bare Python children (--connections in flight)",
    )
    args = parser.parse_args()
    cg = args.callgrind
    if args.keep and Path(args.keep).resolve().is_relative_to("/tmp"):
        # Each worker sees a /tmp of its own: its callgrind file would not land
        # there, and its instructions would count as none.
        parser.error(f"--keep {args.keep}: the workers cannot write under /tmp; use another folder")
    args.requests = args.requests or (1000 if cg else 20_000)
    args.warmup = args.warmup or (300 if cg else 5000)
    args.connections = args.connections or (1 if cg else 50)
    if args.floor:
        for _ in range(args.rounds):
            print(measure_floor(args.floor, args.connections, args.requests), flush=True)
        return 0
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for case in cases:
        if case not in CASES:
            parser.error(f"unknown case {case!r}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    print(
        f"{'callgrind' if cg else 'cpu'}: {args.requests} requests after {args.warmup}, "
        f"{args.connections} connection(s); load {base_load()}",
        flush=True,
    )
    with (
        tempfile.TemporaryDirectory(prefix="edgesim-hookcost-") as name,
        base.Processes(Path(name)) as procs,
    ):
        tmp = Path(name)
        origin_port = base.free_port()
        origin = procs.start(
            "origin",
            [sys.executable, str(base.PEERS / "origin.py"), "--port", str(origin_port)],
            base.LOAD_CORE,
        )
        base.wait_ready(procs, "origin", origin, origin_port)
        for case in cases:
            measure = measure_instructions if cg else measure_cpu
            print(measure(case, args, origin_port, tmp), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
