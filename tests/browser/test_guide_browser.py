"""The implementation guide in a real Chromium: the site is served over HTTP on a loopback
port, the index opened, and every internal link followed breadth-first. Each page must answer
200 and have a title, every link name a page (or file) that answers 200 and every
``#fragment`` an id of its page; external links are only checked for being well-formed (no
network). The pages visited must be every page generated: none is unreachable.

Two sites: one generated here from the sample conformance resources (tests/unit/guide_samples)
with the real mapping pages and fixtures, and the committed docs/guide."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import pytest
from playwright.async_api import Page

from sandbox.guide.links import well_formed_external
from sandbox.guide.load import GUIDE_DIR, read_inputs
from sandbox.guide.publish import write_site
from sandbox.guide.render import build
from tests.support.guide import sample_inputs

pytestmark = pytest.mark.browser


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # the test reports what failed
        pass


def serve(root: Path) -> Iterator[str]:
    """The folder over HTTP on a free loopback port (the OS picks it) until the test ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(params=["samples", "committed"])
def guide_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Path, int]]:
    """(URL of the site, its folder, how many pages the generator made)."""
    if request.param == "samples":
        root = tmp_path / "guide"
        site = build(sample_inputs())
        write_site(site, root)
    else:
        root, site = GUIDE_DIR, build(read_inputs())
    pages = sum(1 for path in site if path.endswith(".html"))
    yield from ((url, root, pages) for url in serve(root))


async def test_every_internal_link_of_the_guide_works(page: Page, guide_site):
    base, root, pages = guide_site
    failed: list[str] = []
    page.on(
        "response",
        lambda r: failed.append(f"{r.url}: {r.status}") if r.status >= 400 else None,
    )
    page.on("requestfailed", lambda r: failed.append(f"{r.url}: {r.failure}"))
    ids: dict[str, set[str]] = {}
    fragments: list[tuple[str, str, str]] = []  # (on page, target page, fragment)
    files: set[str] = set()  # internal links to what is not a page (the stylesheet)
    problems: list[str] = []
    queue = deque([urljoin(base, "index.html")])
    seen = set(queue)
    while queue:
        url = queue.popleft()
        response = await page.goto(url)
        assert response is not None and response.status == 200, url
        assert (await page.title()).strip(), f"{url}: no title"
        ids[url] = set(await page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        hrefs = await page.eval_on_selector_all(
            "a[href], link[href]", "els => els.map(e => e.getAttribute('href'))"
        )
        for href in hrefs:
            absolute = urljoin(url, href)
            if not absolute.startswith(base):
                if not well_formed_external(href):
                    problems.append(f"{url}: malformed external link {href!r}")
                continue
            target, fragment = urldefrag(absolute)
            if fragment:
                fragments.append((url, target, fragment))
            if not target.endswith(".html"):
                files.add(target)
            elif target not in seen:
                seen.add(target)
                queue.append(target)
    for target in sorted(files):
        answer = await page.request.get(target)
        if answer.status != 200:
            problems.append(f"{target}: {answer.status}")
    for on_page, target, fragment in fragments:
        if fragment not in ids.get(target, set()):
            problems.append(f"{on_page}: no #{fragment} in {target}")
    assert problems == [] and failed == []
    generated = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.html"))
    visited = sorted(urlsplit(u).path.removeprefix("/") for u in ids)
    assert visited == generated
    assert len(ids) == pages
