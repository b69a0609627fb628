"""A Lambda@Edge viewer-request function that changes nothing: the cost of a hook."""

from typing import Any


def handler(event: dict[str, Any], context: object) -> Any:
    return event["Records"][0]["cf"]["request"]
