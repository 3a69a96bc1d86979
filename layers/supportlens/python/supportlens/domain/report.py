"""Stakeholder report: numbers from pre-aggregated counters, one period in data time.

`summarise` folds the aggregate rows of the period's days into ReportData; `summary` turns it
into the machine-readable summary (every section present, with the reason when it is empty);
`render` writes the e-mail (HTML with inline styles and a plain-text part saying the same) from
that summary, so the JSON, the e-mail and the dashboard cannot disagree.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from . import behaviour
from .metrics import dimension_group, display_spelling, median_from_hist

SENTIMENTS = ("negative", "neutral", "positive")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MIN_RESPONSES_TO_RANK = 3  # a company/agent needs this many answered messages to enter best/worst tables
HIGH_BEHAVIOUR_SCORE = 0.5
DAILY_BINS_MAX_DAYS = 21  # longer periods are charted in weeks
ALERTS_LISTED = 20
MIN_TREND_BASE = 10  # growth against fewer messages than this says nothing ("+31,900 %" on a baseline of 1)
ISSUES_LISTED = 10
CLOCK = "data time: when customers wrote (ticket created_at, UTC)"
SUMMARY_SCHEMA = "supportlens.report-summary/v1"
DIMENSIONS = ("region", "tier", "industry")
FONT = "Arial, Helvetica, sans-serif"  # the one font of the e-mail (and of its charts)


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
    alerts: list[dict[str, Any]] = field(default_factory=list)  # raised in the period (data time)
    files: list[dict[str, Any]] = field(default_factory=list)
    daily_sentiment: dict[str, dict[str, int]] = field(default_factory=dict)
    agents: list[dict[str, Any]] = field(default_factory=list)
    delivery: dict[str, int] = field(default_factory=dict)  # FTDS: delivery status -> customer messages
    previous_volume: int | None = None  # the same-length period before, from the days index
    abusive_customers: list[dict[str, Any]] = field(default_factory=list)
    daily: dict[str, dict[str, float]] = field(default_factory=dict)  # day -> counters over all companies
    dimensions: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # region|tier|industry -> value -> counters
    cells: list[dict[str, Any]] = field(default_factory=list)  # day x company x channel counters (the dashboard's filters)
    active_rows: list[dict[str, Any]] = field(default_factory=list)  # per-chunk most-active customer rows of the period
    issues_computed: bool = False  # a clustering has run (its issues may all lie outside the period)
    clustered_at: str | None = None
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # ticket id -> masked example (dashboard drill-down)

    @property
    def abuse_rate(self) -> float | None:
        volume = self.totals.get("volume", 0)
        return self.totals.get("abusive", 0) / volume if volume else None


def period_days(end: date, days: int) -> list[str]:
    return [(end - timedelta(d)).isoformat() for d in range(days - 1, -1, -1)]


def _numeric(row: dict[str, Any]):
    for counter, value in row.items():
        if counter not in ("pk", "sk") and isinstance(value, (int, float)) and not isinstance(value, bool):
            yield counter, value


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
    dimensions: dict[str, dict[str, dict[str, float]]] = {d: defaultdict(lambda: defaultdict(float)) for d in DIMENSIONS}
    spellings: dict[str, dict[str, dict[str, float]]] = {d: defaultdict(lambda: defaultdict(float)) for d in DIMENSIONS}
    channels: dict[str, int] = defaultdict(int)
    heatmap = [[0] * 24 for _ in range(7)]
    daily, daily_sentiment, per_day, cells = {}, {}, {}, []
    for day in days:
        volume = 0
        sentiment = dict.fromkeys(SENTIMENTS, 0)
        day_counters: dict[str, float] = defaultdict(float)
        weekday = date.fromisoformat(day).weekday()
        for row in rows_by_day.get(day, []):
            kind = row["sk"].split("#", 1)[0]
            if kind == "agent":  # agent rows repeat the same tickets by agent: own table only
                for counter, value in _numeric(row):
                    agents[row["sk"].split("#")[1]][counter] += value
                continue
            if kind == "dim":  # region / tier / industry rows repeat them by dimension: own tables only
                _, name, value_name = row["sk"].split("#", 2)
                if name in dimensions:  # "Gold" and "gold" are one tier, shown as most messages spell it
                    group = dimension_group(value_name)
                    spellings[name][group][value_name] += float(row.get("volume", 0))
                    for counter, value in _numeric(row):
                        dimensions[name][group][counter] += value
                continue
            if kind != "company":
                continue
            _, company, _, channel = row["sk"].split("#", 3)
            cell = {"day": day, "company": company, "channel": channel}
            for counter, value in _numeric(row):
                totals[counter] += value
                companies[company][counter] += value
                day_counters[counter] += value
                cell[counter] = value
                if len(counter) == 3 and counter.startswith("h") and counter[1:].isdigit():
                    heatmap[weekday][int(counter[1:])] += int(value)
            cells.append(cell)
            for s in SENTIMENTS:
                sentiment[s] += int(row.get(s, 0))
            channels[channel] += int(row.get("volume", 0))
            volume += int(row.get("volume", 0))
        daily[day] = volume
        daily_sentiment[day] = sentiment
        per_day[day] = dict(day_counters)
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
            "median_hist": {k: v for k, v in c.items() if k.startswith("rth")},
            **_rt_fields(c),
        })
    by_company.sort(key=lambda r: (-r["volume"], r["company"]))
    by_agent = []
    for agent, a in agents.items():
        volume = int(a.get("volume", 0))
        calls = int(a.get("calls", 0))
        by_agent.append({
            "agent": agent, "volume": volume, "failed_calls": int(a.get("failed_calls", 0)),
            "failure_rate": a.get("failed_calls", 0) / calls if calls else None,  # of calls; none: n/a, not 0 %
            "calls": calls, "long_calls": int(a.get("long_calls", 0)),
            "avg_call_min": a.get("call_duration_sum", 0) / calls / 60 if calls else None,
            **_rt_fields(a),
        })
    by_agent.sort(key=lambda r: (-r["volume"], r["agent"]))
    delivery = {k[3:]: int(v) for k, v in totals.items() if k.startswith("ds_") and v}
    return ReportData(period_label, start, end, notice, days, daily, dict(totals), by_company, dict(channels), heatmap,
                      daily_sentiment=daily_sentiment, agents=by_agent, delivery=delivery, daily=per_day,
                      dimensions={k: {display_spelling(spellings[k][g]): dict(c) for g, c in d.items()} for k, d in dimensions.items()},
                      cells=cells)


def ranked(rows: list[dict[str, Any]], key: str = "avg_response_min", n: int = 10) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(fastest, slowest) by a response-time field among rows with enough answered messages: up to
    n each, never the same row in both (with fewer than 2n rows they split the list between them)."""
    eligible = [r for r in rows if r.get(key) is not None and r.get("responses", 0) >= MIN_RESPONSES_TO_RANK]
    name = "company" if eligible and "company" in eligible[0] else "agent"
    ordered = sorted(eligible, key=lambda r: (r[key], r[name]))
    if ordered and ordered[0][key] == ordered[-1][key]:  # all alike: no fastest or slowest to name
        return ordered[:n], []
    each = min(n, math.ceil(len(ordered) / 2))
    return ordered[:each], ordered[each:][::-1][:n]


