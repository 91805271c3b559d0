"""The README and the pages under docs/ link to each other and to files of the repository:
every relative link must point at a file that exists, and every ``#anchor`` at a heading of
the page it names, slugged as GitHub does (lowercase, spaces to '-', punctuation dropped
except '-' and '_', a repeated heading numbered ``-1``, ``-2``…). Links inside code blocks
and inline code are not links; links with a scheme (https:, mailto:) are not checked."""

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
# a code span, which may wrap onto the next line of its paragraph
INLINE_CODE = re.compile(r"(`+)(?:[^`\n]|\n(?![ \t]*\n))+?\1")
# [text](target) and ![alt](target), the text possibly wrapped over lines; the target may
# sit in <…> and be followed by a title.
INLINE_LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)"
)
# [label]: target (reference definitions)
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        opened = FENCE.match(line)
        if fence is None and opened:
            fence = opened.group(1)[0] * len(opened.group(1))
        elif fence is not None:
            if line.strip().startswith(fence):
                fence = None
        else:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link outside code."""
    text = page.read_text(encoding="utf-8")
    kept = dict(prose_lines(text))
    prose = "\n".join(kept.get(n, "") for n in range(1, text.count("\n") + 2))
    # blank out code spans, keeping every line where it was
    prose = INLINE_CODE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), prose)
    found = []  # (offset, target)
    offset = 0
    for line in prose.split("\n"):
        definition = REFERENCE.match(line)
        if definition:
            found.append((offset, definition.group(1)))
        offset += len(line) + 1
    found += [(m.start(1), m.group(1)) for m in INLINE_LINK.finditer(prose)]
    return [
        (prose.count("\n", 0, at) + 1, t[1:-1] if t.startswith("<") else t)
        for at, t in sorted(found)
    ]


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Every relative link of ``page`` that names a missing file or heading."""
    problems = []
    for number, target in links(page):
        if SCHEME.match(target) or target.startswith("//"):
            continue
        path, _, anchor = target.partition("#")
        where = f"{page.relative_to(root)}:{number}: {target}"
        file = (page.parent / unquote(path)).resolve() if path else page
        if path.startswith("/") or not file.exists():
            problems.append(f"{where}: no such file")
        elif anchor and file.suffix == ".md" and unquote(anchor) not in anchors(file):
            problems.append(f"{where}: no heading with this anchor in {file.relative_to(root)}")
        elif anchor and file.suffix != ".md":
            problems.append(f"{where}: an anchor into a file that is not Markdown")
    return problems


def test_the_pages_exist() -> None:
    names = {p.name for p in PAGES}
    expected = {"operations.md", "vendors.md", "security.md", "guarantees.md", "performance.md"}
    assert names >= {"README.md", *expected}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_readme_links_every_page() -> None:
    targets = {t.partition("#")[0] for _, t in links(ROOT / "README.md")}
    for page in PAGES[1:]:
        assert f"docs/{page.name}" in targets, f"the README does not link docs/{page.name}"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Deviation reports (avvikelser)", "deviation-reports-avvikelser"),
        (
            "Confirmed by receipt, by read-back, or both",
            "confirmed-by-receipt-by-read-back-or-both",
        ),
        ("Replay, close and the CLI", "replay-close-and-the-cli"),
        ("Kafka security in `docker-compose.yml`", "kafka-security-in-docker-composeyml"),
        ("Tests in tiers", "tests-in-tiers"),
        ("Åtgärder & översikt_1", "åtgärder--översikt_1"),
    ],
)
def test_slugs_follow_github(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A\n\n## Known heading\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "# R\n\n[ok](docs/a.md#known-heading) [self](#r) [web](https://example.org/#x)\n"
        "`[code](nowhere.md)`\n\n```\n[fenced](nowhere.md)\n```\n\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#unknown) [bad self](#nothing)\n"
        "a link [wrapped over\ntwo lines](docs/c.md) and `code that\nwraps [x](nowhere.md)`\n",
        encoding="utf-8",
    )
    assert broken_links(page, tmp_path) == [
        "README.md:10: docs/b.md: no such file",
        "README.md:10: docs/a.md#unknown: no heading with this anchor in docs/a.md",
        "README.md:10: #nothing: no heading with this anchor in README.md",
        "README.md:12: docs/c.md: no such file",
    ]
