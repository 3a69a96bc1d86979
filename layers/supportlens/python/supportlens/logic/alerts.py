"""Alerts use case: evaluate rules, store each alert once per cooldown, publish new ones."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta, timezone
from datetime import time as dt_time
from typing import Any

from ..adapters import dynamo
from ..adapters.aws import client
from ..domain.alerts import AlertConfig, behaviour_alerts, cooldown_key, dedupe_key, span_days, ticket_alerts, window_alerts
from ..domain.behaviour import hour_buckets
from ..observability import logger
from ..settings import Settings
from .behaviour import complaint_buckets, recent_profiles
from .counters import read_partitions


ALERT_TTL_S = 30 * 24 * 3600
# Cooldown claims this container has seen: cooldown key -> (raised_epoch, dedupe key claimed). A claim
# only ever moves forward in time, so one seen less than a cooldown ago for another alert means the
# conditional put would fail: skipped, it costs no WRU (a failed conditional write costs 1). Most
# per-ticket candidates are repeats of an alert raised a moment ago (254 of 330 puts on the e2e run).
# And the alerts it saw stored (dedupe keys): the same alert again (another ticket of the same rule,
# subject and cooldown bucket: most of them) would fail both puts, 2 WRU.
_SEEN_CLAIMS: dict[str, dict[str, tuple[int, str]]] = {}  # per alerts table
_SEEN_STORED: dict[str, set[str]] = {}
MAX_SEEN_CLAIMS = 50_000


def raise_alert(alert: dict[str, Any], settings: Settings, now: datetime) -> bool:
    """Store and publish unless the same rule + subject was raised within its cooldown.

    A conditional put claims the rule+subject cooldown item (its last raise at least `cooldown_minutes`
    ago, or already claimed for this very alert by a delivery that crashed) and a second one stores the
    alert under its dedupe key; only then is it published, so a noisy rule or a redelivered stream
    record never repeats within the cooldown.
    """
    key = dedupe_key(alert, now)
    epoch = int(now.timestamp())
    # Reports count alerts in data time: a ticket rule's alert happened when its message was written;
    # a windowed rule's when its window ended (now).
    data_time = str(alert.get("data_time") or now.isoformat())
    item = {
        "dedupe_key": key, **{k: v for k, v in alert.items() if v is not None},
        "data_time": data_time, "day": data_time[:10], "channel": alert.get("channel") or "all",
        "raised_at": now.isoformat(), "raised_epoch": epoch, "expires_at": int(time.time()) + ALERT_TTL_S,
    }
    guard = {"dedupe_key": cooldown_key(alert), "record": "cooldown", "rule": alert["rule"], "last_alert": key,
             "raised_epoch": epoch, "expires_at": epoch + alert["cooldown_minutes"] * 60 + 24 * 3600}
    cutoff = epoch - alert["cooldown_minutes"] * 60
    seen, stored = _SEEN_CLAIMS.setdefault(settings.alerts_table, {}), _SEEN_STORED.setdefault(settings.alerts_table, set())
    claimed = seen.get(guard["dedupe_key"])
    if key in stored or (claimed and claimed[0] > cutoff and claimed[1] != key):
        return False
    if len(seen) >= MAX_SEEN_CLAIMS or len(stored) >= MAX_SEEN_CLAIMS:
        seen.clear()
        stored.clear()
    raised = dynamo.put_unless_cooling_down(settings.alerts_table, "dedupe_key", guard, item, cutoff, claim_attr="last_alert",
                                            seen=seen)
    if raised or seen.get(guard["dedupe_key"], (0, ""))[1] == key:  # False with the claim ours: the record exists
        stored.add(key)
    if not raised:
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


def behaviour_rule_alerts(config: AlertConfig, settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """Abusive customers (profiles refreshed today/yesterday) and coordinated complaints (recent hour buckets)."""
    kinds = {r.kind for r in config.behaviour_rules}
    profiles = recent_profiles(settings, now.date()) if "abusive_behaviour" in kinds else []
    window = max((r.window_minutes for r in config.behaviour_rules if r.kind == "coordinated_complaint"), default=0)
    buckets = complaint_buckets(settings, hour_buckets(now, window)) if window else {}
    return behaviour_alerts(profiles, buckets, now, config)


def window_inputs(config: AlertConfig, settings: Settings, today: date, now: datetime) -> tuple[dict, dict, list, int]:
    """Daily rows, hourly rows and issues the windowed rules need: queries by key, never a ticket scan."""
    span = max((span_days(r) for r in config.window_rules), default=0)
    hour_days = max((-(-r.window_hours // 24) + 1 for r in config.window_rules if getattr(r, "window_hours", None)), default=0)
    table = settings.aggregates_table
    day_list = [(today - timedelta(d)).isoformat() for d in range(span)]
    hour_list = [(now.date() - timedelta(d)).isoformat()
                 for d in range(max(hour_days, max((getattr(r, "window_days", 0) for r in config.window_rules), default=0)))]
    # Summed over the write shards (domain/shards.py), the legacy unsharded rows included.
    merged = read_partitions(table, [f"day#{d}" for d in day_list] + [f"hours#{d}" for d in hour_list])
    rows = {day: merged[f"day#{day}"] for day in day_list}
    hours = {day: merged[f"hours#{day}"] for day in hour_list}
    issues = dynamo.scan_all(settings.issues_table) if any(r.kind == "emerging_issue" for r in config.window_rules) else []
    return rows, hours, issues, span


def on_schedule(config: AlertConfig, settings: Settings, today: date | None = None, now: datetime | None = None) -> dict[str, Any]:
    if now is None:
        now = datetime.combine(today, dt_time(23, 59), tzinfo=timezone.utc) if today else datetime.now(timezone.utc)
    today = today or now.date()
    rows, hours, issues, span = window_inputs(config, settings, today, now)
    alerts = window_alerts(rows, today, config, hours=hours, now=now, issues=issues) + behaviour_rule_alerts(config, settings, now)
    raised = sum(raise_alert(a, settings, now) for a in alerts)
    return {"evaluated_days": span, "candidates": len(alerts), "raised": raised}
