"""Lambda@Edge viewer-request: A/B testing by cookie.

Each viewer sees one variant of the site, kept in the origin under /a/ and
/b/. A viewer who has the cookie ``ab-variant=a`` (or ``b``) gets that
variant; a new viewer gets one at random and the cookie is added to the
request, so the origin can answer with a Set-Cookie that keeps the choice.

Because the variant is in the URI, the two variants are cached separately
without adding the cookie to the cache key, which keeps the hit ratio high.
"""

import random

COOKIE = "ab-variant"
VARIANTS = ("a", "b")
# The share of new viewers sent to variant b.
SHARE_B = 0.5


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]

    variant = variant_from_cookies(headers.get("cookie", []))
    if variant is None:
        variant = "b" if random.random() < SHARE_B else "a"
        # Tell the origin which variant this viewer got. All cookies travel
        # in the one "cookie" header; append to the first if there is one.
        cookies = headers.setdefault("cookie", [])
        pair = f"{COOKIE}={variant}"
        if cookies:
            cookies[0]["value"] = f"{cookies[0]['value']}; {pair}"
        else:
            cookies.append({"key": "Cookie", "value": pair})

    request["uri"] = f"/{variant}{request['uri']}"
    return request


def variant_from_cookies(cookie_headers):
    """The variant named by the cookie, or None if it is missing or unknown."""
    for header in cookie_headers:
        for pair in header["value"].split(";"):
            name, _, value = pair.strip().partition("=")
            if name == COOKIE and value in VARIANTS:
                return value
    return None
