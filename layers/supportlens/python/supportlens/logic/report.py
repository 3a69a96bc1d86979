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
    days_with_data = [row["sk"] for row in dynamo.query_pk(settings.aggregates_table, "days")]
    start, end, notice = choose_window(days_with_data, span, today)
    rows = {}
    for d in range(span):
        day = (start + timedelta(d)).isoformat()
        rows[day] = dynamo.query_pk(settings.aggregates_table, f"day#{day}")
    data = summarise(rows, label, start, end, notice)
    data.issues = sorted(dynamo.scan_all(settings.issues_table), key=lambda i: -int(i.get("size", 0)))
    data.alerts = sorted(dynamo.scan_all(settings.alerts_table), key=lambda a: a.get("raised_at", ""), reverse=True)
    subject, html_body, text_body, charts = render(data)
    message = build_mime(subject, settings.sender_email, settings.report_recipients, html_body, text_body, charts)
    return {"subject": subject, "html": html_body, "text": text_body, "mime": message.as_bytes(), "data": data, "charts": charts}


def send_report(settings: Settings, period: str = "7d", today: date | None = None) -> dict[str, Any]:
    report = build_report(settings, period, today)
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


def _inline_images(html_body: str, charts: dict[str, bytes]) -> str:
    """The archived .html stands alone: cid: images become data: URIs."""
    for cid, png in charts.items():
        html_body = html_body.replace(f"cid:{cid}", "data:image/png;base64," + base64.b64encode(png).decode())
    return html_body
