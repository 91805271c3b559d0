"""A fast valid-or-not verdict on a contract (jsonschema-rs) that agrees with jsonschema.

:func:`services.messaging.contracts.violations` asks this first and runs jsonschema, which
names every violation, only when the verdict is "invalid". So this verdict may be stricter
than jsonschema (that only costs the full path) but never more lenient: a document jsonschema
rejects must never be called valid here. Two things in a contract read differently in Rust:

- ``format``: jsonschema-rs gets jsonschema's own format checkers (``FormatChecker``), so a
  date or a date-time is judged by the same code on both paths.
- ``pattern``: jsonschema-rs reads patterns as ECMA-262 regular expressions, where ``\\s``
  lacks U+001C–U+001F and U+0085 but has U+FEFF, and ``$`` is only the end of the text,
  unlike Python's ``re``. :func:`portable_pattern` spells ``\\s``, ``\\S`` and ``$`` out as
  Python means them. Any other escape or construct whose meaning the two engines might not
  share makes the contract :class:`NotPortable`, and it is then checked by jsonschema alone.

A value jsonschema-rs cannot take (bytes, a set, a lone surrogate) makes it raise, and NaN or
±Infinity (Python's json reads them) is invalid to it: jsonschema decides those. One
difference is left: a tuple is an array to jsonschema-rs but not to jsonschema. Documents
come from ``json.loads`` or from the translators, which build lists.

Exceptions::

    NotPortable    a pattern the two regular expression engines may read differently
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache, partial
from typing import Any

import jsonschema_rs
from jsonschema import FormatChecker

# Keywords whose values are data, not schemas: a "pattern" key inside them is not a regex.
_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})
# Escapes both engines read as the same single character.
_SAME_ESCAPES = frozenset("rntfv")
# Inside a class these are set operations in Rust and literal characters in Python.
_CLASS_OPERATORS = ("&&", "--", "~~")
# Python's $ also matches before a newline that ends the text ("SE123\n" is a match for
# "^SE[0-9]+$"). Consuming that newline can only match less where more follows the $.
_PYTHON_END = r"(?:\n?$)"
_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")


class NotPortable(ValueError):
    """A pattern the Rust engine may read differently from Python's ``re``."""


def verdict_registry(contracts: Iterable[dict[str, Any]]) -> jsonschema_rs.Registry:
    """Every contract by its ``$id``, patterns spelled for the Rust engine."""
    return jsonschema_rs.Registry(
        [(schema["$id"], portable_schema(schema)) for schema in contracts],
        draft=jsonschema_rs.Draft202012,
    )


def verdict_validator(
    schema: dict[str, Any], registry: jsonschema_rs.Registry
) -> jsonschema_rs.Validator:
    """Raise :class:`NotPortable` if a pattern of ``schema`` may be read differently."""
    return jsonschema_rs.Draft202012Validator(
        portable_schema(schema),
        registry=registry,
        formats=_python_formats(),
        validate_formats=True,
        offline=True,  # every $ref is in the registry; never fetch one
        # the linear-time engine: no look-around (not portable anyway), no backtracking limit
        pattern_options=jsonschema_rs.RegexOptions(),
    )


def portable_schema(schema: Any) -> Any:
    """A copy of ``schema`` with every ``pattern`` passed through :func:`portable_pattern`."""
    if isinstance(schema, list):
        return [portable_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copy: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "pattern" and isinstance(value, str):
            copy[key] = portable_pattern(value)
        elif key == "patternProperties" and isinstance(value, dict):
            copy[key] = {portable_pattern(k): portable_schema(v) for k, v in value.items()}
        elif key in _DATA_KEYWORDS:
            copy[key] = value
        else:
            copy[key] = portable_schema(value)
    return copy


def portable_pattern(pattern: str) -> str:
    """``pattern`` as the Rust engine must read it to match what Python's ``re.search``
    matches, or :class:`NotPortable`."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        char, following = pattern[i], pattern[i + 1 : i + 2]
        if char == "\\":
            if following in ("s", "S"):
                spelled = _python_space() if following == "s" else _python_non_space()
                out.append(spelled if in_class else f"[{spelled}]")
            elif following in _SAME_ESCAPES or (following and not following.isalnum()):
                out.append(char + following)
            else:  # \d \w \b, \x.., \u...., back references: engine-dependent
                raise NotPortable(f"escape \\{following} in {pattern!r}")
            i += 2
            continue
        if in_class:
            if char == "[" or pattern.startswith(_CLASS_OPERATORS, i):
                raise NotPortable(f"nested class or set operation in {pattern!r}")
            in_class = char != "]"
        elif char == "[":
            start = i + 2 if following == "^" else i + 1
            if pattern[start : start + 1] == "]":  # Python: a literal "]"; ECMA: an empty class
                raise NotPortable(f"class starting with ] in {pattern!r}")
            in_class = True
        elif char == "(" and following == "?":  # flags, look-around, named groups
            raise NotPortable(f"(? in {pattern!r}")
        elif char in "*+?" and following == "+":  # possessive in Python 3.11, not in Rust
            raise NotPortable(f"possessive quantifier in {pattern!r}")
        elif char == "{":  # Python reads "{,3}" as {0,3}, a "{" that is no quantifier literally
            quantifier = _QUANTIFIER.match(pattern, i)
            if quantifier is None or pattern[quantifier.end() : quantifier.end() + 1] == "+":
                raise NotPortable(
                    f"{{ that is no {{m}}, {{m,}} or {{m,n}} (or possessive) in {pattern!r}"
                )
            out.append(quantifier.group())
            i = quantifier.end()
            continue
        elif char == "}":
            raise NotPortable(f"}} after no quantifier in {pattern!r}")
        elif char == "$":
            out.append(_PYTHON_END)
            i += 1
            continue
        out.append(char)
        i += 1
    return "".join(out)


@cache
def _python_space() -> str:
    """What ``\\s`` means to Python's ``re``, as class ranges."""
    return _class(_space_spans())


@cache
def _python_non_space() -> str:
    """What ``\\S`` means to Python's ``re``: the gaps between the spaces, so the one over
    the surrogates is a single span (jsonschema-rs 0.60 misread a negated class with a span
    ending at U+D7FF and the next starting at U+E000)."""
    gaps: list[tuple[int, int]] = []
    low = 0
    for start, end in _space_spans():
        if low < start:
            gaps.append((low, start - 1))
        low = end + 1
    if low <= sys.maxunicode:
        gaps.append((low, sys.maxunicode))
    return _class(gaps)


@cache
def _space_spans() -> tuple[tuple[int, int], ...]:
    """The code points ``\\s`` matches in a str pattern (``str.isspace``), as spans."""
    spans: list[tuple[int, int]] = []
    for c in range(sys.maxunicode + 1):
        if chr(c).isspace():
            if spans and spans[-1][1] == c - 1:
                spans[-1] = (spans[-1][0], c)
            else:
                spans.append((c, c))
    return tuple(spans)


def _class(spans: Sequence[tuple[int, int]]) -> str:
    if any(0xD800 <= end <= 0xDFFF for span in spans for end in span):
        raise NotPortable("a class that starts or ends on a surrogate")
    return "".join(
        f"\\u{{{low:X}}}" if low == high else f"\\u{{{low:X}}}-\\u{{{high:X}}}"
        for low, high in spans
    )


@cache
def _python_formats() -> dict[str, Callable[[str], bool]]:
    checker = FormatChecker()
    return {name: partial(checker.conforms, format=name) for name in checker.checkers}
