"""The interactive dashboard: one self-contained HTML file (plotly.js and the data embedded), so it
opens from a file or a pre-signed S3 link with no server and no network.

Why plotly.js: its cartesian partial bundle (1.5 MB, MIT) draws every chart the report has (bars,
lines, heatmap), re-draws from plain arrays in the browser (`Plotly.react`), which is all the
period/company/channel filters need, and reports clicks for the drill-down; Vega-Lite would need
three libraries and its own expression language for the same filters.

Size stays bounded as tickets grow: it carries the day x company x channel counters of the
period (companies beyond the top MAX_COMPANIES folded into one row), the issues and alerts of the
period, and a few masked example tickets for each, never every ticket.
"""

from __future__ import annotations

import json
from collections import defaultdict
from importlib import resources
from typing import Any

from .report import SENTIMENTS, ReportData, alert_row, company_label

MAX_COMPANIES = 40
OTHER_COMPANIES = "(other companies)"
CELL_COUNTERS = ("volume",) + SENTIMENTS + ("abusive", "escalations", "replies", "rt_count", "rt_sum")
EXAMPLES_PER_ISSUE = 5
MAX_ISSUES = 40
MAX_ALERTS = 200  # newest first; the page says how many more the period holds


def plotly_js() -> str:
    return resources.files("supportlens").joinpath("assets/plotly-cartesian.min.js").read_text(encoding="utf-8")


def dashboard_data(data: ReportData, summary: dict[str, Any]) -> dict[str, Any]:
    """What the page needs, in compact arrays: cells [day, company, channel, counters..., 24 hours]."""
    volume_by_company: dict[str, float] = defaultdict(float)
    for cell in data.cells:
        volume_by_company[cell["company"]] += float(cell.get("volume", 0)) + float(cell.get("replies", 0))
    kept = set(sorted(volume_by_company, key=lambda c: (-volume_by_company[c], c))[:MAX_COMPANIES])
    merged: dict[tuple[str, str, str], list[float]] = {}
    for cell in data.cells:
        company = cell["company"] if cell["company"] in kept else OTHER_COMPANIES
        key = (cell["day"], company, cell["channel"])
        values = merged.setdefault(key, [0.0] * (len(CELL_COUNTERS) + 24))
        for i, name in enumerate(CELL_COUNTERS):
            values[i] += float(cell.get(name, 0))
        for h in range(24):
            values[len(CELL_COUNTERS) + h] += float(cell.get(f"h{h:02d}", 0))
    days = data.days
    companies = sorted({k[1] for k in merged})
    channels = sorted({k[2] for k in merged})
    at = {d: i for i, d in enumerate(days)}
    cells = [[at[d], companies.index(c), channels.index(ch), *[round(v, 1) for v in values]]
             for (d, c, ch), values in sorted(merged.items())]

    def example(ticket_id: str, fallback_text: str = "") -> dict[str, Any]:
        found = data.examples.get(ticket_id) or {}
        return {"ticket_id": ticket_id, "text": found.get("text") or fallback_text, "company": found.get("company"),
                "channel": found.get("channel"), "created_at": found.get("created_at")}

    issues = []
    by_id = {issue.get("issue_id"): issue for issue in data.issues}
    in_days = set(days)
    for i in summary["issues"]["rows"][:MAX_ISSUES]:
        daily = {d: int(n) for d, n in (by_id[i["issue_id"]].get("daily_counts") or {}).items() if d in in_days}
        issues.append({"issue_id": i["issue_id"], "label": i["label"], "in_period": i["in_period"], "growth_text": i["growth_text"],
                       "emerging": i["emerging"], "emerging_reason": i["emerging_reason"], "daily": daily,
                       "companies": {str(c.get("company")): int(c.get("count") or 0) for c in i["top_companies"]},
                       "examples": [example(str(e.get("ticket_id")), str(e.get("text") or "")) for e in i["examples"][:EXAMPLES_PER_ISSUE]]})
    alerts = [{**row, "examples": [example(str(t)) for t in row["ticket_ids"]]}
              for row in (alert_row(a) for a in data.alerts[:MAX_ALERTS])]
    return {
        "period": summary["period"], "kpis": summary["kpis"], "days": days, "companies": companies, "channels": channels,
        # how many companies there are (the list holds the top MAX_COMPANIES and one row for the rest), and their names as shown
        "company_count": len(volume_by_company), "company_names": [company_label(c) for c in companies],
        "counters": list(CELL_COUNTERS), "cells": cells, "issues": issues, "alerts": alerts,
        "alerts_total": summary["alerts"]["total"], "issues_reason": summary["issues"]["reason"],
        "alerts_reason": summary["alerts"]["reason"], "generated_at": summary.get("generated_at"),
    }


