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
    "FunctionError",
    "FunctionExecutionError",
    "FunctionThrottledError",
    "FunctionValidationError",
    "InvalidRequest",
    "LambdaError",
    "LambdaExecutionError",
    "LambdaLimitExceeded",
    "LambdaValidationError",
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


# Lambda@Edge failures (cloudfront-semantics.md section 3; the X-Cache values
# are those of the 2018-2019 "Testing and debugging Lambda@Edge functions"
# page; the page texts are from real CloudFront error pages). CloudFront
# follows each reason with this sentence on the page.
_LAMBDA_PAGE_TAIL = (
    " We can't connect to the server for this app or website at this time."
    " There might be too much traffic or a configuration error."
    " Try again later, or contact the app or website owner."
)


class LambdaError(EdgeError):
    """A Lambda@Edge function failed; the viewer gets CloudFront's error page for it."""


class LambdaValidationError(LambdaError):
    """The function's result is not something CloudFront accepts (HTTP 502).

    ``detail`` names what was wrong; the page reads "The Lambda function
    result failed validation: <detail>", or "The Lambda function returned
    invalid JSON: <detail>" when the result is not JSON or not an object.
    """

    status = 502
    x_cache = "LambdaValidationError from cloudfront"
    result_type = "LambdaValidationError"
    detailed_result_type = "LambdaValidationError"
    reason = "The Lambda function result failed validation." + _LAMBDA_PAGE_TAIL

    def __init__(self, detail: str = "", *, invalid_json: bool = False) -> None:
        super().__init__(detail)
        self.invalid_json = invalid_json
        if invalid_json:
            self.reason = f"The Lambda function returned invalid JSON: {detail}{_LAMBDA_PAGE_TAIL}"
        elif detail:
            self.reason = (
                f"The Lambda function result failed validation: {detail}{_LAMBDA_PAGE_TAIL}"
            )

    @classmethod
    def unparsable(cls) -> LambdaValidationError:
        """The function's output could not be parsed as JSON."""
        return cls("The JSON output is not parsable.", invalid_json=True)


class LambdaExecutionError(LambdaError):
    """The function raised, crashed, failed to import, or timed out (HTTP 503).

    Older AWS pages said 500; current docs and real responses say 503.
    """

    status = 503
    x_cache = "LambdaExecutionError from cloudfront"
    result_type = "LambdaExecutionError"
    detailed_result_type = "LambdaExecutionError"
    reason = (
        "The Lambda function associated with the CloudFront distribution is invalid"
        " or doesn't have the required permissions." + _LAMBDA_PAGE_TAIL
    )


class LambdaLimitExceeded(LambdaError):
    """The function was throttled: Regional concurrency or request-rate quota (HTTP 503)."""

    status = 503
    x_cache = "LambdaLimitExceeded from cloudfront"
    result_type = "LambdaLimitExceeded"
    detailed_result_type = "LambdaLimitExceeded"
    reason = (
        "The Lambda function associated with the CloudFront distribution was throttled."
        + _LAMBDA_PAGE_TAIL
    )


# CloudFront Functions failures (cloudfront-semantics.md section 3; the X-Cache
# values are those seen on real responses, "FunctionExecutionError from
# cloudfront" and so on, and the same names appear as x-edge-result-type in
# access logs, functions-event-structure.md / AccessLogs.md).


class FunctionError(EdgeError):
    """A CloudFront Function failed; the viewer gets CloudFront's error page for it."""


class FunctionExecutionError(FunctionError):
    """The function threw, did not load, ran out of memory, or ran far past its
    compute budget and was stopped (HTTP 503)."""

    status = 503
    x_cache = "FunctionExecutionError from cloudfront"
    result_type = "FunctionExecutionError"
    detailed_result_type = "FunctionExecutionError"
    reason = (
        "The CloudFront function associated with the CloudFront distribution is invalid"
        " or could not run." + _LAMBDA_PAGE_TAIL
    )


class FunctionThrottledError(FunctionError):
    """The function kept exceeding its compute budget and is throttled (HTTP 503)."""

    status = 503
    x_cache = "FunctionThrottledError from cloudfront"
    result_type = "FunctionThrottledError"
    detailed_result_type = "FunctionThrottledError"
    reason = (
        "The CloudFront function associated with the CloudFront distribution was throttled."
        + _LAMBDA_PAGE_TAIL
    )


class FunctionValidationError(FunctionError):
    """The function's result is not something CloudFront accepts (HTTP 502);
    ``detail`` names the rule it breaks."""

    status = 502
    x_cache = "FunctionValidationError from cloudfront"
    result_type = "FunctionValidationError"
    detailed_result_type = "FunctionValidationError"
    reason = "The CloudFront function returned an invalid value." + _LAMBDA_PAGE_TAIL

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail)
        if detail:
            self.reason = (
                f"The CloudFront function returned an invalid value: {detail}{_LAMBDA_PAGE_TAIL}"
            )
