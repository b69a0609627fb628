"""The cache key: what identifies an object, from the behavior's cache policy.

``cache_key`` runs on every request; ``key_target`` recovers the path and
query string a key was made from (for invalidation and the admin view).
``normalize_accept_encoding`` is also what the origin request carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from operator import itemgetter

from edgesim.config.schema import Behavior, CachePolicy, Selection
from edgesim.models import Headers, Request

__all__ = [
    "cache_key",
    "key_parts",
    "key_target",
    "normalize_accept_encoding",
    "select_cookies",
    "select_query",
]


# --------------------------------------------------------------------------
# Accept-Encoding
# --------------------------------------------------------------------------

# Browsers send a handful of distinct values; memoize per flag combination.
_AE_MEMO: tuple[dict[str, str | None], ...] = ({}, {}, {}, {})
_AE_MEMO_LIMIT = 256


def normalize_accept_encoding(value: str | None, gzip: bool, brotli: bool) -> str | None:
    """The normalized ``Accept-Encoding`` for the cache key and the origin request.

    ``"br,gzip"``, ``"gzip"`` or ``"br"`` for the enabled formats the viewer
    accepts; None when it accepts none of them, meaning: not in the key, and
    the origin gets ``Accept-Encoding: identity`` (or nothing, if the viewer
    sent no header). Source: controlling-the-cache-key.html, "Cache
    compressed objects".
    """
    if not value or not (gzip or brotli):
        return None
    memo = _AE_MEMO[gzip * 2 + brotli]
    if value in memo:
        return memo[value]
    accepted: set[str] = set()
    for item in value.split(","):
        coding, _, params = item.partition(";")
        # A q-value of 0 means "not acceptable" (RFC 9110 12.5.3); AWS says
        # nothing about q-values, so this is edgesim's reading.
        if params and re.fullmatch(r"\s*q\s*=\s*0(\.0{0,3})?\s*", params, re.IGNORECASE):
            continue
        accepted.add(coding.strip().lower())
    has_br = brotli and "br" in accepted
    has_gzip = gzip and "gzip" in accepted
    result = "br,gzip" if has_br and has_gzip else "br" if has_br else "gzip" if has_gzip else None
    if len(memo) >= _AE_MEMO_LIMIT:
        memo.clear()
    memo[value] = result
    return result


# --------------------------------------------------------------------------
# Cache key
# --------------------------------------------------------------------------
#
# Layout: the escaped URI path, then for each non-empty part "\x00" + a tag
# letter + the part: Q (selected query string), H (headers), C (cookies),
# E (normalized Accept-Encoding), M (method, when not GET/HEAD). Inside H and C,
# items are joined with "\x02" and names from values with "\x03". Variable
# pieces are escaped ("\x01" + a letter) so they contain none of "\x00".."\x03"
# (the path only needs it when it holds "\x00" or "\x01"), so two different
# inputs never give the same key, and the key starts with the path. A GET for
# /a.jpg under a policy that selects nothing has the key "/a.jpg".

_ESCAPES = str.maketrans({"\x00": "\x01@", "\x01": "\x01A", "\x02": "\x01B", "\x03": "\x01C"})
_UNESCAPE = re.compile("\x01(.)", re.DOTALL)


def _esc(text: str) -> str:
    # Four memchr scans beat one isprintable() (a per-character table lookup).
    if "\x00" in text or "\x01" in text or "\x02" in text or "\x03" in text:
        return text.translate(_ESCAPES)
    return text


def _unesc(text: str) -> str:
    if "\x01" not in text:
        return text
    return _UNESCAPE.sub(lambda m: chr(ord(m.group(1)) - 0x40), text)


def select_query(selection: Selection, query: str) -> str:
    """The parameters of ``query`` that ``selection`` picks, in the viewer's order.

    Names and values are compared and kept as sent (case-sensitive, still
    percent-encoded). Order is not normalized: "The order of parameters
    matters in query strings", and ``?a=1&b=2`` and ``?b=2&a=1`` are two
    objects (QueryStringParameters.html, "Always list parameters in the same
    order"; AWS's own normalize-query-string example function sorts them in a
    viewer-request function for this reason).
    """
    mode = selection.mode
    if mode == "none" or not query:
        return ""
    if mode == "all" and "&&" not in query and query[0] != "&" and query[-1] != "&":
        return query
    names = selection.names
    kept: list[str] = []
    for param in query.split("&"):
        if not param:
            continue
        if mode != "all":
            name = param.partition("=")[0]
            if (name in names) != (mode == "allow"):
                continue
        kept.append(param)
    return "&".join(kept)


def select_cookies(selection: Selection, headers: Headers) -> list[tuple[str, str]]:
    """The cookies of the ``Cookie`` header(s) that ``selection`` picks, sorted by name.

    Names and values are case-sensitive; CloudFront "sorts the cookies in
    natural order by cookie name" (Cookies.html), so cookie order never makes
    a different object. Cookies with the same name keep their order.
    """
    mode = selection.mode
    if mode == "none":
        return []
    values = headers.get_all("cookie")
    if not values:
        return []
    names = selection.names
    allow = mode == "allow"
    picked: list[tuple[str, str]] = []
    for value in values:
        for pair in value.split(";"):
            name, _, cookie_value = pair.strip().partition("=")
            if (name or cookie_value) and (mode == "all" or (name in names) == allow):
                picked.append((name, cookie_value))
    if len(picked) > 1:
        picked.sort(key=itemgetter(0))
    return picked


class _KeyPlan:
    """What a cache policy puts in the key, precomputed once per policy."""

    __slots__ = (
        "brotli",
        "cookies",
        "gzip",
        "header_names",
        "header_test",
        "policy",
        "query",
        "simple",
    )

    def __init__(self, policy: CachePolicy) -> None:
        self.policy = policy
        self.query = policy.query_strings if policy.query_strings.mode != "none" else None
        self.cookies = policy.cookies if policy.cookies.mode != "none" else None
        self.gzip = policy.accept_encoding_gzip
        self.brotli = policy.accept_encoding_brotli
        # With compression caching on, the normalized Accept-Encoding stands in
        # for the viewer's, even if the header is also listed.
        normalized = {"accept-encoding"} if self.gzip or self.brotli else set()
        headers = policy.headers
        # The usual allow-list is looked up name by name; the legacy "all" and
        # an "except" list need a pass over the request's fields.
        self.header_names: tuple[str, ...] | None = None
        self.header_test: Callable[[str], bool] | None = None
        if headers.mode == "allow":
            self.header_names = tuple(sorted(headers.names - normalized)) or None
        elif headers.mode != "none":
            excluded = normalized
            self.header_test = lambda name: headers.selects(name) and name not in excluded
        self.simple = (
            self.query is None
            and self.cookies is None
            and self.header_names is None
            and self.header_test is None
            and not (self.gzip or self.brotli)
        )


_PLANS: dict[int, _KeyPlan] = {}


def _plan(policy: CachePolicy) -> _KeyPlan:
    # Keyed by id(): hashing a frozen dataclass rehashes every field. The plan
    # holds the policy, so no other live object can share its id while the
    # plan is in the dict.
    if len(_PLANS) >= 256:  # config reloads leave old policies behind
        _PLANS.clear()
    plan = _PLANS[id(policy)] = _KeyPlan(policy)
    return plan


def cache_key(behavior: Behavior, request: Request) -> str:
    """The key CloudFront files this request's object under.

    The URI path plus what the behavior's cache policy selects: query string
    parameters, allow-listed headers (full value, by lowercase name), cookies,
    and the normalized Accept-Encoding (controlling-the-cache-key.html). The
    protocol and host are not in it. GET and HEAD share a key. Any other
    method (only OPTIONS is ever cached, HTTPStatusCodes.html) gets its own:
    AWS does not say how OPTIONS responses are keyed, but a preflight answer
    must never serve a GET (edgesim's rule).
    """
    plan = _PLANS.get(id(behavior.cache)) or _plan(behavior.cache)
    path = request.path
    # Only "\x00" (ends the path) and "\x01" (the escape) would make a raw
    # path ambiguous: a path without them is its own encoding.
    key = path if "\x00" not in path and "\x01" not in path else path.translate(_ESCAPES)
    method = request.method
    if plan.simple:
        if method in {"GET", "HEAD"}:
            return key
        return key + "\x00M" + _esc(method)
    headers = request.headers
    if plan.query is not None:
        query = select_query(plan.query, request.query)
        if query:
            key += "\x00Q" + _esc(query)
    encoding = None
    if plan.gzip or plan.brotli:
        encoding = normalize_accept_encoding(headers.get("accept-encoding"), plan.gzip, plan.brotli)
    if plan.header_names is not None:
        items = [
            _esc(name) + "\x03" + _esc(",".join(headers.get_all(name)))
            for name in plan.header_names
            if name in headers
        ]
        if items:
            key += "\x00H" + "\x02".join(items)
    elif plan.header_test is not None:
        picked: dict[str, list[str]] = {}
        for name, value in headers:
            lower = name.lower()
            if plan.header_test(lower):
                picked.setdefault(lower, []).append(value)
        if picked:
            key += "\x00H" + "\x02".join(
                _esc(name) + "\x03" + _esc(",".join(picked[name])) for name in sorted(picked)
            )
    if plan.cookies is not None:
        cookies = select_cookies(plan.cookies, headers)
        if cookies:
            key += "\x00C" + "\x02".join(_esc(n) + "\x03" + _esc(v) for n, v in cookies)
    if encoding is not None:
        key += "\x00E" + encoding
    if method not in {"GET", "HEAD"}:
        key += "\x00M" + _esc(method)
    return key


def key_target(key: str) -> str:
    """The path and selected query string a key was made from (``/a.jpg?x=1``).

    What invalidation paths are matched against, and what the admin view shows.
    """
    if "\x00" not in key:
        return _unesc(key)
    path, *parts = key.split("\x00")
    target = _unesc(path)
    for part in parts:
        if part[:1] == "Q":
            return target + "?" + _unesc(part[1:])
    return target


_PART_NAMES = {"Q": "query", "H": "headers", "C": "cookies", "E": "accept-encoding", "M": "method"}


def key_parts(key: str) -> list[tuple[str, str]]:
    """What a key is made of, for people (the inspector): ``("path", "/a.jpg")``,
    then ``("query", "x=1")``, ``("headers", "accept-language=en")`` and so on."""
    path, *parts = key.split("\x00")
    out = [("path", _unesc(path))]
    for part in parts:
        name = _PART_NAMES.get(part[:1], part[:1])
        items = part[1:].split("\x02") if part[:1] in "HC" else [part[1:]]
        shown = "; ".join("=".join(_unesc(x) for x in item.split("\x03")) for item in items)
        out.append((name, shown))
    return out
