"""Who the viewer is, simulated, and the CloudFront headers that tell origins and functions.

A request can pretend to come from elsewhere, so geo-dependent functions and
apps can be developed on a laptop:

- ``viewers:`` rules in the config map client IP ranges to a location (the
  first rule whose ``ip`` matches wins); a rule with a ``name`` can also be
  picked per request.
- The request header ``X-Edgesim-Viewer`` sets the viewer of one request:
  a rule's name, and/or ``key=value`` pairs separated by ``;`` with the
  config's keys (``ip=203.0.113.9; country=DE; city=Berlin``). ``ip`` sets
  the client IP (then the rules are matched against it); the other keys
  override what a rule gives. Values may be percent-encoded. The edge removes
  the header before anything else sees it; a malformed one gets 400.

The simulated IP is the viewer's IP everywhere: the events' ``clientIp``,
``X-Forwarded-For``, ``CloudFront-Viewer-Address`` and the logs.

The ``CloudFront-Viewer-*`` headers (and ``CloudFront-Forwarded-Proto``)
follow CloudFront's rules (adding-cloudfront-headers.md,
lambda-at-edge-function-restrictions.html, edge-functions.md): only those a
cache policy or origin request policy lists by name are added, replacing any
the viewer sent, after a Lambda@Edge viewer-request function and before a
CloudFront Function (``HookRule.sees_cloudfront_headers``); the cache key,
every other function and the origin see them. A value nothing
gives (a city for a viewer with no location) is not sent, as CloudFront
sends none for what it cannot determine; non-ASCII characters are
percent-encoded. ``TLS``, ``JA3`` and ``JA4`` exist only for HTTPS viewers,
so only when ``tls`` is simulated (``CloudFront-Forwarded-Proto`` is then
``https``). Device-type headers (``CloudFront-Is-*-Viewer``) are not
simulated.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from edgesim.errors import InvalidRequest
from edgesim.models import Exchange, Request

__all__ = [
    "CLOUDFRONT_HEADERS",
    "LOCATION_KEYS",
    "NOT_IN_CACHE_POLICY",
    "SIMULATION_HEADER",
    "Viewer",
    "ViewerLocation",
    "ViewerRule",
    "ViewerSimulation",
    "ViewerSimulationError",
    "check_location",
]

SIMULATION_HEADER = "x-edgesim-viewer"


class ViewerSimulationError(InvalidRequest):
    """A malformed ``X-Edgesim-Viewer``: 400, and the page says what is wrong (the
    header is edgesim's own, so CloudFront's page has no text for it)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.reason = detail


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class ViewerLocation:
    """What CloudFront knows about a viewer beyond its address; None: not known."""

    country: str | None = None
    country_name: str | None = None
    region: str | None = None
    region_name: str | None = None
    city: str | None = None
    postal_code: str | None = None
    time_zone: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    asn: int | None = None
    metro_code: int | None = None
    tls: str | None = None
    ja3_fingerprint: str | None = None
    ja4_fingerprint: str | None = None

    def merged(self, override: ViewerLocation) -> ViewerLocation:
        """This location with every value ``override`` sets taken from it."""
        changes = {f.name: getattr(override, f.name) for f in fields(override)}
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


LOCATION_KEYS = tuple(f.name for f in fields(ViewerLocation))
_NOWHERE = ViewerLocation()


@dataclass(frozen=True, slots=True)
class ViewerRule:
    """A ``viewers:`` rule: viewers from ``networks`` (or picked by ``name``) are there."""

    name: str | None
    networks: tuple[Network, ...]
    location: ViewerLocation


@dataclass(frozen=True, slots=True)
class Viewer:
    """The viewer of one request, as the edge sees it after simulation."""

    ip: str
    port: int
    location: ViewerLocation = _NOWHERE
    rule: str | None = None  # the rule that gave the location (its name, or its index)


# -- values ----------------------------------------------------------------

