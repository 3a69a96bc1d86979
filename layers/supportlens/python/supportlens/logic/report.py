"""Report use case: read the aggregates of one period (data time), build the summary, render the
e-mail and the dashboard, archive them under reports/ and send the e-mail through SES."""

from __future__ import annotations

import base64
import json
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..adapters import dynamo, s3
from ..adapters.aws import client
from ..domain.dashboard import render_dashboard
from ..domain.report import ReportData, build_mime, render, summarise, summary
from ..observability import logger
from ..settings import Settings
from .counters import read_partition, read_partitions

PERIODS = {"1d": ("daily", 1), "7d": ("weekly", 7), "30d": ("monthly", 30)}
MAX_PERIOD_DAYS = 366
EXAMPLE_FIELDS = "ticket_id, company, channel, created_at, #t"


def parse_period(period: str) -> tuple[str, int]:
    if period in PERIODS:
        return PERIODS[period]
    match = re.fullmatch(r"(\d{1,3})d", period)
    if not match or not 1 <= int(match.group(1)) <= MAX_PERIOD_DAYS:
        raise ValueError(f"period must look like 1d, 7d or 30d (1 to {MAX_PERIOD_DAYS} days), not {period!r}")
    return f"{match.group(1)}-day", int(match.group(1))


def choose_window(days_with_data: list[str], span: int, today: date) -> tuple[date, date, str | None]:
    """The period ending today; if it holds no data, the latest period that does, said plainly."""
    end = today
    start = end - timedelta(days=span - 1)
    if any(start.isoformat() <= d <= end.isoformat() for d in days_with_data):
        return start, end, None
    if not days_with_data:
        return start, end, "No tickets have been stored yet."
    latest = date.fromisoformat(max(days_with_data))
    notice = (f"No tickets were created between {start} and {end}. The newest stored tickets are from {latest}; "
              f"this report covers the {span} day(s) ending then.")
    return latest - timedelta(days=span - 1), latest, notice


def gather(settings: Settings, period: str = "7d", today: date | None = None) -> ReportData:
    """Everything the report shows, for one period in data time, read by key (no ticket scan)."""
    label, span = parse_period(period)
    today = today or datetime.now(timezone.utc).date()
    table = settings.aggregates_table
    day_index = {row["sk"]: int(row.get("volume", 0)) for row in read_partition(table, "days")}
    start, end, notice = choose_window(list(day_index), span, today)
    days = [(start + timedelta(d)).isoformat() for d in range(span)]
    rows = read_partitions(table, [f"day#{day}" for day in days])  # summed over the write shards
    data = summarise({day: rows[f"day#{day}"] for day in days}, label, start, end, notice)
    before = [(start - timedelta(d)).isoformat() for d in range(1, span + 1)]
    data.previous_volume = sum(day_index.get(d, 0) for d in before) if day_index and min(day_index) <= before[0] else None
    all_issues = dynamo.scan_all(settings.issues_table)
    data.issues = latest_issues(all_issues)
    data.issues_computed = bool(all_issues)
    data.clustered_at = max((str(i.get("model_version", "")) for i in all_issues), default=None)
    data.alerts = alerts_in_period(dynamo.scan_all(settings.alerts_table), start, end)
    data.abusive_customers = behaviour_profiles(settings, start, end, datetime.now(timezone.utc).date())
    data.active_rows = [row for day in days for row in dynamo.query_pk(settings.aggregates_table, f"active#{day}")]
    data.examples = example_tickets(settings, data)
    return data


def alerts_in_period(items: list[dict[str, Any]], start: date, end: date) -> list[dict[str, Any]]:
    """Alerts about the period: by the data time they describe (alerts stored before that field
    existed fall back to when they were raised)."""
    first, last = start.isoformat(), end.isoformat()
    found = []
    for a in items:
        if a.get("record") == "cooldown":
            continue
        day = str(a.get("day") or a.get("data_time") or a.get("raised_at") or "")[:10]
        if first <= day <= last:
            found.append(a)
    return sorted(found, key=lambda a: str(a.get("data_time") or a.get("raised_at") or ""), reverse=True)


def example_tickets(settings: Settings, data: ReportData) -> dict[str, dict[str, Any]]:
    """The stored (masked) tickets behind the issues' and alerts' examples, for the dashboard's drill-down."""
    from ..domain.dashboard import EXAMPLES_PER_ISSUE, MAX_ALERTS, MAX_ISSUES

    wanted = [str(e.get("ticket_id")) for i in data.issues[:MAX_ISSUES] for e in (i.get("examples") or [])[:EXAMPLES_PER_ISSUE]]
    wanted += [str(t) for a in data.alerts[:MAX_ALERTS] for t in (a.get("examples") or [])[:3]]
    wanted = [t for t in dict.fromkeys(wanted) if t and t != "None"]
    if not wanted or not settings.tickets_table:
        return {}
    found = dynamo.batch_get(settings.tickets_table, "ticket_id", wanted, EXAMPLE_FIELDS, names={"#t": "text"})
    return {k: {**v, "text": str(v.get("text", ""))[:500]} for k, v in found.items()}


