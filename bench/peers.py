"""edgesim against other caching proxies and edge emulators, on one machine, in one run.

The same 1 KB and 100 KB GETs (bench/peers/origin.py's /obj-1k, /obj-100k)
go through each server below, each pinned to core 0, while wrk and the
origin run on core 1 (the method of bench/run.py, whose helpers this uses):

    bare aiohttp           the origin itself, answering from memory
    edgesim hit            CachingOptimized, object cached
    edgesim miss           CachingDisabled: every GET goes to the origin
    edgesim + L@E          a hit through a no-op Python viewer-request function
    edgesim + CFF          a hit through a no-op CloudFront Function (cloudfront-js-2.0)
    edgesim + Node.js      a hit through a no-op Node.js (nodejs20.x) viewer-request function
    nginx proxy_cache      one worker, the object cached
    varnish                one thread pool, the object cached
    mitmproxy addon        mitmdump --mode reverse with an addon that sets a header
    serverless-offline     serverless-offline-edge-lambda (Serverless Framework v3)
                           with a no-op Node.js viewer-request function

Peers are installed by the script when missing: Debian's nginx-light,
varnish and wrk (apt-get), mitmproxy in its own virtualenv and the npm
packages in bench/.peers/ (gitignored). Serverless v3, because v4 fetches
its engine over the network on first run.

    python bench/peers.py              # 3 rounds of 10 s runs
    python bench/peers.py --quick      # 1 round of 2 s runs: a smoke test of the whole set-up
    python bench/peers.py --cases edgesim-hit,nginx --sizes 1k --json out.json

Prints req/s, p50, p99, server CPU and the ratios edgesim / peer. Only
127.0.0.1 is used; everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import run as base  # noqa: E402  (bench/run.py: processes, wrk, CPU accounting)

PEERS = BENCH / "peers"
TOOLS = BENCH / ".peers"  # installed peers, gitignored
MITM_VENV = TOOLS / "mitmproxy-venv"
NPM_DIR = TOOLS / "serverless"
SIZES = base.SIZES
CORE = base.SERVER_CORE


@dataclasses.dataclass(frozen=True, slots=True)
class Case:
    key: str
    name: str
    kind: str  # how it is started: see start_case
    warm: bool = True  # a cache to fill before measuring
    functions: bool = False  # execution environments to start before measuring


CASES = (
    Case("bare", "bare aiohttp", "bare", warm=False),
    Case("edgesim-hit", "edgesim hit", "edge-hit"),
    Case("edgesim-miss", "edgesim miss", "edge-miss", warm=False),
    Case("edgesim-lae", "edgesim hit + L@E viewer-request", "edge-lae", functions=True),
    Case("edgesim-cff", "edgesim hit + CloudFront Function", "edge-cff", functions=True),
    Case("edgesim-node", "edgesim hit + Node.js viewer-request", "edge-node", functions=True),
    Case("nginx", "nginx proxy_cache (1 worker)", "nginx"),
    Case("varnish", "varnish", "varnish"),
    Case("mitmproxy", "mitmproxy reverse + addon", "mitmproxy", warm=False),
    Case("serverless", "serverless-offline-edge-lambda + viewer-request", "serverless", warm=False),
)
RATIOS = (
    # (edgesim case, peer case, target or None, whether the target is per core of CPU)
    ("edgesim-hit", "nginx", 0.6, True),
    ("edgesim-hit", "varnish", None, False),
    ("edgesim-hit", "bare", None, False),
    ("edgesim-lae", "serverless", 5.0, False),
    ("edgesim-lae", "mitmproxy", 10.0, False),
    ("edgesim-cff", "serverless", 5.0, False),
    ("edgesim-cff", "mitmproxy", 10.0, False),
    ("edgesim-node", "serverless", 5.0, False),
    ("edgesim-node", "mitmproxy", 10.0, False),
    ("edgesim-miss", "mitmproxy", None, False),
)


class Unavailable(Exception):
    """A case cannot run here (a peer missing)."""


# --- installing peers ----------------------------------------------------------------


def _run_quiet(argv: list[str], cwd: Path | None = None) -> None:
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Unavailable(f"{' '.join(argv[:3])}... failed:\n{(done.stderr or done.stdout)[-800:]}")


def install(cases: list[Case]) -> None:
    """Install what the chosen cases need and is not there yet (idempotent)."""
    kinds = {c.kind for c in cases}
    debs = [d for tool, d in (("wrk", "wrk"), ("nginx", "nginx-light"), ("varnishd", "varnish"))
            if (tool == "wrk" or {"nginx": "nginx", "varnishd": "varnish"}[tool] in kinds)
            and shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]  # fmt: skip
    if debs:
        print(f"installing Debian packages: {' '.join(debs)}", flush=True)
        _run_quiet(["apt-get", "update", "-qq"])
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        done = subprocess.run(
            ["apt-get", "install", "-y", "-qq", *debs],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise Unavailable(f"apt-get install {' '.join(debs)} failed:\n{done.stderr[-800:]}")
    if "mitmproxy" in kinds and not (MITM_VENV / "bin" / "mitmdump").exists():
        print("installing mitmproxy into bench/.peers/mitmproxy-venv", flush=True)
        _run_quiet([sys.executable, "-m", "venv", str(MITM_VENV)])
        _run_quiet([str(MITM_VENV / "bin" / "pip"), "install", "-q", "mitmproxy"])
    if "serverless" in kinds and not (NPM_DIR / "node_modules" / ".bin" / "serverless").exists():
        print("installing serverless@3 and serverless-offline-edge-lambda (npm)", flush=True)
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        (NPM_DIR / "package.json").write_text('{"name": "edgesim-bench-peers", "private": true}\n')
        _run_quiet(
            ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
             "serverless@3", "serverless-offline-edge-lambda@1"],
            cwd=NPM_DIR,
        )  # fmt: skip


# --- configs for each server ---------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache keys_zone=edge:10m max_size=256m inactive=1h;
    upstream origin {{ server 127.0.0.1:{origin}; keepalive 32; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache edge;
            add_header X-Cache $upstream_cache_status;
        }}
    }}
}}
"""

