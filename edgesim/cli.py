"""Command line: argument parsing only; each command calls a public function."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from edgesim.config import config_warnings
from edgesim.config.loader import load_config, parse_listen, quick_config
from edgesim.config.schema import Config
from edgesim.errors import ConfigError

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
    validate = commands.add_parser("validate", help="check a config file and exit")
    validate.add_argument("file")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from edgesim.service import Edge, run

    demo = args.config is None and args.origin is None
    config: Config
    if args.config:
        config = load_config(args.config)
    elif args.origin:
        config = quick_config(args.origin)
    else:
        from edgesim.demo import demo_config

        config = demo_config()
    changes = {}
    if args.listen:
        changes["listen"] = parse_listen(args.listen)
    if args.admin_listen:
        changes["admin_listen"] = parse_listen(args.admin_listen)
    config = dataclasses.replace(config, **changes)  # type: ignore[arg-type]
    _warn(config)

    def ready(edge: Edge) -> None:
        print(f"edgesim: edge listening on {edge.url}", flush=True)
        if edge.admin_address is not None:
            print(f"edgesim: admin API on {edge.admin_url}", flush=True)
            print(f"edgesim: inspector on {edge.admin_url}/inspector", flush=True)
        if edge.functions is not None:
            print(f"edgesim: function logs in {edge.functions.log_dir}", flush=True)
        print(f"edgesim: try  curl -i {edge.url}/  (twice: Miss, then Hit)", flush=True)

    if demo:
        run(config, demo=True, ready=ready)
    else:
        run(config, ready=ready)
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
        return _serve(args)
    except ConfigError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"edgesim: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
