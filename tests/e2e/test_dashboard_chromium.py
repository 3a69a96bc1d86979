"""The dashboard and the e-mail as a person uses them, on the bundled TWCS sample on the local cloud:
upload, fire the Cluster schedule (issues), let AlertsFunction raise its alerts, then

- `supportlens dashboard` writes one HTML file; headless Chromium (Debian's, driven by Playwright)
  opens it from disk with the network off, a filter changes a chart's data, clicking an issue and an
  alert shows their masked example tickets; screenshots are saved;
- `supportlens report` for the 60 days ending at the sample's newest tweet (what `make demo` reports):
  the e-mail's HTML shows every section and its charts, in Chromium.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.e2e.test_report_chromium import CHROMIUM_FLAGS, chromium  # noqa: F401  (the fixture)

pytestmark = pytest.mark.e2e

SAMPLE = ROOT / "events" / "samples" / "twcs_sample.csv"
SHOTS = ROOT / "out" / "screenshots"
END = "2017-12-03"  # the sample's newest tweet


@pytest.fixture(scope="module")
def sample_cloud(cloud):
    rows = [json.loads(line) for line in cloud.cli("upload", str(SAMPLE), "--wait", "--json", "--timeout", "1200",
                                                   timeout=1300).stdout.splitlines()]
    assert [r["status"] for r in rows] == ["complete"], rows
    tick = json.loads(cloud.cli("local", "tick", "--function", "Cluster", "--json").stdout.splitlines()[0])
    assert tick["ok"] and tick["result"]["issues"] >= 2, tick

    seen: list[int] = []

    def alerts_settled() -> bool:  # AlertsFunction reads the table stream: wait until its count stops moving
        count = cloud.client("dynamodb").scan(TableName=cloud.outputs["AlertsTableName"], Select="COUNT")["Count"]
        seen.append(count)
        time.sleep(1.5)
        return count > 0 and seen[-3:] == [count] * 3

    cloud.wait_until(alerts_settled, 180, "the alerts of the sample's tickets")
    return cloud


@pytest.fixture(scope="module")
def browser(chromium):  # noqa: F811
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        flags = [f for f in CHROMIUM_FLAGS if f != "--headless"]
        launched = p.chromium.launch(executable_path=chromium, headless=True, args=flags)
        yield launched
        launched.close()


def page_text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def open_offline(browser, path: Path, width: int = 1400, height: int = 1800):
    """A page of `path` in a context with the network off; every request it makes is recorded."""
    context = browser.new_context(offline=True, viewport={"width": width, "height": height})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    return context, page, requests, errors


def test_dashboard_works_offline_filters_and_drills_down(sample_cloud, browser, tmp_path):
    board = tmp_path / "dashboard.html"
    out = sample_cloud.cli("dashboard", "--period", "60d", "--end", END, "--out", str(board)).stdout
    assert "opens offline" in out and board.stat().st_size < 3_000_000
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page, requests, errors = open_offline(browser, board)
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=30_000)
    assert not errors, errors
    assert all(url.startswith("file://") for url in requests), requests  # nothing fetched: all embedded

    def chart(name: str) -> list:
        return page.evaluate(f"document.getElementById('chart-{name}').data.map(t => t.y)")

    volume_all = chart("volume")[0]
    kpi = page.inner_text("#kpis")
    assert sum(volume_all) == 1066 and "1,066" in kpi  # the 60 days hold 1,066 of the sample's 1,068 customer tweets
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)

    # Filter by a company: the volume chart now holds that company's messages only.
    data = json.loads(page.inner_text("#dashboard-data"))
    company = "AppleSupport"
    page.select_option("#f-company", company)
    volume_company = chart("volume")[0]
    assert volume_company != volume_all and 0 < sum(volume_company) < sum(volume_all)
    at = 3 + data["counters"].index("volume")
    assert sum(volume_company) == sum(c[at] for c in data["cells"] if data["companies"][c[1]] == company)
    # A company that is no issue's biggest (sprintcare, 27 messages) still shows the issues its tickets are in:
    # with 5 companies kept per issue, choosing it (or 19 other companies) emptied the chart
    page.select_option("#f-company", "sprintcare")
    bars = page.evaluate("document.getElementById('chart-issues').data[0].x")
    assert bars and sum(bars) == sum(min(sum(i["daily"].values()), i["companies"].get("sprintcare", 0)) for i in data["issues"])
    page.select_option("#f-company", "")
    # "all companies (N)" counts every company, not the 40 listed plus "(other companies)"; "unknown" reads as "(no company)"
    options = page.eval_on_selector_all("#f-company option", "os => os.map(o => o.textContent)")
    assert options[0] == f"all companies ({data['company_count']})" and data["company_count"] > len(data["companies"])
    assert "(no company)" in options and "unknown" not in options
    page.select_option("#f-period", "7")  # the last 7 days of the period
    assert sum(chart("volume")[0]) < sum(volume_all) and len(chart("volume")[0]) == 7
    page.select_option("#f-period", str(len(data["days"])))

    # Click the largest issue's bar: its example tickets appear, masked, with id, company and time.
    bar = page.locator("#chart-issues .bars .point path").last  # bars are drawn bottom-up: the largest is last
    box = bar.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector("#drill-table tr.ticket", timeout=10_000)
    title = page.inner_text("#drill-title")
    clicked = page.evaluate("document.getElementById('chart-issues').data[0].customdata.slice(-1)[0]")
    biggest = next(i for i in data["issues"] if i["issue_id"] == clicked)
    assert sum(biggest["daily"].values()) == max(sum(i["daily"].values()) for i in data["issues"])  # the top bar is the largest
    assert title.startswith(f"Issue: {biggest['label']}")
    rows = page.locator("#drill-table tr.ticket")
    assert rows.count() == len(biggest["examples"]) > 0
    first = rows.first.inner_text()
    assert re.search(r"twcs:\d+", first) and "2017-" in first
    page.screenshot(path=str(SHOTS / "dashboard-issue.png"), full_page=True)

    # Click an alert: its ticket appears.
    assert page.locator("#alerts tr.click").count() > 0
    page.locator("#alerts tr.click").first.click()
    page.wait_for_function("document.getElementById('drill-title').textContent.startsWith('Alert:')")
    assert page.locator("#drill-table tr.ticket").count() >= 1
    assert all(url.startswith("file://") for url in requests), requests
    assert not errors, errors
    context.close()


def test_email_report_of_the_sample_shows_every_section(sample_cloud, browser, tmp_path):
    out = tmp_path / "report"
    result = json.loads(sample_cloud.cli("report", "--period", "60d", "--end", END, "--out", str(out), "--json").stdout)
    assert result["volume"] == 1066 and result["email_bytes"] < 1_000_000
    html_file, summary_file = Path(result["files"][1]), Path(result["files"][2])
    summary = json.loads(summary_file.read_text())
    assert summary["kpis"]["customer_messages"] == 1066 and summary["issues"]["rows"]
    # every clustered customer tweet of the period is in exactly one issue or not-issue bucket, in data time
    assert sum(i["in_period"] for i in summary["issues"]["rows"]) + sum(b["in_period"] for b in summary["not_issues"]["rows"]) == 1066
    assert summary["not_issues"]["rows"] and "Not issues (counted apart):" in page_text(html_file)
    assert all(len(i["trend"]) == len(summary["volume_daily"]["rows"]) for i in summary["issues"]["rows"])
    assert summary["kpis"]["alerts"] == summary["alerts"]["total"] > 0
    assert Counter(r["rule"] for r in summary["alerts"]["rows"])  # alerts of the sample's tickets, in data time
    context, page, requests, errors = open_offline(browser, html_file, width=1000, height=1400)
    page.wait_for_load_state("load")
    images = page.evaluate("[...document.images].map(i => [i.alt, i.complete && i.naturalWidth])")
    assert len(images) == 4 and all(w >= 1000 for _, w in images), images  # high-DPI PNGs, none broken
    assert all(alt for alt, _ in images)
    text = page.inner_text("body")
    for section in ("Volume", "Sentiment", "Hour x weekday", "Channels", "Companies", "Tickets by region", "Escalations",
                    "Delivery outcomes (FTDS)", "Response times", "Agent performance", "Top issues", "Emerging issues",
                    "Alerts raised", "Most active customers", "Customers with high abusive-behaviour scores"):
        assert section in text, section
    assert "2017-10-05 to 2017-12-03" in text and "data time" in text
    # customer tweets no brand answered are counted as "unknown": the table says "(no company)"
    assert "unknown" in {r["company"] for r in summary["companies"]["rows"][:15]} and "\n(no company)\t" in text
    abusive_alerts = sum(1 for r in summary["alerts"]["rows"] if r["rule"] == "abusive-message")
    assert f"Abusive messages: 27 (3% of customer messages); {abusive_alerts} abusive-message alert(s) were raised" in text
    fonts = set(page.evaluate("[...document.querySelectorAll('body *')].map(e => getComputedStyle(e).fontFamily)"))
    assert fonts == {"Arial, Helvetica, sans-serif"}, fonts  # one font
    page.screenshot(path=str(SHOTS / "report.png"), full_page=True)
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    context.close()