# --------------------------------------------------------------------------- time bins


def time_bins(days: list[str]) -> list[tuple[str, list[str]]]:
    """Days up to DAILY_BINS_MAX_DAYS, weeks beyond (ending with the period's last day, so the only
    short week is the oldest). Each bin: (label = its first day, its days)."""
    if len(days) <= DAILY_BINS_MAX_DAYS:
        return [(d, [d]) for d in days]
    bins = []
    for stop in range(len(days), 0, -7):
        chunk = days[max(0, stop - 7):stop]
        bins.append((chunk[0], chunk))
    return bins[::-1]


def _binned(data: ReportData, counters: tuple[str, ...]) -> list[dict[str, Any]]:
    rows = []
    for label, members in time_bins(data.days):
        row: dict[str, Any] = {"start": label, "end": members[-1], "days": len(members)}
        for counter in counters:
            row[counter] = int(sum(data.daily.get(d, {}).get(counter, 0) for d in members))
        rows.append(row)
    return rows


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


# --------------------------------------------------------------------------- the summary (JSON)


def _section(rows: list[Any], reason: str | None, **extra: Any) -> dict[str, Any]:
    return {"rows": rows, "reason": None if rows else reason, **extra}


FIRST_TIME_FAILURE_WORDS = ("fail", "miss", "not", "late", "return", "lost", "damag", "attempt", "redeliver", "refus")


def first_time_success(status: str) -> bool:
    """A delivery status that means delivered at the first attempt (FTDS)."""
    s = status.lower()
    return not any(w in s for w in FIRST_TIME_FAILURE_WORDS) and ("deliver" in s or "success" in s or s in ("ok", "on_time"))


def issue_rows(data: ReportData) -> list[dict[str, Any]]:
    """Issues of the newest clustering with their counts in the period, the same-length period
    before, growth against that baseline and the binned trend, largest in the period first."""
    span = len(data.days)
    before = set(period_days(data.start - timedelta(days=1), span))
    period = set(data.days)
    rows = []
    for issue in data.issues:
        if issue.get("kind") == "bucket":  # not a root cause: counted apart (see bucket_rows)
            continue
        daily = _daily(issue)
        in_period = sum(n for d, n in daily.items() if d in period)
        if not in_period:
            continue
        previous = sum(n for d, n in daily.items() if d in before)
        earlier = sum(n for d, n in daily.items() if d < data.start.isoformat() and d not in before)
        if previous >= MIN_TREND_BASE:
            growth, growth_text = round(in_period / previous - 1, 4), f"{in_period / previous - 1:+.0%} vs the {span} days before ({previous})"
        elif previous:
            growth, growth_text = None, f"only {previous} in the {span} days before: too few to compare"
        elif earlier:
            growth, growth_text = None, f"none in the {span} days before, {earlier} earlier"  # "seen earlier" read as a contradiction
        else:
            growth, growth_text = None, "first seen in this period"
        rows.append({
            "issue_id": issue.get("issue_id"), "label": issue.get("label"), "in_period": in_period,
            "previous_period": previous, "growth": growth, "growth_text": growth_text,
            "total_size": int(issue.get("size") or 0),
            "trend": [sum(daily.get(d, 0) for d in members) for _, members in time_bins(data.days)],
            "top_companies": issue.get("top_companies") or [], "examples": issue.get("examples") or [],
            "emerging": bool(issue.get("emerging")), "emerging_reason": issue.get("emerging_reason"),
            "top_phrases": issue.get("top_phrases") or [],
        })
    rows.sort(key=lambda r: (-r["in_period"], str(r["label"])))
    return rows


