"""The origin a cloudfront-js-2.0 viewer-request function chose with its helpers.

``cf.updateRequestOrigin({...})`` overrides settings of the behavior's origin
for this request (fields left out keep the current origin's values);
``cf.selectRequestOriginById(id)`` picks another origin of the distribution
(helper-functions-origin-modification.html). The worker reports the call as
``{"kind": "update" | "select" | "group", "value": ...}``; ``changed_origin``
turns it into the ``Origin`` to fetch from, or raises FunctionValidationError.

Choices where AWS is silent: an unknown origin id, or a parameter of the
wrong type, fails validation (502). A local folder origin updated with a
``domainName`` becomes an HTTPS origin on that name. ``createRequestOriginGroup``
is not emulated: it fails validation, saying so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from edgesim.config.schema import CustomOrigin, DirectoryOrigin, Origin
from edgesim.errors import FunctionValidationError

__all__ = ["changed_origin"]

_PAGE = "helper-functions-origin-modification.html"


def changed_origin(change: object, current: Origin, origins: Mapping[str, Origin]) -> Origin:
    """The origin for this request after the function's helper call ``change``."""
    if not isinstance(change, dict):
        raise FunctionValidationError("The origin change is not an object.")
    kind, value = change.get("kind"), change.get("value")
    if kind == "select":
        if not isinstance(value, str) or value not in origins:
            raise FunctionValidationError(
                f"selectRequestOriginById: the distribution has no origin {value!r}."
            )
        return origins[value]
    if kind == "update":
        if not isinstance(value, dict):
            raise FunctionValidationError(f"updateRequestOrigin takes an object ({_PAGE}).")
        return _updated(current, value)
    raise FunctionValidationError(
        "createRequestOriginGroup is not supported by edgesim; define an origin group in"
        " the config instead"
    )


def _updated(current: Origin, params: dict[str, Any]) -> CustomOrigin:
    if isinstance(current, DirectoryOrigin):
        if not isinstance(params.get("domainName"), str):
            raise FunctionValidationError(
                "updateRequestOrigin on a folder (S3) origin needs a domainName."
            )
        base = CustomOrigin(current.name, "https", params["domainName"], 443)
    else:
        base = current
    changes: dict[str, Any] = {}
    if "domainName" in params:
        changes["host"] = _string(params, "domainName")
    if "originPath" in params:
        path = _string(params, "originPath")
        if path and (not path.startswith("/") or path.endswith("/")):
            raise FunctionValidationError(
                "originPath must start with a slash and not end with one."
            )
        changes["path"] = path
    if "customHeaders" in params:
        headers = params["customHeaders"]
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise FunctionValidationError("customHeaders must map header names to strings.")
        kept = [(n, v) for n, v in base.headers if n.lower() not in {k.lower() for k in headers}]
        changes["headers"] = tuple(kept + list(headers.items()))
    if "connectionAttempts" in params:
        changes["connection_attempts"] = _integer(params, "connectionAttempts", 1, 3)
    timeouts = params.get("timeouts")
    if timeouts is not None:
        if not isinstance(timeouts, dict):
            raise FunctionValidationError("timeouts must be an object.")
        if "readTimeout" in timeouts:
            changes["read_timeout"] = float(_integer(timeouts, "readTimeout", 1, 120))
        if "connectionTimeout" in timeouts:
            changes["connect_timeout"] = float(_integer(timeouts, "connectionTimeout", 1, 10))
    config = params.get("customOriginConfig")
    if config is not None:
        if not isinstance(config, dict):
            raise FunctionValidationError("customOriginConfig must be an object.")
        if "port" in config:
            changes["port"] = _integer(config, "port", 1, 65535)
        if "protocol" in config:
            protocol = config["protocol"]
            if protocol not in ("http", "https"):
                raise FunctionValidationError('customOriginConfig.protocol is "http" or "https".')
            changes["scheme"] = protocol
    return dataclasses.replace(base, **changes)


def _string(params: dict[str, Any], key: str) -> str:
    value = params[key]
    if not isinstance(value, str):
        raise FunctionValidationError(f"{key} must be a string.")
    return value


def _integer(params: dict[str, Any], key: str, low: int, high: int) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FunctionValidationError(f"{key} must be an integer from {low} to {high}.")
    return value
