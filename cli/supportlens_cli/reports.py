"""`supportlens report` and `supportlens alerts`: the report on demand and recent alerts,
against the same target as the other client commands (the local cloud or `--stack NAME`)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from .client import CliError, local_state, resolve_outputs


def target_parameters(stack: str | None) -> dict[str, str]:
    """Template parameters of the target (sender and recipients of the report)."""
    stack = stack or os.environ.get("SUPPORTLENS_STACK")
    if stack:
        from supportlens.adapters.aws import client

        found = client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Parameters", [])
        return {p["ParameterKey"]: p.get("ResolvedValue", p.get("ParameterValue", "")) for p in found}
    return {k: str(v) for k, v in ((local_state() or {}).get("parameters") or {}).items()}


def target_settings(stack: str | None):
    from supportlens.settings import Settings

    outputs = resolve_outputs(stack)
    params = target_parameters(stack)
    try:
        return Settings(
            data_bucket=outputs["DataBucketName"], tickets_table=outputs.get("TicketsTableName", ""),
            files_table=outputs.get("FilesTableName", ""), aggregates_table=outputs["AggregatesTableName"],
            issues_table=outputs["IssuesTableName"], alerts_table=outputs["AlertsTableName"],
            alerts_topic_arn=outputs.get("AlertsTopicArn", ""), sender_email=params.get("SenderEmail", ""),
            report_recipients=[a.strip() for a in params.get("ReportRecipients", "").split(",") if a.strip()],
        )
    except KeyError as exc:
        raise CliError(f"the target's stack outputs lack {exc}: is it a SupportLens stack?") from None


def _end_day(value: str | None):
    """--end YYYY-MM-DD: the period ends that day (default today; an empty period falls back to the newest data)."""
    if not value:
        return None
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"--end must be a date like 2017-12-03, not {value!r}") from None


def _checked_period(args: argparse.Namespace):
    """Validate --period and --end before touching the target; returns the period's last day (or None).
    The command prints its own summary: the library's INFO logs would muddle stdout (and --json)."""
    from supportlens.logic.report import parse_period
    from supportlens.observability import logger

    logger().setLevel("WARNING")
    try:
        parse_period(args.period)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return _end_day(args.end)


def cmd_report(args: argparse.Namespace) -> int:
    from supportlens.logic.report import make_and_deliver, standalone_html

    end = _checked_period(args)
    settings = target_settings(args.stack)
    report, result = make_and_deliver(settings, args.period, end)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"report-{args.period}"
    files = {"eml": out / f"{stem}.eml", "html": out / f"{stem}.html", "json": out / f"{stem}.json",
             "dashboard": out / f"dashboard-{args.period}.html"}
    files["eml"].write_bytes(report["mime"])
    files["html"].write_text(standalone_html(report), encoding="utf-8")
    files["json"].write_text(json.dumps(report["summary"], default=str, indent=1), encoding="utf-8")
    files["dashboard"].write_text(report["dashboard"], encoding="utf-8")
    result["files"] = [str(f) for f in files.values()]
    if args.json:
        print(json.dumps(result, default=str))
    else:
        print(result["subject"])
        print(f"  period   : {result['start']} to {result['end']} ({result['volume']:,} customer messages)")
        print(f"  sent     : {'to ' + ', '.join(settings.report_recipients) + ' (SES message ' + str(result['message_id']) + ')' if result['message_id'] else 'no recipients configured'}")
        print(f"  archived : s3://{settings.data_bucket}/{result['archive'].removesuffix('.eml')}(.eml, .html, .summary.json, .dashboard.html)")
        print(f"  written  : {', '.join(result['files'])}")
    return 0