def _company_shares(issue: dict[str, Any]) -> str:
    """The issue's top companies as shares of all its tickets in the clustering window ("United 54 %"):
    the companies' counts are over that window, so next to the period's count they read as contradictions
    (a new user saw "6 tickets in the period" beside "United (7)")."""
    total = int(issue.get("total_size") or 0) or sum(int(c.get("count") or 0) for c in issue["top_companies"]) or 1
    shown = ", ".join(f"{c.get('company')} {int(c.get('count') or 0) / total:.0%}" for c in issue["top_companies"][:3])
    return f"{shown} of the issue's {total} tickets" if shown else ""


def _daily(issue: dict[str, Any]) -> dict[str, int]:
    """An Issues item's tickets per day (keys and counts as plain str/int, whatever DynamoDB gave back)."""
    return {str(k): int(v) for k, v in (issue.get("daily_counts") or {}).items()}


def bucket_rows(data: ReportData) -> list[dict[str, Any]]:
    """What the clustering set apart as not an issue (gratitude, follow-up, chatter, a language...),
    with its tickets in the period, largest first."""
    period = set(data.days)
    rows = []
    for issue in data.issues:
        if issue.get("kind") != "bucket":
            continue
        in_period = sum(n for d, n in _daily(issue).items() if d in period)
        if in_period:
            rows.append({"bucket": issue.get("bucket") or issue.get("label"), "label": issue.get("label"),
                         "issue_id": issue.get("issue_id"), "in_period": in_period})
    return sorted(rows, key=lambda r: (-r["in_period"], str(r["bucket"])))


def alert_row(a: dict[str, Any]) -> dict[str, Any]:
    examples = list(a.get("examples") or [])
    return {"raised_at": a.get("raised_at"), "data_time": a.get("data_time") or a.get("raised_at"),
            "rule": a.get("rule"), "severity": a.get("severity"), "company": a.get("company"),
            "channel": a.get("channel") or "all", "subject_type": a.get("subject_type"), "subject": a.get("subject"),
            "summary": a.get("summary"), "excerpt": a.get("excerpt"), "ticket_ids": examples}


def _rt_row(r: dict[str, Any], name: str) -> dict[str, Any]:
    return {name: r[name], "answered": r["responses"],
            "avg_first_response_s": None if r["avg_response_min"] is None else round(r["avg_response_min"] * 60, 1),
            "median_first_response_s": None if r["median_response_min"] is None else round(r["median_response_min"] * 60, 1)}


