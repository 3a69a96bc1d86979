"""Unit tests for supportlens.domain.report: summarise, render (with PNG charts) and build_mime."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

from supportlens.domain.report import ReportData, build_mime, period_days, render, summarise

START, END = date(2024, 3, 4), date(2024, 3, 10)  # Monday .. Sunday
COUNTERS = ("volume", "negative", "neutral", "positive", "abusive", "escalations", "rt_sum", "rt_count", "replies")


def row(day: str, company: str, channel: str, **counters) -> dict:
    return {"pk": f"day#{day}", "sk": f"company#{company}#channel#{channel}", **counters}


ROWS = {
    "2024-03-04": [  # Monday
        row("2024-03-04", "acme", "twitter", volume=10, negative=4, neutral=3, positive=3, abusive=1, escalations=2,
            rt_sum=6000, rt_count=5, h09=6, h15=4, replies=7),
        row("2024-03-04", "beta", "email", volume=3, negative=0, neutral=1, positive=2, h09=3),
        # agent rows repeat the same tickets by agent: never counted again
        {"pk": "day#2024-03-04", "sk": "agent#ag-1#channel#voice", "volume": 50, "failed_calls": 5, "h09": 50},
    ],
    "2024-03-06": [  # Wednesday
        row("2024-03-06", "acme", "email", volume=5, negative=5, abusive=2, escalations=1, rt_sum=1800, rt_count=1,
            h00=2, h23=3, replies=1),
    ],
    "2024-03-10": [  # Sunday
        row("2024-03-10", "beta", "twitter", volume=2, neutral=1, positive=1, h12=2, replies=4),
        row("2024-03-10", "gamma", "chat", replies=3),  # replies only: listed, no negative share
    ],
    "2024-02-01": [  # outside the period: must be ignored
        row("2024-02-01", "acme", "twitter", volume=1000, negative=1000, h01=1000),
    ],
}


@pytest.fixture(scope="module")
def data() -> ReportData:
    return summarise(ROWS, "weekly", START, END, None)


@pytest.fixture(scope="module")
def rendered(data):
    return render(data)


@pytest.fixture(scope="module")
def empty_rendered():
    empty = summarise({}, "daily", END, END, "No tickets have been stored yet.")
    return empty, render(empty)


def expected_sum(counter: str) -> int:
    return sum(
        r.get(counter, 0) for day, rows in ROWS.items() if day >= "2024-03-04" for r in rows if r["sk"].startswith("company#")
    )


# --------------------------------------------------------------------------- summarise


def test_period_days():
    assert period_days(END, 7) == [f"2024-03-{d:02d}" for d in range(4, 11)]
    assert period_days(END, 1) == ["2024-03-10"]


def test_summarise_days_and_daily_volume(data):
    assert data.days == [f"2024-03-{d:02d}" for d in range(4, 11)]
    assert data.daily_volume == {
        "2024-03-04": 13, "2024-03-05": 0, "2024-03-06": 5, "2024-03-07": 0, "2024-03-08": 0,
        "2024-03-09": 0, "2024-03-10": 2,
    }
    assert data.period_label == "weekly" and data.start == START and data.end == END and data.notice is None


@pytest.mark.parametrize("counter", COUNTERS)
def test_summarise_totals_equal_sums(data, counter):
    assert data.totals.get(counter, 0) == expected_sum(counter)


def test_summarise_totals_concrete(data):
    assert data.totals["volume"] == 20
    assert data.totals["negative"] == 9
    assert data.totals["replies"] == 15
    assert data.totals["rt_count"] == 6 and data.totals["rt_sum"] == 7800


def test_summarise_heatmap_weekday_hour(data):
    heat = data.heatmap
    assert len(heat) == 7 and all(len(r) == 24 for r in heat)
    cells = {(wd, h): v for wd, hours in enumerate(heat) for h, v in enumerate(hours) if v}
    assert cells == {(0, 9): 9, (0, 15): 4, (2, 0): 2, (2, 23): 3, (6, 12): 2}
    assert sum(map(sum, heat)) == data.totals["volume"]


def test_summarise_heatmap_accumulates_same_weekday_across_weeks():
    rows = {"2024-03-04": [row("2024-03-04", "a", "x", volume=1, h08=1)],
            "2024-03-11": [row("2024-03-11", "a", "x", volume=2, h08=2)]}
    data = summarise(rows, "14-day", date(2024, 2, 27), date(2024, 3, 11), None)
    assert data.heatmap[0][8] == 3


def test_summarise_by_company(data):
    companies = {c["company"]: c for c in data.by_company}
    assert [c["company"] for c in data.by_company][:2] == ["acme", "beta"]  # sorted by volume
    acme = companies["acme"]
    assert acme["volume"] == 15
    assert acme["negative_share"] == pytest.approx(9 / 15)
    assert acme["abusive"] == 3 and acme["escalations"] == 3
    assert acme["replies"] == 8 and acme["responses"] == 6
    assert acme["avg_response_min"] == pytest.approx(7800 / 6 / 60)
    assert companies["beta"]["avg_response_min"] is None
    gamma = companies["gamma"]
    assert gamma["volume"] == 0 and gamma["negative_share"] is None and gamma["replies"] == 3


def test_summarise_by_channel(data):
    assert data.by_channel == {"twitter": 12, "email": 8, "chat": 0}


def test_summarise_skips_agent_rows(data):
    assert "failed_calls" not in data.totals
    assert "voice" not in data.by_channel
    assert all(not c["company"].startswith("ag") for c in data.by_company)


def test_summarise_ignores_non_numeric_values():
    rows = {"2024-03-10": [row("2024-03-10", "acme", "twitter", volume=2, note="hello", h10=2)]}
    data = summarise(rows, "daily", END, END, None)
    assert "note" not in data.totals and data.totals["volume"] == 2


# --------------------------------------------------------------------------- render


def test_render_returns_subject_html_text_charts(rendered):
    subject, html_body, text_body, charts = rendered
    assert isinstance(subject, str) and "weekly" in subject and "2024-03-04" in subject and "20 messages" in subject
    assert html_body.startswith("<html>") and html_body.endswith("</html>")
    assert "SupportLens report" in text_body
    assert "Customer messages: 20" in text_body
    assert "Negative: 45%" in text_body
    assert "Avg first response: 22 min" in text_body
    assert "Company replies: 15" in text_body


def test_render_charts_are_png_and_referenced_by_cid(rendered):
    _, html_body, _, charts = rendered
    assert set(charts) == {"volume", "sentiment", "heatmap", "trends"}  # the fixture has escalations and abuse
    for cid, png in charts.items():
        assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(png) > 1000
        assert f"cid:{cid}" in html_body
    referenced = set(re.findall(r"src='cid:([^']+)'", html_body))
    assert referenced == set(charts)
    assert "no charts" not in html_body


def test_render_lists_companies_and_escapes_html():
    rows = {"2024-03-10": [row("2024-03-10", "<script>Evil & Co</script>", "web", volume=3, negative=1, h10=3)]}
    data = summarise(rows, "daily", END, END, "Note: <b>bold</b>")
    data.issues = [{"label": "Refund <delay>", "size": 12, "emerging": True, "emerging_reason": "x3 vs last week",
                    "examples": [{"text": "where is my <refund>"}], "daily_counts": {"2024-03-10": 12}}]
    data.issues_computed = True
    data.alerts = [{"severity": "critical", "summary": "Escalation 'legal_threat' about <acme>"}]
    _, html_body, text_body, _ = render(data)
    assert "<script>" not in html_body and "&lt;script&gt;" in html_body
    assert "Refund &lt;delay&gt;" in html_body and "emerging" in html_body
    assert "&lt;acme&gt;" in html_body
    assert "Note: &lt;b&gt;bold&lt;/b&gt;" in html_body
    assert "Not computed yet" not in html_body
    assert "Refund <delay> (12) EMERGING" in text_body
    assert "critical | - | - | Escalation 'legal_threat' about <acme>" in text_body


def test_render_no_data_says_no_charts(empty_rendered):
    empty, (subject, html_body, text_body, charts) = empty_rendered
    assert charts == {}
    assert "no charts" in html_body
    assert "cid:" not in html_body
    assert "no charts" in text_body
    assert "0 messages" in subject
    assert "Negative: n/a" in text_body and "Avg first response: n/a" in text_body
    assert "No tickets have been stored yet." in html_body and "NOTE: No tickets have been stored yet." in text_body


def test_render_no_issues_says_not_computed_yet(empty_rendered, rendered):
    _, (_, html_body, text_body, _) = empty_rendered
    assert "Not computed yet" in html_body
    assert "Not computed yet" in text_body
    assert "Not computed yet" in rendered[1]  # data but no issues either


def test_render_custom_cluster_schedule():
    data = summarise({}, "daily", END, END, None)
    _, html_body, _, _ = render(data, cluster_schedule="hourly")
    assert "Not computed yet: clustering runs hourly." in html_body


# --------------------------------------------------------------------------- MIME


def test_build_mime_structure(rendered):
    subject, html_body, text_body, charts = rendered
    msg = build_mime(subject, "reports@example.com", ["a@example.com", "b@example.com"], html_body, text_body, charts)
    assert msg.get_content_type() == "multipart/related"
    assert msg["Subject"] == subject
    assert msg["From"] == "reports@example.com"
    assert msg["To"] == "a@example.com, b@example.com"
    parts = msg.get_payload()
    alternative = parts[0]
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == ["text/plain", "text/html"]
    assert alternative.get_payload()[0].get_payload(decode=True).decode("utf-8") == text_body
    assert alternative.get_payload()[1].get_payload(decode=True).decode("utf-8") == html_body
    images = parts[1:]
    assert len(images) == len(charts) == 4
    content_ids = Counter()
    for image in images:
        assert image.get_content_type() == "image/png"
        cid = image["Content-ID"]
        assert cid.startswith("<") and cid.endswith(">")
        name = cid[1:-1]
        content_ids[name] += 1
        assert image.get_payload(decode=True) == charts[name]
        assert f"cid:{name}" in html_body
        assert image.get_filename() == f"{name}.png"
        assert image.get_content_disposition() == "inline"
    assert set(content_ids) == set(charts) and max(content_ids.values()) == 1
    raw = msg.as_bytes()
    assert b"multipart/related" in raw


def test_build_mime_without_charts(empty_rendered):
    _, (subject, html_body, text_body, charts) = empty_rendered
    msg = build_mime(subject, "r@example.com", [], html_body, text_body, charts)
    parts = msg.get_payload()
    assert len(parts) == 1 and parts[0].get_content_type() == "multipart/alternative"


def test_the_plain_text_part_carries_the_charts_numbers(rendered):
    _, _, text_body, _ = rendered
    assert "[chart: Customer messages per day, 2024-03-04 to 2024-03-10]" in text_body
    assert "Per day: 2024-03-04 13, 2024-03-05 0, 2024-03-06 5," in text_body
    assert "Negative share per day: 2024-03-04 31% of 13, 2024-03-06 100% of 5, 2024-03-10 0% of 2" in text_body
    assert "Busiest hours (UTC): Mon 09:00 (9), Wed 23:00 (3), Mon 15:00 (4)" not in text_body  # ordered by count
    assert "Busiest hours (UTC): Mon 09:00 (9), Mon 15:00 (4), Wed 23:00 (3)" in text_body


def test_companies_past_the_table_are_one_summed_row_so_the_column_adds_up():
    """20 companies: 15 by name and one "(other 5 companies)" row; the Messages column sums to the KPI."""
    rows = {"2024-03-10": [row("2024-03-10", f"co{i:02d}", "twitter", volume=30 - i, negative=i % 3, abusive=i % 2,
                               escalations=1 if i == 19 else 0, rt_sum=600 * (i + 1), rt_count=(i + 1) % 4, h10=30 - i)
                           for i in range(20)]}
    data = summarise(rows, "daily", END, END, None)
    _, html_body, text_body, _ = render(data)
    table = text_body.split("Companies")[1].split("\n\n")[0]
    lines = [l.strip() for l in table.splitlines() if " | " in l][1:]
    assert len(lines) == 16 and lines[-1].startswith("(other 5 companies) | ")
    assert sum(int(l.split(" | ")[1]) for l in lines) == int(data.totals["volume"]) == sum(30 - i for i in range(20))
    other = lines[-1].split(" | ")
    rest = range(15, 20)
    assert other[1] == str(sum(30 - i for i in rest)) and other[3] == str(sum(i % 2 for i in rest)) and other[4] == "1"
    assert other[6] == str(sum((i + 1) % 4 for i in rest))
    assert "(other 5 companies)" in html_body and "more not listed" not in text_body.split("Companies")[1].split("\n\n")[0]
