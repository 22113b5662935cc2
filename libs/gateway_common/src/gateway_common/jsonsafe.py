"""A JSON loader for request bodies: refuses what the standard loader turns into a crash downstream.

``json.loads`` raises ``RecursionError`` (not a ``ValueError``) on deep nesting, a plain
``ValueError`` on integers past ``sys.int_max_str_digits``, accepts ``NaN``/``Infinity`` and
``1e999`` (a float infinity), and returns lone UTF-16 surrogates (``"\\ud800"``) that PostgreSQL,
UTF-8 encoders and jsonb refuse later, mid-transaction. Every one of those is raised here as
``UnsafeJSONError``, a ``json.JSONDecodeError`` (so a ``ValueError``): Flask's ``get_json``,
webargs and every ``except ValueError`` treat it as a body that is not valid JSON.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 32
MAX_NUMBER_LENGTH = 100

# A surrogate can only come from a \\uD800-\\uDFFF escape (strict UTF-8 decoding refuses encoded ones)
# or from a str given directly; bodies with neither skip the walk below.
_SURROGATE_HINT = re.compile(r"\\u[dD][89a-fA-F]|[\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class UnsafeJSONError(json.JSONDecodeError):
    """A body the loader refuses; ``reason`` says why in words a client can act on."""

    def __init__(self, reason: str, doc: str) -> None:
        # A non-empty doc: webargs reads an empty one as "no body".
        super().__init__(reason, doc or " ", 0)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise UnsafeJSONError(f"a number is longer than {MAX_NUMBER_LENGTH} characters", text[:16])
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_LENGTH:
        raise UnsafeJSONError(f"a number is longer than {MAX_NUMBER_LENGTH} characters", text[:16])
    value = float(text)
    if not math.isfinite(value):
        raise UnsafeJSONError("a number is out of range", text)
    return value


def _parse_constant(name: str) -> float:
    raise UnsafeJSONError(f"{name} is not a JSON number", name)


_DECODER = json.JSONDecoder(parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)


def _check(value: Any, text: str, surrogates: bool) -> None:
    """Walk the document without recursion: depth, and lone surrogates in keys and strings."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise UnsafeJSONError(f"nested deeper than {MAX_DEPTH} levels", text)
            for key, item in node.items():
                if surrogates and _SURROGATE.search(key):
                    raise UnsafeJSONError("a key holds a lone UTF-16 surrogate (\\ud800-\\udfff)", text)
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise UnsafeJSONError(f"nested deeper than {MAX_DEPTH} levels", text)
            stack.extend((item, depth + 1) for item in node)
        elif surrogates and isinstance(node, str) and _SURROGATE.search(node):
            raise UnsafeJSONError("a string holds a lone UTF-16 surrogate (\\ud800-\\udfff)", text)


def loads(data: str | bytes | bytearray, **_ignored: Any) -> Any:
    """Parse a request body, raising ``ValueError`` (``json.JSONDecodeError``) for anything unsafe."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode(json.detect_encoding(data))
        except UnicodeDecodeError as exc:
            raise UnsafeJSONError("the body is not UTF-8", " ") from exc
    else:
        text = data
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM", text, 0)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise UnsafeJSONError(f"nested deeper than {MAX_DEPTH} levels", text) from None
    except UnsafeJSONError:
        raise
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # int() past sys.int_max_str_digits, and the like
        raise UnsafeJSONError("a number is too large", text) from exc
    # Opening brackets bound the depth; a document with few of them needs no walk.
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    surrogates = _SURROGATE_HINT.search(text) is not None
    if deep or surrogates:
        _check(value, text, surrogates)
    return value