MITM_ADDON = '''\
"""A mitmproxy addon that sets a response header: the cheapest useful hook."""


class SetHeader:
    def response(self, flow):
        flow.response.headers["x-edge"] = "mitmproxy"


addons = [SetHeader()]
'''

SERVERLESS_YML = """\
service: edgesim-bench
frameworkVersion: "3"
plugins:
  - serverless-offline-edge-lambda
provider:
  name: aws
  runtime: nodejs18.x
custom:
  offlineEdgeLambda:
    path: ""
    originMap:
      - pathPattern: "*"
        target: "http://127.0.0.1:{origin}"
functions:
  noop:
    handler: handler.viewerRequest
    lambdaAtEdge:
      distribution: Distribution
      eventType: viewer-request
      pathPattern: "*"
resources:
  Resources:
    Distribution:
      Type: AWS::CloudFront::Distribution
      Properties:
        DistributionConfig:
          DefaultCacheBehavior:
            TargetOriginId: origin
          Origins:
            - Id: origin
              DomainName: 127.0.0.1
              CustomOriginConfig:
                HTTPPort: {origin}
                OriginProtocolPolicy: http-only
"""

NODE_HANDLER = """\
'use strict';
// A viewer-request function that changes nothing.
exports.viewerRequest = async (event) => event.Records[0].cf.request;
"""

CFF_CODE = """\
// A CloudFront Function (viewer-request) that changes nothing.
function handler(event) {
    return event.request;
}
"""


def cff_config(
    path: Path,
    port: int,
    admin: int,
    origin_port: int,
    tmp: Path,
    compute_budget_ms: float | None = None,
) -> None:
    """An edge whose default behavior runs a no-op CloudFront Function at viewer-request.

    A CloudFront Function is its runtime and one code file whose entry point is
    handler(event); no handler, memory or timeout keys (AWS fixes them)."""
    base.edge_config(path, port, admin, origin_port, "CachingOptimized", function=False)
    code = tmp / "cff-noop.js"
    code.write_text(CFF_CODE)
    budget = f"    compute_budget_ms: {compute_budget_ms}\n" if compute_budget_ms else ""
    path.write_text(
        path.read_text() + "  functions: {viewer-request: noop}\n"
        "functions:\n"
        "  noop:\n"
        "    runtime: cloudfront-js-2.0\n"
        f"    code: {code}\n" + budget
    )


