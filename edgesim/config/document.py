"""Config text (YAML, JSON or TOML) read into a tree of Nodes that remember their line.

The loader validates this tree, never a plain dict, so every error it raises
can name the file, the line and the key path (``behaviors[0].cache.min_ttl``).
This module is the only place that parses config files.

Each mapping entry carries the line of its key; each list item the line it
starts on. JSON and YAML keep exact lines; TOML's lines are looked up by key
(best effort: a key inside a multi-line value falls back to its table's line).
"""

from __future__ import annotations

import bisect
import json
import re
import tomllib
from pathlib import Path

import yaml

from edgesim.config.node import Node, describe
from edgesim.errors import ConfigError

__all__ = ["FORMATS", "read_document", "read_document_file"]

FORMATS = ("yaml", "json", "toml")
# A file's format is named by its extension.
_SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".toml": "toml"}


def read_document_file(path: Path, what: str) -> tuple[str, str]:
    """The text of the ``what`` file (a config, a scenario) at ``path`` and its format.

    ConfigError, naming the file, when the extension names no format or the
    file cannot be read as UTF-8 text.
    """
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"unknown {what} file type {path.suffix!r}; use .yaml, .yml, .json or .toml",
            file=str(path),
        )
    try:
        return path.read_text(encoding="utf-8"), fmt
    except OSError as exc:
        raise ConfigError(f"cannot read the {what}: {exc.strerror}", file=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} is not UTF-8 text", file=str(path)) from None


def read_document(text: str, fmt: str, file: str) -> Node:
    """Parse ``text`` as ``fmt`` ("yaml", "json" or "toml") into a Node tree.

    Syntax errors, duplicate keys and an empty document raise ConfigError.
    """
    if fmt == "yaml":
        root = _read_yaml(text, file)
    elif fmt == "json":
        root = _read_json(text, file)
    elif fmt == "toml":
        root = _read_toml(text, file)
    else:
        raise ConfigError(
            f"unknown config format {fmt!r}; use one of {', '.join(FORMATS)}", file=file
        )
    if root is None or root.value is None:
        raise ConfigError("the config is empty", file=file, line=1)
    if not isinstance(root.value, dict):
        raise root.error(f"the top level must be a mapping of keys, not {describe(root.value)}")
    return root


# --- YAML: walk the composed node tree, which keeps every node's position ---

_YAML_MERGE = "tag:yaml.org,2002:merge"


