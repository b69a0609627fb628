"""Path patterns and behavior precedence (edgesim.behaviors)."""

from __future__ import annotations

import pytest

from edgesim.behaviors import BehaviorMatcher, compile_pattern
from edgesim.config.schema import Behavior


def matches(pattern: str, path: str) -> bool:
    return compile_pattern(pattern).fullmatch(path) is not None


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        # "*" is zero or more characters, across "/" too.
        ("*", "/", True),
        ("*", "/a/b/c.txt", True),
        ("*", "", True),
        ("/images/*", "/images/", True),
        ("/images/*", "/images/a/b/c.png", True),
        ("/images/*", "/images", False),
        ("/images/*.jpg", "/images/sub/dir/a.jpg", True),
        ("/images/*.jpg", "/images/a.jpg.txt", False),
        ("*.jpg", "/deep/down/x.jpg", True),
        # "?" is exactly one character.
        ("/a?c", "/abc", True),
        ("/a?c", "/a/c", True),
        ("/a?c", "/ac", False),
        ("/a?c", "/abbc", False),
        # Case-sensitive.
        ("*.jpg", "/LOGO.JPG", False),
        ("/Images/*", "/images/a", False),
        # Everything else is literal, including regex metacharacters.
        ("/a.b", "/axb", False),
        ("/a.b", "/a.b", True),
        ("/a+b$", "/a+b$", True),
        ("/a+b", "/aab", False),
        ("/(x)", "/(x)", True),
        # The whole path must match.
        ("/api", "/api/v1", False),
        ("/api", "/x/api", False),
        # Leading "/" optional.
        ("images/*", "/images/a.png", True),
        ("images/*", "/other/images/a.png", False),
        ("?bc", "/abc", True),
        ("?bc", "/bc", False),
    ],
)
def test_compile_pattern(pattern: str, path: str, expected: bool) -> None:
    assert matches(pattern, path) is expected


def test_leading_slash_is_optional() -> None:
    assert compile_pattern("images/*").pattern == compile_pattern("/images/*").pattern


def behavior(pattern: str, origin: str = "o") -> Behavior:
    return Behavior(path_pattern=pattern, origin=origin)


def test_first_matching_behavior_wins_in_configured_order() -> None:
    broad = behavior("/api/*", "broad")
    narrow = behavior("/api/v2/*", "narrow")
    default = behavior("*", "default")
    matcher = BehaviorMatcher((broad, narrow, default))
    # The broader pattern is listed first, so it wins even for /api/v2/...
    assert matcher.match("/api/v2/users") is broad
    reordered = BehaviorMatcher((narrow, broad, default))
    assert reordered.match("/api/v2/users") is narrow
    assert reordered.match("/api/v1/users") is broad


def test_default_behavior_is_last_and_catches_everything() -> None:
    images = behavior("*.png", "images")
    default = behavior("*", "default")
    matcher = BehaviorMatcher((images, default))
    assert matcher.match("/a.png") is images
    assert matcher.match("/a.PNG") is default
    assert matcher.match("/") is default


def test_default_behavior_is_the_fallback_whatever_its_pattern() -> None:
    api = behavior("/api/*", "api")
    default = behavior("/never", "default")
    matcher = BehaviorMatcher((api, default))
    assert matcher.match("/elsewhere") is default


def test_match_is_memoized_and_stays_correct() -> None:
    api = behavior("/api/*", "api")
    default = behavior("*", "default")
    matcher = BehaviorMatcher((api, default))
    for _ in range(3):
        assert matcher.match("/api/x") is api
        assert matcher.match("/x") is default


def test_memo_is_bounded() -> None:
    default = behavior("*", "default")
    matcher = BehaviorMatcher((behavior("/a/*"), default))
    for i in range(10_000):
        assert matcher.match(f"/p/{i}") is default
    assert len(matcher._memo) <= 4096


def test_no_behaviors_is_an_error() -> None:
    with pytest.raises(ValueError, match="default behavior"):
        BehaviorMatcher(())