def render_dashboard(data: ReportData, summary: dict[str, Any]) -> str:
    payload = json.dumps(dashboard_data(data, summary), default=str, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # cannot close the <script> it sits in
    title = f"SupportLens dashboard: {summary['period']['start']} to {summary['period']['end']}"
    return (PAGE.replace("__TITLE__", title)
                .replace("__PLOTLY__", plotly_js().replace("</script", "<\\/script"))
                .replace("__DATA__", payload))


PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:Arial,Helvetica,sans-serif;margin:0;background:#f5f6f8;color:#222}
header{background:#1f3b5b;color:#fff;padding:12px 20px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0 0;font-size:13px;opacity:.85}
.bar{display:flex;gap:16px;flex-wrap:wrap;align-items:end;padding:12px 20px;background:#fff;border-bottom:1px solid #d0d4da}
.bar label{font-size:12px;color:#555;display:flex;flex-direction:column;gap:3px}
.bar select{font-size:14px;padding:3px}
.kpis{display:flex;gap:10px;flex-wrap:wrap;padding:12px 20px}
.kpi{background:#fff;border:1px solid #d0d4da;padding:8px 12px;min-width:120px}
.kpi div{font-size:12px;color:#666} .kpi b{font-size:20px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:12px;padding:0 20px 20px 20px}
.card{background:#fff;border:1px solid #d0d4da;padding:10px}
.card h2{font-size:15px;margin:0 0 6px 0;color:#1f3b5b}
.note{font-size:12px;color:#666;font-style:italic}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border:1px solid #d0d4da;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef1f5} tr.click{cursor:pointer} tr.click:hover{background:#eef5ff} tr.sel{background:#dbe9ff}
#drill{grid-column:1/-1}
</style></head>
<body>
<header><h1>SupportLens dashboard</h1><p id="subtitle"></p></header>
<div class="bar">
 <label>Period<select id="f-period"></select></label>
 <label>Company<select id="f-company"></select></label>
 <label>Channel<select id="f-channel"></select></label>
 <span class="note" id="f-note"></span>
</div>
<div class="kpis" id="kpis"></div>
<div class="grid">
 <div class="card"><h2>Customer messages per day</h2><div id="chart-volume" style="height:260px"></div></div>
 <div class="card"><h2>Sentiment per day</h2><div id="chart-sentiment" style="height:260px"></div></div>
 <div class="card"><h2>When customers write (weekday x hour, UTC)</h2><div id="chart-heatmap" style="height:260px"></div></div>
 <div class="card"><h2>Channels</h2><div id="chart-channels" style="height:260px"></div></div>
 <div class="card"><h2>Issues in the period (click one for its tickets)</h2><div id="chart-issues" style="height:320px"></div><div id="issues-note" class="note"></div></div>
 <div class="card"><h2>Companies</h2><div style="max-height:320px;overflow:auto"><table id="companies"></table></div></div>
 <div class="card" style="grid-column:1/-1"><h2>Alerts (click one for its tickets)</h2><div style="max-height:300px;overflow:auto"><table id="alerts"></table></div><div id="alerts-note" class="note"></div></div>
 <div class="card" id="drill"><h2 id="drill-title">Example tickets</h2><table id="drill-table"></table><div class="note" id="drill-note">Click an issue or an alert to see its example tickets (masked text).</div></div>
</div>
<script>__PLOTLY__</script>
<script type="application/json" id="dashboard-data">__DATA__</script>
<script>
"use strict";
const D = JSON.parse(document.getElementById("dashboard-data").textContent);
const C = Object.fromEntries(D.counters.map((n, i) => [n, i + 3]));
const HOUR0 = 3 + D.counters.length;
const WEEKDAYS = ["Mon","Tue","Wed","Thu","Fri","Sat","Sun"];
const esc = s => String(s == null ? "" : s).replace(/[&<>"']/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
const pct = x => x == null ? "n/a" : Math.round(100 * x) + "%";
const state = {days: D.days.length, company: "", channel: ""};
window.dashboardState = state;

function option(sel, value, text) { const o = document.createElement("option"); o.value = value; o.textContent = text; sel.appendChild(o); }
function setup() {
  document.getElementById("subtitle").textContent = `${D.period.label} period ${D.period.start} to ${D.period.end} (${D.period.days} days, ${D.period.clock})`
    + (D.period.notice ? " - " + D.period.notice : "");
  const p = document.getElementById("f-period");
  option(p, D.days.length, `whole period (${D.days.length} days)`);
  for (const n of [90, 30, 14, 7]) if (n < D.days.length) option(p, n, `last ${n} days`);
  const c = document.getElementById("f-company"); option(c, "", `all companies (${D.company_count})`);
  D.companies.forEach((x, i) => option(c, x, D.company_names[i]));
  const ch = document.getElementById("f-channel"); option(ch, "", "all channels"); D.channels.forEach(x => option(ch, x, x));
  p.onchange = () => { state.days = +p.value; draw(); };
  c.onchange = () => { state.company = c.value; draw(); };
  ch.onchange = () => { state.channel = ch.value; draw(); };
}

function selectedDays() { return D.days.slice(D.days.length - state.days); }
function cells() {
  const first = D.days.length - state.days;
  return D.cells.filter(r => r[0] >= first && (!state.company || D.companies[r[1]] === state.company)
                          && (!state.channel || D.channels[r[2]] === state.channel));
}

function draw() {
  const days = selectedDays(), first = D.days.length - state.days, rows = cells();
  const perDay = name => { const v = new Array(days.length).fill(0); rows.forEach(r => v[r[0] - first] += r[C[name]]); return v; };
  const total = name => rows.reduce((s, r) => s + r[C[name]], 0);
  const volume = total("volume"), rtCount = total("rt_count");
  const kpis = [["Customer messages", volume.toLocaleString()], ["Negative", pct(volume ? total("negative") / volume : null)],
                ["Abusive", total("abusive")], ["Escalations", total("escalations")],
                ["Avg first response", rtCount ? Math.round(total("rt_sum") / rtCount / 60) + " min" : "n/a"],
                ["Company replies", total("replies").toLocaleString()]];
  document.getElementById("kpis").innerHTML = kpis.map(([k, v]) => `<div class="kpi"><div>${esc(k)}</div><b>${esc(v)}</b></div>`).join("");
  document.getElementById("f-note").textContent = `${days[0]} to ${days[days.length - 1]}`;
  const layout = (y, extra) => Object.assign({margin: {l: 50, r: 50, t: 10, b: 50}, font: {family: "Arial, Helvetica, sans-serif", size: 11},
      yaxis: {title: {text: y}, rangemode: "tozero", tickformat: ",d"}, xaxis: {type: "date", tickformat: "%Y-%m-%d"}, showlegend: false}, extra || {});
  const config = {displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage"]};
  Plotly.react("chart-volume", [{type: "bar", x: days, y: perDay("volume"), marker: {color: "#3b6ea5"}, name: "messages"}],
               layout("customer messages / day"), config);
  const neg = perDay("negative"), neu = perDay("neutral"), pos = perDay("positive");
  const n = neg.map((x, i) => x + neu[i] + pos[i]);
  Plotly.react("chart-sentiment", [
      {type: "bar", x: days, y: neg, name: "negative", marker: {color: "#c0392b"}},
      {type: "bar", x: days, y: neu, name: "neutral", marker: {color: "#95a5a6"}},
      {type: "bar", x: days, y: pos, name: "positive", marker: {color: "#27ae60"}},
      {type: "scatter", mode: "lines+markers", x: days, y: neg.map((x, i) => n[i] >= 10 ? 100 * x / n[i] : null), yaxis: "y2",
       name: "% negative (days with 10+ messages)", line: {color: "#222", width: 1}, marker: {size: 4}, connectgaps: false}],
      layout("customer messages / day", {barmode: "stack", showlegend: true, legend: {orientation: "h", y: -0.3},
             yaxis2: {title: {text: "% negative"}, overlaying: "y", side: "right", range: [0, 100], dtick: 25, ticksuffix: "%"}}), config);
  const z = WEEKDAYS.map(() => new Array(24).fill(0));
  rows.forEach(r => { const w = (new Date(D.days[r[0]] + "T00:00:00Z").getUTCDay() + 6) % 7; for (let h = 0; h < 24; h++) z[w][h] += r[HOUR0 + h]; });
  Plotly.react("chart-heatmap", [{type: "heatmap", z: z, x: [...Array(24).keys()], y: WEEKDAYS, colorscale: [[0, "#f7fbff"], [0.5, "#6baed6"], [1, "#08306b"]],
      colorbar: {title: {text: "customer<br>messages"}}}],
      layout("", {xaxis: {title: {text: "hour of day (UTC)"}, dtick: 2}, yaxis: {autorange: "reversed"}}), config);
  const byChannel = {}; rows.forEach(r => byChannel[D.channels[r[2]]] = (byChannel[D.channels[r[2]]] || 0) + r[C.volume]);
  const chNames = Object.keys(byChannel).filter(k => byChannel[k] > 0).sort((a, b) => byChannel[b] - byChannel[a]);
  Plotly.react("chart-channels", [{type: "bar", x: chNames, y: chNames.map(k => byChannel[k]), marker: {color: "#3b6ea5"}}],
               layout("customer messages", {xaxis: {type: "category"}}), config);
  drawCompanies(rows); drawIssues(days); drawAlerts(days);
}

function drawCompanies(rows) {
  const by = {};
  rows.forEach(r => { const c = D.company_names[r[1]]; const t = by[c] = by[c] || {volume: 0, negative: 0, abusive: 0, escalations: 0, rt_count: 0, rt_sum: 0};
                      for (const k in t) t[k] += r[C[k]]; });
  const names = Object.keys(by).filter(c => by[c].volume > 0).sort((a, b) => by[b].volume - by[a].volume);
  document.getElementById("companies").innerHTML = "<tr><th>Company</th><th>Messages</th><th>Negative</th><th>Abusive</th><th>Escalations</th><th>Avg first response (min)</th></tr>"
    + names.map(c => { const t = by[c]; return `<tr><td>${esc(c)}</td><td>${t.volume}</td><td>${pct(t.negative / t.volume)}</td><td>${t.abusive}</td><td>${t.escalations}</td><td>${t.rt_count ? Math.round(t.rt_sum / t.rt_count / 60) : "n/a"}</td></tr>`; }).join("");
}

let shownIssues = [];
function drawIssues(days) {
  const inRange = new Set(days);
  shownIssues = D.issues.map(i => {
    let count = Object.entries(i.daily).reduce((s, [d, n]) => s + (inRange.has(d) ? n : 0), 0);
    if (state.company) count = Math.min(count, i.companies[state.company] || 0);
    return Object.assign({}, i, {count});
  }).filter(i => i.count > 0).sort((a, b) => b.count - a.count).slice(0, 20);
  const note = document.getElementById("issues-note");
  note.textContent = D.issues.length ? (state.company ? "With a company chosen, an issue counts at most that company's tickets in it. " : "")
                     + (state.channel ? "Issues are not split by channel." : "") : (D.issues_reason || "");
  const labels = shownIssues.map(i => i.label + (i.emerging ? " (emerging)" : ""));
  Plotly.react("chart-issues", [{type: "bar", orientation: "h", y: labels.slice().reverse(), x: shownIssues.map(i => i.count).reverse(),
      marker: {color: shownIssues.map(i => i.emerging ? "#b03a2e" : "#3b6ea5").reverse()}, customdata: shownIssues.map(i => i.issue_id).reverse(),
      hovertemplate: "%{y}: %{x} tickets<extra></extra>"}],
      {margin: {l: 220, r: 20, t: 10, b: 40}, font: {family: "Arial, Helvetica, sans-serif", size: 11},
       xaxis: {title: {text: "tickets in the period"}, tickformat: ",d", rangemode: "tozero"}, yaxis: {type: "category", automargin: true}},
      {displayModeBar: false, responsive: true});  // no toolbar over the top bar: it is there to be clicked
  const el = document.getElementById("chart-issues");
  if (!el.dataset.bound) { el.dataset.bound = "1"; el.on("plotly_click", ev => showIssue(ev.points[0].customdata)); }
}

function showIssue(issueId) {
  const issue = D.issues.find(i => i.issue_id === issueId);
  if (!issue) return;
  drill(`Issue: ${issue.label} - ${issue.growth_text}` + (issue.emerging ? ` - emerging: ${issue.emerging_reason}` : ""), issue.examples);
}
window.showIssue = showIssue;

function drawAlerts(days) {
  const first = days[0], last = days[days.length - 1];
  const rows = D.alerts.filter(a => { const d = String(a.data_time || "").slice(0, 10);
      return d >= first && d <= last && (!state.company || a.company === state.company) && (!state.channel || a.channel === state.channel || a.channel === "all"); });
  document.getElementById("alerts").innerHTML = "<tr><th>When (data time)</th><th>Severity</th><th>Rule</th><th>Company</th><th>Channel</th><th>Summary</th><th>Excerpt (masked)</th></tr>"
    + rows.map((a, i) => `<tr class="click" data-alert="${D.alerts.indexOf(a)}"><td>${esc(String(a.data_time || "").slice(0, 16).replace("T", " "))}</td><td>${esc(a.severity)}</td><td>${esc(a.rule)}</td><td>${esc(a.company || "-")}</td><td>${esc(a.channel)}</td><td>${esc(a.summary)}</td><td>${esc(a.excerpt || "-")}</td></tr>`).join("");
  document.querySelectorAll("#alerts tr.click").forEach(tr => tr.onclick = () => {
    document.querySelectorAll("#alerts tr.sel").forEach(x => x.classList.remove("sel")); tr.classList.add("sel");
    const a = D.alerts[+tr.dataset.alert]; drill(`Alert: ${a.summary}`, a.examples); });
  const more = D.alerts_total - D.alerts.length;
  document.getElementById("alerts-note").textContent = (rows.length ? "" : (D.alerts_reason || "No alert in this selection.") + " ")
    + (more > 0 ? `+${more} more alerts in the period are not listed.` : "");
}

function drill(title, examples) {
  document.getElementById("drill-title").textContent = title;
  document.getElementById("drill-table").innerHTML = "<tr><th>Ticket</th><th>Company</th><th>Channel</th><th>Time (UTC)</th><th>Text (masked)</th></tr>"
    + examples.map(e => `<tr class="ticket"><td>${esc(e.ticket_id)}</td><td>${esc(e.company || "-")}</td><td>${esc(e.channel || "-")}</td><td>${esc(String(e.created_at || "-").slice(0, 16).replace("T", " "))}</td><td>${esc(e.text)}</td></tr>`).join("");
  document.getElementById("drill-note").textContent = examples.length ? "" : "No example tickets stored for this one.";
}

setup(); draw();
document.body.dataset.ready = "1";
</script>
</body></html>
"""
