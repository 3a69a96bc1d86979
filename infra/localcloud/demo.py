"""`make demo`: the whole event flow on the bundled TWCS sample, on the local cloud.

Starts the local cloud, uploads the sample to incoming/, shows progress while the
pipeline drains, fires the cluster and report schedules, prints a summary, writes the
report email that SES received as .eml and .html under out/, and shuts down.
"""

from __future__ import annotations

import argparse
import email
import json
import sys
import time
import urllib.request
from email import policy
from collections import Counter
from pathlib import Path
from typing import Any

from supportlens_cli.client import resolve_outputs, summary, upload, wait_for

from . import cli as local

DEMO_PERIOD = "60d"


def sent_emails(endpoint: str) -> list[dict[str, Any]]:
    """Messages SES accepted, read back from moto's state API."""
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=30) as response:
        data = json.loads(response.read())
    found = []
    for backend in data.get("ses", {}).values() if isinstance(data.get("ses"), dict) else []:
        for message in backend if isinstance(backend, list) else []:
            # The state also lists the verified sender identity: "emails sent: 4" for 3 reports.
            if isinstance(message, dict) and "raw_data" in message and message.get("destinations"):
                found.append(message)
    return found


def cluster_line(result: dict[str, Any]) -> str:
    """One readable line for a Cluster run: its `issues` counts root causes and buckets together (22 for the
    sample's 11 + 11), which read as 22 issues next to the summary's 11 root causes."""
    if result.get("status") != "clustered":
        return json.dumps(result, default=str)[:300]
    buckets = result.get("buckets") or {}
    return (f"{result['root_causes']} root causes from {result['clustered']} of {result['tickets']} tickets "
            f"(outliers {result['outlier_share']:.1%}), {sum(buckets.values())} tickets in {len(buckets)} not-issue buckets, "
            f"model {result['version']}")


def save_report_email(raw: bytes, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    eml = out / "report.eml"
    eml.write_bytes(raw)
    message = email.message_from_bytes(raw, policy=policy.default)
    html_part = message.get_body(preferencelist=("html",))
    html = html_part.get_content() if html_part else "<p>(no HTML part)</p>"
    import base64

    for part in message.walk():
        cid = part.get("Content-ID")
        if cid and part.get_content_type().startswith("image/"):
            data = base64.b64encode(part.get_payload(decode=True)).decode()
            html = html.replace(f"cid:{cid.strip('<>')}", f"data:{part.get_content_type()};base64,{data}")
    page = out / "report.html"
    page.write_text(html)
    return eml, page


def run_demo(args: argparse.Namespace) -> int:
    started = time.monotonic()
    print("1/5 starting the local cloud and deploying template.yaml ...", flush=True)
    state = local.up(args.template.resolve(), None, [])
    try:
        outputs = resolve_outputs(None)
        print(f"    emulator at {state['endpoint']}; bucket {outputs['DataBucketName']}")
        print(f"2/5 uploading {args.sample} to incoming/ ...", flush=True)
        file_ids = upload([args.sample], None, outputs)
        rows = wait_for(outputs, file_ids, timeout=900, progress=True)
        local.control("/wait-idle", {"timeout": 300})
        print("3/5 firing the Cluster schedule ...", flush=True)
        cluster = local.control("/tick", {"function": "ClusterFunction"})["results"]
        for r in cluster:
            print(f"    {r['schedule']}: {'ok, ' + cluster_line(r['result']) if r['ok'] else r['error']}")
        local.control("/wait-idle", {"timeout": 120})
        print("4/5 firing the Report schedules, then a report covering the sample ...", flush=True)
        reports = local.control("/tick", {"function": "ReportFunction"})["results"]
        for r in reports:
            print(f"    {r['schedule']}: {'ok' if r['ok'] else r['error']}")
        # The schedules report the last day and week of the sample (it ends 2017-12-03); a newcomer
        # should see the whole sample: DEMO_PERIOD ending at the newest ticket holds all but 2 of it.
        covering = local.control("/invoke", {"function": "ReportFunction", "event": {"period": DEMO_PERIOD}})
        covering["schedule"] = f"on demand ({DEMO_PERIOD})"
        reports.append(covering)
        print(f"    {DEMO_PERIOD} report: {'ok' if covering['ok'] else covering['error']}")
        from supportlens.adapters import dynamo, s3

        issues = [i for i in dynamo.scan_all(outputs["IssuesTableName"]) if i.get("status", "active") == "active"]
        alerts = [a for a in dynamo.scan_all(outputs["AlertsTableName"]) if a.get("record") != "cooldown"]
        tickets = sum(r["tickets_stored"] for r in rows)
        mails = sent_emails(state["endpoint"])
        print("5/5 summary")
        print(f"    files processed : {len(rows)}  ({', '.join(r['status'] for r in rows)})")
        print(f"    rows read       : {sum(r['rows_read'] for r in rows)}")
        print(f"    tickets stored  : {tickets}")
        print(f"    rows quarantined: {sum(r['rows_quarantined'] for r in rows)}")
        causes = [i for i in issues if i.get("kind", "issue") != "bucket"]
        buckets = sorted((i for i in issues if i.get("kind") == "bucket"), key=lambda i: -int(i["size"]))
        print(f"    issues found    : {len(causes)} root causes ({sum(bool(i.get('emerging')) for i in causes)} emerging)")
        for issue in sorted(causes, key=lambda i: -int(i['size']))[:5]:
            companies = ", ".join(str(c.get("company")) for c in (issue.get("top_companies") or [])[:2])
            print(f"        - {issue['label']} ({issue['size']}; {companies})")
        print(f"    not issues      : " + (", ".join(f"{b.get('bucket') or b['label']} {b['size']}" for b in buckets) or "none"))
        print(f"    alerts raised   : {len(alerts)}")
        print(f"    emails sent     : {len(mails)}")
        print(f"    alerts by rule  : {dict(Counter(a['rule'] for a in alerts))}")
        if mails:
            eml, page = save_report_email(mails[-1]["raw_data"].encode() if isinstance(mails[-1].get("raw_data"), str) else b"", args.out)
            print(f"    report email    : {eml} and {page}")
        if covering["ok"]:
            done = covering["result"]
            (args.out / "report.json").write_bytes(s3.get_bytes(outputs["DataBucketName"], done["summary"]))
            (args.out / "dashboard.html").write_bytes(s3.get_bytes(outputs["DataBucketName"], done["dashboard"]))
            print(f"    report period   : {done['start']} to {done['end']} ({done['volume']:,} customer messages)")
            print(f"    summary, board  : {args.out / 'report.json'} and {args.out / 'dashboard.html'}"
                  f" (e-mail {done['email_bytes'] / 1e3:,.0f} kB, dashboard {done['dashboard_bytes'] / 1e6:.1f} MB)")
        print(f"    took {time.monotonic() - started:.1f}s")
        ok = all(r["status"] == "complete" for r in rows) and all(r["ok"] for r in cluster + reports) and mails
        return 0 if ok else 1
    finally:
        print(f"local cloud {local.down()}", file=sys.stderr)
