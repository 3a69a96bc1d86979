"""Report use case: read aggregates for the period, render, send through SES, archive in S3."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..adapters import dynamo, s3
from ..adapters.aws import client
from ..domain.report import build_mime, render, summarise
from ..observability import logger
from ..settings import Settings

PERIODS = {"1d": ("daily", 1), "7d": ("weekly", 7), "30d": ("monthly", 30)}


def parse_period(period: str) -> tuple[str, int]:
    if period in PERIODS:
        return PERIODS[period]
    match = re.fullmatch(r"(\d{1,3})d", period)
    if not match:
        raise ValueError(f"period must look like 1d, 7d or 30d, not {period!r}")
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


def build_report(settings: Settings, period: str = "7d", today: date | None = None) -> dict[str, Any]:
    label, span = parse_period(period)
    today = today or datetime.now(timezone.utc).date()
    day_index = {row["sk"]: int(row.get("volume", 0)) for row in dynamo.query_pk(settings.aggregates_table, "days")}
    start, end, notice = choose_window(list(day_index), span, today)
    rows = {}
    for d in range(span):
        day = (start + timedelta(d)).isoformat()
        rows[day] = dynamo.query_pk(settings.aggregates_table, f"day#{day}")
    data = summarise(rows, label, start, end, notice)
    before = [(start - timedelta(d)).isoformat() for d in range(1, span + 1)]
    data.previous_volume = sum(day_index.get(d, 0) for d in before) if day_index and min(day_index) <= before[0] else None
    data.issues = latest_issues(dynamo.scan_all(settings.issues_table))
    now = datetime.now(timezone.utc)
    since = (now - timedelta(days=span)).isoformat(timespec="seconds")
    data.alerts_since = since
    data.alerts = sorted((a for a in dynamo.scan_all(settings.alerts_table)
                          if a.get("record") != "cooldown" and str(a.get("raised_at", "")) >= since),
                         key=lambda a: a.get("raised_at", ""), reverse=True)
    data.abusive_customers = behaviour_profiles(settings, start, end, now.date())
    subject, html_body, text_body, charts = render(data)
    message = build_mime(subject, settings.sender_email, settings.report_recipients, html_body, text_body, charts)
    return {"subject": subject, "html": html_body, "text": text_body, "mime": message.as_bytes(), "data": data, "charts": charts}


def latest_issues(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues of the newest clustering, largest first (older runs' items are history)."""
    latest = max((str(i.get("model_version", "")) for i in items), default="")
    return sorted((i for i in items if str(i.get("model_version", "")) == latest), key=lambda i: -int(i.get("size", 0)))


def behaviour_profiles(settings: Settings, start: date, end: date, today: date) -> list[dict[str, Any]]:
    """Customer abusive-behaviour profiles refreshed during the period or in the last 2 days
    (index rows pk behaviour#<day>, written by Enrich), newest per customer, highest score first."""
    days = {(start + timedelta(d)).isoformat() for d in range((end - start).days + 1)}
    days |= {(today - timedelta(d)).isoformat() for d in range(2)}
    newest: dict[str, dict[str, Any]] = {}
    for day in sorted(days):
        for row in dynamo.query_pk(settings.aggregates_table, f"behaviour#{day}"):
            newest[row["sk"]] = {**row, "customer_id": row["sk"]}
    return sorted(newest.values(), key=lambda p: (-float(p.get("score") or 0), p["customer_id"]))


def send_report(settings: Settings, period: str = "7d", today: date | None = None) -> dict[str, Any]:
    return deliver(settings, build_report(settings, period, today), period)


def deliver(settings: Settings, report: dict[str, Any], period: str) -> dict[str, Any]:
    """Archive the report (.eml and a standalone .html) under reports/ and send it through SES."""
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    prefix = f"reports/{period}/{stamp}"
    s3.put(settings.data_bucket, f"{prefix}.eml", report["mime"], "message/rfc822")
    s3.put(settings.data_bucket, f"{prefix}.html", _inline_images(report["html"], report["charts"]).encode(), "text/html")
    message_id = None
    if settings.report_recipients:
        message_id = client("ses").send_raw_email(
            Source=settings.sender_email, Destinations=settings.report_recipients, RawMessage={"Data": report["mime"]}
        )["MessageId"]
    result = {"subject": report["subject"], "message_id": message_id, "archive": f"{prefix}.eml",
              "html": f"{prefix}.html", "volume": int(report["data"].totals.get("volume", 0)),
              "start": str(report["data"].start), "end": str(report["data"].end)}
    logger().info("report sent", extra=result)
    return result


def standalone_html(report: dict[str, Any]) -> str:
    return _inline_images(report["html"], report["charts"])


def _inline_images(html_body: str, charts: dict[str, bytes]) -> str:
    """The archived .html stands alone: cid: images become data: URIs."""
    for cid, png in charts.items():
        html_body = html_body.replace(f"cid:{cid}", "data:image/png;base64," + base64.b64encode(png).decode())
    return html_body
