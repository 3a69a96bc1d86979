"""Alert rules as validated configuration, evaluated per ticket and over aggregate windows.

The rules are a versioned YAML document (`supportlens/config/alerts.yaml` ships the
defaults; an operator may override it from S3 or SSM). Windowed rules read only the
pre-aggregated counters of the Aggregates table (pk day#<day> and hours#<day>) and the
Issues table; each kind has one evaluator in WINDOW_EVALUATORS.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import metrics

CONFIG_VERSION = 1
DEFAULT_CONFIG_PATH = Path(__file__).resolve().parents[1] / "config" / "alerts.yaml"
Severity = Literal["info", "warning", "critical"]


class TicketRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["abusive", "escalation", "long_call", "failed_call"]
    threshold: float | None = None
    subject: Literal["customer", "company", "agent"] = "customer"
    cooldown_minutes: int = Field(60, ge=1)
    severity: Severity = "warning"


class _WindowBase(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    window_days: int = Field(1, ge=1, le=90)
    window_hours: int | None = Field(None, ge=1, le=24 * 31)  # set: the last N hours instead of days
    cooldown_minutes: int = Field(360, ge=1)
    severity: Severity = "warning"


class NegativeShareRule(_WindowBase):
    kind: Literal["negative_share_spike"]
    baseline_days: int = Field(7, ge=1)
    min_volume: int = Field(20, ge=1)
    share_above: float = Field(0.5, gt=0, le=1)
    ratio_to_baseline: float = Field(1.5, gt=0)


class AbuseRateRule(_WindowBase):
    kind: Literal["abuse_rate_spike"]
    baseline_days: int = Field(7, ge=1)
    min_volume: int = Field(20, ge=1)
    rate_above: float = Field(0.1, gt=0, le=1)
    ratio_to_baseline: float = Field(2.0, gt=0)


class ResponseSlaRule(_WindowBase):
    kind: Literal["response_sla"]
    subject: Literal["company", "agent"] = "company"
    sla_seconds: Literal[900, 3600, 14400, 86400] = 3600
    min_responses: int = Field(10, ge=1)
    min_breaches: int = Field(3, ge=1)
    breach_share_above: float = Field(0.25, ge=0, le=1)


class FailedCallsRule(_WindowBase):
    kind: Literal["failed_calls"]
    subject: Literal["customer", "agent"] = "agent"
    min_count: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _customer_needs_hours(self) -> "FailedCallsRule":
        if self.subject == "customer" and self.window_hours is None:
            raise ValueError("subject 'customer' needs window_hours (customers are counted per hour only)")
        return self


class EmergingIssueRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["emerging_issue"]
    min_size: int = Field(10, ge=1)
    cooldown_minutes: int = Field(1440, ge=1)
    severity: Severity = "info"


WindowRule = Annotated[
    Union[NegativeShareRule, AbuseRateRule, ResponseSlaRule, FailedCallsRule, EmergingIssueRule],
    Field(discriminator="kind"),
]
WINDOW_KINDS = ("negative_share_spike", "abuse_rate_spike", "response_sla", "failed_calls", "emerging_issue")
BEHAVIOUR_KINDS = ("abusive_behaviour", "coordinated_complaint")


class AbusiveBehaviourRule(BaseModel):
    """A customer whose abusive-behaviour profile score (domain/behaviour.py) reaches `threshold`."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["abusive_behaviour"]
    threshold: float = 0.7
    max_age_days: int = Field(2, ge=1)  # profiles whose window ended longer ago (old data replayed) stay quiet
    cooldown_minutes: int = Field(1440, ge=1)
    severity: Severity = "warning"

    @model_validator(mode="after")
    def _score(self) -> "AbusiveBehaviourRule":
        if not 0 < self.threshold <= 1:
            raise ValueError("threshold must be a score in (0, 1]")
        return self


