"""The CloudFront Functions runtime, inside one sandboxed worker: QuickJS, 2 MB, a CPU budget.

Runs in the worker process after ``limits.enter_sandbox``, like ``runtime``
for Python Lambda@Edge, and answers the same ``invoke`` messages. The
QuickJS context is built once per environment (``cff_prelude.js``, then the
function's code: the Init phase) and serves every run in it. AWS does not say
whether a function's globals survive between runs; here they do within one
environment, as in Lambda (a fresh context per run would cost about a
millisecond of prelude for every request). Per-run state (``Date``, the
origin chosen, the outcome) is reset for each run.

Limits, enforced by the engine rather than trusted:

* memory: ``JS_SetMemoryLimit``, 2 MB on top of what the context and the
  prelude use; going over throws ``InternalError: out of memory``;
* CPU: the run's thread CPU time is measured and reported as compute
  utilization (0-100 of ``budget_ms``); a virtual-time timer
  (``ITIMER_VIRTUAL``, default action: terminate) ends the process once the
  run has used ``stop_ms`` of CPU (an endless loop); the proxy sees the
  environment die by ``SIGVTALRM`` and answers 503 FunctionExecutionError.
  (The binding's own time limit forbids calling the host, which the
  ``console``, ``crypto`` and key value store need.)
* what the prelude makes true: no eval, no Function constructors, no
  timers, only crypto / querystring (+ cloudfront in 2.0) from ``require``.
  The engine has no file system, network or process access of its own: the
  only host functions are log, hashing, byte codecs and key value reads.

Why QuickJS and not a ``node`` worker with ``vm`` (bench/workers.py,
2-vCPU VM, same ~1 KB viewer-request event):

=========================  ======================  ==========================
                           QuickJS (quickjs-ng)    node ``vm`` context
=========================  ======================  ==========================
one run, in the worker     14 us                   7 us, 90 us with ``timeout``
fresh context + code       0.3 ms                  0.9 ms
cold start (environment)   8 ms (fork of the       exec node: ~50 ms Init
                           zygote, Init)
memory per environment     ~0.1 MB context; 15 MB  ~40-50 MB RSS per process
                           RSS, mostly shared
a 2 MB memory limit        exact (allocator)       none per context
stopping a runaway         CPU timer (a signal)    ``timeout`` (a thread per run)
=========================  ======================  ==========================

Both are far below the ~170 us round trip to any worker, so the choice is
made by what can be enforced: QuickJS gives an exact per-run memory limit
and a cheap CPU stop, and, being an interpreter like the engine AWS
runs, compute utilization means more than under V8's JIT.

Standard library, ``protocol``, the ``quickjs`` binding and orjson only: this
worker runs no user Python, so nothing here is seen by user code, and JSON is
most of its work (frames in and out, the event into QuickJS and the outcome
back), which orjson does in a fraction of the stdlib's time. What orjson
refuses (lone surrogates, integers past 64 bits) goes the stdlib way.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import json
import os
import re
import resource
import signal
import time
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
import quickjs

from . import protocol

__all__ = ["MEMORY_BYTES", "rewrite_imports", "serve"]

MEMORY_BYTES = 2 * 1024 * 1024
LOG_BYTES = 10 * 1024
_PRELUDE = (Path(__file__).with_name("cff_prelude.js")).read_text(encoding="utf-8")
_IMPORT = re.compile(
    r"""^(\s*)import\s+(?:(\w+)|\*\s+as\s+(\w+)|\{([^}]*)\})\s+from\s+(['"])([\w./-]+)\5\s*;?""",
    re.MULTILINE,
)
_HASHES = {"md5": hashlib.md5, "sha1": hashlib.sha1, "sha256": hashlib.sha256}


def rewrite_imports(source: str) -> str:
    """2.0's ``import cf from 'cloudfront'`` (and named or namespace imports) as
    ``require`` calls, on the same line so error positions stay right."""

    def replace(match: re.Match[str]) -> str:
        indent, default, namespace, names, _q, module = match.groups()
        target = f"require({json.dumps(module)})"
        if default or namespace:
            return f"{indent}var {default or namespace} = {target};"
        parts = []
        for raw in (names or "").split(","):
            item = raw.strip()
            if not item:
                continue
            original, _, alias = (p.strip() for p in item.partition(" as "))
            parts.append(f"{alias or original} = __edgesim_import.{original}")
        return f"{indent}var __edgesim_import = {target}, {', '.join(parts)};"

    return _IMPORT.sub(replace, source)


class _Host:
    """What the JavaScript side may ask the worker for, per invocation."""

    def __init__(self, kvs: dict[str, str] | None, kvs_meta: dict[str, Any]) -> None:
        self.lines: list[str] = []
        self.log_bytes = 0
        self.request_id = ""
        self._kvs = kvs
        self._kvs_meta = json.dumps(kvs_meta)

    def log(self, message: str) -> None:
        size = len(message.encode("utf-8", "replace")) + 1
        if self.log_bytes + size > LOG_BYTES:  # function logs are truncated at 10 KB
            self.log_bytes = LOG_BYTES
            return
        self.log_bytes += size
        self.lines.append(f"{self.request_id} {message}")

    @staticmethod
    def digest(algorithm: str, data: str, key: str | None) -> str:
        raw = data.encode("latin-1")
        if key is None:
            out = _HASHES[algorithm](raw).digest()
        else:
            out = hmac.new(key.encode("latin-1"), raw, _HASHES[algorithm]).digest()
        return out.decode("latin-1")

    @staticmethod
    def codec(op: str, text: str) -> str | None:
        """Byte strings (one char per byte) to and from text encodings."""
        if op == "utf8":
            return text.encode("utf-8", "surrogatepass").decode("latin-1")
        if op == "latin1":
            return text.encode("latin-1", "replace").decode("latin-1")
        if op in ("to-utf8", "to-utf8-strict"):
            try:
                return text.encode("latin-1").decode("utf-8")
            except (UnicodeDecodeError, UnicodeEncodeError):
                if op == "to-utf8-strict":
                    return None
                return text.encode("latin-1", "replace").decode("utf-8", "replace")
        raw = text.encode("latin-1", "replace")
        if op == "to-hex":
            return raw.hex()
        if op == "to-base64":
            return base64.b64encode(raw).decode("ascii")
        if op == "to-base64url":
            return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
        if op == "unescape":
            return urllib.parse.unquote(text, errors="replace")
        try:
            if op == "from-hex":
                return bytes.fromhex(text[: len(text) // 2 * 2]).decode("latin-1")
            if op in ("from-base64", "from-base64url"):
                padded = text.replace("-", "+").replace("_", "/")
                padded += "=" * (-len(padded) % 4)
                return base64.b64decode(padded).decode("latin-1")
        except (ValueError, binascii.Error):
            return ""
        raise ValueError(f"Unknown encoding: {op.removeprefix('to-').removeprefix('from-')}")

    def kvs(self, op: str, key: str = "") -> Any:
        if op == "present":
            return self._kvs is not None
        store = self._kvs or {}
        if op == "exists":
            return key in store
        if op == "get":
            return store[key]
        return self._kvs_meta


class _Function:
    """One prepared context: prelude and code evaluated, waiting for its request."""

    def __init__(self, code: str, runtime: str, host: _Host) -> None:
        self.context = context = quickjs.Context()
        context.add_callable("__edgesim_log", host.log)
        context.add_callable("__edgesim_digest", host.digest)
        context.add_callable("__edgesim_codec", host.codec)
        context.add_callable("__edgesim_kvs", host.kvs)
        factory = context.eval(_PRELUDE)
        bridge = context.eval(
            "({log: __edgesim_log, digest: __edgesim_digest, codec: __edgesim_codec,"
            " kvs: __edgesim_kvs})"
        )
        self.runtime = factory(runtime, bridge)
        context.eval(
            "delete globalThis.__edgesim_log; delete globalThis.__edgesim_digest;"
            " delete globalThis.__edgesim_codec; delete globalThis.__edgesim_kvs;"
        )
        used = int(context.memory()["malloc_size"])
        context.set_memory_limit(used + MEMORY_BYTES)
        # Strict mode always (functions-javascript-runtime-10.html, "Strict mode"),
        # on the first line so that line numbers stay the file's.
        context.eval('"use strict";' + code)
        self.invoke = context.eval("(function (r) { return r.invoke; })")(self.runtime)
        self.outcome = context.eval("(function (r) { return r.outcome; })")(self.runtime)


def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _error(exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip()
    head = text.splitlines()[0] if text else type(exc).__name__
    error_type, _, message = head.partition(": ")
    trace = [line.strip() for line in text.splitlines()[1:]]
    if not message:
        error_type, message = "Error", head
    return {"errorType": error_type, "errorMessage": message, "trace": trace}


def serve(channel: protocol.BlockingChannel, options: dict[str, Any]) -> int:
    """Init (read code and key value store, build the first context), then invocations."""
    started = time.perf_counter()
    code = Path(options["code"]).read_text(encoding="utf-8")
    runtime = str(options["runtime"])
    if runtime == "cloudfront-js-2.0":
        code = rewrite_imports(code)
    budget_ms = float(options["budget_ms"])
    stop_s = float(options["stop_ms"]) / 1000
    kvs, meta = _load_kvs(options.get("kvs"))
    host = _Host(kvs, meta)
    signal.signal(signal.SIGVTALRM, signal.SIG_DFL)  # what ends a runaway run (_cpu_stop)
    channel.parse_with(orjson.loads)
    try:
        with _cpu_stop(stop_s * 10):  # top-level code gets ten runs' worth
            prepared = _Function(code, runtime, host)
    except Exception as exc:
        channel.send(
            protocol.encode(
                {
                    "t": "init_error",
                    "error": _error(exc),
                    "init_ms": (time.perf_counter() - started) * 1000,
                    "rss_kb": _rss_kb(),
                }
            )
        )
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    channel.send(
        protocol.encode({"t": "ready", "init_ms": init_ms, "rss_kb": _rss_kb(), "tmp": ""})
    )
    while (msg := channel.recv()) is not None:
        if msg["t"] != "invoke":
            continue
        channel.send(_invoke(prepared, host, msg, budget_ms, stop_s))
    return 0


class _cpu_stop:
    """Terminate this process (SIGVTALRM's default action) after ``seconds`` of CPU."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __enter__(self) -> None:
        # SIGVTALRM keeps its default action (terminate), set once in ``serve``.
        signal.setitimer(signal.ITIMER_VIRTUAL, self.seconds)

    def __exit__(self, *_: object) -> None:
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)


def _invoke(
    function: _Function, host: _Host, msg: dict[str, Any], budget_ms: float, stop_s: float
) -> bytes:
    event = msg["event"]
    context = event.get("context") if isinstance(event, dict) else None
    request_id = str(context.get("requestId", "")) if isinstance(context, dict) else ""
    distribution = str(context.get("distributionId", "")) if isinstance(context, dict) else ""
    host.request_id = request_id
    host.lines = [f"{request_id} START DistributionID: {distribution}"]
    host.log_bytes = 0
    wall = time.perf_counter_ns()
    cpu = time.thread_time()
    payload: dict[str, Any] = {}
    error: dict[str, Any] | None = None
    try:
        with _cpu_stop(stop_s):
            function.invoke(_event_json(event), int(time.time() * 1000))
            while function.context.execute_pending_job():
                pass
            outcome = _loads(function.outcome())
        if not outcome["done"]:
            error = {
                "errorType": "Error",
                "errorMessage": "The function's promise never settled",
                "trace": [],
            }
        elif "error" in outcome:
            error_type, error_message = outcome["error"]
            error = {"errorType": error_type, "errorMessage": error_message, "trace": []}
        else:
            payload = {"output": outcome["output"], "origin": outcome["origin"]}
    except quickjs.JSException as exc:
        error = _error(exc)
    except Exception as exc:  # a host function's own failure, a value JSON can't carry
        error = {"errorType": "Error", "errorMessage": str(exc), "trace": []}
    cpu_ms = (time.thread_time() - cpu) * 1000
    duration = time.perf_counter_ns() - wall
    host.lines.append(f"{request_id} END")
    message: dict[str, Any] = {
        "t": "result",
        "id": msg["id"],
        "duration_ns": duration,
        "rss_kb": _rss_kb(),
        "cpu_ms": cpu_ms,
        "compute": min(100, round(cpu_ms / budget_ms * 100)),
        "logs": host.lines,
    }
    if error is not None:
        message["error"] = error
    else:
        message["payload"] = payload
    return protocol.encode(message, dumps=orjson.dumps)


def _event_json(event: Any) -> str:
    """The event as JSON text for QuickJS; lone surrogates escaped (``dumps_ascii``)."""
    try:
        return orjson.dumps(event).decode("utf-8")
    except TypeError:
        return protocol.dumps_ascii(event)


def _loads(text: str) -> Any:
    """JSON from QuickJS (lone surrogates come escaped: the stdlib takes those)."""
    try:
        return orjson.loads(text)
    except ValueError:
        return json.loads(text)


def _load_kvs(path: str | None) -> tuple[dict[str, str] | None, dict[str, Any]]:
    """The pairs of a key value store file (checked when the config was loaded)."""
    if not path:
        return None, {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    pairs = {item["key"]: item["value"] for item in data}
    stat = os.stat(path)
    stamp = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC).isoformat()
    created = stamp.replace("+00:00", "Z")
    meta = {"creationDateTime": created, "lastUpdatedDateTime": created, "keyCount": len(pairs)}
    return pairs, meta
