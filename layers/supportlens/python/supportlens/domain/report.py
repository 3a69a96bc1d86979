"""Stakeholder report: numbers from pre-aggregated counters, charts, HTML + text, MIME.

Every section says plainly when it has no data and when it will have it.
"""

from __future__ import annotations

import html
import io
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

SENTIMENTS = ("negative", "neutral", "positive")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class ReportData:
    period_label: str
    start: date
    end: date
    notice: str | None
    days: list[str]
    daily_volume: dict[str, int]
    totals: dict[str, float]
    by_company: list[dict[str, Any]]
    by_channel: dict[str, int]
    heatmap: list[list[int]]  # 7 weekdays x 24 hours
    issues: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)


def period_days(end: date, days: int) -> list[str]:
    return [(end - timedelta(d)).isoformat() for d in range(days - 1, -1, -1)]


def summarise(rows_by_day: dict[str, list[dict[str, Any]]], period_label: str, start: date, end: date, notice: str | None) -> ReportData:
    """Fold the aggregate rows of each day into the report's numbers."""
    days = period_days(end, (end - start).days + 1)
    totals: dict[str, float] = defaultdict(float)
    companies: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    channels: dict[str, int] = defaultdict(int)
    heatmap = [[0] * 24 for _ in range(7)]
    daily = {}
    for day in days:
        volume = 0
        weekday = date.fromisoformat(day).weekday()
        for row in rows_by_day.get(day, []):
            if not row["sk"].startswith("company#"):
                continue  # agent rows repeat the same tickets by agent
            _, company, _, channel = row["sk"].split("#", 3)
            for counter, value in row.items():
                if counter in ("pk", "sk") or not isinstance(value, (int, float)):
                    continue
                totals[counter] += value
                companies[company][counter] += value
                if len(counter) == 3 and counter.startswith("h") and counter[1:].isdigit():
                    heatmap[weekday][int(counter[1:])] += int(value)
            channels[channel] += int(row.get("volume", 0))
            volume += int(row.get("volume", 0))
        daily[day] = volume
    by_company = []
    for company, c in companies.items():
        if not c.get("volume") and not c.get("replies"):
            continue
        by_company.append({
            "company": company,
            "volume": int(c.get("volume", 0)),
            "negative_share": c.get("negative", 0) / c["volume"] if c.get("volume") else None,
            "abusive": int(c.get("abusive", 0)),
            "escalations": int(c.get("escalations", 0)),
            "replies": int(c.get("replies", 0)),
            "responses": int(c.get("rt_count", 0)),
            "avg_response_min": c["rt_sum"] / c["rt_count"] / 60 if c.get("rt_count") else None,
        })
    by_company.sort(key=lambda r: -r["volume"])
    return ReportData(period_label, start, end, notice, days, daily, dict(totals), by_company, dict(channels), heatmap)


