"""Lambda@Edge viewer-request: redirect moved pages without asking the origin.

The function answers itself with a generated 301 (moved for good) or 302
(moved for now). CloudFront sends a response generated at viewer-request
straight back to the viewer: it is not cached, and no other function runs.
Any other request goes on unchanged.
"""

# Exact paths that moved: old path -> (new path, status).
MOVED = {
    "/about-us": ("/about", 301),
    "/contact.html": ("/contact", 301),
    "/sale": ("/offers/summer", 302),  # temporary: the sale page changes each season
}

# Whole sections that moved: old prefix -> (new prefix, status).
MOVED_SECTIONS = {
    "/blog/2019/": ("/archive/2019/", 301),
}

DESCRIPTIONS = {301: "Moved Permanently", 302: "Found"}


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]

    target = MOVED.get(uri)
    if target is None:
        for old, (new, status) in MOVED_SECTIONS.items():
            if uri.startswith(old):
                target = (new + uri[len(old) :], status)
                break
    if target is None:
        return request

    location, status = target
    # Keep the query string: campaign links still work after the move. The
    # querystring field has no leading "?" and is "" when there is none.
    if request["querystring"]:
        location += "?" + request["querystring"]

    # A relative Location is valid (RFC 9110) and works on any host name,
    # including a local edge on http://127.0.0.1:8080.
    return {
        "status": str(status),
        "statusDescription": DESCRIPTIONS[status],
        "headers": {
            "location": [{"key": "Location", "value": location}],
            # Browsers cache a 301 on their own; a short max-age keeps a
            # mistaken permanent redirect recoverable.
            "cache-control": [{"key": "Cache-Control", "value": "max-age=3600"}],
        },
    }
