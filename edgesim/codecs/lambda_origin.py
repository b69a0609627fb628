"""The ``request.origin`` object of Lambda@Edge events, in and out.

Helpers of ``edgesim.codecs.lambda_edge``. A ``CustomOrigin`` appears as a
``custom`` origin; a ``DirectoryOrigin`` as an S3 origin named
``<name>.s3.us-east-1.amazonaws.com``. An origin-request function may point
the request elsewhere; the constraints are those of lambda-event-structure.md
("origin") and cloudfront-semantics.md section 1.4.
"""

from __future__ import annotations

import dataclasses
import re

from edgesim.codecs.lambda_fields import QUERY_BAD, Json, decode_headers, encode_headers
from edgesim.config.schema import CustomOrigin, DirectoryOrigin
from edgesim.errors import LambdaValidationError
from edgesim.hooks import is_disallowed
from edgesim.models import Headers

__all__ = ["LAMBDA_ORIGIN_NAME", "AnyOrigin", "checked_origin", "encode_origin", "s3_domain"]

AnyOrigin = CustomOrigin | DirectoryOrigin

# The name of a custom origin a function made up (not one from the config).
LAMBDA_ORIGIN_NAME = "lambda-origin"
_REGION = "us-east-1"
_KEEPALIVE_TIMEOUT = 5
_SSL_PROTOCOLS = ("TLSv1.2",)
_ALL_SSL_PROTOCOLS = frozenset({"TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3"})
_DNS_NAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*")
_NOT_BUCKET_CHAR = re.compile(r"[^a-z0-9.-]")


def s3_domain(origin: DirectoryOrigin) -> str:
    """The S3 bucket domain a directory origin shows functions."""
    bucket = _NOT_BUCKET_CHAR.sub("-", origin.name.lower())
    return f"{bucket}.s3.{_REGION}.amazonaws.com"


def encode_origin(origin: AnyOrigin) -> Json:
    if isinstance(origin, DirectoryOrigin):
        return {
            "s3": {
                "authMethod": "none",
                "customHeaders": encode_headers(origin.headers),
                "domainName": s3_domain(origin),
                "path": "",
                "region": _REGION,
            }
        }
    timeout = origin.read_timeout
    return {
        "custom": {
            "customHeaders": encode_headers(origin.headers),
            "domainName": origin.host,
            "path": origin.path,
            "port": origin.port,
            "protocol": origin.scheme,
            "readTimeout": int(timeout) if timeout == int(timeout) else timeout,
            "keepaliveTimeout": _KEEPALIVE_TIMEOUT,
            "sslProtocols": list(_SSL_PROTOCOLS),
        }
    }


def checked_origin(value: object, current: AnyOrigin, headers: Headers) -> AnyOrigin:
    """The origin an origin-request result names (``current`` if unchanged)."""
    if value == encode_origin(current):
        return current
    if not isinstance(value, dict) or len(value) != 1 or not ({"custom", "s3"} & value.keys()):
        raise LambdaValidationError("The origin must contain exactly one of custom or s3.")
    kind, spec = next(iter(value.items()))
    if not isinstance(spec, dict):
        raise LambdaValidationError(f"The {kind} origin must be an object.")
    custom_headers = _origin_headers(spec.get("customHeaders", {}), headers)
    if kind == "custom":
        return _custom_origin(spec, current, custom_headers)
    return _s3_origin(spec, current, custom_headers)


