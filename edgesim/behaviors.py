"""Cache behavior selection: CloudFront path patterns and their precedence.

CloudFront picks a behavior before anything else happens to a request, using
only the URI path (no query string, no cookies), and never re-picks it when a
viewer-request function rewrites the URI. Rules from the CloudFront Developer
Guide, "Cache behavior settings: Path pattern"
(distribution-web-values-specify.html#DownloadDistValuesPathPattern).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from edgesim.config.schema import Behavior

__all__ = ["BehaviorMatcher", "compile_pattern"]

# Results of ``BehaviorMatcher.match`` kept per path. A site has far fewer hot
# paths than this; a scan of random paths only costs a periodic clear.
_MEMO_LIMIT = 4096


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The regex that matches a whole URI path exactly when ``pattern`` does.

    ``*`` is zero or more characters, ``/`` included; ``?`` is exactly one
    character; everything else is literal and case-sensitive. Use the result
    with ``fullmatch``.
    """
    # "images/*" and "/images/*" are the same pattern: the leading slash is
    # optional (distribution-web-values-specify.html, Path pattern). A pattern
    # that starts with "*" already spans the slash, so it is left alone; the
    # default behavior's "*" therefore matches every path.
    if not pattern.startswith(("/", "*")):
        pattern = "/" + pattern
    parts: list[str] = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


class BehaviorMatcher:
    """Picks the cache behavior for a path, in CloudFront's order.

    Built from ``Config.all_behaviors``: the configured behaviors in order,
    the default behavior last. The first pattern that matches wins; the last
    (default) behavior is the fallback whatever its pattern says, as in
    CloudFront where the default behavior always matches.
    """

    __slots__ = ("_default", "_memo", "_patterns")

    def __init__(self, behaviors: Sequence[Behavior]) -> None:
        if not behaviors:
            raise ValueError("BehaviorMatcher needs at least the default behavior")
        *ordered, default = behaviors
        self._patterns = tuple((compile_pattern(b.path_pattern).fullmatch, b) for b in ordered)
        self._default = default
        self._memo: dict[str, Behavior] = {}

    def match(self, path: str) -> Behavior:
        """The behavior for the URI path ``path`` (no query string).

        Runs on every request; answers for recently seen paths come from a
        bounded memo.
        """
        behavior = self._memo.get(path)
        if behavior is not None:
            return behavior
        behavior = self._default
        for fullmatch, candidate in self._patterns:
            if fullmatch(path) is not None:
                behavior = candidate
                break
        memo = self._memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        memo[path] = behavior
        return behavior
