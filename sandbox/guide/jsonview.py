"""A JSON document as pretty-printed, escaped HTML, with every string that is a canonical URL
of the guide (a ``meta.profile``, an extension's ``url``, a coding's ``system``…) linked to
its page. The text is what ``json.dumps(indent=2)`` writes, so it can be copied as JSON."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any

from markupsafe import Markup, escape

Resolve = Callable[[str], str | None]  # a string value → the href of its page, if any


def render_json(document: Any, href_of: Resolve) -> Markup:
    parts: list[str] = []
    _value(document, href_of, 0, parts)
    return Markup("".join(parts))  # noqa: S704 (every piece above is escaped)


def strings(document: Any) -> set[str]:
    """Every string value in a JSON document (keys apart)."""
    if isinstance(document, str):
        return {document}
    if isinstance(document, dict):
        return set().union(*(strings(v) for v in document.values()))
    if isinstance(document, list):
        return set().union(*(strings(v) for v in document))
    return set()


def _text(value: Any) -> str:
    # text content, not an attribute: quotes need no escaping, and the JSON stays readable
    return html.escape(json.dumps(value, ensure_ascii=False), quote=False)


def _value(value: Any, href_of: Resolve, depth: int, out: list[str]) -> None:
    pad = "  " * (depth + 1)
    if isinstance(value, dict) and value:
        out.append("{\n")
        for i, (key, item) in enumerate(value.items()):
            out.append(f'{pad}<span class="key">{_text(key)}</span>: ')
            _value(item, href_of, depth + 1, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append("  " * depth + "}")
    elif isinstance(value, list) and value:
        out.append("[\n")
        for i, item in enumerate(value):
            out.append(pad)
            _value(item, href_of, depth + 1, out)
            out.append(",\n" if i < len(value) - 1 else "\n")
        out.append("  " * depth + "]")
    elif isinstance(value, str):
        text = _text(value)
        href = href_of(value)
        if href is None:
            out.append(f'<span class="string">{text}</span>')
        else:
            out.append(f'<a class="string" href="{escape(href)}">{text}</a>')
    else:
        out.append(_text(value))