def summary(data: ReportData, cluster_schedule: str = "daily at 02:00 UTC", generated_at: str | None = None) -> dict[str, Any]:
    """The report as data: KPIs and every section's rows; an empty section says why."""
    t = data.totals
    volume = int(t.get("volume", 0))
    median = median_from_hist(t)
    no_messages = "no customer messages in this period"
    kpis = {
        "customer_messages": volume,
        "negative_share": _share(t.get("negative", 0), volume),
        "abusive": int(t.get("abusive", 0)),
        "abuse_rate": _share(t.get("abusive", 0), volume),
        "escalations": int(t.get("escalations", 0)),
        "first_response_avg_s": round(t["rt_sum"] / t["rt_count"], 1) if t.get("rt_count") else None,
        "first_response_median_s": None if median is None else round(median, 1),
        "answered": int(t.get("rt_count", 0)),
        "company_replies": int(t.get("replies", 0)),
        "previous_period_messages": data.previous_volume,
        "change_vs_previous": (_share(volume - data.previous_volume, data.previous_volume)
                               if data.previous_volume and data.previous_volume >= MIN_TREND_BASE else None),
        "alerts": len(data.alerts),
    }
    bins = time_bins(data.days)
    bin_unit = "day" if len(bins) == len(data.days) else "week"

    volume_rows = _binned(data, ("volume",)) if volume else []
    sentiment_rows = []
    if volume:
        for row in _binned(data, SENTIMENTS + ("volume",)):
            row["negative_share"] = _share(row["negative"], row["volume"])
            sentiment_rows.append(row)
    heat_rows = [{"weekday": WEEKDAYS[w], "hours": data.heatmap[w]} for w in range(7)] if volume else []
    channels = sorted(((c, n) for c, n in data.by_channel.items() if n), key=lambda x: (-x[1], x[0]))

    def dimension(name: str, source_hint: str) -> dict[str, Any]:
        values = data.dimensions.get(name) or {}
        rows = sorted(({"value": v, "messages": int(c.get("volume", 0)), "negative_share": _share(c.get("negative", 0), c.get("volume", 0)),
                        "escalations": int(c.get("escalations", 0)), "abusive": int(c.get("abusive", 0))}
                       for v, c in values.items() if c.get("volume")), key=lambda r: (-r["messages"], r["value"]))
        article = "an" if name[:1] in "aeiou" else "a"  # "an industry"
        return _section(rows, f"no customer message in this period carries {article} {name}: {source_hint}")

    ftds_rows = []
    for label, members in bins:
        statuses: dict[str, int] = defaultdict(int)
        for d in members:
            for k, v in data.daily.get(d, {}).items():
                if k.startswith("ds_") and v:
                    statuses[k[3:]] += int(v)
        cases = sum(statuses.values())
        if cases:
            ok = sum(n for s, n in statuses.items() if first_time_success(s))
            ftds_rows.append({"start": label, "end": members[-1], "cases": cases, "first_time_success": ok, "rate": _share(ok, cases)})

    trend_counters = ("volume", "escalations", "abusive")
    esc_rows, abuse_rows = [], []
    if volume:
        for row in _binned(data, trend_counters):
            esc_rows.append({"start": row["start"], "end": row["end"], "escalations": row["escalations"], "messages": row["volume"],
                             "share": _share(row["escalations"], row["volume"])})
            abuse_rows.append({"start": row["start"], "end": row["end"], "abusive": row["abusive"], "messages": row["volume"],
                               "share": _share(row["abusive"], row["volume"])})
    if not any(r["escalations"] for r in esc_rows):
        esc_rows = []
    if not any(r["abusive"] for r in abuse_rows):
        abuse_rows = []

    fast_c, slow_c = ranked(data.by_company)
    fast_a, slow_a = ranked(data.agents)
    rank_reason = (f"no {{}} has {MIN_RESPONSES_TO_RANK}+ answered messages with a first-response time in this period "
                   "(the data must link customer messages to replies)")

    issues = issue_rows(data)
    if not data.issues_computed:
        issues_reason = f"not computed yet: clustering runs {cluster_schedule}"
    else:
        issues_reason = "no ticket of the newest clustering falls in this period"
    emerging = [i for i in issues if i["emerging"]]

    counts: dict[tuple[str, str], int] = defaultdict(int)
    for a in data.alerts:
        counts[(str(a.get("rule")), str(a.get("channel") or "all"))] += 1
    alerts_sorted = sorted(data.alerts, key=lambda a: (str(a.get("data_time") or a.get("raised_at") or "")), reverse=True)

    abusive = []
    for c in data.abusive_customers:
        score = float(c.get("score") or 0)
        if score >= HIGH_BEHAVIOUR_SCORE:
            reasons = list(c.get("reasons") or [])
            abusive.append({"customer": c.get("customer_id", c.get("sk")), "score": round(score, 3), "reasons": reasons,
                            "why": "; ".join(reasons) or "high score", "window_start": c.get("window_start"),
                            "window_end": c.get("window_end")})

    active = behaviour.most_active(data.active_rows, n=10)

    return {
        "schema": SUMMARY_SCHEMA,
        "generated_at": generated_at,
        "period": {"label": data.period_label, "start": data.start.isoformat(), "end": data.end.isoformat(),
                   "days": len(data.days), "clock": CLOCK, "bins": bin_unit, "notice": data.notice},
        "kpis": kpis,
        "volume_daily": _section(volume_rows, no_messages, bins=bin_unit),
        "sentiment": _section(sentiment_rows, no_messages, bins=bin_unit,
                              totals={s: int(t.get(s, 0)) for s in SENTIMENTS}),
        "heatmap": _section(heat_rows, no_messages, unit="customer messages", hours="UTC"),
        "channels": _section([{"channel": c, "messages": n, "share": _share(n, volume)} for c, n in channels], no_messages),
        "companies": _section([{"company": r["company"], "messages": r["volume"], "negative_share": r["negative_share"],
                                "abusive": r["abusive"], "escalations": r["escalations"], "replies": r["replies"],
                                **{k: v for k, v in _rt_row(r, "company").items() if k != "company"}}
                               for r in data.by_company], no_messages),
        "by_region": dimension("region", "regions come from escalation exports with a region column"),
        "by_tier": dimension("tier", "tiers come from helpdesk exports with a tier column"),
        "by_industry": dimension("industry", "industries come from helpdesk exports with an industry column"),
        "ftds_trend": _section(ftds_rows, "no delivery outcomes in this period: escalation files with a delivery "
                                          "status (FTDS) column fill this in", bins=bin_unit,
                               definition="share of delivery cases delivered at the first attempt"),
        "escalation_trend": _section(esc_rows, "no message matched an escalation rule in this period", bins=bin_unit),
        "abuse_trend": _section(abuse_rows, "no abusive message in this period", bins=bin_unit),
        "response_times": {
            "fastest_companies": [_rt_row(r, "company") for r in fast_c],
            "slowest_companies": [_rt_row(r, "company") for r in slow_c],
            "fastest_agents": [_rt_row(r, "agent") for r in fast_a],
            "slowest_agents": [_rt_row(r, "agent") for r in slow_a],
            "min_answered": MIN_RESPONSES_TO_RANK,
            "reason": None if fast_c or fast_a else rank_reason.format("company or agent"),
            "companies_reason": None if fast_c else rank_reason.format("company"),
            "agents_reason": None if fast_a else rank_reason.format("agent"),
        },
        "agents": _section([{"agent": a["agent"], "handled": a["volume"], "failed_calls": a["failed_calls"],
                             "failure_rate": None if a["failure_rate"] is None else round(a["failure_rate"], 4),
                             "calls": a["calls"], "long_calls": a["long_calls"],
                             "avg_call_s": None if a["avg_call_min"] is None else round(a["avg_call_min"] * 60, 1),
                             "answered": a["responses"],
                             "avg_first_response_s": None if a["avg_response_min"] is None else round(a["avg_response_min"] * 60, 1)}
                            for a in data.agents],
                           "no agent data in this period: call logs or helpdesk exports with an agent column fill this in"),
        "issues": _section(issues, issues_reason, clustered_at=data.clustered_at, bins=bin_unit),
        "not_issues": _section(bucket_rows(data), issues_reason if not data.issues_computed else
                               "the clustering set no ticket of this period apart as gratitude, follow-up, chatter or another language"),
        "emerging_issues": _section([{"issue_id": i["issue_id"], "label": i["label"], "in_period": i["in_period"],
                                      "reason": i["emerging_reason"] or "growing against its own baseline",
                                      "examples": i["examples"][:2]} for i in emerging],
                                    issues_reason if not issues else "no issue is growing unusually fast against its own baseline"),
        "alerts_by_rule_channel": _section([{"rule": r, "channel": c, "alerts": n} for (r, c), n in sorted(counts.items())],
                                           "no alert was raised about this period"),
        "alerts": _section([alert_row(a) for a in alerts_sorted[:ALERTS_LISTED]], "no alert was raised about this period",
                           total=len(alerts_sorted), more=max(0, len(alerts_sorted) - ALERTS_LISTED)),
        "most_active_customers": _section(active, no_messages if not volume else
                                          "no customer activity index for this period (tickets stored before it existed)"),
        "abusive_customers": _section(abusive, f"no customer scored {HIGH_BEHAVIOUR_SCORE} or more in this period: "
                                               "profiles are refreshed as their messages arrive", threshold=HIGH_BEHAVIOUR_SCORE),
    }


