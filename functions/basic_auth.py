"""Lambda@Edge viewer-request: HTTP Basic authentication in front of a site.

Without the right Authorization header the function answers with a generated
401 and a WWW-Authenticate challenge, so the browser asks for a user name and
password; with it the request goes on. Lambda@Edge has no environment
variables, so the credentials live in the code (keep real ones out of version
control, or fetch them from a secret store when the function starts).
"""

import base64
import hmac

USER = "edge"
PASSWORD = "let-me-in"
REALM = "edgesim"

# What a browser sends once the user typed the right credentials.
EXPECTED = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode("ascii")

UNAUTHORIZED_PAGE = """<!doctype html>
<html><head><title>401 Unauthorized</title></head>
<body><h1>401 Unauthorized</h1><p>This site needs a user name and password.</p></body>
</html>
"""


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    headers = request["headers"]

    for header in headers.get("authorization", []):
        scheme, _, credentials = header["value"].strip().partition(" ")
        # The scheme is case-insensitive; compare the secret in constant time.
        if scheme.lower() == "basic" and hmac.compare_digest(
            credentials.strip().encode("utf-8", "replace"), EXPECTED.encode("ascii")
        ):
            return request

    return {
        "status": "401",
        "statusDescription": "Unauthorized",
        "headers": {
            "www-authenticate": [
                {"key": "WWW-Authenticate", "value": f'Basic realm="{REALM}", charset="UTF-8"'}
            ],
            "content-type": [{"key": "Content-Type", "value": "text/html; charset=utf-8"}],
            "cache-control": [{"key": "Cache-Control", "value": "no-store"}],
        },
        "body": UNAUTHORIZED_PAGE,
    }
