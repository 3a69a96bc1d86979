"""Stakeholder report: numbers from pre-aggregated counters, charts, HTML + text, MIME.

Every section says plainly when it has no data and when it will have it; no empty charts.
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

from .metrics import median_from_hist

SENTIMENTS = ("negative", "neutral", "positive")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_RESPONSES_TO_RANK = 3  # a company/agent needs this many answered messages to enter best/worst tables
HIGH_BEHAVIOUR_SCORE = 0.5


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
    daily_sentiment: dict[str, dict[str, int]] = field(default_factory=dict)
    agents: list[dict[str, Any]] = field(default_factory=list)
    delivery: dict[str, int] = field(default_factory=dict)  # FTDS: delivery status -> customer messages
    previous_volume: int | None = None  # the same-length period before, from the days index
    abusive_customers: list[dict[str, Any]] = field(default_factory=list)
    alerts_since: str | None = None  # alerts are listed by when they were raised (wall clock)

    @property
    def abuse_rate(self) -> float | None:
        volume = self.totals.get("volume", 0)
        return self.totals.get("abusive", 0) / volume if volume else None


def period_days(end: date, days: int) -> list[str]:
    return [(end - timedelta(d)).isoformat() for d in range(days - 1, -1, -1)]


def _rt_fields(c: dict[str, float]) -> dict[str, Any]:
    median = median_from_hist(c)
    return {
        "responses": int(c.get("rt_count", 0)),
        "avg_response_min": c["rt_sum"] / c["rt_count"] / 60 if c.get("rt_count") else None,
        "median_response_min": median / 60 if median is not None else None,
    }


def summarise(rows_by_day: dict[str, list[dict[str, Any]]], period_label: str, start: date, end: date, notice: str | None) -> ReportData:
    """Fold the aggregate rows of each day into the report's numbers."""
    days = period_days(end, (end - start).days + 1)
    totals: dict[str, float] = defaultdict(float)
    companies: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    agents: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    channels: dict[str, int] = defaultdict(int)
    heatmap = [[0] * 24 for _ in range(7)]
    daily, daily_sentiment = {}, {}
    for day in days:
        volume = 0
        sentiment = dict.fromkeys(SENTIMENTS, 0)
        weekday = date.fromisoformat(day).weekday()
        for row in rows_by_day.get(day, []):
            if row["sk"].startswith("agent#"):  # agent rows repeat the same tickets by agent: own table only
                agent = row["sk"].split("#")[1]
                for counter, value in row.items():
                    if isinstance(value, (int, float)) and not isinstance(value, bool):
                        agents[agent][counter] += value
                continue
            if not row["sk"].startswith("company#"):
                continue
            _, company, _, channel = row["sk"].split("#", 3)
            for counter, value in row.items():
                if counter in ("pk", "sk") or not isinstance(value, (int, float)) or isinstance(value, bool):
                    continue
                totals[counter] += value
                companies[company][counter] += value
                if len(counter) == 3 and counter.startswith("h") and counter[1:].isdigit():
                    heatmap[weekday][int(counter[1:])] += int(value)
            for s in SENTIMENTS:
                sentiment[s] += int(row.get(s, 0))
            channels[channel] += int(row.get("volume", 0))
            volume += int(row.get("volume", 0))
        daily[day] = volume
        daily_sentiment[day] = sentiment
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
            **_rt_fields(c),
        })
    by_company.sort(key=lambda r: -r["volume"])
    by_agent = []
    for agent, a in agents.items():
        volume = int(a.get("volume", 0))
        calls = int(a.get("calls", 0))
        by_agent.append({
            "agent": agent, "volume": volume, "failed_calls": int(a.get("failed_calls", 0)),
            "failure_rate": a.get("failed_calls", 0) / volume if volume else None,
            "calls": calls, "long_calls": int(a.get("long_calls", 0)),
            "avg_call_min": a.get("call_duration_sum", 0) / calls / 60 if calls else None,
            **_rt_fields(a),
        })
    by_agent.sort(key=lambda r: (-r["volume"], r["agent"]))
    delivery = {k[3:]: int(v) for k, v in totals.items() if k.startswith("ds_") and v}
    return ReportData(period_label, start, end, notice, days, daily, dict(totals), by_company, dict(channels), heatmap,
                      daily_sentiment=daily_sentiment, agents=by_agent, delivery=delivery)


