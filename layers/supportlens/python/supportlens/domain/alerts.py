"""Alert rules as validated configuration, evaluated per ticket and over aggregate windows."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class TicketRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["abusive", "escalation", "long_call", "failed_call"]
    threshold: float | None = None
    subject: Literal["customer", "company", "agent"] = "customer"
    cooldown_minutes: int = Field(60, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"


class WindowRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["negative_share_spike"]
    window_days: int = Field(1, ge=1)
    baseline_days: int = Field(7, ge=1)
    min_volume: int = Field(20, ge=1)
    share_above: float = Field(0.5, gt=0, le=1)
    ratio_to_baseline: float = Field(1.5, gt=0)
    cooldown_minutes: int = Field(360, ge=1)
    severity: Literal["info", "warning", "critical"] = "warning"


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    ticket_rules: list[TicketRule]
    window_rules: list[WindowRule] = []


DEFAULT_CONFIG: dict[str, Any] = {
    "version": 1,
    "ticket_rules": [
        {"name": "abusive-message", "kind": "abusive", "threshold": 0.8, "subject": "customer", "cooldown_minutes": 360, "severity": "warning"},
        {"name": "escalation", "kind": "escalation", "subject": "company", "cooldown_minutes": 60, "severity": "critical"},
        {"name": "long-call", "kind": "long_call", "threshold": 3000, "subject": "agent", "cooldown_minutes": 60},
        {"name": "failed-call", "kind": "failed_call", "subject": "agent", "cooldown_minutes": 60},
    ],
    "window_rules": [
        {"name": "negative-sentiment-spike", "kind": "negative_share_spike", "window_days": 1, "baseline_days": 7,
         "min_volume": 20, "share_above": 0.5, "ratio_to_baseline": 1.5},
    ],
}


class AlertConfigError(ValueError):
    pass


def load_config(raw: dict[str, Any]) -> AlertConfig:
    """Validate; the error names the bad field, e.g. `ticket_rules.0.kind: Input should be ...`."""
    try:
        return AlertConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise AlertConfigError(f"invalid alert rules: {problems}") from None


def _subject(ticket: dict[str, Any], subject: str) -> str | None:
    if subject == "customer":
        return ticket.get("author_id")
    if subject == "agent":
        return ticket.get("agent_id") or ticket.get("company")
    return ticket.get("company")


DEFAULT_THRESHOLDS = {"abusive": 0.6, "long_call": 3000.0}


def ticket_alerts(ticket: dict[str, Any], config: AlertConfig) -> list[dict[str, Any]]:
    """Alerts one stored ticket raises (customer messages only)."""
    if ticket.get("role") == "company":
        return []
    alerts = []
    for rule in config.ticket_rules:
        if rule.threshold is None and rule.kind in DEFAULT_THRESHOLDS:
            rule = rule.model_copy(update={"threshold": DEFAULT_THRESHOLDS[rule.kind]})
        observed: float | str | None = None
        if rule.kind == "abusive" and float(ticket.get("abuse_score", 0)) >= rule.threshold:
            observed = float(ticket["abuse_score"])
        elif rule.kind == "escalation" and ticket.get("escalation"):
            observed = ticket["escalation"]
        elif rule.kind == "long_call" and float(ticket.get("call_duration_s") or 0) >= rule.threshold:
            observed = float(ticket["call_duration_s"])
        elif rule.kind == "failed_call" and ticket.get("call_status") == "failed":
            observed = "failed"
        if observed is None:
            continue
        subject = _subject(ticket, rule.subject) or "unknown"
        alerts.append({
            "rule": rule.name, "severity": rule.severity, "subject_type": rule.subject, "subject": subject,
            "observed": observed, "threshold": rule.threshold, "window": f"{rule.cooldown_minutes}m",
            "examples": [ticket["ticket_id"]], "cooldown_minutes": rule.cooldown_minutes,
            "summary": _ticket_summary(rule, subject, observed, ticket),
        })
    return alerts


def _ticket_summary(rule: TicketRule, subject: str, observed: Any, ticket: dict[str, Any]) -> str:
    if rule.kind == "abusive":
        return f"Abusive message (score {observed:.2f} >= {rule.threshold}) from customer {subject}"
    if rule.kind == "escalation":
        return f"Escalation '{observed}' about {subject} (ticket {ticket['ticket_id']})"
    if rule.kind == "long_call":
        return f"Call of {observed:.0f} s (>= {rule.threshold:.0f} s) handled by {subject}"
    return f"Failed call handled by {subject}"


def window_alerts(rows_by_day: dict[str, list[dict[str, Any]]], today: date, config: AlertConfig) -> list[dict[str, Any]]:
    """Windowed rules over per-day aggregate rows ({day: [row, ...]})."""
    alerts = []
    for rule in config.window_rules:
        window = [(today - timedelta(d)).isoformat() for d in range(rule.window_days)]
        baseline = [(today - timedelta(d)).isoformat() for d in range(rule.window_days, rule.window_days + rule.baseline_days)]

        def by_company(days: list[str]) -> dict[str, tuple[float, float]]:
            out: dict[str, list[float]] = {}
            for day in days:
                for row in rows_by_day.get(day, []):
                    if not row["sk"].startswith("company#"):
                        continue
                    company = row["sk"].split("#")[1]
                    acc = out.setdefault(company, [0.0, 0.0])
                    acc[0] += float(row.get("negative", 0))
                    acc[1] += float(row.get("volume", 0))
            return {k: (v[0], v[1]) for k, v in out.items()}

        now_counts, base_counts = by_company(window), by_company(baseline)
        for company, (negative, volume) in now_counts.items():
            if volume < rule.min_volume:
                continue
            share = negative / volume
            b_neg, b_vol = base_counts.get(company, (0.0, 0.0))
            base_share = b_neg / b_vol if b_vol else None
            if share >= rule.share_above and (base_share is None or share >= rule.ratio_to_baseline * base_share):
                base_text = f"{base_share:.0%}" if base_share is not None else "no baseline"
                alerts.append({
                    "rule": rule.name, "severity": rule.severity, "subject_type": "company", "subject": company,
                    "observed": round(share, 4), "threshold": rule.share_above, "baseline": base_share,
                    "window": f"{window[-1]}..{window[0]}", "examples": [], "cooldown_minutes": rule.cooldown_minutes,
                    "summary": f"Negative share {share:.0%} of {volume:.0f} tickets for {company} ({base_text} before)",
                })
    return alerts


def dedupe_key(alert: dict[str, Any], at: datetime) -> str:
    """Same rule + subject inside one cooldown bucket -> same key, so it is stored once."""
    bucket = int(at.timestamp() // (alert["cooldown_minutes"] * 60))
    raw = f"{alert['rule']}|{alert['subject_type']}|{alert['subject']}|{bucket}"
    return f"{alert['rule']}#{hashlib.sha256(raw.encode()).hexdigest()[:16]}"
