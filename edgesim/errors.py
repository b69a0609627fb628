"""The error tree. Every edge error knows what CloudFront would answer.

An ``EdgeError`` carries the viewer status, the ``X-Cache`` value and the
access-log result types, so turning any failure into a response happens in
one place (``edgesim.pages.error_response``) and never depends on where the
failure was raised.

Source: CloudFront Developer Guide, "HTTP status codes" and "Troubleshooting
error responses" (HTTPStatusCodes.html, troubleshooting-response-errors.html).
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "EdgeError",
    "InvalidRequest",
    "MethodNotAllowed",
    "OriginConnectError",
    "OriginDnsError",
    "OriginError",
    "OriginInvalidResponse",
    "OriginReadError",
    "OriginTimeout",
    "RequestTooLarge",
]


class ConfigError(Exception):
    """A config file that cannot be used: names the file, the line and the key path."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, path: str = ""
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        key = f" {self.path}:" if self.path else ""
        return f"{where}:{key} {self.message}"


class EdgeError(Exception):
    """A failure the viewer sees as a CloudFront error page."""

    status = 502
    x_cache = "Error from cloudfront"
    result_type = "Error"
    detailed_result_type = "Error"
    reason = "The request could not be satisfied."

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(detail or self.reason)


class InvalidRequest(EdgeError):
    """A viewer request CloudFront refuses before doing any work."""

    status = 400
    detailed_result_type = "InvalidRequest"
    reason = "Bad request. We can't connect to the server for this app or website at this time."


class RequestTooLarge(InvalidRequest):
    """Request line or headers over CloudFront's limits."""

    status = 494
    detailed_result_type = "InvalidRequestHeader"
    reason = "The request header is too large."


class MethodNotAllowed(EdgeError):
    """The cache behavior does not allow the viewer's method."""

    status = 403
    detailed_result_type = "InvalidRequestMethod"
    reason = "This distribution is not configured to allow the HTTP request method that was used for this request. The distribution supports only cachable requests."  # noqa: E501


class OriginError(EdgeError):
    """The origin could not give a usable response."""

    status = 502
    detailed_result_type = "OriginError"
    reason = "CloudFront wasn't able to connect to the origin."


class OriginDnsError(OriginError):
    detailed_result_type = "OriginDnsError"
    reason = "CloudFront wasn't able to resolve the origin domain name."


class OriginConnectError(OriginError):
    detailed_result_type = "OriginConnectError"


class OriginInvalidResponse(OriginError):
    detailed_result_type = "OriginInvalidResponseError"
    reason = "CloudFront received an invalid response from the origin."


class OriginReadError(OriginError):
    """The origin closed or broke the connection before the response was complete."""

    detailed_result_type = "OriginReadError"
    reason = "CloudFront received an incomplete response from the origin."


class OriginTimeout(OriginError):
    status = 504
    detailed_result_type = "OriginReadError"
    reason = "CloudFront attempted to establish a connection with the origin, but either the attempt failed or the origin closed the connection."  # noqa: E501