def _charts(data: ReportData) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, bytes] = {}

    def save(fig: Any, name: str) -> None:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        charts[name] = buf.getvalue()

    if sum(data.daily_volume.values()):
        fig, ax = plt.subplots(figsize=(7, 2.6))
        ax.bar([d[5:] for d in data.days], [data.daily_volume[d] for d in data.days], color="#3b6ea5")
        ax.set_title("Customer messages per day")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        save(fig, "volume")
        counts = [data.totals.get(s, 0) for s in SENTIMENTS]
        fig, ax = plt.subplots(figsize=(3.6, 2.6))
        ax.barh(SENTIMENTS, counts, color=["#c0392b", "#95a5a6", "#27ae60"])
        ax.set_title("Sentiment mix")
        save(fig, "sentiment")
        fig, ax = plt.subplots(figsize=(7, 2.4))
        image = ax.imshow(data.heatmap, aspect="auto", cmap="Blues")
        ax.set_yticks(range(7), WEEKDAYS)
        ax.set_xticks(range(0, 24, 3))
        ax.set_xlabel("hour (UTC)")
        ax.set_title("When customers write (weekday x hour)")
        fig.colorbar(image, ax=ax)
        save(fig, "heatmap")
    return charts


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def render(data: ReportData, cluster_schedule: str = "daily at 02:00 UTC") -> tuple[str, str, str, dict[str, bytes]]:
    """(subject, html, text, {content-id: png})."""
    t = data.totals
    volume = int(t.get("volume", 0))
    kpis = [
        ("Customer messages", f"{volume:,}"),
        ("Negative", _pct(t.get("negative", 0) / volume if volume else None)),
        ("Abusive", f"{int(t.get('abusive', 0))}"),
        ("Escalations", f"{int(t.get('escalations', 0))}"),
        ("Avg first response", _num(t["rt_sum"] / t["rt_count"] / 60 if t.get("rt_count") else None, "{:.0f} min")),
        ("Company replies", f"{int(t.get('replies', 0)):,}"),
    ]
    charts = _charts(data)
    subject = f"SupportLens {data.period_label} report: {data.start} to {data.end} - {volume:,} messages"
    esc = html.escape
    parts = [f"<h1 style='font-family:sans-serif'>SupportLens report</h1><p>{esc(data.period_label)}: {data.start} to {data.end}</p>"]
    text = [f"SupportLens report - {data.period_label}: {data.start} to {data.end}", ""]
    if data.notice:
        parts.append(f"<p style='background:#fff3cd;padding:8px'>{esc(data.notice)}</p>")
        text += [f"NOTE: {data.notice}", ""]
    parts.append("<table cellpadding='6' style='font-family:sans-serif'><tr>" + "".join(
        f"<td style='border:1px solid #ddd'><div style='color:#666'>{esc(k)}</div><b style='font-size:20px'>{esc(v)}</b></td>" for k, v in kpis) + "</tr></table>")
    text += [f"{k}: {v}" for k, v in kpis] + [""]
    if charts:
        for cid, title in (("volume", "Volume"), ("sentiment", "Sentiment"), ("heatmap", "Hour x weekday")):
            parts.append(f"<h2 style='font-family:sans-serif'>{title}</h2><img src='cid:{cid}' alt='{title} chart'>")
    else:
        parts.append("<p><i>No customer messages in this period, so there are no charts.</i></p>")
        text.append("No customer messages in this period, so there are no charts.")
    parts.append("<h2 style='font-family:sans-serif'>Companies</h2>")
    text.append("Companies (volume, negative, avg first response):")
    if data.by_company:
        rows = "".join(
            f"<tr><td>{esc(r['company'])}</td><td>{r['volume']}</td><td>{_pct(r['negative_share'])}</td><td>{r['abusive']}</td>"
            f"<td>{r['escalations']}</td><td>{_num(r['avg_response_min'], '{:.0f}')}</td><td>{r['responses']}</td></tr>"
            for r in data.by_company[:15])
        parts.append("<table border='1' cellpadding='4' style='border-collapse:collapse;font-family:sans-serif'><tr><th>Company</th><th>Messages</th>"
                     "<th>Negative</th><th>Abusive</th><th>Escalations</th><th>Avg first response (min)</th><th>Answered</th></tr>" + rows + "</table>")
        text += [f"  {r['company']}: {r['volume']}, {_pct(r['negative_share'])}, {_num(r['avg_response_min'], '{:.0f} min')}" for r in data.by_company[:15]]
    else:
        parts.append("<p><i>No company data in this period.</i></p>")
        text.append("  none in this period")
    text.append("")
    parts.append("<h2 style='font-family:sans-serif'>Top issues</h2>")
    text.append("Top issues:")
    if data.issues:
        items = "".join(
            f"<li><b>{esc(i['label'])}</b> - {i['size']} tickets{' - <b>emerging</b>: ' + esc(i.get('emerging_reason') or '') if i.get('emerging') else ''}"
            f"<br><small>e.g. \"{esc((i.get('examples') or [{}])[0].get('text', ''))}\"</small></li>" for i in data.issues[:10])
        parts.append(f"<ol style='font-family:sans-serif'>{items}</ol>")
        text += [f"  {i['label']} ({i['size']}){' EMERGING' if i.get('emerging') else ''}" for i in data.issues[:10]]
    else:
        msg = f"Not computed yet: clustering runs {cluster_schedule}."
        parts.append(f"<p><i>{msg}</i></p>")
        text.append("  " + msg)
    text.append("")
    parts.append("<h2 style='font-family:sans-serif'>Alerts raised</h2>")
    text.append("Alerts raised:")
    if data.alerts:
        parts.append("<ul style='font-family:sans-serif'>" + "".join(f"<li>[{esc(a.get('severity', ''))}] {esc(a.get('summary', a.get('rule', '')))}</li>" for a in data.alerts[:20]) + "</ul>")
        text += [f"  [{a.get('severity')}] {a.get('summary')}" for a in data.alerts[:20]]
    else:
        parts.append("<p><i>No alerts in this period.</i></p>")
        text.append("  none")
    body = "<html><body style='max-width:800px'>" + "".join(parts) + "</body></html>"
    return subject, body, "\n".join(text) + "\n", charts


def build_mime(subject: str, sender: str, recipients: list[str], html_body: str, text_body: str, charts: dict[str, bytes]) -> MIMEMultipart:
    """multipart/related(multipart/alternative(text, html), inline PNGs)."""
    root = MIMEMultipart("related")
    root["Subject"] = subject
    root["From"] = sender
    root["To"] = ", ".join(recipients)
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(text_body, "plain", "utf-8"))
    alternative.attach(MIMEText(html_body, "html", "utf-8"))
    root.attach(alternative)
    for cid, png in charts.items():
        image = MIMEImage(png, "png")
        image.add_header("Content-ID", f"<{cid}>")
        image.add_header("Content-Disposition", "inline", filename=f"{cid}.png")
        root.attach(image)
    return root