def node_config(path: Path, port: int, admin: int, origin_port: int, tmp: Path) -> None:
    """An edge whose default behavior runs a no-op Node.js viewer-request function
    (the serverless case's handler), 4 environments prewarmed as for Python."""
    base.edge_config(path, port, admin, origin_port, "CachingOptimized", function=False)
    (tmp / "node").mkdir(exist_ok=True)
    (tmp / "node" / "handler.js").write_text(NODE_HANDLER)
    path.write_text(
        path.read_text() + "  functions: {viewer-request: noop}\n"
        "functions:\n"
        "  noop:\n"
        "    runtime: nodejs20.x\n"
        f"    code: {tmp / 'node'}\n"
        "    handler: handler.viewerRequest\n"
        "    prewarm: 4\n"
    )


def start_case(
    procs: base.Processes, case: Case, origin_port: int, tmp: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server for ``case`` on core 0; (process, port) once it answers."""
    port = base.free_port()
    py = sys.executable
    if case.kind == "bare":
        argv = [py, str(PEERS / "origin.py"), "--port", str(port)]
    elif case.kind.startswith("edge-"):
        cache = "CachingDisabled" if case.kind == "edge-miss" else "CachingOptimized"
        config = tmp / f"{case.key}.yaml"
        admin = base.free_port()
        if case.kind == "edge-cff":
            cff_config(config, port, admin, origin_port, tmp)
        elif case.kind == "edge-node":
            node_config(config, port, admin, origin_port, tmp)
        else:
            base.edge_config(config, port, admin, origin_port, cache, case.kind == "edge-lae")
        argv = [py, "-m", "edgesim.cli", "serve", "--config", str(config)]
    elif case.kind == "nginx":
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        (tmp / "nginx").mkdir(exist_ok=True)
        conf = tmp / "nginx" / "nginx.conf"
        # As root, the worker would drop to nobody, which cannot enter the private temp dir.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf.write_text(
            NGINX_CONF.format(user=user, tmp=tmp / "nginx", origin=origin_port, port=port)
        )
        argv = [nginx, "-p", str(tmp / "nginx"), "-c", str(conf)]
    elif case.kind == "varnish":
        varnishd = shutil.which("varnishd") or "/usr/sbin/varnishd"
        argv = [
            varnishd, "-F", "-n", str(tmp / "varnish"), "-a", f"127.0.0.1:{port}",
            "-b", f"127.0.0.1:{origin_port}", "-s", "malloc,256m", "-p", "thread_pools=1",
            "-T", "none",
        ]  # fmt: skip
    elif case.kind == "mitmproxy":
        addon = tmp / "mitm_addon.py"
        addon.write_text(MITM_ADDON)
        argv = [
            str(MITM_VENV / "bin" / "mitmdump"), "--mode", f"reverse:http://127.0.0.1:{origin_port}",
            "--listen-host", "127.0.0.1", "--listen-port", str(port), "-s", str(addon), "-q",
            "--set", f"confdir={tmp / 'mitm'}",
        ]  # fmt: skip
    elif case.kind == "serverless":
        app = tmp / "serverless"
        app.mkdir(exist_ok=True)
        (app / "serverless.yml").write_text(SERVERLESS_YML.format(origin=origin_port))
        (app / "handler.js").write_text(NODE_HANDLER)
        with contextlib.suppress(FileExistsError):
            (app / "node_modules").symlink_to(NPM_DIR / "node_modules")
        argv = [str(NPM_DIR / "node_modules" / ".bin" / "serverless"), "offline", "start",
                f"--port={port}", f"--config={app / 'serverless.yml'}"]  # fmt: skip
        return _start(procs, case, argv, port, cwd=app)
    else:
        raise AssertionError(case.kind)
    return _start(procs, case, argv, port)


def _start(
    procs: base.Processes, case: Case, argv: list[str], port: int, cwd: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    if cwd is not None:  # Processes starts in the repository; serverless wants its folder
        argv = ["sh", "-c", f'cd "{cwd}" && exec "$@"', "sh", *argv]
    proc = procs.start(case.key, argv, CORE)
    base.wait_ready(procs, case.key, proc, port)
    return proc, port


# --- measuring -----------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class Sample:
    case: str
    size: str
    requests_per_s: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu: float | None = None
    # The server's CPU per request, microseconds in user space and in the kernel:
    # where a server spends what it spends.
    user_us: float | None = None
    system_us: float | None = None
    other_cpu: tuple[float, float] | None = None
    x_cache: str | None = None
    errors: list[str] = dataclasses.field(default_factory=list)


def measure(
    case: Case,
    proc: subprocess.Popen[bytes],
    port: int,
    size: str,
    args: argparse.Namespace,
    origin: subprocess.Popen[bytes],
) -> Sample:
    sample = Sample(case.key, size)
    path = f"/obj-{size}"
    headers = base.check_answer(port, path, SIZES[size])
    if case.warm:
        headers = base.check_answer(port, path, SIZES[size])
        cache = headers.get("x-cache") or headers.get("age") or ""
        sample.x_cache = cache
    base.run_wrk(port, path, args.warmup, args.connections)
    cpu, cores = base.cpu_seconds(proc.pid), base.core_seconds()
    wrk_cpu = base.children_cpu_seconds()
    origin_cpu = base.cpu_seconds(origin.pid)
    user, system = base.user_system_seconds(proc.pid)
    started = time.monotonic()
    stats = base.run_wrk(port, path, args.duration, args.connections)
    elapsed = time.monotonic() - started
    after = base.core_seconds()
    sample.server_cpu = (base.cpu_seconds(proc.pid) - cpu) / elapsed
    if stats["requests"]:
        user_after, system_after = base.user_system_seconds(proc.pid)
        sample.user_us = (user_after - user) / stats["requests"] * 1e6
        sample.system_us = (system_after - system) / stats["requests"] * 1e6
    load = (
        base.children_cpu_seconds() - wrk_cpu + base.cpu_seconds(origin.pid) - origin_cpu
    ) / elapsed
    used = {c: (after[c][0] - cores[c][0]) / elapsed for c in cores}
    sample.other_cpu = (
        max(0.0, used["cpu0"] - sample.server_cpu),
        max(0.0, used["cpu1"] - load),  # wrk and the origin are core 1's own load
    )
    sample.requests_per_s = stats["requests_per_s"]
    sample.p50_ms, sample.p99_ms = stats["p50_ms"], stats["p99_ms"]
    sample.errors += stats["errors"]
    return sample


def prime(case: Case, port: int, args: argparse.Namespace) -> None:
    """Run the measured load until req/s settles (at most 6 runs of 2 s), so the
    function has every environment the measured runs need: a cold start per
    connection (65 ms each for Node.js) would otherwise fall in the first round."""
    previous = 0.0
    for _ in range(6):
        rate = base.run_wrk(port, "/obj-1k", 2, args.connections)["requests_per_s"] or 0.0
        if previous and abs(rate - previous) <= 0.1 * previous:
            break
        previous = rate
    print(f"primed {case.name}: {rate:,.0f} req/s", flush=True)


Together = dict[tuple[str, str, str], tuple[list[float], list[tuple[float, float]]]]


def run_all(
    args: argparse.Namespace, tmp: Path
) -> tuple[dict[tuple[str, str], list[Sample]], Together]:
    cases = [c for c in CASES if c.key in args.cases]
    samples: dict[tuple[str, str], list[Sample]] = {
        (c.key, s): [] for c in cases for s in args.sizes
    }
    with base.Processes(tmp) as procs:
        origin_port = base.free_port()
        origin = procs.start(
            "origin", [sys.executable, str(PEERS / "origin.py"), "--port", str(origin_port)],
            base.LOAD_CORE,
        )  # fmt: skip
        base.wait_ready(procs, "origin", origin, origin_port)
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        for case in cases:
            try:
                servers[case.key] = start_case(procs, case, origin_port, tmp)
                print(f"started {case.name}", flush=True)
            except (Unavailable, base.BenchError, OSError) as error:
                print(f"{case.name}: {error}", flush=True)
                for size in args.sizes:
                    samples[case.key, size].append(Sample(case.key, size, errors=[str(error)]))
        for case in cases:
            if case.functions and case.key in servers:
                prime(case, servers[case.key][1], args)
        for round_ in range(1, args.rounds + 1):
            print(f"== round {round_} of {args.rounds}", flush=True)
            for size in args.sizes:
                for case in cases:
                    if case.key not in servers:
                        continue
                    proc, port = servers[case.key]
                    try:
                        sample = measure(case, proc, port, size, args, origin)
                    except (base.BenchError, OSError, http.client.HTTPException) as error:
                        sample = Sample(case.key, size, errors=[f"not measured: {error}"])
                    samples[case.key, size].append(sample)
                    print(f"   {case.name} {size}: {describe(sample)}", flush=True)
        together = run_together(servers, args)
    return samples, together


def run_together(
    servers: dict[str, tuple[subprocess.Popen[bytes], int]], args: argparse.Namespace
) -> Together:
    """``--together`` rounds of each ratio with both servers loaded at once
    (``run.measure_together``): requests per CPU-second, whatever the machine's
    speed does meanwhile."""
    out: Together = {}
    if not args.together:
        return out
    print("== both sides of each ratio loaded at once", flush=True)
    names = {c.key: c.name for c in CASES}
    for mine, peer, _target, _by_core in RATIOS:
        if mine not in servers or peer not in servers:
            continue
        for size in args.sizes:
            ratios, shares = [], []
            try:
                for _ in range(args.together):
                    ratio, a, b = base.measure_together(servers[mine], servers[peer], size, args)
                    ratios.append(ratio)
                    shares.append((a, b))
            except (base.BenchError, OSError, subprocess.TimeoutExpired) as error:
                print(f"   together {names[mine]} / {names[peer]} {size}: {error}", flush=True)
            if ratios:
                out[mine, peer, size] = (ratios, shares)
                label = f"{names[mine]} / {names[peer]}"
                print(base.together_line(label, size, ratios, shares), flush=True)
    return out


def describe(s: Sample) -> str:
    if s.requests_per_s is None:
        return "; ".join(s.errors)
    text = (
        f"{s.requests_per_s:,.0f} req/s, p50 {s.p50_ms:.2f} ms, p99 {s.p99_ms:.2f} ms, "
        f"server CPU {s.server_cpu:.0%}"
    )
    if s.user_us is not None and s.system_us is not None:
        text += f" ({s.user_us:.1f} us user + {s.system_us:.1f} us system per request)"
    if s.other_cpu and max(s.other_cpu) > base.NOISE:
        text += " (other load c0/c1 {:.0%}/{:.0%}: not reliable)".format(*s.other_cpu)
    return text + "".join(f"; ERROR {e}" for e in s.errors)


def median(samples: list[Sample]) -> Sample:
    measured = sorted((s for s in samples if s.requests_per_s), key=lambda s: s.requests_per_s or 0)
    return measured[(len(measured) - 1) // 2] if measured else samples[0]


def _rate(s: Sample) -> float:
    return s.requests_per_s or 0.0


def _per_core(s: Sample) -> float:
    """req/s per core of CPU the server used: fair to a server that wrk could not saturate."""
    return _rate(s) / max(s.server_cpu or 0.0, 0.01)


def report(
    samples: dict[tuple[str, str], list[Sample]], together: Together, args: argparse.Namespace
) -> dict[str, Any]:
    names = {c.key: c.name for c in CASES}
    lines = [
        "| server | body | req/s | p50 ms | p99 ms | server CPU | CPU per request: user + system |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for (key, size), group in samples.items():
        s = median(group)
        if s.requests_per_s is None:
            lines.append(f"| {names[key]} | {size} | {'; '.join(s.errors)[:90]} | | | | |")
            continue
        split = (
            "-"
            if s.user_us is None or s.system_us is None
            else f"{s.user_us:.1f} + {s.system_us:.1f} us"
        )
        lines.append(
            f"| {names[key]} | {size} | {s.requests_per_s:,.0f} | {s.p50_ms:.2f} | "
            f"{s.p99_ms:.2f} | {s.server_cpu:.0%} | {split} |"
        )
    ratio_rows = []
    ratio_lines = [
        "| ratio of req/s | body | median of rounds | per core of server CPU | target |",
        "|---|---|---:|---:|---|",
    ]
    for mine, peer, target, target_per_core in RATIOS:
        for size in args.sizes:
            a, b = samples.get((mine, size)), samples.get((peer, size))
            if not a or not b:
                continue
            pairs = [
                (x, y) for x, y in zip(a, b, strict=False) if x.requests_per_s and y.requests_per_s
            ]
            value = statistics.median(_rate(x) / _rate(y) for x, y in pairs) if pairs else None
            core = (
                statistics.median(_per_core(x) / _per_core(y) for x, y in pairs) if pairs else None
            )
            judged = core if target_per_core else value
            verdict = "" if target is None or judged is None else (
                " met" if judged >= target else " NOT met")  # fmt: skip
            shown = "not measured" if value is None else f"{value:.2f}x"
            per_core = "-" if core is None else f"{core:.2f}x"
            unit = " per core" if target_per_core else ""
            goal = "-" if target is None else f">= {target:g}x{unit}{verdict}"
            ratio_lines.append(
                f"| {names[mine]} / {names[peer]} | {size} | {shown} | {per_core} | {goal} |"
            )
            ratio_rows.append({"edgesim": mine, "peer": peer, "size": size, "value": value,
                               "per_core": core, "target": target})  # fmt: skip
    print("\n" + "\n".join(lines) + "\n\n" + "\n".join(ratio_lines))
    together_rows = []
    if together:
        together_lines = [
            "| requests per CPU-second, both loaded at once | body | median (range) | target |",
            "|---|---|---:|---|",
        ]
        for mine, peer, target, _ in RATIOS:
            for size in args.sizes:
                if (mine, peer, size) not in together:
                    continue
                ratios, shares = together[mine, peer, size]
                value = statistics.median(ratios)
                verdict = "" if target is None else (" met" if value >= target else " NOT met")
                goal = "-" if target is None else f">= {target:g}x{verdict}"
                together_lines.append(
                    f"| {names[mine]} / {names[peer]} | {size} | {value:.2f}x "
                    f"({min(ratios):.2f}-{max(ratios):.2f}) | {goal} |"
                )
                together_rows.append({"edgesim": mine, "peer": peer, "size": size,
                                      "value": value, "per_round": ratios,
                                      "cpu_shares": shares, "target": target})  # fmt: skip
        print("\n" + "\n".join(together_lines))
    return {
        "results": {
            f"{k}/{s}": [dataclasses.asdict(x) for x in g] for (k, s), g in samples.items()
        },
        "ratios": ratio_rows,
        "together": together_rows,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s runs")
    parser.add_argument("--duration", type=int, help="seconds per measurement (10; quick: 2)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up load (2; quick: 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (3; quick: 1)")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections (50)")
    parser.add_argument("--cases", default=",".join(c.key for c in CASES))
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--no-install", action="store_true", help="do not install missing peers")
    parser.add_argument(
        "--together",
        type=int,
        default=0,
        metavar="N",
        help="then N rounds with both sides of each ratio loaded at once (0)",
    )
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    for name, normal, quick in (("duration", 10, 2), ("warmup", 2, 1), ("rounds", 3, 1)):
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else normal)
    args.cases = [c for c in args.cases.split(",") if c]
    args.sizes = [s for s in args.sizes.split(",") if s]
    known = {c.key for c in CASES}
    for key in args.cases:
        if key not in known:
            parser.error(f"unknown case {key!r}; known: {', '.join(sorted(known))}")
    for size in args.sizes:
        if size not in SIZES:
            parser.error(f"unknown size {size!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not {0, 1} <= os.sched_getaffinity(0):
        print("peers: needs cores 0 and 1 (servers on 0, load on 1)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, base._raise_interrupt)
    cases = [c for c in CASES if c.key in args.cases]
    if not args.no_install:
        try:
            install(cases)
        except Unavailable as error:
            print(f"peers: {error}", file=sys.stderr)
    if shutil.which("wrk") is None:
        print("peers: wrk not found (apt-get install -y wrk)", file=sys.stderr)
        return 2
    info = base.machine()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    busy = base.wait_idle(0)
    if max(busy) > base.NOISE:
        print(
            f"WARNING: cores busy ({busy[0]:.0%}, {busy[1]:.0%}) before the run: "
            "numbers will be low"
        )
    try:
        with tempfile.TemporaryDirectory(prefix="edgesim-peers-") as tmp:
            samples, together = run_all(args, Path(tmp))
    except KeyboardInterrupt:
        print("\npeers: interrupted; servers stopped", file=sys.stderr)
        return 130
    document = {"machine": info, "method": vars(args), **report(samples, together, args)}
    if args.json:
        Path(args.json).write_text(json.dumps(document, indent=2, default=str) + "\n")
    failed = [s for g in samples.values() for s in g if s.errors and s.requests_per_s]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