def ranked(rows: list[dict[str, Any]], key: str = "avg_response_min", n: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(best n, worst n) by a response-time field, among rows with enough answered messages."""
    eligible = [r for r in rows if r.get(key) is not None and r.get("responses", 0) >= MIN_RESPONSES_TO_RANK]
    name = "company" if eligible and "company" in eligible[0] else "agent"
    ordered = sorted(eligible, key=lambda r: (r[key], r[name]))
    return ordered[:n], ordered[::-1][:n]


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
        labels = [d[5:] for d in data.days]
        fig, ax = plt.subplots(figsize=(7, 2.6))
        ax.bar(labels, [data.daily_volume[d] for d in data.days], color="#3b6ea5")
        ax.set_title("Customer messages per day")
        ax.tick_params(axis="x", labelrotation=45, labelsize=8)
        save(fig, "volume")
        counts = [data.totals.get(s, 0) for s in SENTIMENTS]
        fig, (mix, trend) = plt.subplots(1, 2, figsize=(8, 2.6), gridspec_kw={"width_ratios": [1, 2]})
        mix.barh(SENTIMENTS, counts, color=["#c0392b", "#95a5a6", "#27ae60"])
        mix.set_title("Sentiment mix")
        shares = []
        for d in data.days:
            total = sum(data.daily_sentiment.get(d, {}).values())
            shares.append(100 * data.daily_sentiment[d]["negative"] / total if total else float("nan"))
        trend.plot(labels, shares, marker="o", color="#c0392b")
        trend.set_ylim(0, 100)
        trend.set_ylabel("% negative")
        trend.set_title("Negative share per day")
        trend.tick_params(axis="x", labelrotation=45, labelsize=8)
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


class _Doc:
    """HTML and plain text built side by side, so both say the same."""

    TABLE = "<table border='1' cellpadding='4' style='border-collapse:collapse;font-family:sans-serif;margin-bottom:8px'>"

    def __init__(self) -> None:
        self.html: list[str] = []
        self.text: list[str] = []

    def h2(self, title: str) -> None:
        self.html.append(f"<h2 style='font-family:sans-serif'>{html.escape(title)}</h2>")
        self.text += ["", f"{title}:"]

    def para(self, line: str, italic: bool = False) -> None:
        body = html.escape(line)
        self.html.append(f"<p style='font-family:sans-serif'>{'<i>' + body + '</i>' if italic else body}</p>")
        self.text.append(f"  {line}")

    def table(self, headers: list[str], rows: list[list[Any]], caption: str | None = None) -> None:
        esc = html.escape
        cap = f"<caption style='text-align:left'><b>{esc(caption)}</b></caption>" if caption else ""
        head = "".join(f"<th>{esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        self.html.append(f"{self.TABLE}{cap}<tr>{head}</tr>{body}</table>")
        if caption:
            self.text.append(f"  {caption}:")
        self.text.append("    " + " | ".join(headers))
        self.text += ["    " + " | ".join(str(c) for c in r) for r in rows]


def render(data: ReportData, cluster_schedule: str = "daily at 02:00 UTC") -> tuple[str, str, str, dict[str, bytes]]:
    """(subject, html, text, {content-id: png})."""
    t = data.totals
    volume = int(t.get("volume", 0))
    kpis = [
        ("Customer messages", f"{volume:,}"),
        ("Negative", _pct(t.get("negative", 0) / volume if volume else None)),
        ("Abusive", f"{int(t.get('abusive', 0))}"),
        ("Abuse rate", _pct(data.abuse_rate)),
        ("Escalations", f"{int(t.get('escalations', 0))}"),
        ("Avg first response", _num(t["rt_sum"] / t["rt_count"] / 60 if t.get("rt_count") else None, "{:.0f} min")),
        ("Median first response", _num((median_from_hist(t) or 0) / 60 if median_from_hist(t) is not None else None, "{:.0f} min")),
        ("Company replies", f"{int(t.get('replies', 0)):,}"),
    ]
    charts = _charts(data)
    subject = f"SupportLens {data.period_label} report: {data.start} to {data.end} - {volume:,} messages"
    esc = html.escape
    doc = _Doc()
    doc.html.append(f"<h1 style='font-family:sans-serif'>SupportLens report</h1><p>{esc(data.period_label)}: {data.start} to {data.end}</p>")
    doc.text += [f"SupportLens report - {data.period_label}: {data.start} to {data.end}", ""]
    if data.notice:
        doc.html.append(f"<p style='background:#fff3cd;padding:8px'>{esc(data.notice)}</p>")
        doc.text += [f"NOTE: {data.notice}", ""]
    doc.html.append("<table cellpadding='6' style='font-family:sans-serif'><tr>" + "".join(
        f"<td style='border:1px solid #ddd'><div style='color:#666'>{esc(k)}</div><b style='font-size:20px'>{esc(v)}</b></td>" for k, v in kpis) + "</tr></table>")
    doc.text += [f"{k}: {v}" for k, v in kpis]

    # Volume and trend
    doc.h2("Volume")
    if volume:
        busiest = max(data.days, key=lambda d: data.daily_volume[d])
        line = f"{volume:,} customer messages, {volume / len(data.days):.1f} a day; busiest day {busiest} ({data.daily_volume[busiest]:,})."
        if data.previous_volume:
            change = (volume - data.previous_volume) / data.previous_volume
            line += f" {change:+.0%} against the {len(data.days)} day(s) before ({data.previous_volume:,})."
        elif data.previous_volume == 0:
            line += f" No messages in the {len(data.days)} day(s) before, so no trend yet."
        doc.para(line)
        doc.html.append("<img src='cid:volume' alt='Volume chart'>")
    else:
        doc.para("No customer messages in this period, so there are no charts. They appear once tickets for these days are stored.", italic=True)

    # Sentiment and abuse
    doc.h2("Sentiment")
    if volume:
        mix = ", ".join(f"{s} {_pct(t.get(s, 0) / volume)}" for s in SENTIMENTS)
        doc.para(f"{mix}. Abusive messages: {int(t.get('abusive', 0))} ({_pct(data.abuse_rate)} of customer messages).")
        doc.html.append("<img src='cid:sentiment' alt='Sentiment chart'>")
    else:
        doc.para("No sentiment without messages: this fills in with the first stored tickets.", italic=True)

    doc.h2("Hour x weekday")
    if volume:
        doc.html.append("<img src='cid:heatmap' alt='Hour x weekday chart'>")
        doc.text.append("  (chart in the HTML version)")
    else:
        doc.para("No activity to map yet.", italic=True)

    doc.h2("Channels")
    channels = sorted(((c, n) for c, n in data.by_channel.items() if n), key=lambda x: -x[1])
    if channels:
        doc.table(["Channel", "Messages", "Share"], [[c, f"{n:,}", _pct(n / volume)] for c, n in channels])
    else:
        doc.para("No channel data in this period.", italic=True)

    doc.h2("Companies")
    if data.by_company:
        doc.table(["Company", "Messages", "Negative", "Abusive", "Escalations", "Avg first response (min)", "Answered"], [
            [r["company"], r["volume"], _pct(r["negative_share"]), r["abusive"], r["escalations"],
             _num(r["avg_response_min"], "{:.0f}"), r["responses"]] for r in data.by_company[:15]])
    else:
        doc.para("No company data in this period.", italic=True)

    doc.h2("Escalations")
    escalated = sorted((r for r in data.by_company if r["escalations"]), key=lambda r: -r["escalations"])
    if escalated:
        doc.para(f"{int(t.get('escalations', 0))} messages matched an escalation rule (legal threats, churn, complaints to regulators...).")
        doc.table(["Company", "Escalations", "Share of its messages"],
                  [[r["company"], r["escalations"], _pct(r["escalations"] / r["volume"]) if r["volume"] else "n/a"] for r in escalated[:10]])
    else:
        doc.para("No message matched an escalation rule in this period.", italic=True)

    doc.h2("Delivery outcomes (FTDS)")
    if data.delivery:
        total = sum(data.delivery.values())
        doc.table(["Delivery status", "Cases", "Share"], [[k.replace("_", " "), n, _pct(n / total)] for k, n in sorted(data.delivery.items(), key=lambda x: -x[1])])
    else:
        doc.para("No delivery outcomes in this period: this section fills in when escalation files with a delivery status "
                 "(FTDS) column are ingested.", italic=True)

    doc.h2("Response times")
    _rt_tables(doc, data.by_company, "company", "companies")
    _rt_tables(doc, data.agents, "agent", "agents")

    doc.h2("Agent performance")
    if data.agents:
        doc.table(["Agent", "Handled", "Failed calls", "Failure rate", "Calls", "Long calls (>= 50 min)", "Avg call (min)"], [
            [a["agent"], a["volume"], a["failed_calls"], _pct(a["failure_rate"]), a["calls"], a["long_calls"], _num(a["avg_call_min"])]
            for a in data.agents[:15]])
    else:
        doc.para("No agent data in this period: agent tables fill in when call logs or helpdesk exports with an agent column are ingested.", italic=True)

    doc.h2("Top issues")
    if data.issues:
        items = "".join(
            f"<li><b>{esc(i['label'])}</b> - {i['size']} tickets, growth {_growth(i)}"
            f"{' - <b>emerging</b>: ' + esc(i.get('emerging_reason') or '') if i.get('emerging') else ''}"
            f"<br><small>e.g. \"{esc((i.get('examples') or [{}])[0].get('text', ''))}\"</small></li>" for i in data.issues[:10])
        doc.html.append(f"<ol style='font-family:sans-serif'>{items}</ol>")
        doc.text += [f"  {i['label']} ({i['size']}){' EMERGING' if i.get('emerging') else ''} growth {_growth(i)}" for i in data.issues[:10]]
    else:
        doc.para(f"Not computed yet: clustering runs {cluster_schedule}.", italic=True)

    doc.h2("Emerging issues")
    emerging = [i for i in data.issues if i.get("emerging")]
    if emerging:
        for i in emerging[:10]:
            examples = "; ".join(f"{e.get('ticket_id', '')}: \"{e.get('text', '')[:140]}\"" for e in (i.get("examples") or [])[:2])
            doc.para(f"{i['label']} ({i['size']} tickets): {i.get('emerging_reason') or 'growing'}. Examples: {examples or 'none'}")
    elif data.issues:
        doc.para("No issue is growing unusually fast against its own baseline.", italic=True)
    else:
        doc.para(f"Not computed yet: clustering runs {cluster_schedule}.", italic=True)

    doc.h2("Alerts raised")
    if data.alerts:
        counts: dict[str, int] = defaultdict(int)
        for a in data.alerts:
            counts[a.get("rule", "?")] += 1
        if data.alerts_since:
            doc.para(f"{len(data.alerts)} alert(s) raised since {data.alerts_since}: " + ", ".join(f"{r} {n}" for r, n in sorted(counts.items())) + ".")
        doc.html.append("<ul style='font-family:sans-serif'>" + "".join(f"<li>[{esc(a.get('severity', ''))}] {esc(a.get('summary', a.get('rule', '')))}</li>" for a in data.alerts[:20]) + "</ul>")
        doc.text += [f"  [{a.get('severity')}] {a.get('summary')}" for a in data.alerts[:20]]
    else:
        doc.para("No alerts in this period.", italic=True)

    doc.h2("Customers with high abusive-behaviour scores")
    high = [c for c in data.abusive_customers if float(c.get("score") or 0) >= HIGH_BEHAVIOUR_SCORE]
    if high:
        doc.table(["Customer", "Score", "Why"], [[c.get("customer_id", c.get("sk")), f"{float(c['score']):.2f}", "; ".join(c.get("reasons") or [])] for c in high[:10]])
    else:
        doc.para(f"No customer scored {HIGH_BEHAVIOUR_SCORE} or more in this period: profiles are refreshed as their messages arrive.", italic=True)

    body = "<html><body style='max-width:900px'>" + "".join(doc.html) + "</body></html>"
    return subject, body, "\n".join(doc.text) + "\n", charts


def _growth(issue: dict[str, Any]) -> str:
    growth = issue.get("growth")
    if growth is None:
        return "n/a"
    return "new" if float(growth) >= 99 else f"{float(growth):+.0%}"


def _rt_tables(doc: _Doc, rows: list[dict[str, Any]], name: str, plural: str) -> None:
    best, worst = ranked(rows)
    if not best:
        doc.para(f"No first-response times for {plural} in this period (ranking needs {MIN_RESPONSES_TO_RANK}+ answered messages each): "
                 f"they appear when the data links customer messages to {name} replies.", italic=True)
        return
    headers = [name.capitalize(), "Answered", "Avg (min)", "Median (min)"]

    def fmt(r: dict[str, Any]) -> list[Any]:
        return [r[name], r["responses"], _num(r["avg_response_min"], "{:.0f}"), _num(r["median_response_min"], "{:.0f}")]

    doc.table(headers, [fmt(r) for r in best], caption=f"Fastest {plural} (average first response)")
    doc.table(headers, [fmt(r) for r in worst], caption=f"Slowest {plural}")


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
