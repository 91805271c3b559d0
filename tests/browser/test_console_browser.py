"""What the person on duty does, in a real browser: log in, find a message, follow its
timeline, replay a dead letter, acknowledge an incident, export CSV, read a chart, search by
personnummer with a reason; all by keyboard where it matters, free text escaped."""

import re
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.support.browser import Console, log_in, shot

pytestmark = pytest.mark.browser


async def test_log_in_and_the_dashboard_says_what_needs_attention(page: Page, console: Console):
    await page.goto(f"{console.url}/console/login")
    await page.get_by_label("Användarnamn").fill("ops")
    await page.get_by_label("Lösenord").fill("wrong")
    await page.get_by_role("button", name="Logga in").click()
    await expect(page.get_by_role("alert")).to_have_text("Fel användarnamn eller lösenord.")
    await log_in(page, console)
    await expect(page.get_by_role("status")).to_contain_text("Kräver åtgärd: 3")
    dead = page.locator("#state-counts tr.state-dead_letter td")
    await expect(dead).to_have_text("1")
    await expect(page.locator("#destinations")).to_contain_text("treserva")
    await expect(page.locator("table.incidents tbody tr")).to_have_count(3)
    await shot(page, "dashboard")


async def test_find_a_message_and_open_its_timeline(page: Page, console: Console):
    await log_in(page, console)
    await page.get_by_role("link", name="Meddelanden").click()
    await page.get_by_label("Status").select_option("dead_letter")
    await page.get_by_role("button", name="Sök").first.click()
    rows = page.locator("#message-list tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("treserva: dead_letter")
    await shot(page, "messages")
    await page.get_by_role("link", name=console.seeded.dead).click()
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("pending → dispatched")
    await expect(timeline.locator("tr.hop-attempt").first).to_contain_text("fatal-error")
    await expect(page.locator("#deliveries")).to_contain_text("dead_letter")
    await shot(page, "message-detail")


async def test_replay_a_dead_letter_with_a_reason(page: Page, console: Console):
    await log_in(page, console)
    await page.goto(f"{console.url}/console/messages/{console.seeded.dead}")
    await page.get_by_role("button", name="Skicka om").click()  # no reason: the browser refuses
    await expect(page.locator("#replay-reason:invalid")).to_have_count(1)
    await page.locator("#replay-reason").fill("Treserva har rättat enhetskoden")
    await page.get_by_role("button", name="Skicka om").click()
    await expect(page.get_by_role("status")).to_have_text("replayed 1")
    await expect(page.locator("#timeline")).to_contain_text("dead_letter → pending")
    await expect(page.locator("#deliveries")).not_to_contain_text("dead_letter")
    await page.get_by_role("link", name="Granskningslogg").click()
    await expect(page.locator("#replay-audit")).to_contain_text("Treserva har rättat enhetskoden")
    await shot(page, "audit")


async def test_acknowledge_an_incident_by_keyboard(page: Page, console: Console):
    await log_in(page, console)
    await page.get_by_role("link", name="Incidenter").click()
    first = page.locator("table.incidents tbody tr").first
    note = first.get_by_label("Anteckning")
    await note.focus()
    await page.keyboard.type("Jag ringer Treserva")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("status")).to_contain_text("acknowledged")
    await expect(page.locator("table.incidents tbody tr").first).to_contain_text("acknowledged")
    await expect(page.locator("table.incidents")).to_contain_text("ops (console)")
    await shot(page, "incidents")


async def test_export_deviations_as_csv(page: Page, console: Console):
    await log_in(page, console)
    await page.get_by_role("link", name="Avvikelser").click()
    await expect(page.locator("#deviation-list")).to_contain_text("delivery_failed")
    await shot(page, "deviations")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Exportera CSV").click()
    download = await info.value
    raw = Path(await download.path()).read_bytes()  # noqa: ASYNC240 (a small local file)
    assert download.suggested_filename == "avvikelser-alla.csv"
    assert raw.startswith(b"\xef\xbb\xbf")
    header = raw.decode("utf-8-sig").splitlines()[0].split(";")
    assert header[:2] == ["Avvikelse-id", "Typ"]


