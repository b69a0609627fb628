"""Command line: argument parsing only; each command calls a public function."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from edgesim.config import config_warnings
from edgesim.config.loader import load_config, parse_listen, quick_config
from edgesim.config.schema import Config
from edgesim.errors import ConfigError
from edgesim.hooks import EventType

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgesim", description="A local CloudFront edge.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the edge (the embedded demo with no options)")
    source = serve.add_mutually_exclusive_group()
    source.add_argument("--config", metavar="FILE", help="edge config (YAML, JSON or TOML)")
    source.add_argument("--origin", metavar="URL", help="quick mode: one origin, default behavior")
    serve.add_argument("--listen", metavar="HOST:PORT", help="where the edge listens")
    serve.add_argument("--admin-listen", metavar="HOST:PORT", help="where the admin API listens")
    serve.add_argument(
        "--no-reload",
        action="store_true",
        help="with --config: don't apply edits to the config and functions as they are saved",
    )
    validate = commands.add_parser("validate", help="check a config file and exit")
    validate.add_argument("file")
    invoke = commands.add_parser(
        "invoke",
        help="run a function once on a test event, like the Lambda console's Test "
        "(or CloudFront's TestFunction)",
    )
    invoke.add_argument("function", help="the function's name under functions:")
    invoke.add_argument("--event", required=True, metavar="FILE.json", help="the test event")
    invoke.add_argument("--config", default="edgesim.yaml", metavar="FILE")
    event = commands.add_parser(
        "event", help="print a Lambda@Edge event (or CloudFront Functions one) to start from"
    )
    event.add_argument("type", choices=[e.value for e in EventType])
    event.add_argument(
        "--cloudfront-function",
        action="store_true",
        help="a CloudFront Functions test event object (viewer events), as TestFunction takes",
    )
    event.add_argument("--uri", default="/", help="the request path (default /)")
    event.add_argument("--method", default="GET")
    event.add_argument("--querystring", default="", metavar="QUERY", help="without the '?'")
    event.add_argument(
        "--header", action="append", default=[], metavar="NAME=VALUE", help="a request header"
    )
    event.add_argument("--client-ip", default="203.0.113.10", metavar="IP")
    event.add_argument("--body", metavar="TEXT|@FILE", help="a request body (IncludeBody)")
    event.add_argument("--origin", metavar="URL", help="origin events: the custom origin")
    event.add_argument("--status", type=int, help="response events: the status (default 200)")
    event.add_argument("--response-header", action="append", default=[], metavar="NAME=VALUE")
    event.add_argument("--config", metavar="FILE", help="take the distribution id and domain")
    _loadtest_parser(commands)
    return parser


def _loadtest_parser(commands: Any) -> None:
    test = commands.add_parser(
        "loadtest",
        help="drive traffic through an edge (a URL, or one started from --config) and report",
    )
    test.add_argument("urls", nargs="*", metavar="URL", help="URLs, or paths with --config")
    test.add_argument("--config", metavar="FILE", help="start this edge on loopback and load it")
    test.add_argument("--scenario", metavar="FILE", help="request mix and phases (YAML/JSON/TOML)")
    load = test.add_mutually_exclusive_group()
    load.add_argument("--concurrency", type=_positive_int, metavar="N", help="closed loop (10)")
    load.add_argument("--rate", type=_positive_float, metavar="R", help="open loop: req/s")
    test.add_argument("--duration", type=_positive_float, metavar="S", help="seconds (10)")
    test.add_argument("--requests", type=_positive_int, metavar="N", help="stop after N requests")
    test.add_argument("--warmup", type=_seconds, default=0.0, metavar="S", help="not counted (0)")
    test.add_argument(
        "--processes", type=_positive_int, default=1, metavar="N", help="generator processes (1)"
    )
    test.add_argument(
        "--connections",
        type=_positive_int,
        metavar="N",
        help="open loop: most connections per process (256)",
    )
    test.add_argument(
        "--timeout",
        type=_positive_float,
        default=10.0,
        metavar="S",
        help="per request: connect, and between response bytes (10)",
    )
    test.add_argument(
        "--ceiling",
        type=_seconds,
        default=1.0,
        metavar="S",
        help="seconds measuring the generator's ceiling; 0 skips (1)",
    )
    test.add_argument("--seed", type=int, help="the same request sequence every run")
    test.add_argument("--cpus", metavar="LIST", help="pin generator processes, e.g. 1 or 2-3")
    test.add_argument("--edge-cpus", metavar="LIST", help="pin the --config edge, e.g. 0")
    test.add_argument("--json", metavar="FILE", help="write the report as JSON")
    test.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    test.add_argument("--quiet", action="store_true", help="no live progress")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not 1 or more")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a number above 0")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not 0 or more seconds")
    return value


def _cpus(text: str | None) -> frozenset[int] | None:
    if not text:
        return None
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return frozenset(cpus)


def _loadtest(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edgesim.loadtest import LoadTestError, Options, loadtest

    try:
        options = Options(
            urls=tuple(args.urls),
            config=Path(args.config) if args.config else None,
            scenario=Path(args.scenario) if args.scenario else None,
            concurrency=args.concurrency,
            rate=args.rate,
            duration=args.duration,
            requests=args.requests,
            warmup=args.warmup,
            processes=args.processes,
            connections=args.connections,
            timeout=args.timeout,
            ceiling=args.ceiling,
            seed=args.seed,
            generator_cpus=_cpus(args.cpus),
            edge_cpus=_cpus(args.edge_cpus),
        )
    except ValueError:
        print("edgesim: --cpus and --edge-cpus take lists like 0 or 1,3 or 2-3", file=sys.stderr)
        return 2
    try:
        loadtest(
            options,
            json_path=Path(args.json) if args.json else None,
            html_path=Path(args.html) if args.html else None,
            progress=not args.quiet,
        )
    except LoadTestError as error:
        print(f"edgesim loadtest: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgesim loadtest: interrupted", file=sys.stderr)
        return 130
    return 0


def _serve(args: argparse.Namespace) -> int:
    from edgesim.service import Edge, run

    demo = args.config is None and args.origin is None
    changes = {}
    if args.listen:
        changes["listen"] = parse_listen(args.listen)
    if args.admin_listen:
        changes["admin_listen"] = parse_listen(args.admin_listen)

    def load() -> Config:
        return dataclasses.replace(load_config(args.config), **changes)  # type: ignore[arg-type]

    config: Config
    if args.config:
        config = load()
    elif args.origin:
        config = quick_config(args.origin)
    else:
        from edgesim.demo import demo_config

        config = demo_config()
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    _warn(config)
    reload = load if args.config and not args.no_reload else None

    def ready(edge: Edge) -> None:
        print(f"edgesim: edge listening on {edge.url}", flush=True)
        if edge.admin_address is not None:
            print(f"edgesim: admin API on {edge.admin_url}", flush=True)
            print(f"edgesim: inspector on {edge.admin_url}/inspector", flush=True)
        if edge.functions is not None:
            print(f"edgesim: function logs in {edge.functions.log_dir}", flush=True)
        if edge.reloader is not None:
            watched = edge.reloader.watched()
            sources = [
                f"{len(watched.folders)} function folder(s)" if watched.folders else "",
                f"{len(watched.files)} function file(s)" if watched.files else "",
            ]
            also = "".join(f", {text}" for text in sources if text)
            print(
                f"edgesim: reloading on changes to {args.config}{also} (--no-reload to turn off)",
                flush=True,
            )
        print(f"edgesim: try  curl -i {edge.url}/  (twice: Miss, then Hit)", flush=True)

    if demo:
        run(config, demo=True, ready=ready)
    else:
        run(config, ready=ready, reload=reload)
    return 0


def _invoke(args: argparse.Namespace) -> int:
    from edgesim.invocation import invoke, read_event, render
    from edgesim.service import function_log_dir

    config = load_config(args.config)
    try:
        event = read_event(args.event)
        result = invoke(config, args.function, event, log_dir=function_log_dir(config))
    except (LookupError, ValueError) as error:
        print(f"edgesim: {error.args[0]}", file=sys.stderr)
        return 2
    for warning in result.warnings:
        print(f"edgesim: warning: {warning}", file=sys.stderr)
    print(render(result))
    return 0 if result.succeeded else 1


def _event(args: argparse.Namespace) -> int:
    import json

    from edgesim.sample_events import EventSpec, parse_header, sample_event

    distribution = load_config(args.config).distribution if args.config else None
    try:
        body = None
        if args.body is not None:
            body = args.body.encode()
            if args.body.startswith("@"):
                body = Path(args.body[1:]).read_bytes()
        spec = EventSpec(
            uri=args.uri,
            method=args.method,
            querystring=args.querystring,
            headers=[parse_header(h) for h in args.header],
            client_ip=args.client_ip,
            body=body,
            origin=args.origin,
            status=args.status,
            response_headers=[parse_header(h) for h in args.response_header],
        )
        event = sample_event(
            EventType(args.type), spec, distribution, cloudfront_function=args.cloudfront_function
        )
    except ValueError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 2
    print(json.dumps(event, indent=2, ensure_ascii=False))
    return 0


def _warn(config: Config) -> None:
    for warning in config_warnings(config):
        print(f"edgesim: warning: {warning}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            config = load_config(args.file)
            _warn(config)
            print(
                f"{args.file}: ok ({len(config.behaviors) + 1} behaviors, "
                f"{len(config.origins)} origins)"
            )
            return 0
        if args.command == "invoke":
            return _invoke(args)
        if args.command == "event":
            return _event(args)
        if args.command == "loadtest":
            return _loadtest(args)
        return _serve(args)
    except ConfigError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
