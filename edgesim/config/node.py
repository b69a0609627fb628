"""A value read from a config file that remembers where it was written.

The loader reads config values only through these accessors, so every error
names the file, the line and the key path (``behaviors[0].cache.min_ttl``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection
from dataclasses import dataclass

from edgesim.errors import ConfigError

__all__ = ["Node", "describe", "did_you_mean"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an HTTP field name (RFC 9110, 5.1)


@dataclass(frozen=True, slots=True)
class Node:
    """One value from a config file and where it was written.

    ``value`` is a ``dict[str, Node]`` for a mapping, a ``list[Node]`` for a
    list, and the parsed scalar (str, int, float, bool, None, or a date)
    otherwise. ``line`` is the line of the key that holds the value (or of the
    list item); ``path`` is the key path from the top ("" for the document).
    """

    value: object
    file: str
    line: int | None
    path: str

    def key_path(self, key: str | int) -> str:
        """The path of a child of this node."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def error(self, message: str) -> ConfigError:
        """A ConfigError about this value (the caller raises it)."""
        return ConfigError(message, file=self.file, line=self.line, path=self.path)

    def mapping(self, allowed: Collection[str] | None = None, *, kind: str = "") -> dict[str, Node]:
        """The entries of a mapping; a key not in ``allowed`` is an error with a did-you-mean.

        ``kind`` names what the mapping is when the allowed keys depend on it
        ("a directory origin").
        """
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping, not {describe(self.value)}")
        entries: dict[str, Node] = self.value
        if allowed is not None:
            for key, child in entries.items():
                if key not in allowed:
                    where = f" for {kind}" if kind else ""
                    raise child.error(f"unknown key{where}{did_you_mean(key, allowed)}")
        return entries

    def required(self, key: str) -> Node:
        """The child ``key`` of this mapping; its absence is an error at this mapping's line."""
        child = self.mapping().get(key)
        if child is None:
            raise ConfigError(
                "missing required key", file=self.file, line=self.line, path=self.key_path(key)
            )
        return child

    def sequence(self) -> list[Node]:
        if not isinstance(self.value, list):
            raise self.error(f"expected a list, not {describe(self.value)}")
        items: list[Node] = self.value
        return items

    def string(self) -> str:
        if not isinstance(self.value, str):
            raise self.error(f"expected a string, not {describe(self.value)}")
        return self.value

    def single_line(self, what: str = "a value") -> str:
        """A non-empty string without control characters (it ends up in headers or logs)."""
        value = self.string()
        if not value.strip() or _CONTROL.search(value):
            raise self.error(f"{what} must be a non-empty single line")
        return value

    def header_name(self) -> str:
        """A string that is a valid HTTP header name."""
        value = self.string()
        if not _TOKEN.fullmatch(value):
            raise self.error(f"{value!r} is not a valid header name")
        return value

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false, not {describe(self.value)}")
        return self.value

    def integer(self, minimum: int | None = None, maximum: int | None = None) -> int:
        """A whole number within ``minimum``..``maximum`` (booleans are not numbers here)."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected a whole number, not {describe(value)}")
        _check_range(self, value, minimum, maximum)
        return value

    def number(self, minimum: float | None = None, maximum: float | None = None) -> float:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"expected a number, not {describe(value)}")
        _check_range(self, value, minimum, maximum)
        return float(value)


def _check_range(node: Node, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        raise node.error(f"{value} is out of range: must be {minimum} to {maximum}")
    if minimum is not None and value < minimum:
        raise node.error(f"{value} is out of range: must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise node.error(f"{value} is out of range: must be at most {maximum}")


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """A suffix for an error about ``word``: the closest choice, or all of them."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; expected one of: {', '.join(choices)}"


def describe(value: object) -> str:
    """A short name for the type of a parsed value, for error messages."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return f"a {type(value).__name__}"