def _custom_origin(
    spec: Json, current: AnyOrigin, custom_headers: tuple[tuple[str, str], ...]
) -> CustomOrigin:
    domain = spec.get("domainName")
    if not isinstance(domain, str) or not domain:
        raise LambdaValidationError("The custom origin domainName can't be empty.")
    if ":" in domain or len(domain) > 253 or not _DNS_NAME.fullmatch(domain):
        raise LambdaValidationError(
            f"The custom origin domainName {domain!r} must be a DNS name of at most"
            " 253 characters, without a colon (:)."
        )
    port = spec.get("port")
    if isinstance(port, bool) or not isinstance(port, int) or not _valid_port(port):
        raise LambdaValidationError(
            f"The custom origin port {port!r} must be 80, 443, or 1024-65535."
        )
    protocol = spec.get("protocol")
    if protocol not in ("http", "https"):
        raise LambdaValidationError(
            f"The custom origin protocol {protocol!r} must be http or https."
        )
    path = _origin_path(spec.get("path", ""), custom=True)
    # 4-60 s in AWS's event docs; origin response timeouts now go up to 120 s.
    read_timeout = _number(spec, "readTimeout", 30, 4, 120)
    _number(spec, "keepaliveTimeout", _KEEPALIVE_TIMEOUT, 1, 60)
    protocols = spec.get("sslProtocols", list(_SSL_PROTOCOLS))
    if (
        not isinstance(protocols, list)
        or not protocols
        or not all(isinstance(p, str) and p in _ALL_SSL_PROTOCOLS for p in protocols)
    ):
        raise LambdaValidationError(
            "The custom origin sslProtocols must list TLSv1.2, TLSv1.1, TLSv1 or SSLv3."
        )
    if isinstance(current, CustomOrigin):
        same_server = (current.scheme, current.host, current.port) == (protocol, domain, port)
        base = current if same_server else dataclasses.replace(current, name=LAMBDA_ORIGIN_NAME)
    else:
        base = CustomOrigin(LAMBDA_ORIGIN_NAME, "https", domain, 443)
    return dataclasses.replace(
        base,
        scheme=protocol,
        host=domain,
        port=port,
        path=path,
        headers=custom_headers,
        read_timeout=float(read_timeout),
    )


def _s3_origin(
    spec: Json, current: AnyOrigin, custom_headers: tuple[tuple[str, str], ...]
) -> AnyOrigin:
    domain = spec.get("domainName")
    if not isinstance(domain, str) or not domain:
        raise LambdaValidationError("The S3 origin domainName can't be empty.")
    if len(domain) > 128 or domain != domain.lower() or not _DNS_NAME.fullmatch(domain):
        raise LambdaValidationError(
            f"The S3 origin domainName {domain!r} must be a lowercase bucket DNS name of at"
            " most 128 characters."
        )
    path = _origin_path(spec.get("path", ""), custom=False)
    auth = spec.get("authMethod", "none")
    if auth not in ("none", "origin-access-identity"):
        raise LambdaValidationError(
            "The S3 origin authMethod must be none or origin-access-identity."
        )
    region = spec.get("region")
    if auth == "origin-access-identity" and (not isinstance(region, str) or not region):
        raise LambdaValidationError(
            "The S3 origin needs a region when authMethod is origin-access-identity."
        )
    if isinstance(current, DirectoryOrigin) and domain == s3_domain(current) and not path:
        if custom_headers == current.headers:
            return current
        return dataclasses.replace(current, headers=custom_headers)
    # A real bucket: reachable over HTTPS if it is public; unsigned otherwise.
    return CustomOrigin(LAMBDA_ORIGIN_NAME, "https", domain, 443, path, custom_headers)


def _origin_headers(value: object, request_headers: Headers) -> tuple[tuple[str, str], ...]:
    fields = decode_headers(value, "origin customHeaders")
    for name, _ in fields:
        if is_disallowed(name):
            raise LambdaValidationError(
                f"The origin customHeaders add the disallowed header {name}."
            )
        if name.lower() in request_headers:
            raise LambdaValidationError(
                f"The origin custom header {name} is also in the request headers."
            )
    return tuple(fields)


def _origin_path(path: object, *, custom: bool) -> str:
    if not isinstance(path, str):
        raise LambdaValidationError("The origin path must be a string.")
    if path and (not path.startswith("/") or path.endswith("/")):
        raise LambdaValidationError(
            f"The origin path {path!r} must start with a slash (/) and not end with one."
        )
    if custom and (len(path) > 255 or not path.isascii() or QUERY_BAD.search(path)):
        raise LambdaValidationError(
            f"The custom origin path {path!r} must be URL-encoded, at most 255 characters."
        )
    return path


def _valid_port(port: int) -> bool:
    return port in (80, 443) or 1024 <= port <= 65535


def _number(spec: Json, key: str, default: float, low: float, high: float) -> float:
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise LambdaValidationError(
            f"The custom origin {key} {value!r} must be a number from {low:g} to {high:g}."
        )
    return float(value)
