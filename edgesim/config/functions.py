"""Edge functions from a config file: Lambda@Edge's rules for a function and its package.

``read_functions`` reads the top-level ``functions:`` mapping. A function's
own limits are checked here; the limits that depend on the event it runs at
(viewer events are tighter) are checked where a behavior associates it, with
``EdgeFunctions.event_problem``. ``config_warnings`` lists what is allowed but
worth telling the user once, such as a runtime newer than the local Python.

The rules are Lambda@Edge's (lambda-at-edge-function-restrictions.html) and
its quotas (cloudfront-limits.html, "Quotas on Lambda@Edge"). A function whose
runtime is ``cloudfront-js-1.0`` or ``cloudfront-js-2.0`` is a CloudFront
Function instead, read by ``edgesim.config.cloudfront_functions``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgesim.config.cloudfront_functions import CLOUDFRONT_RUNTIMES, read_cloudfront_function
from edgesim.config.node import Node
from edgesim.config.schema import Config, FunctionConfig
from edgesim.hooks import FUNCTION_RULES, HOOK_RULES, EventType

__all__ = [
    "ACCEPTED_RUNTIMES",
    "NODE_RUNTIMES",
    "EdgeFunctions",
    "config_warnings",
    "package_size",
    "read_functions",
]

_RESTRICTIONS = "lambda-at-edge-function-restrictions.html"
_MB = 1024 * 1024  # Lambda's "MB" of package sizes are 2**20 bytes
# The most any event allows, and what viewer events allow (hooks.HOOK_RULES).
_ORIGIN_RULE = HOOK_RULES[EventType.ORIGIN_REQUEST]
_VIEWER_RULE = HOOK_RULES[EventType.VIEWER_REQUEST]


# Lambda's Python runtimes that edgesim runs, on the local interpreter.
ACCEPTED_RUNTIMES = ("python3.11", "python3.12", "python3.13")
# Lambda's Node.js runtimes that edgesim runs, on the local ``node``.
NODE_RUNTIMES = ("nodejs18.x", "nodejs20.x", "nodejs22.x")
_ALL_RUNTIMES = (*ACCEPTED_RUNTIMES, *NODE_RUNTIMES, *CLOUDFRONT_RUNTIMES)
# Lambda runtimes that exist but that edgesim does not run.
_OLDER_RUNTIMES = ("python3.9", "python3.10", "nodejs16.x", "nodejs14.x", "nodejs12.x")
# A Node.js handler module is one of these files (Lambda's loader tries them in order).
_NODE_EXTENSIONS = ("", ".js", ".mjs", ".cjs")

_FUNCTION_KEYS = (
    "runtime",
    "code",
    "handler",
    "memory",
    "timeout",
    "concurrency",
    "prewarm",
    "idle_timeout",
    "architectures",
    "ephemeral_storage",
)
# Lambda settings Lambda@Edge refuses (lambda-at-edge-function-restrictions.html).
_UNSUPPORTED = {
    "environment": "environment variables",
    "layers": "layers",
    "provisioned_concurrency": "provisioned concurrency",
    "reserved_concurrency": "reserved concurrency",
    "vpc": "VPC access",
    "dead_letter_queue": "dead-letter queues",
    "tracing": "X-Ray tracing",
}

# A function name: letters, digits, hyphens, underscores, at most 64 (Lambda's
# CreateFunction API); Lambda@Edge shows it as "us-east-1.<name>".
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_FUNCTIONS = 100  # Lambda@Edge functions per distribution (cloudfront-limits.html)
_SKIPPED_DIRS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc",)


@dataclass(frozen=True, slots=True)
class EdgeFunctions:
    """The functions a config defines, with each one's compressed package size in bytes."""

    configs: dict[str, FunctionConfig]
    package_sizes: dict[str, int]

    def event_problem(self, name: str, event: str) -> str | None:
        """Why function ``name`` can't be associated with ``event``, or None if it can."""
        function, rule = self.configs[name], HOOK_RULES[EventType(event)]
        if function.is_cloudfront_function:
            if EventType(event) in FUNCTION_RULES:
                return None
            return (
                f"function {name!r} is a CloudFront Function: those run only at"
                " viewer-request and viewer-response (edge-functions.md)"
            )
        over: list[str] = []
        if function.memory > rule.max_memory_mb:
            over.append(f"memory {function.memory} MB is over {rule.max_memory_mb} MB")
        if function.timeout > rule.max_timeout_s:
            over.append(f"timeout {function.timeout:g} s is over {rule.max_timeout_s:g} s")
        size = self.package_sizes[name]
        if size > rule.max_package_bytes:
            over.append(f"package {_megabytes(size)} is over {_megabytes(rule.max_package_bytes)}")
        if not over:
            return None
        kind = "viewer" if rule.is_viewer else "origin"
        return (
            f"function {name!r} can't run at {event}: {'; '.join(over)} "
            f"(Lambda@Edge's limits for {kind} events, {_RESTRICTIONS})"
        )