def _read_yaml(text: str, file: str) -> Node | None:
    loader = yaml.SafeLoader(text)
    try:
        document = loader.get_single_node()
        if document is None:
            return None
        return _YamlWalker(loader, file).value(document, document.start_mark.line + 1, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"invalid YAML: {problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()


class _YamlWalker:
    """Turns PyYAML's composed nodes into Nodes; scalars are typed by PyYAML's safe rules."""

    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.open: set[int] = set()  # nodes being walked, to refuse a recursive alias

    def value(self, node: yaml.Node, line: int, path: str) -> Node:
        """The value of ``node``, held by a key (or list item) on ``line``."""
        here = Node(None, self.file, line, path)
        if id(node) in self.open:
            raise here.error("an alias refers to the mapping or list that contains it")
        if isinstance(node, yaml.ScalarNode):
            try:
                return Node(self.loader.construct_object(node), self.file, line, path)
            except yaml.constructor.ConstructorError as exc:
                raise here.error(f"invalid YAML value: {exc.problem}") from None
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return Node(self.entries(node, here), self.file, line, path)
            items = [
                self.value(item, item.start_mark.line + 1, here.key_path(i))
                for i, item in enumerate(node.value)
            ]
            return Node(items, self.file, line, path)
        finally:
            self.open.discard(id(node))

    def entries(self, node: yaml.MappingNode, here: Node) -> dict[str, Node]:
        entries: dict[str, Node] = {}
        merged: dict[str, Node] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _YAML_MERGE:
                # `<<: *defaults` (or a list of them, earlier ones first): keys
                # written in this mapping override merged ones, as in PyYAML.
                many = isinstance(value_node, yaml.SequenceNode)
                for source in value_node.value if many else [value_node]:
                    if not isinstance(source, yaml.MappingNode):
                        raise ConfigError(
                            "a merge key (<<) takes a mapping or a list of mappings",
                            file=self.file,
                            line=key_line,
                            path=here.path,
                        )
                    for name, child in self.value(source, key_line, here.path).mapping().items():
                        merged.setdefault(name, child)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(
                    "a key must be a plain name", file=self.file, line=key_line, path=here.path
                )
            # The key as written: `404:` or `on:` stay the strings "404" and "on".
            key = str(key_node.value)
            if key in entries:
                raise ConfigError(
                    f"duplicate key (first given on line {entries[key].line})",
                    file=self.file,
                    line=key_line,
                    path=here.key_path(key),
                )
            entries[key] = self.value(value_node, key_line, here.key_path(key))
        return {**merged, **entries}


# --- JSON: validate with the json module, then walk the text for positions ---

_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_JSON_DECODER = json.JSONDecoder()


def _read_json(text: str, file: str) -> Node | None:
    if not text.strip():
        return None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid JSON: {exc.msg}", file=file, line=exc.lineno) from None
    return _JsonWalker(text, file).value(_JsonWalker.skip(text, 0), None, "")[0]


class _JsonWalker:
    """Walks JSON text that ``json.loads`` has accepted, noting each value's line."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.newlines = [i for i, ch in enumerate(text) if ch == "\n"]

    @staticmethod
    def skip(text: str, pos: int) -> int:
        match = _JSON_SPACE.match(text, pos)
        return match.end() if match else pos

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + 1

    def value(self, pos: int, line: int | None, path: str) -> tuple[Node, int]:
        """The value starting at ``pos`` and the position after it."""
        text, file = self.text, self.file
        here = Node(None, file, line if line is not None else self.line_at(pos), path)
        if text[pos] == "{":
            entries: dict[str, Node] = {}
            pos = self.skip(text, pos + 1)
            while text[pos] != "}":
                key_line = self.line_at(pos)
                key, pos = json.decoder.scanstring(text, pos + 1)  # type: ignore[attr-defined]
                if key in entries:
                    raise ConfigError(
                        f"duplicate key (first given on line {entries[key].line})",
                        file=file,
                        line=key_line,
                        path=here.key_path(key),
                    )
                pos = self.skip(text, self.skip(text, pos) + 1)  # past the ':'
                entries[key], pos = self.value(pos, key_line, here.key_path(key))
                pos = self.skip(text, pos)
                if text[pos] == ",":
                    pos = self.skip(text, pos + 1)
            return Node(entries, file, here.line, path), pos + 1
        if text[pos] == "[":
            items: list[Node] = []
            pos = self.skip(text, pos + 1)
            while text[pos] != "]":
                item, pos = self.value(pos, None, here.key_path(len(items)))
                items.append(item)
                pos = self.skip(text, pos)
                if text[pos] == ",":
                    pos = self.skip(text, pos + 1)
            return Node(items, file, here.line, path), pos + 1
        value, end = _JSON_DECODER.raw_decode(text, pos)
        return Node(value, file, here.line, path), end


# --- TOML: tomllib for values, a line scan for where each key was written ---

_TOML_ERROR_LINE = re.compile(r"\(at line (\d+), column \d+\)")
_TOML_KEY = re.compile(r"""\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_-]+)\s*(\.|=|\])?""")


def _read_toml(text: str, file: str) -> Node | None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = _TOML_ERROR_LINE.search(message)
        line = int(match.group(1)) if match else None
        problem = _TOML_ERROR_LINE.sub("", message).strip()
        raise ConfigError(f"invalid TOML: {problem}", file=file, line=line) from None
    if not data:
        return None
    lines = _toml_lines(text)

    def build(value: object, key: tuple[str | int, ...], path: str, fallback: int) -> Node:
        line = lines.get(key, fallback)
        here = Node(None, file, line, path)
        if isinstance(value, dict):
            entries = {
                str(k): build(v, (*key, str(k)), here.key_path(str(k)), line)
                for k, v in value.items()
            }
            return Node(entries, file, line, path)
        if isinstance(value, list):
            items = [build(v, (*key, i), here.key_path(i), line) for i, v in enumerate(value)]
            return Node(items, file, line, path)
        return Node(value, file, line, path)

    return build(data, (), "", 1)


def _toml_dotted(text: str) -> tuple[list[str], str]:
    """Split a dotted key at the start of ``text``; returns the parts and what follows."""
    parts: list[str] = []
    pos = 0
    while True:
        match = _TOML_KEY.match(text, pos)
        if not match:
            return parts, text[pos:]
        token = match.group(1)
        parts.append(token[1:-1] if token[0] in "\"'" else token)
        pos = match.end()
        if match.group(2) != ".":
            return parts, (match.group(2) or "") + text[pos:]


def _toml_lines(text: str) -> dict[tuple[str | int, ...], int]:
    """Map each key path (list items as indexes) to the line that defines it."""
    lines: dict[tuple[str | int, ...], int] = {}
    counts: dict[tuple[str | int, ...], int] = {}  # array-of-tables lengths so far
    table: tuple[str | int, ...] = ()

    def resolve(parts: list[str]) -> tuple[str | int, ...]:
        # Inside `[[behaviors]]`, `[behaviors.cache]` means the last item's cache.
        path: tuple[str | int, ...] = ()
        for part in parts:
            path = (*path, part)
            if path in counts:
                path = (*path, counts[path] - 1)
        return path

    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            parts, _ = _toml_dotted(stripped[2:])
            array = (*resolve(parts[:-1]), parts[-1]) if parts else ()
            counts[array] = counts.get(array, 0) + 1
            table = (*array, counts[array] - 1)
            lines.setdefault(array, number)
            lines[table] = number
        elif stripped.startswith("["):
            parts, _ = _toml_dotted(stripped[1:])
            for end in range(1, len(parts) + 1):
                lines.setdefault(resolve(parts[:end]), number)
            table = resolve(parts)
            lines[table] = number
        else:
            parts, rest = _toml_dotted(stripped)
            if parts and rest.startswith("="):
                for end in range(1, len(parts) + 1):
                    lines.setdefault((*table, *parts[:end]), number)
                _toml_inline_keys(rest[1:], (*table, *parts), number, lines)
    return lines


def _toml_inline_keys(
    text: str, prefix: tuple[str | int, ...], number: int, lines: dict[tuple[str | int, ...], int]
) -> None:
    """Give the keys of a one-line inline table (``{min_ttl = 0, ...}``) this line."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        return
    for piece in body[1:-1].split(","):
        parts, rest = _toml_dotted(piece)
        if parts and rest.lstrip().startswith("="):
            lines.setdefault((*prefix, *parts), number)