class CoordinatedComplaintRule(BaseModel):
    """Near-identical complaints from at least `threshold` distinct accounts within `window_minutes`."""

    model_config = ConfigDict(extra="forbid")
    name: str
    kind: Literal["coordinated_complaint"]
    threshold: int = 5
    window_minutes: int = Field(60, ge=1, le=24 * 60)
    cooldown_minutes: int = Field(360, ge=1)
    severity: Severity = "critical"

    @model_validator(mode="after")
    def _accounts(self) -> "CoordinatedComplaintRule":
        if self.threshold < 2:
            raise ValueError("threshold must be at least 2 distinct accounts")
        return self


BehaviourRule = Annotated[Union[AbusiveBehaviourRule, CoordinatedComplaintRule], Field(discriminator="kind")]


class AlertConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1]
    ticket_rules: list[TicketRule]
    window_rules: list[WindowRule] = []
    behaviour_rules: list[BehaviourRule] = []

    @model_validator(mode="after")
    def _unique_names(self) -> "AlertConfig":
        names = [r.name for r in [*self.ticket_rules, *self.window_rules, *self.behaviour_rules]]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"rule names must be unique (repeated: {', '.join(duplicates)})")
        return self


def read_default_config() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))


DEFAULT_CONFIG: dict[str, Any] = read_default_config()


class AlertConfigError(ValueError):
    pass