def read_functions(node: Node | None, base_dir: Path) -> EdgeFunctions:
    """The ``functions:`` mapping; ``code`` folders are relative to ``base_dir``.

    Each package is zipped in memory once, to measure it as Lambda does. A
    CloudFront Function's code is one file, measured as it is (10 KB).
    """
    if node is None or node.value is None:
        return EdgeFunctions({}, {})
    entries = node.mapping()
    if len(entries) > _MAX_FUNCTIONS:
        raise node.error(
            f"at most {_MAX_FUNCTIONS} Lambda@Edge functions per distribution (CloudFront quota)"
        )
    configs: dict[str, FunctionConfig] = {}
    sizes: dict[str, int] = {}
    measured: dict[Path, int] = {}  # several functions often share one package
    for name, child in entries.items():
        if not _FUNCTION_NAME.fullmatch(name):
            raise child.error(
                "a function name is 1 to 64 letters, digits, hyphens or underscores (Lambda's rule)"
            )
        if _is_cloudfront_function(child):
            function, size = read_cloudfront_function(name, child, base_dir)
            configs[name] = function
            sizes[name] = size
            continue
        function = _function(name, child, base_dir)
        if function.code not in measured:
            where = child.mapping().get("code", child)
            measured[function.code] = _measure(function.code, where)
        configs[name] = function
        sizes[name] = measured[function.code]
    return EdgeFunctions(configs, sizes)


def config_warnings(
    config: Config,
    *,
    python: tuple[int, int] = (sys.version_info.major, sys.version_info.minor),
    node: int | None = None,
) -> list[str]:
    """What the user should hear once about ``config``, one line each.

    A function whose runtime is another Python than the local interpreter
    (``python``), or another Node.js major than the local ``node`` (``node``,
    found on PATH when not given), still runs, on the local one; say so once
    per runtime.
    """
    local = f"python{python[0]}.{python[1]}"
    by_runtime: dict[str, list[str]] = {}
    node_runtime: str | None = None
    for name, function in config.functions.items():
        if function.engine == "python" and function.runtime != local:
            by_runtime.setdefault(function.runtime, []).append(name)
        elif function.engine == "node":
            if node is None:
                node = local_node_major()
            node_runtime = f"nodejs{node}.x" if node else None
            if function.runtime != node_runtime:
                by_runtime.setdefault(function.runtime, []).append(name)
    lines = []
    for runtime, names in sorted(by_runtime.items()):
        where = (
            f"the local Python {python[0]}.{python[1]}"
            if runtime.startswith("python")
            else f"the local Node.js {node}"
        )
        lines.append(f"functions with runtime {runtime} run on {where}: " + ", ".join(names))
    return lines


def local_node_major() -> int | None:
    """The major version of the ``node`` on PATH, or None when there is none."""
    import subprocess

    executable = shutil.which("node")
    if executable is None:
        return None
    try:
        done = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.fullmatch(r"v(\d+)\..*", done.stdout.strip())
    return int(match.group(1)) if match else None


