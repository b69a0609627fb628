"""Edge compression: when CloudFront gzips or brotli-compresses an origin response.

Source: CloudFront Developer Guide, "Serving compressed files"
(ServingCompressedFiles.md). The behavior must have Compress on and its cache
policy must enable gzip and/or brotli (so the normalised Accept-Encoding is in
the cache key); the object must be 1,000 to 10,000,000 bytes with a known
Content-Length, a compressible Content-Type, no Content-Encoding, and a 200,
403 or 404 status. Brotli is preferred when the viewer accepts both.
"""

from __future__ import annotations

import gzip

import brotli

from edgesim.cache import normalize_accept_encoding
from edgesim.config.schema import Behavior
from edgesim.models import Headers, Request

__all__ = ["COMPRESSIBLE_TYPES", "choose_encoding", "compress", "compressed_headers"]

MIN_SIZE = 1_000
MAX_SIZE = 10_000_000
_STATUSES = frozenset({200, 403, 404})

# The file types CloudFront compresses (ServingCompressedFiles.md).
COMPRESSIBLE_TYPES = frozenset(
    {
        "application/dash+xml",
        "application/eot",
        "application/font",
        "application/font-sfnt",
        "application/javascript",
        "application/json",
        "application/opentype",
        "application/otf",
        "application/pdf",
        "application/pkcs7-mime",
        "application/protobuf",
        "application/rss+xml",
        "application/truetype",
        "application/ttf",
        "application/vnd.apple.mpegurl",
        "application/vnd.mapbox-vector-tile",
        "application/vnd.ms-fontobject",
        "application/wasm",
        "application/xhtml+xml",
        "application/xml",
        "application/x-font-opentype",
        "application/x-font-truetype",
        "application/x-font-ttf",
        "application/x-httpd-cgi",
        "application/x-javascript",
        "application/x-mpegurl",
        "application/x-opentype",
        "application/x-otf",
        "application/x-perl",
        "application/x-ttf",
        "font/eot",
        "font/opentype",
        "font/otf",
        "font/ttf",
        "image/svg+xml",
        "text/css",
        "text/csv",
        "text/html",
        "text/javascript",
        "text/js",
        "text/plain",
        "text/richtext",
        "text/tab-separated-values",
        "text/xml",
        "text/x-component",
        "text/x-java-source",
        "text/x-script",
        "vnd.apple.mpegurl",
    }
)


def choose_encoding(
    behavior: Behavior, request: Request, status: int, headers: Headers
) -> str | None:
    """``"br"`` or ``"gzip"`` when CloudFront would compress this response, else None."""
    policy = behavior.cache
    if not behavior.compress or not (policy.accept_encoding_gzip or policy.accept_encoding_brotli):
        return None
    # An Accept-Encoding the cache policy keys on explicitly turns compression off,
    # and CloudFront strips Accept-Encoding from HTTP/1.0 requests.
    if policy.headers.selects("accept-encoding") or request.http_version == "1.0":
        return None
    if status not in _STATUSES or "content-encoding" in headers:
        return None
    length = headers.get("content-length")
    if length is None or not length.isdigit() or not MIN_SIZE <= int(length) <= MAX_SIZE:
        return None
    content_type = (headers.get("content-type") or "").partition(";")[0].strip().lower()
    if content_type not in COMPRESSIBLE_TYPES:
        return None
    accepted = normalize_accept_encoding(
        request.headers.get("accept-encoding"),
        policy.accept_encoding_gzip,
        policy.accept_encoding_brotli,
    )
    if accepted is None:
        return None
    return "br" if "br" in accepted.split(",") else "gzip"


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "br":
        return bytes(brotli.compress(body, quality=5))
    return gzip.compress(body, compresslevel=6, mtime=0)


def compressed_headers(headers: Headers, encoding: str, length: int) -> Headers:
    """Headers of the compressed object: encoding, length, a weak ETag, ``Vary``."""
    out = headers.without("content-length", "content-encoding")
    etag = headers.get("etag")
    if etag is not None:
        out = out.without("etag")
        if etag.startswith('"'):
            out = out.add("ETag", f"W/{etag}")
        elif etag.startswith('W/"'):
            out = out.add("ETag", etag)
        # Any other ETag is invalid and CloudFront removes it.
    vary = headers.get("vary")
    if vary is None:
        out = out.add("Vary", "Accept-Encoding")
    elif "accept-encoding" not in vary.lower():
        out = out.set("Vary", f"{vary}, Accept-Encoding")
    return out.add("Content-Encoding", encoding).add("Content-Length", str(length))
