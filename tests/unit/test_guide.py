"""The implementation guide (sandbox/guide): every page escapes what it shows, the mapping
pages' links are rewritten to the generated pages, every internal link of the site reaches a
page and an anchor that exist, and the committed docs/guide is what the inputs make."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sandbox.guide import build
from sandbox.guide.__main__ import main
from sandbox.guide.links import check_site, read_page
from sandbox.guide.load import GUIDE_DIR, read_inputs
from sandbox.guide.markdown import Target, family_rows, render_markdown, resolve, slug
from sandbox.guide.model import DuplicatePage, Example, Kind, MappingPage, Resource
from sandbox.guide.publish import stale_files
from tests.support.guide import load_sample, sample_inputs, write_samples

HOSTILE = '<script>alert("x")</script>&'


@pytest.fixture(scope="module")
def site() -> dict[str, str]:
    return build(sample_inputs())


def html_pages(site: dict[str, str]) -> list[str]:
    return [p for p in site if p.endswith(".html")]


def test_the_sample_site_has_every_page_and_no_broken_link(site):
    inputs = sample_inputs()
    assert check_site(site) == []
    expected = (
        len(inputs.resources) + len(inputs.mapping) + len(inputs.examples) + 2  # index, examples
    )
    assert len(html_pages(site)) == expected
    kinds = {r.kind for r in inputs.resources}
    assert kinds == set(Kind) - {Kind.OTHER}
    for resource in inputs.resources:
        assert f"{resource.kind.folder}/{resource.id}.html" in site


def test_every_page_is_html5_with_lang_title_and_a_way_back(site):
    for path in html_pages(site):
        facts = read_page(site[path])
        assert facts.doctype and facts.lang == "en" and facts.title.strip(), path
        assert "<nav" in site[path], path
        assert "<script" not in site[path], path


def test_the_profile_page_shows_its_differential(site):
    page = site["profiles/carebridge-encounter.html"]
    assert 'href="https://hl7.org/fhir/R4/encounter.html"' in page  # base definition
    assert "Encounter.extension:transfer" in page and "slice transfer" in page
    assert "by value:url; open" in page
    assert 'extensible: <a href="../valuesets/discharge-destination.html">' in page
    assert 'href="../extensions/transfer.html"' in page
    assert "<code>fixedUri</code>: <code>urn:carebridge:takecare:encounter-id</code>" in page
    assert page.count('title="must support">S<') == 4


def test_message_value_set_and_capability_pages_link_what_they_name(site):
    message = site["messages/transfer.html"]
    assert 'href="../profiles/carebridge-encounter.html"' in message  # focus profile
    assert 'href="receipt.html"' in message  # allowed response
    assert 'href="../examples/takecare/transfer/other-ward-personnummer.html"' in message
    value_set = site["valuesets/discharge-destination.html"]
    assert 'href="http://snomed.info/sct" class="external"' in value_set
    assert "<code>https://carebridge.example.se/fhir/CodeSystem/discharge-destination</code>" in (
        value_set
    )  # not in the guide, and an example domain: text, not a dead link
    capability = site["capabilities/carebridge-broker.html"]
    assert 'href="../messages/transfer.html"' in capability
    codes = site["codesystems/care-transition-event.html"]
    assert 'class="depth-1"><code>admission-notice-updated</code>' in codes
    assert 'href="../valuesets/care-transition-event.html"' in codes  # referenced by


def test_example_pages_link_extensions_systems_and_their_message(site):
    page = site["examples/takecare/transfer/other-ward-personnummer.html"]
    assert 'href="../../../messages/transfer.html"><code>transfer</code>' in page
    assert '<a class="string" href="../../../extensions/transfer.html">' in page
    assert '<a class="string" href="../../../namingsystems/case-id.html">' in page
    assert 'href="../../../families/transfer.html"' in page
    family = site["families/transfer.html"]  # a canonical in inline code links to its page
    assert '<a href="../extensions/transfer.html"><code>https://carebridge' in family
    assert family.count("<h1") == 1  # the mapping page's own heading
    extension = site["extensions/transfer.html"]
    assert 'href="../examples/takecare/transfer/other-ward-personnummer.html"' in extension


def test_meta_profile_of_an_example_links_to_the_profile_and_back():
    url = "https://carebridge.se/fhir/StructureDefinition/carebridge-encounter"
    example = Example(
        source="takecare",
        family="transfer",
        name="profiled",
        document={
            "resourceType": "Bundle",
            "entry": [{"resource": {"resourceType": "Encounter", "meta": {"profile": [url]}}}],
        },
    )
    inputs = sample_inputs()
    site = build(dataclasses.replace(inputs, examples=(*inputs.examples, example)))
    page = site["examples/takecare/transfer/profiled.html"]
    assert 'Encounter: <a href="../../../profiles/carebridge-encounter.html">' in page
    assert (
        'href="../examples/takecare/transfer/profiled.html"'
        in (site["profiles/carebridge-encounter.html"])
    )
    assert check_site(site) == []


def test_everything_shown_is_escaped():
    document = load_sample("CodeSystem-care-transition-event.json")
    document.update(title=HOSTILE, description=HOSTILE)
    document["concept"] = [{"code": HOSTILE, "display": HOSTILE, "definition": HOSTILE}]
    resources = (Resource(document=document, file_name="CodeSystem-x.json"),)
    mapping = (MappingPage("hostile.md", f"# {HOSTILE}\n\n{HOSTILE} [x](javascript:alert(1))\n"),)
    example = Example("takecare", "hostile", "x", {"resourceType": "Bundle", "id": HOSTILE})
    site = build(
        dataclasses.replace(
            sample_inputs(), resources=resources, mapping=mapping, examples=(example,)
        )
    )
    for path in html_pages(site):
        assert "<script>" not in site[path], path
        assert 'href="javascript' not in site[path], path
    assert "&lt;script&gt;" in site["codesystems/care-transition-event.html"]
    assert "&lt;script&gt;" in site["families/hostile.html"]
    assert "&lt;script&gt;" in site["examples/takecare/hostile/x.html"]


@pytest.mark.parametrize(
    ("href", "target"),
    [
        ("consent.md", Target(page="families/consent.html")),
        ("admission-answer.md#why", Target(page="families/admission-answer.html", anchor="why")),
        ("README.md", Target(page="mapping.html")),
        ("#shared-rules", Target(anchor="shared-rules")),
        ("https://hl7.org/fhir/R4/", Target(url="https://hl7.org/fhir/R4/")),
        ("../../docs/vendors.md#patient", Target(repo_path="docs/vendors.md#patient")),
        ("unknown.md", Target(repo_path="contracts/fhir/unknown.md")),
    ],
)
def test_mapping_links_are_rewritten(href, target):
    pages = {
        "consent": "families/consent.html",
        "admission-answer": "families/admission-answer.html",
        "README": "mapping.html",
    }
    assert resolve(href, pages) == target


def test_markdown_headings_get_githubs_anchors_and_links_their_pages():
    text = (
        "# Patient (shared: `fhir_parts.py`)\n\n## Notes\n\n## Notes\n\n"
        "[see](consent.md#a) [docs](../../docs/x.md) [spec](https://hl7.org/fhir/R4/)\n"
    )

    def href(target: Target) -> str | None:
        if target.url:
            return target.url
        return f"{target.page}#{target.anchor}" if target.page else None

    html = render_markdown(text, {"consent": "consent.html"}, href)
    assert '<h1 id="patient-shared-fhir_partspy">' in html
    assert '<h2 id="notes">' in html and '<h2 id="notes-1">' in html
    assert '<a href="consent.html#a">see</a>' in html
    assert '<span class="repo-path" title="in the repository: docs/x.md">docs</span>' in html
    assert 'class="external"' in html and 'rel="external"' in html
    assert slug("Why these resources?") == "why-these-resources"


def test_the_families_come_from_the_readme_table():
    readme = next(m for m in read_inputs().mapping if m.stem == "README")
    rows = family_rows(readme.text)
    assert len(rows) >= 14
    assert rows[0].page == "admission-notice" and rows[0].direction == "TakeCare → Treserva"


def page(body: str, title: str = "t", lang: str = ' lang="en"') -> str:
    return (
        f"<!DOCTYPE html><html{lang}><head><title>{title}</title></head><body>{body}</body></html>"
    )


def test_the_link_checker_finds_each_kind_of_problem():
    site = {
        "index.html": page('<a href="a/b.html#top">b</a> <a href="gone.html">x</a>'),
        "a/b.html": page(
            '<h1 id="top">b</h1><a href="../index.html#nowhere">i</a>'
            '<a href="http//broken">e</a><a href="https://hl7.org/fhir/R4/">ok</a>',
            title="",
            lang="",
        ),
        "orphan.html": page('<a href="index.html">i</a><p id="d"></p><p id="d"></p>'),
    }
    problems = "\n".join(check_site(site))
    assert "index.html: broken link 'gone.html'" in problems
    assert "a/b.html: no anchor #nowhere in index.html" in problems
    assert "a/b.html: no title" in problems and "a/b.html: <html> has no lang" in problems
    assert "a/b.html: broken link 'http//broken'" in problems  # a relative path, in fact
    assert "orphan.html: not reachable from the index" in problems
    assert "orphan.html: ids used twice: d" in problems
    malformed = {"index.html": page('<a href="ftp:/x">x</a>')}
    assert check_site(malformed) == ["index.html: malformed external link 'ftp:/x'"]
    assert len(check_site(site)) == 7


def test_two_resources_for_one_page_are_refused():
    document = load_sample("ValueSet-care-transition-event.json")
    twice = (Resource(document, "a.json"), Resource(document, "b.json"))
    with pytest.raises(DuplicatePage):
        build(dataclasses.replace(sample_inputs(), resources=twice))


@pytest.mark.slow
def test_the_cli_writes_the_site_and_checks_it(tmp_path: Path, capsys):
    source, out = tmp_path / "fhir", tmp_path / "guide"
    write_samples(source)
    assert main(["--source", str(source), "--out", str(out)]) == 0
    assert main(["--source", str(source), "--out", str(out), "--check"]) == 0
    (out / "profiles" / "carebridge-encounter.html").write_text("edited", encoding="utf-8")
    (out / "left-over.html").write_text("old", encoding="utf-8")
    assert main(["--source", str(source), "--out", str(out), "--check"]) == 1
    assert "left-over.html, profiles/carebridge-encounter.html" in capsys.readouterr().out
    assert main(["--source", str(source), "--out", str(out)]) == 0
    assert not (out / "left-over.html").exists()
    assert main(["--source", str(source), "--out", str(out), "--check"]) == 0


def test_the_committed_guide_is_up_to_date():
    """docs/guide is what `make guide` makes of contracts/fhir and the fixtures."""
    site = build(read_inputs())
    assert check_site(site) == []
    assert stale_files(site, GUIDE_DIR) == [], "run make guide and commit docs/guide"


@pytest.mark.slow
def test_make_contracts_checks_the_guide(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from sandbox import contracts_cli

    assert [r.status for r in contracts_cli.check_guide()] == ["ok"]
    stale = tmp_path / "guide"
    stale.mkdir()
    monkeypatch.setattr(contracts_cli, "GUIDE_DIR", stale)
    assert contracts_cli.check_guide()[0].status.startswith("DIFFERS")
    assert [r.status for r in contracts_cli.check_guide(update=True)] == ["ok"]
    assert (stale / "index.html").exists()
