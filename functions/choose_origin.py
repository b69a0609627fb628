"""Lambda@Edge origin-request: send /eu/* to the EU origin.

An origin-request function may change ``request.origin``: CloudFront then
fetches from the origin it names, which need not be one of the
distribution's origins, and may switch between an S3 and a custom origin.
Here requests under /eu/ go to a custom origin of their own; everything else
goes to the behavior's origin unchanged.

The EU origin's port comes from the custom origin header ``x-eu-origin-port``
when the distribution's origin sets one (origins: {app: {headers:
{x-eu-origin-port: "3001"}}}), otherwise from EU_ORIGIN_PORT. Its host is
``localhost`` so the example works on one machine: CloudFront wants a DNS
name here, not an IP address.
"""

EU_PREFIX = "/eu/"
EU_ORIGIN_DOMAIN = "localhost"
EU_ORIGIN_PORT = 3001
PORT_HEADER = "x-eu-origin-port"


def handler(event, context):
    request = event["Records"][0]["cf"]["request"]
    if not request["uri"].startswith(EU_PREFIX):
        return request

    # The current origin is either {"custom": {...}} or {"s3": {...}}.
    (current,) = request["origin"].values()
    custom_headers = dict(current.get("customHeaders", {}))
    port = EU_ORIGIN_PORT
    if PORT_HEADER in custom_headers:
        # The header only carries configuration: don't send it on.
        port = int(custom_headers.pop(PORT_HEADER)[0]["value"])

    request["origin"] = {
        "custom": {
            "domainName": EU_ORIGIN_DOMAIN,
            "port": port,
            "protocol": "http",
            "path": "",
            "sslProtocols": ["TLSv1.2"],
            "readTimeout": 30,
            "keepaliveTimeout": 5,
            "customHeaders": custom_headers,
        }
    }
    # The Host header names the origin the request is sent to.
    request["headers"]["host"] = [{"key": "Host", "value": EU_ORIGIN_DOMAIN}]
    return request
