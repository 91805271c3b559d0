"""The Markdown mapping pages as HTML (markdown-it-py, CommonMark and tables, raw HTML off:
a page's text is data and is escaped).

Headings get the anchors GitHub gives them, so the pages' own ``#fragment`` links keep
working. An inline code span that is a canonical URL of the guide (an extension's, a code
system's) links to its page. Relative links are rewritten: ``<family>.md`` to that family's
page, ``README.md`` to the overview; a link that leaves ``contracts/fhir`` for another file of
the repository is not in the guide, and is shown as its repository path instead.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import escape

# where the mapping pages sit in the repository: their relative links start here
MAPPING_DIR = "contracts/fhir"


@dataclass(frozen=True)
class Target:
    """Where a Markdown link goes in the guide: a page (with an anchor), a URL outside the
    site, or a repository file the guide does not hold (``repo_path``)."""

    page: str | None = None
    anchor: str | None = None
    url: str | None = None
    repo_path: str | None = None


@dataclass(frozen=True)
class FamilyRow:
    """A row of the README's table of families."""

    family: str
    page: str | None  # the mapping page's stem
    direction: str
    focus: str


def slug(text: str) -> str:
    """GitHub's anchor for a heading's text (lowercase, spaces to '-', punctuation dropped
    except '-' and '_')."""
    kept = "".join(c for c in text.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def resolve(href: str, pages: Mapping[str, str]) -> Target:
    """Where ``href``, written in a mapping page, goes. ``pages``: Markdown stem → page."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc:
        return Target(url=href)
    anchor = parts.fragment or None
    if not parts.path:
        return Target(anchor=anchor)
    path = posixpath.normpath(posixpath.join(MAPPING_DIR, parts.path))
    folder, name = posixpath.split(path)
    if folder == MAPPING_DIR and name.endswith(".md") and name.removesuffix(".md") in pages:
        return Target(page=pages[name.removesuffix(".md")], anchor=anchor)
    return Target(repo_path=path + (f"#{parts.fragment}" if parts.fragment else ""))


def _text(token: Token) -> str:
    return "".join(c.content for c in token.children or () if c.type in ("text", "code_inline"))


def _add_heading_ids(tokens: Sequence[Token]) -> None:
    seen: dict[str, int] = {}
    for opening, inline in pairwise(tokens):
        if opening.type != "heading_open":
            continue
        base = slug(_text(inline))
        count = seen.get(base, 0)
        seen[base] = count + 1
        opening.attrSet("id", base if count == 0 else f"{base}-{count}")


def _link_rules(href_of: Callable[[Target], str | None]) -> Callable[..., str]:
    def link_open(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        target = resolve(str(token.attrGet("href") or ""), env["pages"])
        if target.repo_path is not None:
            env["closers"].append("</span>")
            path = escape(target.repo_path)
            return f'<span class="repo-path" title="in the repository: {path}">'
        href = href_of(target)
        if href is None:
            env["closers"].append("</span>")
            return "<span>"
        token.attrSet("href", href)
        if target.url is not None:
            token.attrSet("class", "external")
            token.attrSet("rel", "external")
        env["closers"].append("</a>")
        return self.renderToken(tokens, idx, options, env)

    return link_open


def _link_close(
    self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    closer: str = env["closers"].pop()  # what its link_open opened
    return closer


def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False}).enable("table")


def _code_rule(code_href: Callable[[str], str | None]) -> Callable[..., str]:
    def code_inline(
        self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        content = tokens[idx].content
        code = f"<code>{escape(content)}</code>"
        href = None if env["closers"] else code_href(content)  # never a link in a link
        return code if href is None else f'<a href="{escape(href)}">{code}</a>'

    return code_inline


def render_markdown(
    text: str,
    pages: Mapping[str, str],
    href_of: Callable[[Target], str | None],
    code_href: Callable[[str], str | None] = lambda _: None,
) -> str:
    """The page as HTML. ``pages``: Markdown stem → guide page; ``href_of``: how the page
    writes a link to a :class:`Target` (``None``: not linked); ``code_href``: where an inline
    code span links, if anywhere (a canonical URL of the guide: its page)."""
    md = _parser()
    md.add_render_rule("link_open", _link_rules(href_of))
    md.add_render_rule("link_close", _link_close)
    md.add_render_rule("code_inline", _code_rule(code_href))
    env: dict[str, Any] = {"pages": pages, "closers": []}
    tokens = md.parse(text, env)
    _add_heading_ids(tokens)
    html: str = md.renderer.render(tokens, md.options, env)
    return html


def first_heading(text: str) -> str | None:
    tokens = _parser().parse(text)
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open" and opening.tag == "h1":
            return _text(inline)
    return None


def family_rows(readme: str) -> list[FamilyRow]:
    """The README's table of families: family, page, direction, FHIR focus."""
    tokens = _parser().parse(readme)
    rows: list[list[Token]] = []
    inside_body = False
    for token in tokens:
        if token.type == "tbody_open":
            inside_body = True
        elif token.type == "tbody_close":
            break
        elif inside_body and token.type == "tr_open":
            rows.append([])
        elif inside_body and token.type == "inline":
            rows[-1].append(token)
    found = []
    for cells in rows:
        if len(cells) < 4:
            continue
        links = [str(c.attrGet("href")) for c in cells[1].children or () if c.type == "link_open"]
        stem = None
        if links:
            name = urlsplit(links[0]).path
            stem = name.removesuffix(".md") if name.endswith(".md") and "/" not in name else None
        found.append(FamilyRow(_plain(cells[0]), stem, _plain(cells[2]), _plain(cells[3])))
    return found


def _plain(inline: Token) -> str:
    return "".join(
        c.content for c in inline.children or () if c.type in ("text", "code_inline", "softbreak")
    ).strip()
