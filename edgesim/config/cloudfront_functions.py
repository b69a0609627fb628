"""CloudFront Functions from a config file: the function, its code and its key value store.

A function whose ``runtime`` is ``cloudfront-js-1.0`` or ``cloudfront-js-2.0``
is a CloudFront Function (functions-javascript-runtime-features.html). Its
keys are ``runtime``, ``code`` (one .js file: the whole function, whose entry
point is ``handler(event)``), ``key_value_store`` (2.0 only; a JSON file in
the format CloudFront imports a key value store from) and
``compute_budget_ms`` (the CPU that counts as 100% compute utilization).
Memory, timeout and handler are fixed by AWS, so setting them is an error.

Checked here, so that ``edgesim validate`` reports them with file and line:
the 10 KB code size (cloudfront-limits.html), what cloudfront-js-1.0 cannot
parse (``js_source``), and the key value store's format and size limits
(kvs-with-functions-create-s3-kvp.html: 5 MB file, keys of 512 and values of
1,024 characters, no duplicate keys).
"""

from __future__ import annotations

import json
from pathlib import Path

from edgesim.config.js_source import unsupported_syntax
from edgesim.config.node import Node
from edgesim.config.schema import FunctionConfig
from edgesim.hooks import CLOUDFRONT_FUNCTION_LIMITS as LIMITS

__all__ = ["CLOUDFRONT_RUNTIMES", "read_cloudfront_function", "read_key_value_store"]

CLOUDFRONT_RUNTIMES = ("cloudfront-js-1.0", "cloudfront-js-2.0")
_KEYS = ("runtime", "code", "key_value_store", "compute_budget_ms")
_FIXED = {
    "memory": "2 MB",
    "timeout": "a compute budget (compute_budget_ms)",
    "handler": "the function handler(event) in the code",
    "concurrency": "CloudFront's own scaling",
    "prewarm": "CloudFront's own scaling",
    "idle_timeout": "CloudFront's own scaling",
}
_RUNTIME_PAGE = "functions-javascript-runtime-features.html"


def read_cloudfront_function(name: str, node: Node, base_dir: Path) -> tuple[FunctionConfig, int]:
    """A CloudFront Function and its code size in bytes."""
    raw = node.mapping()
    for key, child in raw.items():
        if key in _FIXED:
            raise child.error(
                f"a CloudFront Function has no {key}: AWS fixes it ({_FIXED[key]});"
                " the keys are " + ", ".join(_KEYS)
            )
    entries = node.mapping(_KEYS)
    runtime_node = node.required("runtime")
    runtime = runtime_node.string()
    if runtime not in CLOUDFRONT_RUNTIMES:
        raise runtime_node.error(
            f"unknown runtime {runtime!r}; CloudFront Functions run "
            + " or ".join(CLOUDFRONT_RUNTIMES)
        )
    code_node = node.required("code")
    code = (base_dir / Path(code_node.string()).expanduser()).resolve()
    if not code.is_file():
        raise code_node.error(
            f"the file {str(code)!r} does not exist (a CloudFront Function is one .js file)"
        )
    size = _check_code(code, runtime, code_node)
    budget = LIMITS.default_compute_budget_ms
    if "compute_budget_ms" in entries:
        budget = entries["compute_budget_ms"].number(maximum=LIMITS.max_compute_budget_ms)
        if budget <= 0:
            raise entries["compute_budget_ms"].error(
                f"{budget:g} is out of range: must be more than 0"
            )
    kvs: Path | None = None
    if "key_value_store" in entries:
        kvs_node = entries["key_value_store"]
        if runtime != "cloudfront-js-2.0":
            raise kvs_node.error(
                "key value stores are read with the cloudfront module, which only"
                " cloudfront-js-2.0 has (kvs-with-functions-associate.html)"
            )
        kvs = (base_dir / Path(kvs_node.string()).expanduser()).resolve()
        read_key_value_store(kvs, kvs_node)
    function = FunctionConfig(
        name,
        runtime,
        code,
        "handler",
        memory=128,  # the worker process's ceiling; the JavaScript heap gets 2 MB
        timeout=1.0,
        concurrency=1000,
        compute_budget_ms=budget,
        key_value_store=kvs,
    )
    return function, size


def _check_code(code: Path, runtime: str, node: Node) -> int:
    data = code.read_bytes()
    if len(data) > LIMITS.max_code_bytes:
        raise node.error(
            f"the function is {len(data):,} bytes; CloudFront Functions take at most"
            f" {LIMITS.max_code_bytes // 1024} KB of code (cloudfront-limits.html)"
        )
    try:
        source = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise node.error(f"the function is not UTF-8 text: {exc}") from None
    if runtime == "cloudfront-js-1.0":
        problem = unsupported_syntax(source)
        if problem is not None:
            line, what = problem
            raise node.error(
                f"{code.name}:{line}: SyntaxError: {what} (cloudfront-js-1.0 is ES 5.1 with"
                f" a few later features; use cloudfront-js-2.0 for const, let, async and await;"
                f" {_RUNTIME_PAGE})"
            )
    return len(data)


def read_key_value_store(path: Path, node: Node) -> dict[str, str]:
    """The pairs of a key value store file ``{"data": [{"key": ..., "value": ...}]}``."""
    if not path.is_file():
        raise node.error(f"the key value store file {str(path)!r} does not exist")
    if path.stat().st_size > LIMITS.kvs_max_file_bytes:
        raise node.error(
            f"the key value store file is over {LIMITS.kvs_max_file_bytes // (1024 * 1024)} MB,"
            " CloudFront's limit for its data source (kvs-with-functions-create-s3-kvp.html)"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise node.error(f"the key value store file is not UTF-8 JSON: {exc}") from None
    data = document.get("data") if isinstance(document, dict) else None
    if not isinstance(data, list):
        raise node.error('a key value store file is {"data": [{"key": ..., "value": ...}, ...]}')
    pairs: dict[str, str] = {}
    for index, item in enumerate(data):
        where = f"data[{index}]"
        if not isinstance(item, dict) or set(item) != {"key", "value"}:
            raise node.error(f"{where} must be an object with exactly a key and a value")
        key, value = item["key"], item["value"]
        if not isinstance(key, str) or not isinstance(value, str):
            raise node.error(f"{where}: key and value must be strings")
        if not key:
            raise node.error(f"{where}: a key can't be empty")
        if len(key) > LIMITS.kvs_max_key_chars:
            raise node.error(
                f"{where}: the key is {len(key)} characters; at most {LIMITS.kvs_max_key_chars}"
            )
        if len(value) > LIMITS.kvs_max_value_chars:
            raise node.error(
                f"{where}: the value of {key!r} is {len(value)} characters;"
                f" at most {LIMITS.kvs_max_value_chars}"
            )
        if key in pairs:
            raise node.error(f"{where}: the key {key!r} is there twice (duplicates are refused)")
        pairs[key] = value
    return pairs