def dashboard_path(out: str, period: str) -> Path:
    """--out is a folder, as for `report` (the file is dashboard-<period>.html, the name `report`
    gives it, so the demo's out/dashboard.html is never overwritten); a path ending in .html is the file."""
    path = Path(out)
    return path if path.suffix.lower() in (".html", ".htm") else path / f"dashboard-{period}.html"


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Write the interactive dashboard of a period to a local file (nothing is sent or archived)."""
    from supportlens.domain.dashboard import render_dashboard
    from supportlens.domain.report import summary
    from supportlens.logic.report import gather

    end = _checked_period(args)
    data = gather(target_settings(args.stack), args.period, end)
    page = render_dashboard(data, summary(data))
    out = dashboard_path(args.out, args.period)
    out.parent.mkdir(parents=True, exist_ok=True)
    replaced = out.exists()
    out.write_text(page, encoding="utf-8")
    print(f"dashboard of {data.start} to {data.end} ({int(data.totals.get('volume', 0)):,} customer messages): "
          f"{out} ({len(page.encode()) / 1e6:.1f} MB, opens offline{'; replaced the file that was there' if replaced else ''})")
    if args.open:
        import webbrowser

        webbrowser.open(out.resolve().as_uri())
    return 0


def recent_alerts(alerts_table: str, limit: int) -> list[dict[str, Any]]:
    from supportlens.adapters import dynamo

    items = [a for a in dynamo.scan_all(alerts_table) if a.get("record") != "cooldown"]
    items.sort(key=lambda a: str(a.get("raised_at", "")), reverse=True)
    return items[:limit]


def cmd_alerts(args: argparse.Namespace) -> int:
    outputs = resolve_outputs(args.stack)
    items = recent_alerts(outputs["AlertsTableName"], args.limit)
    if args.json:
        if not items:
            print("[]")
        for item in items:
            print(json.dumps({k: v for k, v in item.items() if k not in ("expires_at", "raised_epoch")}, default=str))
        return 0
    if not items:
        print("no alerts raised (rules are evaluated on new tickets and every 15 minutes)")
        return 0
    for a in items:
        observed = a.get("observed")
        vs = f"{observed} vs {a['threshold']}" if a.get("threshold") is not None else f"{observed}"
        print(f"{str(a.get('raised_at', ''))[:19]}  {a.get('severity', ''):8}  {a.get('rule', ''):28}  {a.get('subject_type', '')}:{a.get('subject', '')}")
        print(f"    {a.get('summary', '')}")
        print(f"    observed {vs}; window {a.get('window', '')}; examples {', '.join(map(str, a.get('examples') or [])) or 'none'}")
    return 0


def add_report_commands(sub: Any) -> None:
    rp = sub.add_parser("report", help="build the stakeholder report now: send, archive and write it to --out")
    rp.add_argument("--period", default="7d", help="1d, 7d (default) or Nd")
    rp.add_argument("--end", help="last day of the period, YYYY-MM-DD (default: today, or the newest data when today's period is empty)")
    rp.add_argument("--out", default="out", help="folder for report-<period>.eml/.html/.json and dashboard-<period>.html (default: out)")
    rp.add_argument("--json", action="store_true")
    rp.add_argument("--stack", help="deployed stack name (default: the local cloud)")
    rp.set_defaults(func=cmd_report)

    db = sub.add_parser("dashboard", help="write the interactive dashboard (one offline HTML file) of a period")
    db.add_argument("--period", default="30d", help="1d, 7d, 30d (default) or Nd")
    db.add_argument("--end", help="last day of the period, YYYY-MM-DD (default: today, or the newest data)")
    db.add_argument("--out", default="out", help="folder for dashboard-<period>.html (default: out), or a file name ending in .html")
    db.add_argument("--open", action="store_true", help="open it in the default browser")
    db.add_argument("--stack", help="deployed stack name (default: the local cloud)")
    db.set_defaults(func=cmd_dashboard)

    al = sub.add_parser("alerts", help="recent alerts, newest first")
    al.add_argument("--json", action="store_true", help="one JSON object per alert")
    al.add_argument("--limit", type=int, default=20)
    al.add_argument("--stack")
    al.set_defaults(func=cmd_alerts)