def package_size(folder: Path, limit: int | None = None) -> int:
    """Bytes of ``folder`` zipped with deflate, the way Lambda measures a package.

    ``__pycache__`` folders and ``.pyc`` files are left out (Python rebuilds
    them). Counting stops soon after ``limit``, so a huge folder is not read
    to the end. The archive is counted as it is written, never held.
    """
    sink = _ByteCounter()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, strict_timestamps=False) as archive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
            for file in sorted(files):
                path = Path(root, file)
                if file.endswith(_SKIPPED_SUFFIXES) or not path.is_file():
                    continue
                archive.write(path, path.relative_to(folder).as_posix())
                if limit is not None and sink.size > limit:
                    return sink.size
    return sink.size


class _ByteCounter:
    """A write-only stream that counts bytes; zipfile treats it as unseekable."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


# --- one function ---


def _is_cloudfront_function(node: Node) -> bool:
    runtime = node.mapping().get("runtime")
    return (
        runtime is not None
        and isinstance(runtime.value, str)
        and runtime.value.startswith("cloudfront-js-")
    )


def _function(name: str, node: Node, base_dir: Path) -> FunctionConfig:
    raw = node.mapping()
    for key, child in raw.items():
        if key in _UNSUPPORTED:
            raise child.error(f"Lambda@Edge does not support {_UNSUPPORTED[key]} ({_RESTRICTIONS})")
    entries = node.mapping(_FUNCTION_KEYS)
    runtime = _runtime(node.required("runtime"))
    code = _code(entries["code"], base_dir) if "code" in entries else base_dir.resolve()
    if runtime in NODE_RUNTIMES:
        if shutil.which("node") is None:
            raise entries["runtime"].error(
                f"{runtime} functions run on the local node, and there is no node on PATH"
            )
        handler = _node_handler(node.required("handler"), code)
    else:
        handler = _handler(node.required("handler"), code)
    function = FunctionConfig(name, runtime, code, handler)
    memory = function.memory
    if "memory" in entries:
        # Lambda's range; viewer events allow only 128 (checked at the association).
        memory = entries["memory"].integer(128, _ORIGIN_RULE.max_memory_mb)
    timeout = _timeout(entries["timeout"]) if "timeout" in entries else function.timeout
    concurrency = function.concurrency
    if "concurrency" in entries:
        concurrency = entries["concurrency"].integer(minimum=1)
    prewarm = function.prewarm
    if "prewarm" in entries:
        prewarm = entries["prewarm"].integer(minimum=0)
        if prewarm > concurrency:
            raise entries["prewarm"].error(
                f"prewarm ({prewarm}) is more than concurrency ({concurrency})"
            )
    idle_timeout = function.idle_timeout
    if "idle_timeout" in entries:
        idle_timeout = _positive(entries["idle_timeout"])
    if "architectures" in entries:
        _architectures(entries["architectures"])
    if "ephemeral_storage" in entries:
        _ephemeral_storage(entries["ephemeral_storage"])
    return FunctionConfig(
        name, runtime, code, handler, memory, timeout, concurrency, prewarm, idle_timeout
    )


def _runtime(node: Node) -> str:
    runtime = node.string()
    if runtime in ACCEPTED_RUNTIMES or runtime in NODE_RUNTIMES:
        return runtime
    accepted = ", ".join(_ALL_RUNTIMES)
    if runtime in _OLDER_RUNTIMES:
        raise node.error(f"edgesim does not run {runtime}; use one of: {accepted}")
    raise node.error(f"unknown runtime {runtime!r}; use one of: {accepted}")


def _code(node: Node, base_dir: Path) -> Path:
    folder = (base_dir / Path(node.string()).expanduser()).resolve()
    if not folder.exists():
        raise node.error(f"the folder {str(folder)!r} does not exist")
    if not folder.is_dir():
        raise node.error(f"{str(folder)!r} is not a folder (the package is a folder of code)")
    return folder


def _handler(node: Node, code: Path) -> str:
    """``module.function``, as in Lambda; the module may be in a subfolder
    (``pkg.module.function`` or ``src/module.function``) and must exist."""
    handler = node.string()
    module, _, function = handler.rpartition(".")
    parts = module.replace("/", ".").split(".")
    if not module or not all(_IDENTIFIER.fullmatch(p) for p in (*parts, function)):
        raise node.error(f"a handler is module.function, like basic_auth.handler, not {handler!r}")
    base = code.joinpath(*parts)
    candidates = (base.with_name(f"{parts[-1]}.py"), base / "__init__.py")
    if not any(path.is_file() for path in candidates):
        looked = " and ".join(str(path.relative_to(code)) for path in candidates)
        raise node.error(f"no module {'.'.join(parts)!r} in {str(code)!r} (looked for {looked})")
    return handler


def _node_handler(node: Node, code: Path) -> str:
    """``module.function`` as Lambda's Node.js runtime reads it: the module may sit
    in folders (``src/app.handler``), the function may be nested
    (``app.handlers.viewer``), and the module is a .js, .mjs or .cjs file."""
    handler = node.string()
    folder, _, base = handler.rpartition("/")
    module, dot, function = base.partition(".")
    if not module or not dot or not function or ".." in handler:
        raise node.error(f"a handler is module.function, like index.handler, not {handler!r}")
    base_path = code / folder / module
    candidates = [base_path.with_name(module + ext) for ext in _NODE_EXTENSIONS]
    if not any(path.is_file() for path in candidates):
        looked = ", ".join(str(path.relative_to(code)) for path in candidates[1:])
        raise node.error(f"no module {module!r} in {str(code / folder)!r} (looked for {looked})")
    return handler


def _timeout(node: Node) -> float:
    timeout = _positive(node)
    if timeout > _ORIGIN_RULE.max_timeout_s:
        raise node.error(
            f"a Lambda@Edge function times out after at most {_ORIGIN_RULE.max_timeout_s:g} s "
            f"({_VIEWER_RULE.max_timeout_s:g} s at viewer events; {_RESTRICTIONS})"
        )
    return timeout


def _positive(node: Node) -> float:
    value = node.number()
    if value <= 0:
        raise node.error(f"{node.value} is out of range: must be more than 0")
    return value


def _architectures(node: Node) -> None:
    """Lambda's ``Architectures``: one name, or a list of one; only x86_64 at the edge."""
    items = node.sequence() if isinstance(node.value, list) else [node]
    if len(items) != 1:
        raise node.error("a function has exactly one architecture")
    name = items[0].string()
    if name == "arm64":
        raise items[0].error(f"Lambda@Edge does not support arm64 ({_RESTRICTIONS})")
    if name != "x86_64":
        raise items[0].error(f"unknown architecture {name!r}; Lambda@Edge runs x86_64")


def _ephemeral_storage(node: Node) -> None:
    """Lambda's ``EphemeralStorage`` in MB (512 to 10240); only 512 at the edge."""
    size = node.integer(512, 10_240)
    if size > 512:
        raise node.error(
            f"Lambda@Edge does not support ephemeral storage over 512 MB ({_RESTRICTIONS})"
        )


def _measure(folder: Path, node: Node) -> int:
    """The package's compressed size; over the origin limit is an error at ``node``."""
    try:
        size = package_size(folder, limit=_ORIGIN_RULE.max_package_bytes)
    except OSError as exc:
        raise node.error(f"cannot read the package {str(folder)!r}: {exc}") from None
    limit = _ORIGIN_RULE.max_package_bytes
    if size > limit:
        raise node.error(
            f"the package {str(folder)!r} is over {_megabytes(limit)} compressed, "
            f"Lambda@Edge's limit ({_RESTRICTIONS})"
        )
    return size


def _megabytes(size: int) -> str:
    return f"{size / _MB:.2f}".rstrip("0").rstrip(".") + " MB"
