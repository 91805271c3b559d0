"""A link checker for a generated site, over its files as text (pure: no I/O, no network).

Every page must be an HTML5 document with a ``lang``, a non-empty ``<title>`` and a link back
to the index, hold no id twice, and be reachable from the index. Every internal link (``href``
of ``<a>`` and ``<link>``, ``src``) must name a file of the site, and its ``#fragment`` an id
of that page. An external link is only checked for being a well-formed http(s) URL.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

from sandbox.guide.site import INDEX


@dataclass
class PageFacts:
    """What the checker reads from one HTML page."""

    doctype: bool = False
    lang: str | None = None
    title: str = ""
    ids: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self._in_title = False

    def handle_decl(self, decl: str) -> None:
        self.facts.doctype = self.facts.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "html":
            self.facts.lang = values.get("lang")
        if tag == "title":
            self._in_title = True
        if values.get("id"):
            self.facts.ids.append(str(values["id"]))
        for name in ("href", "src"):
            if values.get(name) is not None and tag in ("a", "link", "img", "script"):
                self.facts.links.append(str(values[name]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.facts.title += data


def read_page(html: str) -> PageFacts:
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.facts


def is_external(href: str) -> bool:
    parts = urlsplit(href)
    return bool(parts.scheme or parts.netloc)


def well_formed_external(href: str) -> bool:
    parts = urlsplit(href)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in href


def internal_target(page: str, href: str) -> tuple[str, str | None]:
    """(site path, fragment) of a relative link written on ``page``."""
    parts = urlsplit(href)
    path = unquote(parts.path)
    target = posixpath.normpath(posixpath.join(posixpath.dirname(page), path)) if path else page
    return target, (unquote(parts.fragment) or None)


def check_site(files: Mapping[str, str]) -> list[str]:
    """Every problem of the site, one line each; [] when every page and link is sound."""
    pages = {path: read_page(text) for path, text in files.items() if path.endswith(".html")}
    problems: list[str] = []
    if INDEX not in pages:
        return [f"no {INDEX}"]
    for path, facts in sorted(pages.items()):
        if not facts.doctype:
            problems.append(f"{path}: no <!DOCTYPE html>")
        if not facts.lang:
            problems.append(f"{path}: <html> has no lang")
        if not facts.title.strip():
            problems.append(f"{path}: no title")
        repeated = sorted({i for i in facts.ids if facts.ids.count(i) > 1})
        if repeated:
            problems.append(f"{path}: ids used twice: {', '.join(repeated)}")
        targets = set()
        for href in facts.links:
            if is_external(href):
                if not well_formed_external(href):
                    problems.append(f"{path}: malformed external link {href!r}")
                continue
            target, fragment = internal_target(path, href)
            targets.add(target)
            if target.startswith("../") or target not in files:
                problems.append(f"{path}: broken link {href!r}")
            elif fragment and (target not in pages or fragment not in pages[target].ids):
                problems.append(f"{path}: no anchor #{fragment} in {target} ({href!r})")
        if path != INDEX and INDEX not in targets:
            problems.append(f"{path}: no link back to the index")
    unreachable = sorted(set(files) - reachable(files, pages))
    problems.extend(f"{path}: not reachable from the index" for path in unreachable)
    return problems


def reachable(files: Mapping[str, str], pages: Mapping[str, PageFacts]) -> set[str]:
    """The files reached from the index by following internal links breadth-first."""
    seen = {INDEX}
    queue = deque([INDEX])
    while queue:
        page = queue.popleft()
        for href in pages[page].links:
            if is_external(href):
                continue
            target, _ = internal_target(page, href)
            if target in files and target not in seen:
                seen.add(target)
                if target in pages:
                    queue.append(target)
    return seen
