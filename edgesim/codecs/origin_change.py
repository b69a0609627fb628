"""The origins a cloudfront-js-2.0 viewer-request function chose with its helpers.

``cf.updateRequestOrigin({...})`` overrides settings of the behavior's origin
for this request (fields left out keep the current origin's values; with an
origin group only the primary changes); ``cf.selectRequestOriginById(id)``
picks another origin (or origin group) of the distribution;
``cf.createRequestOriginGroup({originIds, failoverCriteria})`` makes a group
of two of the distribution's origins for this request
(helper-functions-origin-modification.html). The worker reports the call as
``{"kind": "update" | "select" | "group", "value": ...}``; ``changed_origins``
turns it into the ``OriginChain`` to fetch from, or raises
FunctionValidationError.

Choices where AWS is silent: an unknown origin id, or a parameter of the
wrong type, fails validation (502). A local folder origin updated with a
``domainName`` becomes an HTTPS origin on that name. ``originIds`` entries may
be ids or ``{"originId": id}`` objects (both spellings are in use); the
failover statuses are those an origin group allows. A ``selectionCriteria`` of
media quality selects like the default: edgesim has no media quality scores.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edgesim.config.failover import FAILOVER_STATUSES
from edgesim.config.schema import Config, CustomOrigin, DirectoryOrigin, Origin, OriginChain
from edgesim.errors import FunctionValidationError

__all__ = ["changed_origins"]

_PAGE = "helper-functions-origin-modification.html"
# OriginGroup.SelectionCriteria's values (API_OriginGroup), and the spelling
# of the type declarations in use.
_SELECTION_CRITERIA = ("default", "media-quality-based", "media-quality-score")


def changed_origins(change: object, current: OriginChain, config: Config) -> OriginChain:
    """The origins for this request after the function's helper call ``change``."""
    if not isinstance(change, dict):
        raise FunctionValidationError("The origin change is not an object.")
    kind, value = change.get("kind"), change.get("value")
    if kind == "select":
        if not isinstance(value, str) or not (
            value in config.origins or value in config.origin_groups
        ):
            raise FunctionValidationError(
                f"selectRequestOriginById: the distribution has no origin {value!r}."
            )
        return config.origins_for(value)
    if kind == "update":
        if not isinstance(value, dict):
            raise FunctionValidationError(f"updateRequestOrigin takes an object ({_PAGE}).")
        primary = _updated(current.origins[0], value)
        return OriginChain((primary, *current.origins[1:]), current.failover_statuses)
    if kind == "group":
        return _group(value, config)
    raise FunctionValidationError(f"unknown origin helper {kind!r}")


def _group(params: object, config: Config) -> OriginChain:
    """``createRequestOriginGroup``: two of the distribution's origins, in order."""
    where = "createRequestOriginGroup"
    if not isinstance(params, dict):
        raise FunctionValidationError(f"{where} takes an object ({_PAGE}).")
    ids = params.get("originIds")
    if not isinstance(ids, list) or len(ids) != 2:
        raise FunctionValidationError(f"{where}: originIds must list exactly two origins.")
    names: list[str] = []
    for entry in ids:
        name = entry.get("originId") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or name not in config.origins:
            raise FunctionValidationError(f"{where}: the distribution has no origin {name!r}.")
        names.append(name)
    if names[0] == names[1]:
        raise FunctionValidationError(f"{where}: the two origins must differ.")
    criteria = params.get("failoverCriteria")
    codes = criteria.get("statusCodes") if isinstance(criteria, dict) else None
    if (
        not isinstance(codes, list)
        or not codes
        or not all(isinstance(c, int) and c in FAILOVER_STATUSES for c in codes)
    ):
        allowed = ", ".join(map(str, sorted(FAILOVER_STATUSES)))
        raise FunctionValidationError(
            f"{where}: failoverCriteria.statusCodes must list statuses among {allowed}."
        )
    selection = params.get("selectionCriteria", "default")
    if selection not in _SELECTION_CRITERIA:
        raise FunctionValidationError(
            f"{where}: selectionCriteria is one of {', '.join(_SELECTION_CRITERIA)}."
        )
    return OriginChain((config.origins[names[0]], config.origins[names[1]]), frozenset(codes))


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
