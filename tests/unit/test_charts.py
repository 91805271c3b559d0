"""The SVG charts: well-formed (parsed with xml.etree), accessible (role, title, desc,
escaped text), proportional, deterministic; and the statistics report drawn as charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest

from services.router.statistics.charts import CHART_NAMES, render_charts
from services.router.statistics.periods import Period, spans
from services.router.statistics.report import (
    AdmissionConfirmed,
    Arrival,
    Discharge,
    LegalOutcome,
    build_report,
)
from services.router.statistics.svg import PLOT_H, Series, axis, bar_chart, line_chart, percent

NS = {"svg": "http://www.w3.org/2000/svg"}
LABELS = ["03-30", "03-31", "04-01", "04-02"]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own markup, parsed to prove it well-formed)


def one(parent: ET.Element, path: str) -> ET.Element:
    found = parent.find(path, NS)
    assert found is not None, path
    return found


def attr(element: ET.Element, name: str) -> str:
    value = element.get(name)
    assert value is not None, name
    return value


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text or "" for t in root.iterfind(".//svg:text", NS) if t.get("class") == cls]


def bars(**changes):
    args = {
        "chart_id": "c",
        "title": "Meddelanden per dag",
        "desc": "Staplar per typ.",
        "labels": LABELS,
        "series": [
            Series("Inskrivning", [2, 0, 4, None], "#0072B2"),
            Series("SIP", [1, 0, 4, None], "#B84A00"),
        ],
        "y_title": "Meddelanden",
    } | changes
    return bar_chart(**args)


def test_a_bar_chart_is_accessible_well_formed_svg():
    root = parse(bars())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c-title c-desc"
    assert one(root, "svg:title").text == "Meddelanden per dag"
    assert one(root, "svg:title").get("id") == "c-title"
    assert one(root, "svg:desc").text == "Staplar per typ."
    assert texts(root, "legend") == ["Inskrivning", "SIP"]


def test_one_bar_per_period_with_heights_proportional_to_the_values():
    root = parse(bars())
    groups = [g for g in root.iterfind(".//svg:g", NS) if g.get("class") == "bar"]
    assert [g.get("data-period") for g in groups] == LABELS
    heights = [
        [float(attr(r, "height")) for r in g.iterfind("svg:rect", NS)] for g in groups
    ]  # zero and unknown values draw no segment
    assert heights[1] == [] and heights[3] == []
    # totals 3 and 8 on an axis up to 8
    assert heights[0] == pytest.approx([PLOT_H * 2 / 8, PLOT_H / 8], abs=0.06)
    assert heights[2] == pytest.approx([PLOT_H / 2, PLOT_H / 2], abs=0.06)
    assert one(groups[2], "svg:title").text == "04-01: 8, Inskrivning 4, SIP 4"


def test_the_axes_are_labelled():
    root = parse(bars())
    assert texts(root, "x-label") == LABELS
    assert texts(root, "y-label") == ["0", "2", "4", "6", "8"]
    assert texts(root, "y-title") == ["Meddelanden"]
    many = parse(bars(labels=[f"d{i}" for i in range(30)], series=[Series("x", [1] * 30)]))
    assert texts(many, "x-label") == [f"d{i}" for i in range(0, 30, 3)]  # at most 12 shown


def test_every_text_is_escaped():
    evil = '<script>alert("x")</script> & co'
    svg = bars(title=evil, desc=evil, labels=[evil, "b", "c", "d"], chart_id='"><x')
    assert "<script>" not in svg
    root = parse(svg)
    assert one(root, "svg:title").text == evil
    assert texts(root, "x-label")[0] == evil
    line = line_chart(
        chart_id="l", title="t", desc="d", labels=["a"], series=[Series(evil, [1])], y_title=evil
    )
    assert "<script>" not in line
    assert texts(parse(line), "legend") == [evil]


def test_the_output_is_deterministic():
    assert bars() == bars()


def test_a_line_chart_breaks_at_unknown_values_on_a_percent_axis():
    svg = line_chart(
        chart_id="ontime",
        title="Andel i tid",
        desc="d",
        labels=LABELS,
        series=[Series("Inom frist", [100, 50, None, 25])],
        y_title="Andel (%)",
        y_max=100,
        fmt=percent,
    )
    root = parse(svg)
    assert texts(root, "y-label") == ["0 %", "25 %", "50 %", "75 %", "100 %"]
    points = [c for c in root.iterfind(".//svg:circle", NS) if c.get("class") == "point"]
    assert [p.get("data-period") for p in points] == ["03-30", "03-31", "04-02"]
    ys = [float(attr(p, "cy")) for p in points]
    base = ys[0] + PLOT_H  # the y of 0 %
    assert [base - y for y in ys] == pytest.approx([PLOT_H, PLOT_H / 2, PLOT_H / 4], abs=0.06)
    paths = [p for p in root.iterfind(".//svg:path", NS) if p.get("class") == "line"]
    assert len(paths) == 1 and attr(paths[0], "d").count("L") == 1  # 100 → 50; 25 stands alone
    assert one(points[2], "svg:title").text == "04-02, Inom frist: 25 %"


def test_a_chart_without_data_says_so():
    empty = parse(
        line_chart(
            chart_id="e",
            title="t",
            desc="d",
            labels=LABELS,
            series=[Series("s", [None] * 4)],
            y_title="y",
            y_max=100,
        )
    )
    assert texts(empty, "no-data") == ["Inga data för perioden"]
    assert texts(parse(bars()), "no-data") == []


@pytest.mark.parametrize(
    ("largest", "integer", "top", "step"),
    [
        (0, True, 1, 1),
        (3, True, 3, 1),
        (8, True, 8, 2),
        (25, True, 30, 10),
        (11, True, 15, 5),
        (240, True, 300, 100),
        (200, True, 200, 50),
        (3.3, False, 4, 1),
        (0.3, False, 0.3, 0.1),
        (9, False, 10, 2.5),
    ],
)
def test_the_value_axis_has_round_ticks(largest, integer, top, step):
    assert axis(largest, integer=integer) == pytest.approx((top, step))


def report():
    at = datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    return build_report(
        Period.DAY,
        spans(Period.DAY, date(2026, 3, 29), date(2026, 3, 31)),
        now=datetime(2026, 4, 10, tzinfo=UTC),
        arrivals=[Arrival("admission-notice", at), Arrival("sip-invitation", at)],
        legal=[LegalOutcome(at, at)],
        admissions=[AdmissionConfirmed("treserva", at, at.replace(hour=11))],
        discharges=[Discharge(at, at)],
    )


def test_render_charts_draws_every_chart_of_a_report():
    charts = render_charts(report())
    assert tuple(charts) == CHART_NAMES
    ids = set()
    for name, svg in charts.items():
        root = parse(svg)
        assert root.get("role") == "img", name
        assert texts(root, "x-label") == ["03-29", "03-30", "03-31"], name
        ids.add(one(root, "svg:title").get("id"))
    assert len(ids) == len(CHART_NAMES)  # unique ids: the console embeds them all in one page
    notices = parse(charts["notices"])
    groups = [g for g in notices.iterfind(".//svg:g", NS) if g.get("class") == "bar"]
    assert len(groups) == 3
    assert [r.get("data-series") for r in groups[1].iterfind("svg:rect", NS)] == [
        "Inskrivning",
        "SIP",
    ]
    on_time = parse(charts["on-time"])
    assert [c.get("data-period") for c in on_time.iterfind(".//svg:circle", NS)] == ["03-30"]
    waits = parse(charts["admission-to-confirmed"])
    assert "(timmar)" in (one(waits, "svg:title").text or "")  # 3 h: drawn in hours
    assert texts(waits, "legend") == ["Treserva"]


def test_week_labels_are_week_numbers():
    weekly = build_report(
        Period.WEEK, spans(Period.WEEK, date(2026, 3, 23), date(2026, 4, 5)), now=datetime.now(UTC)
    )
    assert texts(parse(render_charts(weekly)["sip"]), "x-label") == ["v. 13", "v. 14"]
