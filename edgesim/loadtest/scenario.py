"""What a load test sends: the request mix and the phases of load, from flags or a file.

A scenario file (YAML, JSON or TOML, read by ``edgesim.config.document`` so
errors name file, line and key path)::

    seed: 7                          # optional: the same mix every run
    requests:                        # chosen by weight
      - url: /img/{n}.jpg            # a template over `objects` objects, n = 0..objects-1
        objects: 10000
        popularity: zipf             # zipf (default) or uniform
        zipf_exponent: 0.8
        weight: 9
        headers: {Accept-Encoding: gzip}
        cookies: {session: abc}
      - url: /api/cart
        method: POST
        body: '{"item": 1}'
    phases:                          # in order; all open loop (rate) or all closed (concurrency)
      - {name: ramp, duration: 10, rate: [50, 500]}    # req/s, linear from..to
      - {name: steady, duration: 30, rate: 500}
      - {name: spike, duration: 5, rate: 2000}

URLs are absolute (``http://host:port/path``) or, when the harness starts
its own edge, paths on it. Object 0 is the most popular. CDN request
popularity is Zipf-like with an exponent mostly between 0.6 and 0.9
(Breslau et al., "Web Caching and Zipf-like Distributions", 1999): 0.8 is
the default.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from edgesim.config.document import read_document, read_document_file
from edgesim.config.node import Node
from edgesim.errors import ConfigError

__all__ = ["Load", "Phase", "RequestSpec", "Scenario", "read_scenario", "simple_scenario"]

DEFAULT_ZIPF_EXPONENT = 0.8
MAX_OBJECTS = 10_000_000  # the popularity table is kept in memory
_TOP_KEYS = ("seed", "requests", "phases")
_REQUEST_KEYS = (
    "url",
    "objects",
    "popularity",
    "zipf_exponent",
    "weight",
    "method",
    "headers",
    "cookies",
    "body",
)
_PHASE_KEYS = ("name", "duration", "rate", "concurrency")
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One kind of request in the mix; ``{n}`` in ``path`` is the object number."""

    path: str  # path and query, possibly with {n}
    scheme: str = "http"
    host: str | None = None  # None: a path on the edge the harness starts
    port: int = 80
    method: str = "GET"
    objects: int = 1
    popularity: str = "zipf"
    zipf_exponent: float = DEFAULT_ZIPF_EXPONENT
    weight: float = 1.0
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    @property
    def origin(self) -> tuple[str, str, int]:
        assert self.host is not None, "resolve() the scenario first"
        return self.scheme, self.host, self.port

    def on(self, scheme: str, host: str, port: int) -> RequestSpec:
        return RequestSpec(
            self.path, scheme, host, port, self.method, self.objects, self.popularity,
            self.zipf_exponent, self.weight, self.headers, self.body,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Load:
    """Offered load, linear from ``start`` to ``end`` over a phase: req/s or connections."""

    start: float
    end: float

    def at(self, fraction: float) -> float:
        return self.start + (self.end - self.start) * fraction


@dataclass(frozen=True, slots=True)
class Phase:
    name: str
    duration: float  # seconds
    rate: Load | None = None  # open loop: requests per second
    concurrency: Load | None = None  # closed loop: connections each sending back to back


@dataclass(frozen=True, slots=True)
class Scenario:
    requests: tuple[RequestSpec, ...]
    phases: tuple[Phase, ...] = ()
    seed: int | None = None
    source: str | None = None  # the file it came from
    warnings: tuple[str, ...] = field(default=())

    @property
    def open_loop(self) -> bool:
        return any(p.rate is not None for p in self.phases)

    def resolve(self, base_url: str) -> Scenario:
        """Paths become requests to ``base_url`` (the edge the harness started)."""
        scheme, host, port = _split_origin(base_url)
        specs = tuple(s if s.host is not None else s.on(scheme, host, port) for s in self.requests)
        return Scenario(specs, self.phases, self.seed, self.source, self.warnings)

    def with_phases(self, phases: tuple[Phase, ...]) -> Scenario:
        return Scenario(self.requests, phases, self.seed, self.source, self.warnings)


def _split_origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port


def parse_url(url: str, *, relative: bool) -> RequestSpec:
    """A URL from the command line or a scenario; paths only when ``relative``.

    Raises ValueError with the reason.
    """
    if url.startswith("/"):
        if not relative:
            raise ValueError(
                f"{url!r} is a path: give a full URL (http://host:port{url}) or --config"
            )
        return RequestSpec(url)
    try:
        scheme, host, port = _split_origin(url)
    except ValueError:
        raise ValueError(
            f"{url!r} is neither a path (/...) nor an http:// or https:// URL"
        ) from None
    if relative:
        raise ValueError(f"{url!r}: with --config, give paths on the edge (/...), not URLs")
    parts = urllib.parse.urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return RequestSpec(path, scheme, host, port)


def simple_scenario(urls: list[str], *, relative: bool) -> Scenario:
    """Each URL from the command line, equally often."""
    return Scenario(tuple(parse_url(u, relative=relative) for u in urls))


def read_scenario(path: str | Path, *, relative: bool) -> Scenario:
    """Read and check a scenario file (module docstring); ConfigError on any problem."""
    path = Path(path)
    text, fmt = read_document_file(path, "scenario")
    root = read_document(text, fmt, str(path)).mapping(_TOP_KEYS, kind="a scenario")
    seed = root["seed"].integer(0, 2**63) if "seed" in root else None
    if "requests" not in root:
        raise ConfigError("missing required key", file=str(path), line=1, path="requests")
    items = root["requests"].sequence()
    if not items:
        raise root["requests"].error("give at least one request")
    specs = tuple(_request(item, relative) for item in items)
    phases = (
        tuple(_phase(item, i) for i, item in enumerate(root["phases"].sequence()))
        if ("phases" in root)
        else ()
    )
    kinds = {p.rate is not None for p in phases}
    if len(kinds) > 1:
        raise root["phases"].error(
            "mix of open loop (rate) and closed loop (concurrency) phases; use one kind"
        )
    return Scenario(specs, phases, seed, str(path))


def _request(node: Node, relative: bool) -> RequestSpec:
    entries = node.mapping(_REQUEST_KEYS, kind="a request")
    url_node = node.required("url")
    try:
        spec = parse_url(url_node.single_line("url"), relative=relative)
    except ValueError as exc:
        raise url_node.error(str(exc)) from None
    objects = entries["objects"].integer(1, MAX_OBJECTS) if "objects" in entries else 1
    templated = "{n}" in spec.path
    if templated and "objects" not in entries:
        raise url_node.error("the URL has {n}: say over how many objects with `objects`")
    if objects > 1 and not templated:
        raise entries["objects"].error("objects > 1 needs {n} in the URL, where the number goes")
    popularity = "zipf"
    if "popularity" in entries:
        popularity = entries["popularity"].string()
        if popularity not in ("zipf", "uniform"):
            raise entries["popularity"].error(f"{popularity!r}: expected zipf or uniform")
    exponent = DEFAULT_ZIPF_EXPONENT
    if "zipf_exponent" in entries:
        exponent = entries["zipf_exponent"].number(0.0, 5.0)
    weight = entries["weight"].number(0.0) if "weight" in entries else 1.0
    if weight <= 0:
        raise entries["weight"].error("a weight must be more than 0")
    method = "GET"
    if "method" in entries:
        method = entries["method"].string().upper()
        if method not in _METHODS:
            raise entries["method"].error(f"{method!r}: expected one of {', '.join(_METHODS)}")
    headers: list[tuple[str, str]] = []
    for key in ("headers", "cookies"):
        if key not in entries:
            continue
        for name, value in entries[key].mapping().items():
            text = value.single_line("a header value") if key == "headers" else value.string()
            if key == "headers":
                if name.lower() in ("host", "content-length", "transfer-encoding"):
                    raise value.error(f"{name} is set by the load generator")
                headers.append((Node(name, value.file, value.line, value.path).header_name(), text))
            else:
                headers.append(("Cookie", f"{name}={text}"))
    cookies = [v for k, v in headers if k == "Cookie"]
    headers = [(k, v) for k, v in headers if k != "Cookie"]
    if cookies:
        headers.append(("Cookie", "; ".join(cookies)))
    body = entries["body"].string().encode() if "body" in entries else b""
    return RequestSpec(
        spec.path, spec.scheme, spec.host, spec.port, method, objects, popularity, exponent,
        weight, tuple(headers), body,
    )  # fmt: skip


def _load(node: Node, what: str, minimum: float) -> Load:
    if isinstance(node.value, list):
        items = node.sequence()
        if len(items) != 2:
            raise node.error(f"{what}: a number, or [from, to] for a linear ramp")
        start, end = (i.number(minimum) for i in items)
        if start == end == 0:
            raise node.error(f"{what}: a ramp from 0 to 0 sends nothing")
        return Load(start, end)
    value = node.number(minimum)
    if value <= 0:
        raise node.error(f"{what} must be more than 0")
    return Load(value, value)


def _phase(node: Node, index: int) -> Phase:
    entries = node.mapping(_PHASE_KEYS, kind="a phase")
    name = entries["name"].single_line("a name") if "name" in entries else f"phase {index + 1}"
    duration = node.required("duration").number(0.001, 86_400)
    if ("rate" in entries) == ("concurrency" in entries):
        raise node.error("a phase needs either `rate` (req/s, open loop) or `concurrency`")
    if "rate" in entries:
        return Phase(name, duration, rate=_load(entries["rate"], "rate", 0))
    concurrency = _load(entries["concurrency"], "concurrency", 0)
    if max(concurrency.start, concurrency.end) > 100_000:
        raise entries["concurrency"].error("at most 100000 connections")
    return Phase(name, duration, concurrency=concurrency)
