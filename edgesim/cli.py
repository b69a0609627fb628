"""Command line: argument parsing only; each command calls a public function."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

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
        "invoke", help="run a function once on a test event, like the Lambda console's Test"
    )
    invoke.add_argument("function", help="the function's name under functions:")
    invoke.add_argument("--event", required=True, metavar="FILE.json", help="the test event")
    invoke.add_argument("--config", default="edgesim.yaml", metavar="FILE")
    event = commands.add_parser("event", help="print a Lambda@Edge event to start a test from")
    event.add_argument("type", choices=[e.value for e in EventType])
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
    return parser


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
        if edge.functions is not None:
            print(f"edgesim: function logs in {edge.functions.log_dir}", flush=True)
        if edge.reloader is not None:
            _, folders = edge.reloader.watched()
            packages = f" and {len(folders)} function folder(s)" if folders else ""
            print(
                f"edgesim: reloading on changes to {args.config}{packages} "
                "(--no-reload to turn off)",
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
        event = sample_event(EventType(args.type), spec, distribution)
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
        return _serve(args)
    except ConfigError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