async def test_search_by_personnummer_needs_a_reason_and_lands_in_the_access_log(
    page: Page, console: Console
):
    await log_in(page, console)
    await page.goto(f"{console.url}/console/messages")
    await page.get_by_text("Sök på personnummer").click()
    await page.get_by_label("Personnummer").fill(console.seeded.personnummer)
    await page.get_by_label("Skäl (loggas)").fill("Hemsjukvården frågar efter inskrivningen")
    await page.locator("details.pnr").get_by_role("button", name="Sök").click()
    await expect(page).to_have_url(re.compile(r"pseudonym=[0-9a-f]{32}$"))
    await expect(page.locator("#message-list")).to_contain_text(console.seeded.dead)
    assert console.seeded.personnummer not in await page.content()
    await page.get_by_role("link", name="Granskningslogg").click()
    log = page.locator("#access-log")
    await expect(log).to_contain_text("personnummer-search")
    await expect(log).to_contain_text("Hemsjukvården frågar efter inskrivningen")


async def test_a_viewer_cannot_open_a_payload_and_hostile_text_stays_text(
    page: Page, console: Console
):
    await log_in(page, console)  # an operator leaves a hostile reason in the audit …
    await page.goto(f"{console.url}/console/messages/{console.seeded.dead}")
    await page.locator("#replay-reason").fill("<img src=x onerror=\"document.title='pwned'\">")
    await page.get_by_role("button", name="Skicka om").click()
    await page.goto(f"{console.url}/console/audit")
    await expect(page.locator("#replay-audit")).to_contain_text(
        '<img src=x onerror="document.title'
    )
    assert await page.locator("#replay-audit img").count() == 0
    assert await page.title() != "pwned"
    await page.get_by_role("button", name="Logga ut").click()
    await log_in(page, console, "viewer")  # … and a viewer sees metadata only
    await page.goto(f"{console.url}/console/messages/{console.seeded.confirmed}")
    await expect(page.locator("#payload-h + p")).to_have_text("Din roll får inte göra detta.")
    assert await page.get_by_role("button", name="Visa innehåll").count() == 0


async def test_an_operator_opens_a_payload_with_a_reason_in_english(page: Page, console: Console):
    await log_in(page, console)
    await page.goto(f"{console.url}/console/messages/{console.seeded.confirmed}?lang=en")
    await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    await page.get_by_label("Reason (logged)").fill("Checking a deviation")
    await page.get_by_role("button", name="Open payload").click()
    await expect(page.locator("#payload")).to_contain_text('"resourceType": "Bundle"')
    await shot(page, "message-payload")


async def test_read_a_chart_and_export_the_statistics(page: Page, console: Console):
    from services.router.statistics.periods import local_date

    today = local_date(console.seeded.received_at).isoformat()
    await log_in(page, console)
    await page.get_by_role("link", name="Statistik").click()
    chart = page.locator("#chart-notices svg[role=img]")
    await expect(chart).to_be_visible()
    short = today[5:]  # the axis label of a day: MM-DD
    bar = chart.locator(f'g.bar[data-period="{short}"]')
    await expect(bar.locator("title")).to_contain_text(f"{short}: 3")  # three admissions
    assert await bar.locator("rect.segment").count() == 1
    row = page.locator("#statistics-table tbody tr", has_text=today)
    await expect(row.locator("td").first).to_have_text("3")
    await shot(page, "statistics")
    async with page.expect_download() as info:
        await page.get_by_role("link", name="Exportera CSV").click()
    download = await info.value
    text = Path(await download.path()).read_text("utf-8-sig")  # noqa: ASYNC240
    rows = [line.split(";") for line in text.splitlines()]
    (found,) = [r for r in rows if r[0] == today]
    assert "3" in found
