"""Lambda@Edge origin-request (or viewer-request): serve a single-page app.

A single-page app has one real page, /index.html; its router handles /about
or /account/settings in the browser. The origin (an S3 bucket or a folder)
has no such files, so ask it for the page instead:

    /about              -> /index.html        (no file extension: an app route)
    /docs/              -> /docs/index.html   (a folder: its index document)
    /css/site.css       -> unchanged          (a real file)

At origin-request the function runs only on cache misses and the cache keeps
the viewer's URI; at viewer-request it runs on every request and the
rewritten URI is the cache key, so all routes share one cached copy.
Either way CloudFront does not pick the behavior again for the new URI.
"""

# The page the app's router lives in.
APP_PAGE = "/index.html"
# The document served for a URI ending in "/".
INDEX_DOCUMENT = "index.html"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    uri = request["uri"]

    if uri.endswith("/"):
        # A folder: its index document.
        request["uri"] = uri + INDEX_DOCUMENT
    elif "." not in uri.rsplit("/", 1)[-1]:
        # The last segment has no file extension: a route of the app.
        request["uri"] = APP_PAGE

    # Returning the request sends it on, with the new URI.
    return request
