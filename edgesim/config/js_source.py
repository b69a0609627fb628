"""JavaScript source as cloudfront-js-1.0 reads it: the syntax it does not support.

cloudfront-js-1.0 is ES 5.1 plus a few later features (template literals,
arrow functions, rest parameters, ``**``), always in strict mode
(functions-javascript-runtime-10.html). The engine edgesim runs understands
all of modern JavaScript, so a function that uses what 1.0 lacks would work
here and fail on AWS. ``unsupported_syntax`` finds the constructs a 1.0 user
trips over, with their line, from a small tokenizer (strings, comments,
template literals and regular expressions are skipped):

* ``const``, ``let``, ``class``, ``import``, ``export``, ``yield`` (reserved
  words in ES 5.1 strict code; allowed as property names);
* ``async`` functions and ``await``; generators (``function*``);
* ``for (... of ...)``, destructuring declarations (``var {a} = ...``),
  optional chaining ``?.`` and nullish coalescing ``??``.

The message follows the 1.0 runtime's (njs) wording: ``Token "const" not
supported in this version``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Token", "tokens", "unsupported_syntax"]

_IDENT = re.compile(r"[A-Za-z_$\u0080-\uffff][\w$\u0080-\uffff]*")
_NUMBER = re.compile(r"\d[\w.]*|\.\d[\w]*")
_PUNCT = re.compile(r"\?\?=?|\?\.(?!\d)|\.\.\.|=>|[{}()\[\];,<>+\-*/%&|^!~?:=.]")
# After one of these, a "/" starts a regular expression, not a division.
_BEFORE_REGEX_WORDS = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case"}
)
_RESERVED = ("const", "let", "class", "import", "export", "yield", "await")


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "name", "punct", "other"
    text: str
    line: int


def tokens(source: str) -> list[Token]:
    """The names and punctuators of ``source``; literals and comments are dropped."""
    out: list[Token] = []
    i, line, n = 0, 1, len(source)
    braces: list[str] = []  # "{" or "`" for template substitutions
    while i < n:
        c = source[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif source.startswith("//", i):
            end = source.find("\n", i)
            i = n if end < 0 else end
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += source.count("\n", i, end)
            i = end
        elif c in "'\"":
            i, line = _skip_string(source, i, line)
            out.append(Token("other", "str", line))
        elif c == "`" or (c == "}" and braces and braces[-1] == "`"):
            if c == "}":
                braces.pop()
            i, line, opened = _skip_template(source, i + 1, line)
            if opened:
                braces.append("`")
            out.append(Token("other", "tpl", line))
        elif c == "/" and _regex_allowed(out):
            i, line = _skip_regex(source, i, line)
            out.append(Token("other", "re", line))
        elif m := _IDENT.match(source, i):
            out.append(Token("name", m.group(), line))
            i = m.end()
        elif m := _NUMBER.match(source, i):
            out.append(Token("other", "num", line))
            i = m.end()
        elif m := _PUNCT.match(source, i):
            text = m.group()
            if text == "{":
                braces.append("{")
            elif text == "}" and braces:
                braces.pop()
            out.append(Token("punct", text, line))
            i = m.end()
        else:
            i += 1
    return out


def unsupported_syntax(source: str) -> tuple[int, str] | None:
    """The first construct cloudfront-js-1.0 does not support: (line, what)."""
    toks = tokens(source)
    for k, tok in enumerate(toks):
        prev = toks[k - 1].text if k else ""
        nxt = toks[k + 1].text if k + 1 < len(toks) else ""
        if tok.kind == "punct" and tok.text in ("?.", "??", "??="):
            return tok.line, f'Token "{tok.text}" not supported in this version'
        if tok.kind != "name" or prev in (".", "?."):
            continue
        word = tok.text
        if word in _RESERVED and nxt != ":":
            return tok.line, f'Token "{word}" not supported in this version'
        if word == "async" and (nxt in {"function", "("} or _arrow_after(toks, k + 1)):
            return tok.line, 'Token "async" not supported in this version'
        if word == "function" and nxt == "*":
            return tok.line, "generators (function*) are not supported in this version"
        if word == "var" and nxt in ("{", "["):
            return tok.line, "destructuring declarations are not supported in this version"
        if word == "for" and nxt == "(" and _for_of(toks, k + 2):
            return tok.line, 'Token "of" not supported in this version'
    return None


def _arrow_after(toks: list[Token], k: int) -> bool:
    return k + 1 < len(toks) and toks[k].kind == "name" and toks[k + 1].text == "=>"


def _for_of(toks: list[Token], k: int) -> bool:
    depth = 1
    while k < len(toks) and depth:
        text = toks[k].text
        if text in "([{":
            depth += 1
        elif text in ")]}":
            depth -= 1
        elif depth == 1 and text == "of" and toks[k].kind == "name":
            return True
        elif depth == 1 and text == ";":
            return False
        k += 1
    return False


def _regex_allowed(out: list[Token]) -> bool:
    if not out:
        return True
    last = out[-1]
    if last.kind == "name":
        return last.text in _BEFORE_REGEX_WORDS
    if last.kind == "other":
        return False
    return last.text not in (")", "]", "}")


def _skip_string(source: str, i: int, line: int) -> tuple[int, int]:
    quote, i, n = source[i], i + 1, len(source)
    while i < n and source[i] != quote:
        if source[i] == "\\":
            i += 1
        elif source[i] == "\n":
            break  # an unterminated string: the engine reports it
        i += 1
    return i + 1, line


def _skip_template(source: str, i: int, line: int) -> tuple[int, int, bool]:
    """From inside a template literal to its end (False) or to a ``${`` (True)."""
    n = len(source)
    while i < n:
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            line += 1
        if c == "`":
            return i + 1, line, False
        if source.startswith("${", i):
            return i + 2, line, True
        i += 1
    return n, line, False


def _skip_regex(source: str, i: int, line: int) -> tuple[int, int]:
    i, n, in_class = i + 1, len(source), False
    while i < n:
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "\n":
            break
        if c == "[":
            in_class = True
        elif c == "]":
            in_class = False
        elif c == "/" and not in_class:
            i += 1
            break
        i += 1
    while i < n and (source[i].isalnum() or source[i] == "_"):
        i += 1  # flags
    return i, line
