"""Where each page of the guide lives, and how one page links to another.

Pages are POSIX paths relative to the site's root (``profiles/<id>.html``). A link is written
relative to the page it is on, so the site works from any folder and over any HTTP root.
A canonical URL of a resource in the guide links to its page; an HL7 core definition links
to the R4 specification (external); anything else is shown as text.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from sandbox.guide.model import DuplicatePage, Example, GuideInputs, Kind, MappingPage, Resource

INDEX = "index.html"
OVERVIEW = "mapping.html"  # contracts/fhir/README.md: the shared rules
EXAMPLES = "examples/index.html"
STYLE = "style.css"
FHIR_R4 = "https://hl7.org/fhir/R4"
_CORE_DEFINITION = "http://hl7.org/fhir/StructureDefinition/"


@dataclass(frozen=True)
class Link:
    """What a template shows for a reference: a link (internal or external) or plain text."""

    text: str
    href: str | None = None
    external: bool = False


def resource_page(resource: Resource) -> str:
    return f"{resource.kind.folder}/{resource.id}.html"


def family_page(page: MappingPage) -> str:
    return OVERVIEW if page.stem == "README" else f"families/{page.stem}.html"


def example_page(example: Example) -> str:
    return f"examples/{example.source}/{example.family}/{example.name}.html"


def core_spec_url(resource_type: str) -> str:
    """The R4 specification's page of a resource or datatype."""
    return f"{FHIR_R4}/{resource_type.lower()}.html"


def external_href(url: str) -> str | None:
    """Where an unknown canonical may be linked outside the guide: HL7's core definitions to
    the R4 specification, other http(s) URLs as they are, except the illustrative
    ``example`` domains (they name things, nobody serves them)."""
    if url.startswith(_CORE_DEFINITION):
        return core_spec_url(url.removeprefix(_CORE_DEFINITION))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if "example" in (parts.hostname or "").split("."):
        return None
    return url


def _unversioned(canonical: str) -> str:
    return canonical.split("|", 1)[0]


class Site:
    """The page of every input, and the canonical URLs the guide can resolve."""

    def __init__(self, inputs: GuideInputs) -> None:
        self.inputs = inputs
        self.canonical: dict[str, str] = {}
        self.events: dict[tuple[str, str], str] = {}
        self.titles: dict[str, str] = {}
        pages: dict[str, str] = {}
        for resource in inputs.resources:
            page = resource_page(resource)
            _claim(pages, page, resource.file_name)
            self.titles[page] = resource.title
            for uri in resource.canonicals():
                if uri in self.canonical:
                    raise DuplicatePage(f"{resource.file_name}: {uri} is already defined")
                self.canonical[uri] = page
            coding = resource.document.get("eventCoding")
            if resource.kind is Kind.MESSAGE and isinstance(coding, dict):
                self.events[(str(coding.get("system")), str(coding.get("code")))] = page
        self.families = {p.stem: family_page(p) for p in inputs.mapping}
        for mapping in inputs.mapping:
            _claim(pages, family_page(mapping), mapping.file_name)
        for example in inputs.examples:
            _claim(pages, example_page(example), example.fixture_path)

    def resolve(self, canonical: str) -> str | None:
        return self.canonical.get(_unversioned(canonical))

    def event_page(self, example: Example) -> str | None:
        event = example.event()
        return self.events.get(event) if event else None

    def linker(self, page: str) -> Linker:
        return Linker(self, page)

    def of_kind(self, kind: Kind) -> list[Resource]:
        return sorted(
            (r for r in self.inputs.resources if r.kind is kind), key=lambda r: r.title.lower()
        )


def _claim(pages: dict[str, str], page: str, owner: str) -> None:
    if page in pages:
        raise DuplicatePage(f"{owner} and {pages[page]} would both be {page}")
    pages[page] = owner


class Linker:
    """Links as written on one page."""

    def __init__(self, site: Site, page: str) -> None:
        self.site = site
        self.here = page

    def href(self, target: str, anchor: str | None = None) -> str:
        relative = posixpath.relpath(target, posixpath.dirname(self.here) or ".")
        return quote(relative) + (f"#{quote(anchor)}" if anchor else "")

    def page(self, target: str, text: str, anchor: str | None = None) -> Link:
        return Link(text=text, href=self.href(target, anchor))

    def canonical(self, url: str, text: str | None = None) -> Link:
        page = self.site.resolve(url)
        if page is not None:
            return Link(text=text or self.site.titles[page], href=self.href(page))
        external = external_href(_unversioned(url))
        return Link(text=text or url, href=external, external=external is not None)

    def canonicals(self, urls: Iterable[str]) -> list[Link]:
        return [self.canonical(u) for u in urls]