_COUNTRY = re.compile(r"[A-Z]{2}")  # ISO 3166-1 alpha-2
_REGION = re.compile(r"[A-Z0-9]{1,3}")  # the subdivision part of ISO 3166-2
_TLS_VERSIONS = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "SSLv3")
_HANDSHAKES = ("fullHandshake", "sessionResumed", "connectionReused")
_CIPHER = re.compile(r"[A-Z0-9_-]+")
_JA3 = re.compile(r"[0-9a-f]{32}")
_JA4 = re.compile(r"[tqd][0-9s]{2}[di][0-9]{4}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}")


def _text(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip() or not value.isprintable():
        raise ValueError("must be a non-empty single line of text")
    return value


def _pattern(pattern: re.Pattern[str], example: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value)
        if not pattern.fullmatch(text):
            raise ValueError(f"{text!r} is not valid here (like {example})")
        return text

    return check


def _number(low: float, high: float) -> Callable[[object], float]:
    def check(value: object) -> float:
        try:
            number = None if isinstance(value, bool) else float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = None
        if number is None or not low <= number <= high:
            raise ValueError(f"must be a number from {low:g} to {high:g}")
        return number

    return check


def _whole(low: int, high: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(text, str) or not text.isdigit() or not low <= int(text) <= high:
            raise ValueError(f"must be a whole number from {low} to {high}")
        return int(text)

    return check


def _time_zone(value: object) -> str:
    name = _text(value)
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone (like Europe/Berlin)") from None
    return name


def _tls(value: object) -> str:
    text = _text(value)
    version, _, rest = text.partition(":")
    cipher, _, handshake = rest.partition(":")
    if (
        version not in _TLS_VERSIONS
        or not _CIPHER.fullmatch(cipher)
        or handshake not in _HANDSHAKES
    ):
        raise ValueError(
            f"{text!r} is not CloudFront-Viewer-TLS: version:cipher:handshake, like "
            "TLSv1.3:TLS_AES_128_GCM_SHA256:fullHandshake (handshake: "
            + ", ".join(_HANDSHAKES)
            + ")"
        )
    return text


# How each key is checked: what the config and the simulation header accept.
_CHECKS: dict[str, Callable[[object], object]] = {
    "country": _pattern(_COUNTRY, "DE"),
    "country_name": _text,
    "region": _pattern(_REGION, "BE"),
    "region_name": _text,
    "city": _text,
    "postal_code": _text,
    "time_zone": _time_zone,
    "latitude": _number(-90, 90),
    "longitude": _number(-180, 180),
    "asn": _whole(0, 4_294_967_295),
    "metro_code": _whole(0, 99_999),
    "tls": _tls,
    "ja3_fingerprint": _pattern(_JA3, "773906b0efdefa24a7f2b8eb6985bf37"),
    "ja4_fingerprint": _pattern(_JA4, "t13d1516h2_8daaf6152771_b186095e22b6"),
}


def check_location(values: dict[str, object]) -> ViewerLocation:
    """A location from raw ``values`` by key; ValueError("key: why") for a bad one.

    A metro code is only for viewers in the United States; fingerprints only
    for viewers over TLS (adding-cloudfront-headers.md).
    """
    checked: dict[str, object] = {}
    for key, value in values.items():
        try:
            checked[key] = _CHECKS[key](value)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
    return ViewerLocation(**checked)  # type: ignore[arg-type]


def check_consistent(location: ViewerLocation) -> None:
    """Values that only make sense together; ValueError("key: why")."""
    if location.metro_code is not None and location.country not in (None, "US"):
        raise ValueError("metro_code: CloudFront gives a metro code only for the US (country US)")
    for key in ("ja3_fingerprint", "ja4_fingerprint"):
        if getattr(location, key) is not None and location.tls is None:
            raise ValueError(f"{key}: only HTTPS viewers have one; set tls as well")


# -- the CloudFront headers ---------------------------------------------------


def _encoded(value: str | None) -> str | None:
    """Non-ASCII characters percent-encoded, as CloudFront sends location names."""
    if value is None or value.isascii():
        return value
    return quote(value, safe="".join(chr(c) for c in range(32, 127)))


def _fixed(value: float | None) -> str | None:
    return None if value is None else f"{value:.5f}"


def _string(value: object) -> str | None:
    return None if value is None else str(value)


Getter = Callable[[Viewer, Exchange], str | None]


def _location(key: str, render: Callable[[Any], str | None] = _string) -> Getter:
    return lambda viewer, _: render(getattr(viewer.location, key))


def _header_order(_: Viewer, ex: Exchange) -> str:
    return ":".join(name for name, _ in ex.viewer_request.headers)


# Lowercase name -> how its value is found (None: not sent). Names and formats
# from adding-cloudfront-headers.md.
CLOUDFRONT_HEADERS: dict[str, tuple[str, Getter]] = {
    "cloudfront-viewer-address": (
        "CloudFront-Viewer-Address",
        lambda viewer, _: f"{viewer.ip}:{viewer.port}",
    ),
    "cloudfront-viewer-asn": ("CloudFront-Viewer-ASN", _location("asn")),
    "cloudfront-viewer-country": ("CloudFront-Viewer-Country", _location("country")),
    "cloudfront-viewer-city": ("CloudFront-Viewer-City", _location("city", _encoded)),
    "cloudfront-viewer-country-name": (
        "CloudFront-Viewer-Country-Name",
        _location("country_name", _encoded),
    ),
    "cloudfront-viewer-country-region": ("CloudFront-Viewer-Country-Region", _location("region")),
    "cloudfront-viewer-country-region-name": (
        "CloudFront-Viewer-Country-Region-Name",
        _location("region_name", _encoded),
    ),
    "cloudfront-viewer-latitude": ("CloudFront-Viewer-Latitude", _location("latitude", _fixed)),
    "cloudfront-viewer-longitude": ("CloudFront-Viewer-Longitude", _location("longitude", _fixed)),
    "cloudfront-viewer-metro-code": ("CloudFront-Viewer-Metro-Code", _location("metro_code")),
    "cloudfront-viewer-postal-code": (
        "CloudFront-Viewer-Postal-Code",
        _location("postal_code", _encoded),
    ),
    "cloudfront-viewer-time-zone": ("CloudFront-Viewer-Time-Zone", _location("time_zone")),
    "cloudfront-forwarded-proto": (
        "CloudFront-Forwarded-Proto",
        lambda viewer, _: "https" if viewer.location.tls else "http",
    ),
    "cloudfront-viewer-http-version": (
        "CloudFront-Viewer-Http-Version",
        lambda _, ex: ex.viewer_request.http_version,
    ),
    "cloudfront-viewer-tls": ("CloudFront-Viewer-TLS", _location("tls")),
    "cloudfront-viewer-ja3-fingerprint": (
        "CloudFront-Viewer-JA3-Fingerprint",
        _location("ja3_fingerprint"),
    ),
    "cloudfront-viewer-ja4-fingerprint": (
        "CloudFront-Viewer-JA4-Fingerprint",
        _location("ja4_fingerprint"),
    ),
    "cloudfront-viewer-header-order": ("CloudFront-Viewer-Header-Order", _header_order),
    "cloudfront-viewer-header-count": (
        "CloudFront-Viewer-Header-Count",
        lambda _, ex: str(len(ex.viewer_request.headers)),
    ),
}
# "can be added in an origin request policy, but not in a cache policy".
NOT_IN_CACHE_POLICY = frozenset(
    {
        "cloudfront-viewer-address",
        "cloudfront-viewer-asn",
        "cloudfront-viewer-tls",
        "cloudfront-viewer-ja3-fingerprint",
        "cloudfront-viewer-ja4-fingerprint",
    }
)


# -- per request ----------------------------------------------------------------


class ViewerSimulation:
    """The ``viewers:`` rules of a config, applied to each request."""

    def __init__(self, rules: tuple[ViewerRule, ...]) -> None:
        self.rules = rules
        self.active = bool(rules)  # without rules only the header can simulate
        self._named = {rule.name: rule for rule in rules if rule.name is not None}
        self._by_ip: dict[str, tuple[str | None, ViewerLocation]] = {}

    def locate(self, request: Request) -> tuple[Request, Viewer]:
        """The request without the simulation header, as from its viewer, and that viewer.

        Raises InvalidRequest (400) for a malformed ``X-Edgesim-Viewer``.
        """
        raw = request.headers.get(SIMULATION_HEADER)
        ip, name, override = request.client_ip, None, _NOWHERE
        if raw is not None:
            ip, name, override = self._parse(raw, ip)
            request = request.replace(
                headers=request.headers.without(SIMULATION_HEADER), client_ip=ip
            )
        if name is not None:
            rule = self._named[name]
            found: tuple[str | None, ViewerLocation] = (name, rule.location)
        else:
            found = self._by_ip.get(ip) or self._match(ip)
        location = found[1].merged(override) if override is not _NOWHERE else found[1]
        if override is not _NOWHERE:
            try:
                check_consistent(location)
            except ValueError as error:
                raise ViewerSimulationError(f"X-Edgesim-Viewer: {error}") from None
        return request, Viewer(ip, request.client_port, location, found[0])

    def _match(self, ip: str) -> tuple[str | None, ViewerLocation]:
        address = ipaddress.ip_address(ip)
        found: tuple[str | None, ViewerLocation] = (None, _NOWHERE)
        for index, rule in enumerate(self.rules):
            if any(address in network for network in rule.networks):
                found = (rule.name or f"viewers[{index}]", rule.location)
                break
        if len(self._by_ip) >= 4096:
            self._by_ip.clear()
        self._by_ip[ip] = found
        return found

    def _parse(self, raw: str, ip: str) -> tuple[str, str | None, ViewerLocation]:
        name = None
        values: dict[str, object] = {}
        for index, item in enumerate(p.strip() for p in raw.split(";")):
            if not item:
                continue
            key, sep, value = item.partition("=")
            if not sep:
                if index or item not in self._named:
                    raise ViewerSimulationError(_unknown_name(item, self._named))
                name = item
                continue
            key = key.strip().lower().replace("-", "_")
            text = _decoded(value.strip())
            if key == "ip":
                try:
                    ip = str(ipaddress.ip_address(text))
                except ValueError:
                    message = f"X-Edgesim-Viewer: ip: {text!r} is not an IP address"
                    raise ViewerSimulationError(message) from None
            elif key in _CHECKS:
                values[key] = text
            else:
                raise ViewerSimulationError(f"X-Edgesim-Viewer: unknown key {key!r}{_suggest(key)}")
        try:
            return ip, name, check_location(values)
        except ValueError as error:
            raise ViewerSimulationError(f"X-Edgesim-Viewer: {error}") from None


def _decoded(text: str) -> str:
    """A header value (bytes as latin-1) percent-decoded and read as UTF-8."""
    try:
        return unquote_to_bytes(text.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise ViewerSimulationError("X-Edgesim-Viewer: a value is not UTF-8") from None


def _suggest(key: str) -> str:
    import difflib

    close = difflib.get_close_matches(key, ["ip", *_CHECKS], n=1)
    return f"; did you mean {close[0]!r}?" if close else f"; use ip, {', '.join(_CHECKS)}"


def _unknown_name(item: str, named: dict[str, ViewerRule]) -> str:
    if not named:
        return f"X-Edgesim-Viewer: {item!r} is not key=value, and no viewers: rule has a name"
    return f"X-Edgesim-Viewer: no viewers: rule named {item!r} (named: {', '.join(named)})"