FRACTIONS = {"share_above", "rate_above", "breach_share_above"}
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _describe(error: dict[str, Any]) -> str:
    loc = [str(p) for p in error["loc"] if str(p) not in WINDOW_KINDS + BEHAVIOUR_KINDS]  # drop the union tag pydantic adds
    msg = error["msg"]
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append("kind")
        msg = f"must be one of {', '.join(BEHAVIOUR_KINDS if 'behaviour_rules' in loc else WINDOW_KINDS)}"
    elif error["type"] in _BOUND_ERRORS and loc and loc[-1] in FRACTIONS:
        msg = "must be between 0 and 1"
    elif error["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    return f"{'.'.join(loc) or '(document)'}: {msg}"


def load_config(raw: Any) -> AlertConfig:
    """Validate; the error names every bad field, e.g. `window_rules.0.share_above: must be between 0 and 1`."""
    if not isinstance(raw, dict):
        raise AlertConfigError(f"invalid alert rules: (document): must be a mapping with version, ticket_rules, window_rules, not {type(raw).__name__}")
    try:
        return AlertConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise AlertConfigError(f"invalid alert rules: {problems}") from None


def parse_config(text: str | bytes) -> AlertConfig:
    """YAML (or JSON) text -> validated config."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise AlertConfigError(f"invalid alert rules: not valid YAML{where}") from None
    return load_config(raw)


# --------------------------------------------------------------------------- per-ticket rules


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
            "rule": rule.name, "kind": rule.kind, "severity": rule.severity, "subject_type": rule.subject, "subject": subject,
            "observed": observed, "threshold": rule.threshold, "window": f"ticket {ticket['ticket_id']}",
            "examples": [ticket["ticket_id"]], "cooldown_minutes": rule.cooldown_minutes,
            "summary": _ticket_summary(rule, subject, observed, ticket),
            # Data time and context for the report: when the message was written, where, and what it said
            # (the stored text is already PII-masked).
            "data_time": str(ticket.get("created_at") or "") or None, "company": ticket.get("company"),
            "channel": ticket.get("channel"), "excerpt": _excerpt(ticket.get("text")),
        })
    return alerts


EXCERPT_CHARS = 160


def _excerpt(text: Any) -> str | None:
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def _ticket_summary(rule: TicketRule, subject: str, observed: Any, ticket: dict[str, Any]) -> str:
    if rule.kind == "abusive":
        return f"Abusive message (score {observed:.2f} >= {rule.threshold}) from customer {subject}"
    if rule.kind == "escalation":
        return f"Escalation '{observed}' about {subject} (ticket {ticket['ticket_id']})"
    if rule.kind == "long_call":
        return f"Call of {observed:.0f} s (>= {rule.threshold:.0f} s) handled by {subject}"
    return f"Failed call handled by {subject}"


# --------------------------------------------------------------------------- windowed rules


@dataclass
class WindowData:
    """What the windowed rules read: aggregate rows per day and per hour, and the issues."""

    today: date
    now: datetime
    days: dict[str, list[dict[str, Any]]]  # "YYYY-MM-DD" -> rows of pk day#<day>
    hours: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # "YYYY-MM-DD" -> rows of pk hours#<day>
    issues: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Window:
    label: str
    counts: dict[str, dict[str, float]]  # subject -> counters
    examples: dict[str, dict[str, list[str]]]  # subject -> counter -> ticket ids
    first_day: date


def span_days(rule: Any) -> int:
    """How many days of daily rows (ending today) a rule needs, baseline included."""
    window = -(-rule.window_hours // 24) + 1 if getattr(rule, "window_hours", None) else getattr(rule, "window_days", 0)
    return window + getattr(rule, "baseline_days", 0)


def _day_subject(sk: str, subject_type: str) -> str | None:
    parts = sk.split("#")  # company#<c>#channel#<ch> / agent#<a>#channel#<ch>
    return parts[1] if len(parts) >= 2 and parts[0] == subject_type else None


def _hour_subject(sk: str, subject_type: str) -> tuple[str, str] | None:
    hour, _, rest = sk.partition("#")  # <HH>#company#<c>
    kind, _, subject = rest.partition("#")
    return (hour, subject) if kind == subject_type and subject else None


def select_window(rule: Any, data: WindowData, subject_type: str) -> Window:
    """Counters per subject over the rule's window (hours from hourly rows, else days)."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    examples: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    if rule.window_hours:
        end = data.now.replace(minute=0, second=0, microsecond=0)
        start = end - timedelta(hours=rule.window_hours - 1)
        slots = {(start + timedelta(hours=h)).strftime("%Y-%m-%d %H") for h in range(rule.window_hours)}
        label = f"{start:%Y-%m-%dT%H}:00Z..{end:%Y-%m-%dT%H}:59Z"
        first_day = start.date()
        for day in sorted({s[:10] for s in slots}):
            for row in data.hours.get(day, []):
                found = _hour_subject(row["sk"], subject_type)
                if found and f"{day} {found[0]}" in slots:
                    _fold(row, counts[found[1]], examples[found[1]])
    else:
        days = [(data.today - timedelta(d)).isoformat() for d in range(rule.window_days)]
        label, first_day = f"{days[-1]}..{days[0]}", date.fromisoformat(days[-1])
        for day in days:
            for row in data.days.get(day, []):
                subject = _day_subject(row["sk"], subject_type)
                if subject:
                    _fold(row, counts[subject], None)
            for row in data.hours.get(day, []):  # example tickets only
                found = _hour_subject(row["sk"], subject_type)
                if found:
                    _fold(row, None, examples[found[1]])
    return Window(label, counts, examples, first_day)


def _fold(row: dict[str, Any], into: dict[str, float] | None, examples: dict[str, list[str]] | None) -> None:
    for key, value in row.items():
        if key in ("pk", "sk"):
            continue
        if key.startswith("ex_") and examples is not None and isinstance(value, (list, set, tuple)):
            bucket = examples[key[3:]]
            bucket.extend(v for v in sorted(value) if v not in bucket)
        elif into is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            into[key] += value


def baseline(rule: Any, data: WindowData, window: Window, subject_type: str) -> dict[str, dict[str, float]]:
    """Daily counters per subject over the `baseline_days` days before the window starts."""
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for d in range(1, rule.baseline_days + 1):
        for row in data.days.get((window.first_day - timedelta(d)).isoformat(), []):
            subject = _day_subject(row["sk"], subject_type)
            if subject:
                _fold(row, counts[subject], None)
    return counts


def _alert(rule: Any, subject_type: str, subject: str, observed: float, threshold: float, window: str,
           examples: list[str], summary: str, **extra: Any) -> dict[str, Any]:
    return {"rule": rule.name, "kind": rule.kind, "severity": rule.severity, "subject_type": subject_type, "subject": subject,
            "observed": round(observed, 4), "threshold": threshold, "window": window, "examples": examples[:metrics.MAX_EXAMPLES],
            "cooldown_minutes": rule.cooldown_minutes, "summary": summary, **extra}


def _share_spike(rule: Any, data: WindowData, counter: str, threshold: float, what: str) -> list[dict[str, Any]]:
    window = select_window(rule, data, "company")
    before = baseline(rule, data, window, "company")
    alerts = []
    for company, c in sorted(window.counts.items()):
        volume = c.get("volume", 0)
        if volume < rule.min_volume:
            continue
        share = c.get(counter, 0) / volume
        b = before.get(company, {})
        base_share = b.get(counter, 0) / b["volume"] if b.get("volume") else None
        if share >= threshold and (base_share is None or share >= rule.ratio_to_baseline * base_share):
            base_text = f"{base_share:.0%}" if base_share is not None else "no baseline"
            alerts.append(_alert(
                rule, "company", company, share, threshold, window.label, window.examples[company].get(counter, []),
                f"{what} share {share:.0%} of {volume:.0f} tickets for {company} ({base_text} before)", baseline=base_share,
                volume=int(volume)))
    return alerts


def negative_share(rule: NegativeShareRule, data: WindowData) -> list[dict[str, Any]]:
    return _share_spike(rule, data, "negative", rule.share_above, "Negative")


def abuse_rate(rule: AbuseRateRule, data: WindowData) -> list[dict[str, Any]]:
    return _share_spike(rule, data, "abusive", rule.rate_above, "Abusive")


def response_sla(rule: ResponseSlaRule, data: WindowData) -> list[dict[str, Any]]:
    window = select_window(rule, data, rule.subject)
    alerts = []
    for subject, c in sorted(window.counts.items()):
        responses = c.get("rt_count", 0)
        if responses < rule.min_responses:
            continue
        breaches = metrics.sla_breaches(c, rule.sla_seconds)
        share = breaches / responses
        if breaches >= rule.min_breaches and share >= rule.breach_share_above:
            alerts.append(_alert(
                rule, rule.subject, subject, share, rule.breach_share_above, window.label,
                window.examples[subject].get(f"rt_ge_{rule.sla_seconds}", []),
                f"{breaches} of {responses:.0f} first responses ({share:.0%}) by {rule.subject} {subject} slower than "
                f"the {rule.sla_seconds // 60} min SLA", breaches=breaches, responses=int(responses)))
    return alerts


def failed_calls(rule: FailedCallsRule, data: WindowData) -> list[dict[str, Any]]:
    window = select_window(rule, data, rule.subject)
    alerts = []
    for subject, c in sorted(window.counts.items()):
        failed = int(c.get("failed_calls", 0))
        if failed >= rule.min_count:
            alerts.append(_alert(
                rule, rule.subject, subject, failed, rule.min_count, window.label, window.examples[subject].get("failed_calls", []),
                f"{failed} failed calls for {rule.subject} {subject} in {window.label} (>= {rule.min_count})"))
    return alerts


def emerging_issue(rule: EmergingIssueRule, data: WindowData) -> list[dict[str, Any]]:
    alerts = []
    latest = max((str(i.get("model_version", "")) for i in data.issues), default="")
    for issue in data.issues:
        if str(issue.get("model_version", "")) != latest:
            continue  # issues of earlier clusterings are history, not news
        size = int(issue.get("size", 0))
        if issue.get("kind") == "bucket":  # thank-yous, follow-ups, chatter, a language: not a root cause to alert on
            continue
        if not issue.get("emerging") or issue.get("status", "active") != "active" or size < rule.min_size:
            continue
        examples = [e["ticket_id"] for e in issue.get("examples") or [] if isinstance(e, dict) and e.get("ticket_id")]
        reason = issue.get("emerging_reason") or "growing fast"
        # observed/threshold are what the rule compared (the issue's size against min_size); growth rides along,
        # None when the issue had no baseline at all (the clustering stores that as 99).
        growth = float(issue.get("growth") or 0)
        alerts.append(_alert(
            rule, "issue", str(issue["issue_id"]), size, rule.min_size,
            f"clustering {issue.get('model_version', '')}".strip(), examples,
            f"Emerging issue '{issue.get('label', issue['issue_id'])}' ({size} tickets): {reason}", size=size,
            growth=None if growth >= 99 else round(growth, 3)))
    return alerts


WINDOW_EVALUATORS: dict[str, Callable[[Any, WindowData], list[dict[str, Any]]]] = {
    "negative_share_spike": negative_share,
    "abuse_rate_spike": abuse_rate,
    "response_sla": response_sla,
    "failed_calls": failed_calls,
    "emerging_issue": emerging_issue,
}


def window_alerts(rows_by_day: dict[str, list[dict[str, Any]]], today: date, config: AlertConfig, *,
                  hours: dict[str, list[dict[str, Any]]] | None = None, now: datetime | None = None,
                  issues: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Windowed rules over per-day rows ({day: [row, ...]}), hourly rows ({day: [row, ...]}) and issues."""
    now = now or datetime.combine(today, time(23, 59), tzinfo=timezone.utc)
    data = WindowData(today, now, rows_by_day, hours or {}, issues or [])
    alerts = []
    for rule in config.window_rules:
        alerts.extend(WINDOW_EVALUATORS[rule.kind](rule, data))
    return alerts


# --------------------------------------------------------------------------- behaviour rules


def behaviour_alerts(profiles: list[dict[str, Any]], buckets: dict[str, list[dict[str, Any]]], now: datetime,
                     config: AlertConfig) -> list[dict[str, Any]]:
    """Abusive-behaviour profiles (pk behaviour#<day>) and coordinated-complaint hour buckets (pk complaint#<hour>)."""
    from .behaviour import coordinated, hour_buckets

    alerts = []
    for rule in config.behaviour_rules:
        if rule.kind == "abusive_behaviour":
            oldest = (now.date() - timedelta(days=rule.max_age_days)).isoformat()
            for p in sorted(profiles, key=lambda p: str(p.get("customer_id"))):
                score = float(p.get("score") or 0)
                if score < rule.threshold or str(p.get("window_end") or "") < oldest:
                    continue
                reasons = "; ".join(p.get("reasons") or []) or "high score"
                alerts.append({
                    "rule": rule.name, "kind": rule.kind, "severity": rule.severity, "subject_type": "customer",
                    "subject": str(p["customer_id"]), "observed": round(score, 4), "threshold": rule.threshold,
                    "window": f"{p.get('window_start', '?')}..{p.get('window_end', '?')}", "examples": list(p.get("examples") or [])[:3],
                    "cooldown_minutes": rule.cooldown_minutes, "reasons": list(p.get("reasons") or []),
                    "summary": f"Customer {p['customer_id']} abusive-behaviour score {score:.2f} (>= {rule.threshold}): {reasons}",
                })
        else:
            hours = hour_buckets(now, rule.window_minutes)
            rows = [row for hour in hours for row in buckets.get(hour, [])]
            for group in coordinated(rows, rule.threshold):
                accounts = len(group["accounts"])
                about = f" about {group['company']}" if group.get("company") else ""
                alerts.append({
                    "rule": rule.name, "kind": rule.kind, "severity": rule.severity, "subject_type": "complaint",
                    "subject": group["fingerprint"], "observed": accounts, "threshold": rule.threshold,
                    "window": f"{hours[-1]}:00Z..{hours[0]}:59Z", "examples": group["tickets"][:3],
                    "cooldown_minutes": rule.cooldown_minutes,
                    "summary": f"Near-identical complaint from {accounts} accounts{about} within {rule.window_minutes} min",
                })
    return alerts


# --------------------------------------------------------------------------- dedupe


def dedupe_key(alert: dict[str, Any], at: datetime) -> str:
    """Same rule + subject inside one cooldown bucket -> same key, so it is stored once."""
    bucket = int(at.timestamp() // (alert["cooldown_minutes"] * 60))
    raw = f"{alert['rule']}|{alert['subject_type']}|{alert['subject']}|{bucket}"
    return f"{alert['rule']}#{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


def cooldown_key(alert: dict[str, Any]) -> str:
    """One item per rule + subject holding when it was last raised (the sliding cooldown)."""
    raw = f"{alert['rule']}|{alert['subject_type']}|{alert['subject']}"
    return f"cooldown#{alert['rule']}#{hashlib.sha256(raw.encode()).hexdigest()[:16]}"
