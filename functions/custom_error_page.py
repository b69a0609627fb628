"""Lambda@Edge origin-response: a friendly page when the origin fails.

When the origin answers with a server error (500 and up), replace its body,
often a stack trace or a proxy's bare error page, with a page for people,
and answer 503 Service Unavailable with a Retry-After. Other responses pass
unchanged.

The origin's body is not in the event; setting ``body`` replaces it. The
result is cached like any origin response: the short max-age below (and
CloudFront's error caching minimum TTL) keeps the origin from being asked
again on every request while it is down, without hiding its recovery for long.
Viewer-response functions don't run for it (status 400 and up).
"""

RETRY_AFTER_SECONDS = 30

ERROR_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>We'll be right back</title></head>
<body>
<h1>We'll be right back</h1>
<p>Something went wrong on our side. Please try again in a minute.</p>
</body>
</html>
"""


def handler(event, context):
    response = event["Records"][0]["cf"]["response"]
    # The status is a string in the event ("502").
    if int(response["status"]) < 500:
        return response

    response["status"] = "503"
    response["statusDescription"] = "Service Unavailable"
    headers = response["headers"]
    # Headers that described the origin's body no longer apply. (Transfer-
    # Encoding and Via are read-only here: changing them is a 502.)
    for name in ("content-encoding", "content-length", "etag", "last-modified"):
        headers.pop(name, None)
    headers["content-type"] = [{"key": "Content-Type", "value": "text/html; charset=utf-8"}]
    headers["cache-control"] = [{"key": "Cache-Control", "value": f"max-age={RETRY_AFTER_SECONDS}"}]
    headers["retry-after"] = [{"key": "Retry-After", "value": str(RETRY_AFTER_SECONDS)}]
    response["body"] = ERROR_PAGE
    response["bodyEncoding"] = "text"
    return response