# --------------------------------------------------------------------------- rendering (e-mail)


def _alerts_of(data: ReportData, kind: str) -> int:
    """How many of the period's alerts a rule of this kind raised."""
    return sum(1 for a in data.alerts if a.get("kind") == kind)


NO_COMPANY = "(no company)"  # how a person reads the counters' "unknown": messages no company replied to or was named in


def company_label(name: str | None) -> str:
    return NO_COMPANY if not name or name == "unknown" else name


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str = "{:.1f}") -> str:
    return "n/a" if value is None else fmt.format(value)


def _minutes(seconds: float | None) -> str:
    return "n/a" if seconds is None else f"{seconds / 60:.0f} min"


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    top = max(values, default=0)
    if not top:
        return ""
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] if v else "·" for v in values)


class _Doc:
    """HTML (inline styles only: Gmail and Outlook drop <style>) and plain text built side by side."""

    P = f"font-family:{FONT};font-size:14px;color:#222;margin:6px 0"
    TABLE = f"border-collapse:collapse;font-family:{FONT};font-size:13px;margin:6px 0 12px 0"
    CELL = "border:1px solid #d0d4da;padding:4px 8px;text-align:left;vertical-align:top"

    def __init__(self) -> None:
        self.html: list[str] = []
        self.text: list[str] = []

    def h2(self, title: str) -> None:
        self.html.append(f"<h2 style='font-family:{FONT};font-size:18px;color:#1f3b5b;margin:22px 0 6px 0;"
                         f"border-bottom:1px solid #d0d4da'>{html.escape(title)}</h2>")
        self.text += ["", f"{title}:"]

    def para(self, line: str, italic: bool = False) -> None:
        style = self.P + (";font-style:italic;color:#555" if italic else "")
        self.html.append(f"<p style='{style}'>{html.escape(line)}</p>")
        self.text.append(f"  {line}")

    def empty(self, reason: str | None) -> None:
        self.para(_sentence(reason or "no data"), italic=True)

    def image(self, cid: str, alt: str, width: int) -> None:
        self.html.append(f"<img src='cid:{cid}' alt='{html.escape(alt)}' width='{width}' "
                         f"style='display:block;max-width:100%;height:auto;margin:4px 0'>")
        self.text.append(f"  [chart: {alt}]")

    def table(self, headers: list[str], rows: list[list[Any]], caption: str | None = None, more: int = 0) -> None:
        esc = html.escape
        cap = (f"<caption style='text-align:left;font-weight:bold;padding:4px 0;font-family:{FONT}'>{esc(caption)}</caption>"
               if caption else "")
        head = "".join(f"<th style='{self.CELL};background:#eef1f5'>{esc(h)}</th>" for h in headers)
        first = f"{self.CELL};white-space:nowrap"  # names and dates stay on one line
        body = "".join("<tr>" + "".join(f"<td style='{first if i == 0 else self.CELL}'>{esc(str(c))}</td>" for i, c in enumerate(r))
                       + "</tr>" for r in rows)
        # A wide table scrolls sideways on a narrow screen instead of being cut at its edge.
        self.html.append(f"<div style='overflow-x:auto;max-width:100%'><table style='{self.TABLE}'>{cap}<tr>{head}</tr>{body}</table></div>")
        if caption:
            self.text.append(f"  {caption}:")
        self.text.append("    " + " | ".join(headers))
        self.text += ["    " + " | ".join(str(c) for c in r) for r in rows]
        if more:
            self.para(f"+{more} more not listed.", italic=True)


COMPANY_ROWS = 15  # companies listed by name; the rest are summed in one row


