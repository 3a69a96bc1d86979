"""Alerts use case: evaluate rules, store each alert once per cooldown, publish new ones."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

from ..adapters import dynamo
from ..adapters.aws import client
from ..domain.alerts import AlertConfig, dedupe_key, ticket_alerts, window_alerts
from ..observability import logger
from ..settings import Settings


def raise_alert(alert: dict[str, Any], settings: Settings, now: datetime) -> bool:
    """Store (conditional write on the dedupe key) and publish; False if already raised."""
    key = dedupe_key(alert, now)
    item = {
        "dedupe_key": key, **{k: v for k, v in alert.items() if v is not None},
        "raised_at": now.isoformat(), "expires_at": int(time.time()) + 30 * 24 * 3600,
    }
    if not dynamo.put_if_absent(settings.alerts_table, item, "dedupe_key"):
        return False
    if settings.alerts_topic_arn:
        client("sns").publish(
            TopicArn=settings.alerts_topic_arn,
            Subject=f"[SupportLens] {alert['rule']}"[:100],
            Message=json.dumps({k: v for k, v in item.items() if k != "expires_at"}, default=str),
        )
    logger().info("alert raised", extra={"rule": alert["rule"], "dedupe_key": key})
    return True


def on_ticket(ticket: dict[str, Any], config: AlertConfig, settings: Settings, now: datetime | None = None) -> int:
    now = now or datetime.now(timezone.utc)
    return sum(raise_alert(a, settings, now) for a in ticket_alerts(ticket, config))


def on_schedule(config: AlertConfig, settings: Settings, today: date | None = None) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    today = today or now.date()
    span = max((r.window_days + r.baseline_days for r in config.window_rules), default=0)
    rows = {}
    for d in range(span):
        day = (today - timedelta(d)).isoformat()
        rows[day] = dynamo.query_pk(settings.aggregates_table, f"day#{day}")
    alerts = window_alerts(rows, today, config)
    raised = sum(raise_alert(a, settings, now) for a in alerts)
    return {"evaluated_days": span, "candidates": len(alerts), "raised": raised}
