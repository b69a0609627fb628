"""Lambda@Edge viewer-response: add security headers to every response.

Browsers enforce these headers; setting them at the edge protects every page
whatever the origin sends, and costs nothing on cache hits beyond this call.
CloudFront runs viewer-response functions only for statuses below 400, so
error pages go out as the origin (or CloudFront) made them.
"""

# name (lowercase, as in the event) -> (name as sent, value)
SECURITY_HEADERS = {
    # Only ever talk HTTPS to this site, for two years, subdomains included.
    "strict-transport-security": (
        "Strict-Transport-Security",
        "max-age=63072000; includeSubDomains; preload",
    ),
    # Don't guess a content type other than the one we declare.
    "x-content-type-options": ("X-Content-Type-Options", "nosniff"),
    # Never render this site inside a frame (clickjacking).
    "x-frame-options": ("X-Frame-Options", "DENY"),
    # Send only the origin, not the full URL, to other sites.
    "referrer-policy": ("Referrer-Policy", "strict-origin-when-cross-origin"),
    # Load scripts, styles and images from this site only.
    "content-security-policy": (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; "
        "base-uri 'self'; frame-ancestors 'none'",
    ),
}


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    headers = response["headers"]

    # Headers are keyed by lowercase name, each a list of {key, value};
    # replacing the list overrides whatever the origin sent.
    for name, (key, value) in SECURITY_HEADERS.items():
        headers[name] = [{"key": key, "value": value}]

    return response
