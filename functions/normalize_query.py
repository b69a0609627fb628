"""Lambda@Edge viewer-request: normalize the query string for a better hit ratio.

When the cache key includes the query string, ``?b=2&a=1``, ``?a=1&b=2`` and
``?a=1&b=2&utm_source=news`` are three cache entries for one page. This
function makes them one: it drops tracking parameters (which only analytics
in the browser read), lowercases parameter names, sorts the parameters by
name and encodes them the same way every time. It runs at viewer-request,
before the cache lookup, so the cache key is built from the clean query.
"""

from urllib.parse import parse_qsl, quote, urlencode

# Parameters added by ad and mail platforms; the page never reads them.
TRACKING_PREFIXES = ("utm_",)
TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "mc_cid", "mc_eid", "_ga", "yclid"}
)


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]

    # The querystring field has no leading "?"; it is "" when there is none.
    params = [
        (name.lower(), value)
        for name, value in parse_qsl(request["querystring"], keep_blank_values=True)
        if not is_tracking(name.lower())
    ]
    # Sort by name only: the values of a repeated name keep their order,
    # which some applications rely on (?tag=new&tag=sale).
    params.sort(key=lambda param: param[0])

    request["querystring"] = urlencode(params, quote_via=quote)
    return request


def is_tracking(name):
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)