def other_companies(rest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The companies past the table's first rows as one summed row, so the column adds up to the period's
    messages (a "+40 more not listed" left a reader unable to reconcile it with the KPI)."""
    if not rest:
        return []
    messages, answered = sum(r["messages"] for r in rest), sum(r["answered"] for r in rest)
    waited = [(r["avg_first_response_s"], r["answered"]) for r in rest if r["avg_first_response_s"] is not None and r["answered"]]
    weight = sum(n for _, n in waited)
    return [{"company": f"(other {len(rest)} companies)", "messages": messages,
             "negative_share": _share(sum((r["negative_share"] or 0) * r["messages"] for r in rest), messages),
             "abusive": sum(r["abusive"] for r in rest), "escalations": sum(r["escalations"] for r in rest),
             "avg_first_response_s": sum(s * n for s, n in waited) / weight if weight else None, "answered": answered}]


def _sentence(reason: str) -> str:
    reason = reason.strip()
    return (reason[:1].upper() + reason[1:]).rstrip(".") + "."


def _bin_label(row: dict[str, Any], unit: str) -> str:
    return row["start"] if unit == "day" else f"{row['start']}..{row['end']}"


def render(data: ReportData, cluster_schedule: str = "daily at 02:00 UTC", dashboard_url: str | None = None,
           report: dict[str, Any] | None = None) -> tuple[str, str, str, dict[str, bytes]]:
    """(subject, html, text, {content-id: png}) from the summary (made here unless given)."""
    from .report_charts import charts as make_charts

    s = report or summary(data, cluster_schedule)
    k, period = s["kpis"], s["period"]
    volume = k["customer_messages"]
    kpis = [
        ("Customer messages", f"{volume:,}"),
        ("Negative", _pct(k["negative_share"])),
        ("Abusive", f"{k['abusive']}"),
        ("Abuse rate", _pct(k["abuse_rate"])),
        ("Escalations", f"{k['escalations']}"),
        ("Avg first response", _minutes(k["first_response_avg_s"])),
        ("Median first response", _minutes(k["first_response_median_s"])),
        ("Company replies", f"{k['company_replies']:,}"),
        ("Alerts", f"{k['alerts']}"),
    ]
    charts = make_charts(s)
    subject = f"SupportLens {period['label']} report: {period['start']} to {period['end']} - {volume:,} messages"
    esc = html.escape
    doc = _Doc()
    heading = f"{period['label']} report: {period['start']} to {period['end']} ({period['days']} days)"
    doc.html.append(f"<h1 style='font-family:{FONT};font-size:24px;color:#1f3b5b;margin:0 0 4px 0'>SupportLens report</h1>")
    doc.para(f"{heading}. Every section counts this period, in {period['clock']}.")
    doc.text.insert(0, f"SupportLens report - {heading}")
    if period["notice"]:
        doc.html.append(f"<p style='{_Doc.P};background:#fff3cd;padding:8px'>{esc(period['notice'])}</p>")
        doc.text += [f"NOTE: {period['notice']}", ""]
    if dashboard_url:
        doc.html.append(f"<p style='{_Doc.P}'><a href='{esc(dashboard_url)}' style='color:#1f5fa8;font-weight:bold'>"
                        "Open the interactive dashboard</a> (filters by period, company and channel; example tickets)</p>")
        doc.text.append(f"Interactive dashboard: {dashboard_url}")
    # Tiles as inline blocks, not table cells: on a phone (420 px) a row of nine cells ran off the screen.
    doc.html.append(f"<div style='font-family:{FONT};margin:6px 0'>" + "".join(
        f"<div style='display:inline-block;vertical-align:top;border:1px solid #d0d4da;padding:6px 10px;margin:0 6px 6px 0'>"
        f"<div style='color:#666;font-size:12px'>{esc(a)}</div>"
        f"<div style='font-size:20px;font-weight:bold;color:#222'>{esc(b)}</div></div>" for a, b in kpis) + "</div>")
    doc.text += [f"{a}: {b}" for a, b in kpis]

    unit = period["bins"]
    doc.h2("Volume")
    if volume:
        busiest = max(data.days, key=lambda d: data.daily_volume[d])
        line = (f"{volume:,} customer messages, {volume / len(data.days):.1f} a day; busiest day {busiest} "
                f"({data.daily_volume[busiest]:,}).")
        if k["change_vs_previous"] is not None:
            line += f" {k['change_vs_previous']:+.0%} against the {len(data.days)} days before ({k['previous_period_messages']:,})."
        elif k["previous_period_messages"] == 0:
            line += f" No messages in the {len(data.days)} days before, so no trend yet."
        elif k["previous_period_messages"]:
            line += (f" Only {k['previous_period_messages']:,} in the {len(data.days)} days before: too few to compare "
                     f"(a trend needs {MIN_TREND_BASE}+).")
        doc.para(line)
        doc.image("volume", f"Customer messages per {unit}, {period['start']} to {period['end']}", 700)
        doc.text.append(f"  Per {unit}: " + ", ".join(f"{_bin_label(r, unit)} {r['volume']:,}" for r in s["volume_daily"]["rows"]))
    else:
        doc.para("No customer messages in this period, so there are no charts. They appear once tickets for these days are stored.", italic=True)

    doc.h2("Sentiment")
    if volume:
        mix = ", ".join(f"{name} {_pct(n / volume)}" for name, n in s["sentiment"]["totals"].items())
        abuse_alerts = _alerts_of(data, "abusive")
        # 27 abusive messages beside 11 abusive-message alerts read as missed alerts (cold trial): say why they differ
        doc.para(f"{mix}. Abusive messages: {k['abusive']} ({_pct(k['abuse_rate'])} of customer messages)"
                 + (f"; {abuse_alerts} abusive-message alert(s) were raised about them (the rule's own score threshold, "
                    "one per customer within its cooldown)." if abuse_alerts else "."))
        doc.image("sentiment", f"Customer messages per {unit} by sentiment, with the negative share", 700)
        doc.text.append(f"  Negative share per {unit}: " + ", ".join(
            f"{_bin_label(r, unit)} {_pct(r['negative_share'])} of {r['volume']:,}" for r in s["sentiment"]["rows"] if r["volume"]))
    else:
        doc.empty(s["sentiment"]["reason"])

    doc.h2("Hour x weekday")
    if volume:
        doc.image("heatmap", "Customer messages by weekday and hour of day (UTC)", 700)
        cells = sorted(((n, w, h) for w, row in enumerate(data.heatmap) for h, n in enumerate(row) if n), reverse=True)[:3]
        doc.text.append("  Busiest hours (UTC): " + ", ".join(f"{WEEKDAYS[w]} {h:02d}:00 ({n:,})" for n, w, h in cells))
    else:
        doc.para("No activity to map yet.", italic=True)

    doc.h2("Channels")
    if s["channels"]["rows"]:
        doc.table(["Channel", "Messages", "Share"], [[r["channel"], f"{r['messages']:,}", _pct(r["share"])] for r in s["channels"]["rows"]])
    else:
        doc.empty(s["channels"]["reason"])

    doc.h2("Companies")
    rows = s["companies"]["rows"]
    if rows:
        doc.table(["Company", "Messages", "Negative", "Abusive", "Escalations", "Avg first response (min)", "Answered"], [
            [company_label(r["company"]), r["messages"], _pct(r["negative_share"]), r["abusive"], r["escalations"],
             _num(None if r["avg_first_response_s"] is None else r["avg_first_response_s"] / 60, "{:.0f}"), r["answered"]]
            for r in rows[:COMPANY_ROWS] + other_companies(rows[COMPANY_ROWS:])])
    else:
        doc.empty(s["companies"]["reason"])

    for key, title in (("by_region", "Tickets by region"), ("by_tier", "Tickets by customer tier"), ("by_industry", "Tickets by industry")):
        doc.h2(title)
        section = s[key]
        if section["rows"]:
            doc.table([title.split(" by ")[1].capitalize(), "Messages", "Negative", "Escalations", "Abusive"],
                      [[r["value"], r["messages"], _pct(r["negative_share"]), r["escalations"], r["abusive"]] for r in section["rows"][:15]],
                      more=max(0, len(section["rows"]) - 15))
        else:
            doc.empty(section["reason"])

    doc.h2("Escalations")
    escalated = sorted((r for r in rows if r["escalations"]), key=lambda r: (-r["escalations"], r["company"]))
    if escalated:
        esc_alerts = _alerts_of(data, "escalation")
        doc.para(f"{k['escalations']} messages matched an escalation rule (legal threats, churn, complaints to regulators...); "
                 f"{esc_alerts} escalation alert(s) were raised about them (one per company within each rule's cooldown).")
        doc.table(["Company", "Escalations", "Share of its messages"],
                  [[r["company"], r["escalations"], _pct(r["escalations"] / r["messages"]) if r["messages"] else "n/a"] for r in escalated[:10]])
    else:
        doc.empty(s["escalation_trend"]["reason"])
    if "trends" in charts:
        doc.image("trends", f"Escalations and abusive messages per {unit}", 700)

    doc.h2("Delivery outcomes (FTDS)")
    if data.delivery:
        total = sum(data.delivery.values())
        doc.table(["Delivery status", "Cases", "Share", "First-time success"],
                  [[st.replace("_", " "), n, _pct(n / total), "yes" if first_time_success(st) else "no"]
                   for st, n in sorted(data.delivery.items(), key=lambda x: (-x[1], x[0]))])
        doc.table([unit.capitalize(), "Cases", "Delivered first time", "FTDS rate"],
                  [[_bin_label(r, unit), r["cases"], r["first_time_success"], _pct(r["rate"])] for r in s["ftds_trend"]["rows"]],
                  caption="First-time delivery success (FTDS) over time")
        if "ftds" in charts:
            doc.image("ftds", f"First-time delivery success rate per {unit}", 700)
    else:
        doc.empty(s["ftds_trend"]["reason"])

    doc.h2("Response times")
    rt = s["response_times"]
    for name, plural in (("company", "companies"), ("agent", "agents")):
        fast, slow = rt[f"fastest_{plural}"], rt[f"slowest_{plural}"]
        if not fast:
            doc.empty(rt[f"{plural}_reason"])
            continue
        headers = [name.capitalize(), "Answered", "Avg (min)", "Median (min)"]

        def fmt(r: dict[str, Any]) -> list[Any]:
            return [r[name], r["answered"], _num(None if r["avg_first_response_s"] is None else r["avg_first_response_s"] / 60, "{:.0f}"),
                    _num(None if r["median_first_response_s"] is None else r["median_first_response_s"] / 60, "{:.0f}")]

        doc.table(headers, [fmt(r) for r in fast], caption=f"Fastest {plural} (average first response)" if slow
                  else f"{plural.capitalize()} (average first response: all alike)")
        if slow:
            doc.table(headers, [fmt(r) for r in slow], caption=f"Slowest {plural}")

    doc.h2("Agent performance")
    if s["agents"]["rows"]:
        shown = s["agents"]["rows"][:15]
        if any(a["calls"] for a in s["agents"]["rows"]):
            doc.table(["Agent", "Handled", "Failed calls", "Failure rate", "Calls", "Long calls (>= 50 min)", "Avg call (min)"], [
                [a["agent"], a["handled"], a["failed_calls"] if a["calls"] else "n/a", _pct(a["failure_rate"]),
                 a["calls"], a["long_calls"] if a["calls"] else "n/a",
                 _num(None if a["avg_call_s"] is None else a["avg_call_s"] / 60)] for a in shown],
                more=max(0, len(s["agents"]["rows"]) - 15))
        else:  # tickets without calls (a helpdesk export): call columns would only say 0
            doc.table(["Agent", "Handled"], [[a["agent"], a["handled"]] for a in shown], more=max(0, len(s["agents"]["rows"]) - 15))
    else:
        doc.empty(s["agents"]["reason"])

    doc.h2("Top issues")
    issues = s["issues"]["rows"]
    if issues:
        items = []
        for i in issues[:ISSUES_LISTED]:
            companies = _company_shares(i)
            example = (i["examples"] or [{}])[0].get("text", "")
            flag = f" - <b style='color:#b03a2e'>emerging</b>: {esc(i['emerging_reason'] or '')}" if i["emerging"] else ""
            items.append(f"<li style='margin-bottom:6px'><b>{esc(str(i['label']))}</b> - {i['in_period']} tickets in the period, "
                         f"{esc(i['growth_text'])} <span style='color:#3b6ea5;letter-spacing:1px'>{esc(sparkline(i['trend']))}</span>{flag}"
                         f"<br><span style='color:#555;font-size:12px'>{esc(companies)}</span>"
                         f"<br><span style='color:#555;font-size:12px'>e.g. \"{esc(example)}\"</span></li>")
            doc.text.append(f"  {i['label']} ({i['in_period']}){' EMERGING' if i['emerging'] else ''} - {i['growth_text']} "
                            f"{sparkline(i['trend'])} - {companies}")
        doc.html.append(f"<ol style='font-family:{FONT};font-size:14px'>{''.join(items)}</ol>")
        if len(issues) > ISSUES_LISTED:
            doc.para(f"+{len(issues) - ISSUES_LISTED} more issues not listed.", italic=True)
    else:
        doc.empty(s["issues"]["reason"])
    if s["not_issues"]["rows"]:
        doc.para("Not issues (counted apart): " + ", ".join(f"{r['label']} {r['in_period']:,}" for r in s["not_issues"]["rows"]) + ".")

    doc.h2("Emerging issues")
    if s["emerging_issues"]["rows"]:
        for i in s["emerging_issues"]["rows"][:10]:
            examples = "; ".join(f"{e.get('ticket_id', '')}: \"{str(e.get('text', ''))[:140]}\"" for e in i["examples"])
            doc.para(f"{i['label']} ({i['in_period']} tickets): {i['reason']}. Examples: {examples or 'none'}")
    else:
        doc.empty(s["emerging_issues"]["reason"])

    doc.h2("Alerts raised")
    alerts = s["alerts"]
    if alerts["rows"]:
        by_rule: dict[str, int] = defaultdict(int)
        for r in s["alerts_by_rule_channel"]["rows"]:
            by_rule[r["rule"]] += r["alerts"]
        doc.para(f"{alerts['total']} alert(s) about this period: " + ", ".join(f"{r} {n}" for r, n in sorted(by_rule.items())) + ".")
        doc.table(["Rule", "Channel", "Alerts"], [[r["rule"], r["channel"], r["alerts"]] for r in s["alerts_by_rule_channel"]["rows"]],
                  caption="Alerts by rule and channel")
        doc.table(["When (data time)", "Severity", "Rule", "Company", "Summary", "Excerpt (masked)"],
                  [[str(a["data_time"] or "")[:16].replace("T", " "), a["severity"] or "-", a["rule"] or "-", a["company"] or "-",
                    a["summary"], a["excerpt"] or "-"] for a in alerts["rows"]],
                  caption="Latest alerts", more=alerts["more"])
    else:
        doc.empty(alerts["reason"])

    doc.h2("Most active customers")
    active = s["most_active_customers"]["rows"]
    if active:
        doc.table(["Customer", "Messages"], [[c["customer"], c["messages"] if c["exact"] else f"at least {c['messages']}"] for c in active])
    else:
        doc.empty(s["most_active_customers"]["reason"])

    doc.h2("Customers with high abusive-behaviour scores")
    if s["abusive_customers"]["rows"]:
        doc.table(["Customer", "Score", "Why"], [[c["customer"], f"{c['score']:.2f}", c["why"]] for c in s["abusive_customers"]["rows"][:10]])
    else:
        doc.empty(s["abusive_customers"]["reason"])

    body = (f"<html><head><meta charset='utf-8'></head><body style='margin:0;padding:12px;background:#ffffff'><div style='max-width:900px;font-family:{FONT};color:#222'>"
            + "".join(doc.html) + "</div></body></html>")
    return subject, body, "\n".join(doc.text) + "\n", charts


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
