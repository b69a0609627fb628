"""Config files to validated ``Config`` values: the loader and its CloudFront rules.

``load_config`` reads YAML, JSON or TOML (by extension), ``parse_config`` the
same from text, ``quick_config`` builds the one-origin config of
``edgesim serve --origin URL``. Every problem raises ``ConfigError`` naming the
file, the line and the key path, with a did-you-mean for misspelt keys.

The rules follow CloudFront's own validation; each names the page of the
CloudFront Developer Guide it comes from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from fractions import Fraction
from pathlib import Path

from edgesim.config.cache_behaviors import read_behaviors, read_default_behavior
from edgesim.config.document import read_document, read_document_file
from edgesim.config.failover import read_custom_error_responses, read_origin_groups
from edgesim.config.functions import read_functions
from edgesim.config.node import Node
from edgesim.config.observability import read_access_log, read_inspector
from edgesim.config.origin_settings import read_custom_origin, read_origins
from edgesim.config.schema import (
    ALL_METHODS,
    Behavior,
    CachePolicy,
    CacheSettings,
    Config,
    Distribution,
    Listen,
    Selection,
)
from edgesim.config.viewers import read_viewers
from edgesim.errors import ConfigError

__all__ = ["load_config", "parse_config", "parse_listen", "parse_size", "quick_config"]


_TOP_KEYS = (
    "listen",
    "admin_listen",
    "distribution",
    "cache",
    "origins",
    "origin_groups",
    "behaviors",
    "default_behavior",
    "functions",
    "custom_error_responses",
    "viewers",
    "access_log",
    "inspector",
)
_DISTRIBUTION_KEYS = ("id", "domain", "pop")
_CACHE_SETTINGS_KEYS = ("max_size", "max_object_size", "error_caching_min_ttl")

_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_DISTRIBUTION_ID = re.compile(r"[A-Z0-9]{1,32}")
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; its format is chosen by extension.

    Relative directory origins and function packages are resolved against the
    file's folder, and the result's ``source`` is ``path``.
    """
    path = Path(path)
    text, fmt = read_document_file(path, "config")
    config = parse_config(text, filename=str(path), fmt=fmt, base_dir=path.parent)
    return dataclasses.replace(config, source=path)


def parse_config(
    data: str, *, filename: str = "<config>", fmt: str = "yaml", base_dir: Path | None = None
) -> Config:
    """Validate config text in ``fmt`` ("yaml", "json" or "toml").

    ``filename`` is only used in error messages; relative directory origins
    and function packages are resolved against ``base_dir`` (the working
    directory by default).
    """
    root = read_document(data, fmt, filename)
    return _config(root, base_dir if base_dir is not None else Path.cwd())


def quick_config(origin_url: str, *, listen: Listen | None = None) -> Config:
    """The config of ``edgesim serve --origin URL``: everything goes to one origin.

    The default behavior uses CloudFront's legacy cache settings (min 0,
    default 86400, max 31536000 s), so the origin's Cache-Control decides.
    Unlike CloudFront's defaults, and because this is a development proxy in
    front of an app, it allows all methods and keys on (so forwards) the
    query string.
    """
    url = Node(origin_url, "--origin", None, "")
    origin = read_custom_origin("origin", Node({"url": url}, "--origin", None, ""))
    behavior = Behavior(
        "*",
        origin.name,
        allowed_methods=ALL_METHODS,
        cache=CachePolicy(query_strings=Selection("all")),
    )
    config = Config(origins={origin.name: origin}, default_behavior=behavior)
    return config if listen is None else dataclasses.replace(config, listen=listen)


def parse_size(text: str | int) -> int:
    """Bytes in a size: ``1000``, ``"64 KiB"``, ``"512MiB"``, ``"1GB"``.

    KB, MB, GB and TB count in thousands; KiB, MiB, GiB and TiB in 1024s.
    """
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise ConfigError(f"expected a size like 512MiB, not {text!r}")
    if isinstance(text, int):
        if text < 0:
            raise ConfigError(f"a size can't be negative ({text})")
        return text
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ConfigError(f"expected a size like 512MiB or 1GB, not {text!r}")
    number, unit = match.groups()
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise ConfigError(
            f"unknown size unit {unit!r}; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
        )
    return int(Fraction(number) * factor)


