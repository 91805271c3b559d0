"""The whole guide as ``{page path: text}``, from its inputs (pure: no I/O, no clock).

Pages: ``index.html``; ``mapping.html`` (the shared rules, ``contracts/fhir/README.md``) and
``families/<family>.html``; one page per conformance resource under its kind's folder
(``profiles/``, ``extensions/``, ``codesystems/``, ``valuesets/``, ``namingsystems/``,
``messages/``, ``capabilities/``, ``resources/``); ``examples/index.html`` and one page per
golden FHIR message, ``examples/<source>/<family>/<name>.html``; and ``style.css``. Jinja2
escapes everything the templates print; the only markup passed in is built by
:mod:`sandbox.guide.markdown` and :mod:`sandbox.guide.jsonview`, which escape their text.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from sandbox.guide import views
from sandbox.guide.jsonview import render_json, strings
from sandbox.guide.markdown import Target, family_rows, first_heading, render_markdown
from sandbox.guide.model import Example, GuideInputs, Kind, MappingPage, Resource
from sandbox.guide.site import (
    EXAMPLES,
    INDEX,
    OVERVIEW,
    STYLE,
    Link,
    Linker,
    Site,
    example_page,
    family_page,
    resource_page,
)

TEMPLATES = Path(__file__).parent / "templates"
_TEMPLATE_OF_KIND = {
    Kind.PROFILE: "structure.html",
    Kind.EXTENSION: "structure.html",
    Kind.CODE_SYSTEM: "codesystem.html",
    Kind.VALUE_SET: "valueset.html",
    Kind.NAMING_SYSTEM: "namingsystem.html",
    Kind.MESSAGE: "message.html",
    Kind.CAPABILITY: "capability.html",
    Kind.OTHER: "resource.html",
}


def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


class _Pages:
    """Renders pages into one dict, each with the links of its own place."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.env = environment()
        self.out: dict[str, str] = {}

    def emit(self, page: str, template: str, title: str, **context: Any) -> None:
        to = self.site.linker(page)
        self.out[page] = self.env.get_template(template).render(
            title=title,
            to=to,
            index=INDEX,
            overview=OVERVIEW,
            examples=EXAMPLES,
            style=STYLE,
            has_overview=OVERVIEW in self.site.families.values(),
            **context,
        )


def build(inputs: GuideInputs) -> dict[str, str]:
    """Every file of the site: relative POSIX path → its text."""
    site = Site(inputs)
    pages = _Pages(site)
    titles = site.titles
    referenced_by = _referenced_by(site)
    examples_of = _examples_of(site)

    for resource in inputs.resources:
        page = resource_page(resource)
        pages.emit(
            page,
            _TEMPLATE_OF_KIND[resource.kind],
            title=f"{resource.title} ({resource.resource_type})",
            resource=resource,
            view=_view(resource, site.linker(page)),
            referenced_by=[(p, titles[p]) for p in sorted(referenced_by[page])],
            used_in=examples_of[page],
            example_page=example_page,
            json=render_json(resource.document, _href_in(site.linker(page))),
        )
    for mapping in inputs.mapping:
        _family(pages, mapping, [e for e in inputs.examples if e.family == mapping.stem])
    for example in inputs.examples:
        page = example_page(example)
        to = site.linker(page)
        family = site.families.get(example.family)
        pages.emit(
            page,
            "example.html",
            title=f"Example: {example.family} / {example.name} ({example.source})",
            example=example,
            family=to.page(family, example.family) if family else None,
            message=site.event_page(example),
            profiles=_profiles_of(example, to),
            json=render_json(example.document, _href_in(to)),
        )
    pages.emit(
        EXAMPLES,
        "examples.html",
        title="Examples",
        groups=_by_family(inputs.examples),
        families=site.families,
        example_page=example_page,
    )
    _index(pages, inputs)
    pages.out[STYLE] = (TEMPLATES / STYLE).read_text(encoding="utf-8")
    return dict(sorted(pages.out.items()))


