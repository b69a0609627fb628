"""Origins from a config file: HTTP servers (custom origins) and local folders.

Each rule names the CloudFront Developer Guide page it comes from.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from edgesim.config.node import Node
from edgesim.config.schema import CustomOrigin, DirectoryOrigin, Origin

__all__ = ["read_custom_origin", "read_origins"]

_CUSTOM_ORIGIN_KEYS = ("url", "headers", "connect_timeout", "read_timeout", "connection_attempts")
_DIRECTORY_ORIGIN_KEYS = ("directory", "headers")

# Quotas (cloudfront-limits.md).
_MAX_ORIGINS = 100
_MAX_ORIGIN_HEADERS = 10
_MAX_ORIGIN_HEADER_NAME = 256
_MAX_ORIGIN_HEADER_VALUE = 1_783

# Custom headers CloudFront can't add to origin requests (add-origin-custom-headers.md).
_FORBIDDEN_ORIGIN_HEADERS = frozenset(
    {
        "cache-control",
        "connection",
        "content-length",
        "cookie",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "max-forwards",
        "pragma",
        "proxy-authorization",
        "proxy-connection",
        "range",
        "request-range",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "x-real-ip",
    }
)
_FORBIDDEN_ORIGIN_HEADER_PREFIXES = ("x-amz-", "x-edge-")

# A host name or IPv4 address; underscores too, as in container service names.
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP field name (RFC 9110, 5.1)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is fine in a field value


def read_origins(node: Node, base_dir: Path) -> dict[str, Origin]:
    """The ``origins:`` mapping; directory paths are relative to ``base_dir``."""
    entries = node.mapping()
    if not entries:
        raise node.error("at least one origin is required")
    if len(entries) > _MAX_ORIGINS:
        raise node.error(f"at most {_MAX_ORIGINS} origins per distribution (CloudFront quota)")
    origins: dict[str, Origin] = {}
    for name, child in entries.items():
        if not name.strip():
            raise child.error("an origin name can't be empty")
        raw = child.mapping()
        if "url" in raw and "directory" in raw:
            raise raw["directory"].error("an origin has either url or directory, not both")
        if "directory" in raw:
            origins[name] = _directory_origin(name, child, base_dir)
        elif "url" in raw:
            origins[name] = read_custom_origin(name, child)
        else:
            raise child.error(
                "an origin needs url (an HTTP server) or directory (a local folder served like S3)"
            )
    return origins


def read_custom_origin(name: str, node: Node) -> CustomOrigin:
    """An origin given by ``url:`` (and optional headers, timeouts and attempts)."""
    entries = node.mapping(_CUSTOM_ORIGIN_KEYS, kind="a url origin")
    url = entries["url"]
    scheme, host, port, path = _origin_url(url)
    origin = CustomOrigin(name, scheme, host, port, path)
    if "headers" in entries:
        origin = dataclasses.replace(origin, headers=_origin_headers(entries["headers"]))
    # Origin timeouts and attempts (distribution-web-values-specify.md,
    # "Connection timeout", "Connection attempts", "Response timeout").
    if "connect_timeout" in entries:
        timeout = entries["connect_timeout"].number(1, 10)
        origin = dataclasses.replace(origin, connect_timeout=timeout)
    if "read_timeout" in entries:
        timeout = entries["read_timeout"].number(1, 120)
        origin = dataclasses.replace(origin, read_timeout=timeout)
    if "connection_attempts" in entries:
        attempts = entries["connection_attempts"].integer(1, 3)
        origin = dataclasses.replace(origin, connection_attempts=attempts)
    return origin


def _origin_url(node: Node) -> tuple[Literal["http", "https"], str, int, str]:
    """Scheme, host, port and origin path of an origin URL."""
    text = node.string().strip()
    parts = urlsplit(text)
    scheme: Literal["http", "https"]
    if parts.scheme.lower() == "http":
        scheme, default_port = "http", 80
    elif parts.scheme.lower() == "https":
        scheme, default_port = "https", 443
    else:
        raise node.error(f"an origin URL starts with http:// or https://, not {text!r}")
    if "?" in text or "#" in text:
        raise node.error("an origin URL can't have a query string or fragment")
    if parts.username is not None or parts.password is not None:
        raise node.error("an origin URL can't hold a user name or password")
    host = parts.hostname
    if not host:
        raise node.error(f"the origin URL {text!r} has no host")
    if not (_HOST.fullmatch(host) or (":" in host and _is_ipv6(host))):
        raise node.error(f"{host!r} in the origin URL is not a host name or IP address")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise node.error(f"the origin URL {text!r} has an invalid port (must be 1 to 65535)")
    # Origin path: starts with '/', no trailing '/', at most 255 characters
    # (distribution-web-values-specify.md, "Origin path").
    path = parts.path.rstrip("/")
    if len(path) > 255 or re.search(r"[\s\x00-\x1f\x7f]", path):
        raise node.error(f"invalid origin path {path!r}")
    return scheme, host, port if port is not None else default_port, path


def _is_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def _directory_origin(name: str, node: Node, base_dir: Path) -> DirectoryOrigin:
    entries = node.mapping(_DIRECTORY_ORIGIN_KEYS, kind="a directory origin")
    where = entries["directory"]
    directory = (base_dir / Path(where.string()).expanduser()).resolve()
    if not directory.exists():
        raise where.error(f"the folder {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise where.error(f"{str(directory)!r} is not a folder")
    headers = _origin_headers(entries["headers"]) if "headers" in entries else ()
    return DirectoryOrigin(name, directory, headers)


def _origin_headers(node: Node) -> tuple[tuple[str, str], ...]:
    """Custom origin headers (add-origin-custom-headers.md; quotas from cloudfront-limits.md)."""
    entries = node.mapping()
    if len(entries) > _MAX_ORIGIN_HEADERS:
        raise node.error(
            f"at most {_MAX_ORIGIN_HEADERS} custom headers per origin (CloudFront quota)"
        )
    headers: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, child in entries.items():
        lower = name.lower()
        if not _TOKEN.fullmatch(name) or len(name) > _MAX_ORIGIN_HEADER_NAME:
            raise child.error(f"{name!r} is not a valid header name")
        if lower in _FORBIDDEN_ORIGIN_HEADERS or lower.startswith(
            _FORBIDDEN_ORIGIN_HEADER_PREFIXES
        ):
            raise child.error(f"CloudFront can't add a custom origin header named {name!r}")
        if lower in seen:
            raise child.error(f"header {name!r} is given twice")
        seen.add(lower)
        value = child.value
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise child.error(f"expected a header value (a string), not {value!r}")
        if _CONTROL.search(value) or len(value) > _MAX_ORIGIN_HEADER_VALUE:
            raise child.error("a header value must be one line of at most 1783 characters")
        headers.append((name, value))
    return tuple(headers)
