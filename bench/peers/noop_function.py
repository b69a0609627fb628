"""A Lambda@Edge viewer-request function that changes nothing: the cost of a hook."""


def handler(event, context):
    return event["Records"][0]["cf"]["request"]