def _view(resource: Resource, to: Linker) -> Any:
    kind = resource.kind
    if kind in (Kind.PROFILE, Kind.EXTENSION):
        return {
            "base": views.base_link(resource, to),
            "contexts": views.contexts(resource),
            "elements": views.element_rows(resource, to),
        }
    if kind is Kind.CODE_SYSTEM:
        return list(views.concepts(resource.document))
    if kind is Kind.VALUE_SET:
        return {
            "include": views.includes(resource, to),
            "exclude": views.includes(resource, to, "exclude"),
        }
    if kind is Kind.NAMING_SYSTEM:
        return views.unique_ids(resource)
    if kind is Kind.MESSAGE:
        return views.message_view(resource, to)
    if kind is Kind.CAPABILITY:
        return views.capability_view(resource, to)
    return None


def _href_in(to: Linker) -> Callable[[str], str | None]:
    def href(value: str) -> str | None:
        page = to.site.resolve(value)
        return to.href(page) if page else None

    return href


def _referenced_by(site: Site) -> defaultdict[str, set[str]]:
    """page → the pages of the resources that name its canonical URL."""
    found: defaultdict[str, set[str]] = defaultdict(set)
    for resource in site.inputs.resources:
        source = resource_page(resource)
        for value in strings(resource.document):
            target = site.resolve(value)
            if target is not None and target != source:
                found[target].add(source)
    return found


def _examples_of(site: Site) -> defaultdict[str, list[Example]]:
    """page → the examples that use it (its canonical URL, or a message's event)."""
    found: defaultdict[str, list[Example]] = defaultdict(list)
    for example in site.inputs.examples:
        targets = {site.resolve(v) for v in strings(example.document)}
        targets.add(site.event_page(example))
        for target in sorted(t for t in targets if t is not None):
            found[target].append(example)
    return found


def _profiles_of(example: Example, to: Linker) -> list[tuple[str, Link]]:
    """(resource type, profile) of every entry whose meta.profile names one."""
    found = []
    for entry in example.document.get("entry", []):
        resource = entry.get("resource", {})
        for profile in resource.get("meta", {}).get("profile", []):
            found.append((str(resource.get("resourceType")), to.canonical(profile)))
    return found


def _by_family(examples: tuple[Example, ...]) -> dict[str, list[Example]]:
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[example.family].append(example)
    return dict(sorted(groups.items()))


def _family(pages: _Pages, mapping: MappingPage, examples: list[Example]) -> None:
    page = family_page(mapping)
    to = pages.site.linker(page)

    def href(target: Target) -> str | None:
        if target.url is not None:
            return target.url
        if target.page is not None:
            return to.href(target.page, target.anchor)
        return f"#{target.anchor}" if target.anchor else None

    body = Markup(render_markdown(mapping.text, pages.site.families, href, _href_in(to)))  # noqa: S704
    pages.emit(
        page,
        "family.html",
        title=first_heading(mapping.text) or mapping.stem,
        body=body,
        source=f"contracts/fhir/{mapping.file_name}",
        family_examples=examples,
        example_page=example_page,
    )


def _index(pages: _Pages, inputs: GuideInputs) -> None:
    readme = next((m for m in inputs.mapping if m.stem == "README"), None)
    rows = family_rows(readme.text) if readme else []
    in_table = {r.page for r in rows}
    others = [m for m in inputs.mapping if m.stem != "README" and m.stem not in in_table]
    sections = [(kind, pages.site.of_kind(kind)) for kind in Kind]
    pages.emit(
        INDEX,
        "index.html",
        title="carebridge FHIR implementation guide",
        rows=rows,
        families=pages.site.families,
        others=others,
        family_page=family_page,
        sections=[(k, rs) for k, rs in sections if rs],
        resource_page=resource_page,
        example_count=len(inputs.examples),
    )