def parse_listen(text: str) -> Listen:
    """An address to listen on: ``127.0.0.1:8080``, ``[::1]:8080``, ``localhost:0``, ``:8080``.

    The host defaults to 127.0.0.1; port 0 asks the OS for a free port.
    """
    if not isinstance(text, str):
        raise ConfigError(f"expected host:port, like 127.0.0.1:8080, not {text!r}")
    spec = text.strip()
    if spec.startswith("["):
        host, bracket, rest = spec[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ConfigError(f"expected [IPv6 address]:port, like [::1]:8080, not {text!r}")
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(f"{host!r} is not an IPv6 address") from None
    else:
        host, colon, port_text = spec.rpartition(":")
        if not colon:
            raise ConfigError(f"expected host:port, like 127.0.0.1:8080, not {text!r}")
        if ":" in host:
            raise ConfigError(f"write an IPv6 address in brackets, like [::1]:8080, not {text!r}")
        host = host or "127.0.0.1"
        if not _HOSTNAME.fullmatch(host):
            raise ConfigError(f"{host!r} is not a host name or IP address")
    if not (port_text.isascii() and port_text.isdigit()) or int(port_text) > 65_535:
        raise ConfigError(f"the port must be a number from 0 to 65535, not {port_text!r}")
    return Listen(host, int(port_text))


# --- the document ---


def _config(root: Node, base_dir: Path) -> Config:
    top = root.mapping(_TOP_KEYS)
    origins = read_origins(root.required("origins"), base_dir)
    groups = read_origin_groups(top.get("origin_groups"), origins)
    functions = read_functions(top.get("functions"), base_dir)
    cache = _cache_settings(top["cache"]) if "cache" in top else CacheSettings()
    config = Config(
        origins=origins,
        default_behavior=read_default_behavior(
            root.required("default_behavior"), origins, groups, functions
        ),
        behaviors=read_behaviors(top.get("behaviors"), origins, groups, functions),
        cache=cache,
        functions=functions.configs,
        origin_groups=groups,
        custom_error_responses=read_custom_error_responses(
            top.get("custom_error_responses"), cache.error_caching_min_ttl
        ),
        viewers=read_viewers(top.get("viewers")),
        access_log=read_access_log(top.get("access_log"), base_dir),
        inspector=read_inspector(top.get("inspector")),
    )
    if "distribution" in top:
        config = dataclasses.replace(config, distribution=_distribution(top["distribution"]))
    if "listen" in top:
        config = dataclasses.replace(config, listen=_listen(top["listen"]))
    if "admin_listen" in top:
        admin = top["admin_listen"]
        # `admin_listen: null` or `false` turns the control API off.
        if admin.value is None or admin.value is False:
            config = dataclasses.replace(config, admin_listen=None)
        elif admin.value is not True:
            config = dataclasses.replace(config, admin_listen=_listen(admin))
    if config.admin_listen == config.listen and config.listen.port != 0:
        raise top.get("admin_listen", root).error(
            f"the admin API and the edge can't both listen on {config.listen}"
        )
    return config


def _listen(node: Node) -> Listen:
    try:
        if isinstance(node.value, int) and not isinstance(node.value, bool):
            return parse_listen(f":{node.value}")
        return parse_listen(node.string())
    except ConfigError as exc:
        raise node.error(exc.message) from None


def _size(node: Node) -> int:
    if isinstance(node.value, float):
        raise node.error(f"expected a size like 512MiB, not {node.value!r}")
    try:
        return parse_size(node.string() if not isinstance(node.value, int) else node.value)
    except ConfigError as exc:
        raise node.error(exc.message) from None


def _distribution(node: Node) -> Distribution:
    entries = node.mapping(_DISTRIBUTION_KEYS)
    default = Distribution()
    dist_id, domain, pop = default.id, default.domain, default.pop
    if "id" in entries:
        dist_id = entries["id"].string()
        if not _DISTRIBUTION_ID.fullmatch(dist_id):
            raise entries["id"].error(
                f"{dist_id!r} is not a distribution id: uppercase letters and digits, "
                "like E2EXAMPLE0001"
            )
    if "domain" in entries:
        domain = entries["domain"].string()
        if not _HOSTNAME.fullmatch(domain):
            raise entries["domain"].error(f"{domain!r} is not a domain name")
    if "pop" in entries:
        pop = entries["pop"].single_line("pop")
    return Distribution(dist_id, domain, pop)


def _cache_settings(node: Node) -> CacheSettings:
    entries = node.mapping(_CACHE_SETTINGS_KEYS)
    default = CacheSettings()
    max_size = _size(entries["max_size"]) if "max_size" in entries else default.max_size
    if "max_object_size" in entries:
        max_object_size = _size(entries["max_object_size"])
        if max_object_size > max_size:
            raise entries["max_object_size"].error(
                f"max_object_size ({max_object_size}) is larger than max_size ({max_size})"
            )
    else:
        # A small cache caps the object size too, rather than being an error.
        max_object_size = min(default.max_object_size, max_size)
    error_ttl = default.error_caching_min_ttl
    if "error_caching_min_ttl" in entries:
        error_ttl = entries["error_caching_min_ttl"].integer(minimum=0)
    return CacheSettings(max_size, max_object_size, error_ttl)
