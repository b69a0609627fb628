"""Function event JSON: the only code that reads or writes it.

``lambda_edge`` builds the event a Lambda@Edge function receives and turns
its result back into requests and responses, validating it the way
CloudFront does; ``cloudfront_function`` does the same for CloudFront
Functions. Everything else works with ``Request`` and ``Response``.
"""

from __future__ import annotations

from edgesim.codecs.lambda_edge import (
    ContinueRequest,
    GeneratedResponse,
    ModifiedResponse,
    Outcome,
    apply_result,
    build_event,
)

__all__ = [
    "ContinueRequest",
    "GeneratedResponse",
    "ModifiedResponse",
    "Outcome",
    "apply_result",
    "build_event",
]