def build_report(settings: Settings, period: str = "7d", today: date | None = None, dashboard_url: str | None = None) -> dict[str, Any]:
    data = gather(settings, period, today)
    report_summary = summary(data, generated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    subject, html_body, text_body, charts = render(data, dashboard_url=dashboard_url, report=report_summary)
    message = build_mime(subject, settings.sender_email, settings.report_recipients, html_body, text_body, charts)
    return {"subject": subject, "html": html_body, "text": text_body, "mime": message.as_bytes(), "data": data,
            "charts": charts, "summary": report_summary, "dashboard": render_dashboard(data, report_summary)}


def latest_issues(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues of the newest clustering, largest first (older runs' items are history)."""
    latest = max((str(i.get("model_version", "")) for i in items), default="")
    return sorted((i for i in items if str(i.get("model_version", "")) == latest), key=lambda i: -int(i.get("size", 0)))


def behaviour_profiles(settings: Settings, start: date, end: date, today: date) -> list[dict[str, Any]]:
    """Customer abusive-behaviour profiles whose window of messages overlaps the period (index rows
    pk behaviour#<day>, written by Enrich on the day it refreshed them), newest per customer,
    highest score first."""
    days = {(start + timedelta(d)).isoformat() for d in range((end - start).days + 1)}
    days |= {(today - timedelta(d)).isoformat() for d in range(2)}
    newest: dict[str, dict[str, Any]] = {}
    for day in sorted(days):
        for row in dynamo.query_pk(settings.aggregates_table, f"behaviour#{day}"):
            newest[row["sk"]] = {**row, "customer_id": row["sk"]}
    first, last = start.isoformat(), end.isoformat()
    overlapping = [p for p in newest.values()
                   if str(p.get("window_start") or first) <= last and str(p.get("window_end") or last) >= first]
    return sorted(overlapping, key=lambda p: (-float(p.get("score") or 0), p["customer_id"]))


def archive_keys(period: str, now: datetime | None = None) -> dict[str, str]:
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H%M%SZ")
    prefix = f"reports/{period}/{stamp}"
    return {"prefix": prefix, "eml": f"{prefix}.eml", "html": f"{prefix}.html", "dashboard": f"{prefix}.dashboard.html",
            "summary": f"{prefix}.summary.json", "latest_summary": f"reports/{period}/summary.json"}


def send_report(settings: Settings, period: str = "7d", today: date | None = None) -> dict[str, Any]:
    return make_and_deliver(settings, period, today)[1]


def make_and_deliver(settings: Settings, period: str = "7d", today: date | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Build the report with a pre-signed link to its dashboard, archive everything, send the e-mail."""
    parse_period(period)
    keys = archive_keys(period)
    url = s3.presigned_get_url(settings.data_bucket, keys["dashboard"], settings.report_link_expiry_s)
    report = build_report(settings, period, today, dashboard_url=url)
    return report, deliver(settings, report, period, keys, url)


def deliver(settings: Settings, report: dict[str, Any], period: str, keys: dict[str, str] | None = None,
            dashboard_url: str | None = None) -> dict[str, Any]:
    """Archive the report (.eml, a standalone .html, summary.json, the dashboard) under reports/ and send it through SES."""
    keys = keys or archive_keys(period)
    summary_json = json.dumps(report["summary"], default=str, indent=1).encode()
    s3.put(settings.data_bucket, keys["dashboard"], report["dashboard"].encode(), "text/html; charset=utf-8")
    s3.put(settings.data_bucket, keys["eml"], report["mime"], "message/rfc822")
    s3.put(settings.data_bucket, keys["html"], _inline_images(report["html"], report["charts"]).encode(), "text/html; charset=utf-8")
    s3.put(settings.data_bucket, keys["summary"], summary_json, "application/json")
    s3.put(settings.data_bucket, keys["latest_summary"], summary_json, "application/json")  # the newest report of this period
    message_id = None
    if settings.report_recipients:
        message_id = client("ses").send_raw_email(
            Source=settings.sender_email, Destinations=settings.report_recipients, RawMessage={"Data": report["mime"]}
        )["MessageId"]
    data = report["data"]
    result = {"subject": report["subject"], "message_id": message_id, "archive": keys["eml"], "html": keys["html"],
              "summary": keys["summary"], "latest_summary": keys["latest_summary"], "dashboard": keys["dashboard"],
              "dashboard_link_expires_s": settings.report_link_expiry_s if dashboard_url else None,
              "volume": int(data.totals.get("volume", 0)), "start": str(data.start), "end": str(data.end),
              "email_bytes": len(report["mime"]), "dashboard_bytes": len(report["dashboard"].encode())}
    logger().info("report sent", extra=result)
    return result


def standalone_html(report: dict[str, Any]) -> str:
    return _inline_images(report["html"], report["charts"])


def _inline_images(html_body: str, charts: dict[str, bytes]) -> str:
    """The archived .html stands alone: cid: images become data: URIs."""
    for cid, png in charts.items():
        html_body = html_body.replace(f"cid:{cid}", "data:image/png;base64," + base64.b64encode(png).decode())
    return html_body
