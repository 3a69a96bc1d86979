"""Alert rules as a versioned YAML document: the shipped defaults, validation errors that name the
bad field, and the windowed rules evaluated over counters built by the real aggregator."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from supportlens.domain import alerts as A
from supportlens.domain import metrics
from supportlens.domain.enrichment import aggregate

NOW = datetime(2024, 3, 10, 12, 30, tzinfo=timezone.utc)


# --------------------------------------------------------------------------- the document


def test_defaults_ship_as_yaml_and_validate():
    text = A.DEFAULT_CONFIG_PATH.read_text()
    assert A.DEFAULT_CONFIG_PATH.name == "alerts.yaml" and A.DEFAULT_CONFIG_PATH.parent.name == "config"
    raw = yaml.safe_load(text)
    assert raw["version"] == 1 and raw == A.DEFAULT_CONFIG
    config = A.parse_config(text)
    assert {r.kind for r in config.ticket_rules} == {"abusive", "escalation", "long_call", "failed_call"}
    assert {r.kind for r in config.window_rules} == set(A.WINDOW_KINDS)
    long_call = next(r for r in config.ticket_rules if r.kind == "long_call")
    assert long_call.threshold == 3000
    assert all(r.cooldown_minutes >= 60 for r in [*config.ticket_rules, *config.window_rules])


def _with(rule_index: int, **changes) -> dict:
    raw = copy.deepcopy(A.DEFAULT_CONFIG)
    raw["window_rules"][rule_index].update(changes)
    return raw


def _index(kind: str, **match) -> int:
    return next(i for i, r in enumerate(A.DEFAULT_CONFIG["window_rules"])
                if r["kind"] == kind and all(r.get(k) == v for k, v in match.items()))


@pytest.mark.parametrize(
    ("kind", "change", "expected"),
    [
        ("negative_share_spike", {"share_above": 1.5}, "share_above: must be between 0 and 1"),
        ("negative_share_spike", {"share_above": 0}, "share_above: must be between 0 and 1"),
        ("abuse_rate_spike", {"rate_above": -0.1}, "rate_above: must be between 0 and 1"),
        ("response_sla", {"breach_share_above": 3}, "breach_share_above: must be between 0 and 1"),
        ("response_sla", {"sla_seconds": 1000}, "sla_seconds: Input should be 900, 3600, 14400 or 86400"),
        ("failed_calls", {"window_hours": 0}, "window_hours: Input should be greater than or equal to 1"),
        ("emerging_issue", {"min_size": 0}, "min_size: Input should be greater than or equal to 1"),
        ("emerging_issue", {"window_hours": 4}, "window_hours: Extra inputs are not permitted"),
        ("negative_share_spike", {"kind": "volume_drop"}, "kind: must be one of negative_share_spike, abuse_rate_spike"),
    ],
)
def test_errors_name_the_rule_index_and_field(kind, change, expected):
    i = _index(kind)
    with pytest.raises(A.AlertConfigError) as info:
        A.load_config(_with(i, **change))
    assert f"window_rules.{i}.{expected}" in str(info.value)


def test_customer_failed_calls_need_an_hour_window():
    i = _index("failed_calls", subject="customer")
    raw = _with(i)
    del raw["window_rules"][i]["window_hours"]
    with pytest.raises(A.AlertConfigError, match=rf"window_rules\.{i}: subject 'customer' needs window_hours"):
        A.load_config(raw)


def test_duplicate_rule_names_and_bad_documents():
    raw = copy.deepcopy(A.DEFAULT_CONFIG)
    raw["window_rules"][1]["name"] = raw["ticket_rules"][0]["name"]
    with pytest.raises(A.AlertConfigError, match="rule names must be unique \\(repeated: abusive-message\\)"):
        A.load_config(raw)
    with pytest.raises(A.AlertConfigError, match="not valid YAML at line 3"):
        A.parse_config("version: 1\nticket_rules: [\n")
    with pytest.raises(A.AlertConfigError, match=r"\(document\): must be a mapping"):
        A.parse_config("- just\n- a list\n")
    with pytest.raises(A.AlertConfigError, match="version: Input should be 1"):
        A.parse_config("version: 2\nticket_rules: []\n")


def test_override_text_replaces_the_defaults():
    config = A.parse_config("""
version: 1
ticket_rules: []
window_rules:
  - {name: sla-15m, kind: response_sla, subject: agent, sla_seconds: 900, window_hours: 4, min_responses: 2, min_breaches: 1}
""")
    (rule,) = config.window_rules
    assert isinstance(rule, A.ResponseSlaRule) and rule.window_hours == 4 and rule.breach_share_above == 0.25
    assert rule.cooldown_minutes == 360  # defaults filled in


# --------------------------------------------------------------------------- metrics


def test_median_and_sla_breaches_from_counters():
    times = [30, 200, 250, 1000, 5000, 7000, 90000]
    row: dict[str, float] = {}
    for t in times:
        row[metrics.hist_counter(t)] = row.get(metrics.hist_counter(t), 0) + 1
        row[metrics.rt_bucket(t)] = row.get(metrics.rt_bucket(t), 0) + 1
    row["rt_count"] = len(times)
    median = metrics.median_from_hist(row)
    low, high = metrics.hist_bucket_of(1000)
    assert low <= median <= high  # the true median (1000 s) is in this bucket
    assert metrics.sla_breaches(row, 900) == 4 and metrics.sla_breaches(row, 3600) == 3
    assert metrics.sla_breaches(row, 86400) == 1
    assert metrics.median_from_hist({}) is None


# --------------------------------------------------------------------------- windowed rules on real counters


def item(n: int, company: str, at: datetime, **kw) -> dict:
    base = {"ticket_id": f"{company}-{at:%d%H%M}-{n}", "role": "customer", "company": company, "channel": "email",
            "author_id": f"c-{company}-{n}", "sentiment": "neutral", "day": at.strftime("%Y-%m-%d"), "hour": at.hour}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def split(rows: dict) -> tuple[dict, dict]:
    """Aggregate rows -> ({day: day rows}, {day: hourly rows}) as the alerts use case reads them."""
    days: dict[str, list] = {}
    hours: dict[str, list] = {}
    for (pk, sk), counters in rows.items():
        row = {"pk": pk, "sk": sk, **{k: (sorted(v) if isinstance(v, set) else v) for k, v in counters.items()}}
        if pk.startswith("day#"):
            days.setdefault(pk[4:], []).append(row)
        elif pk.startswith("hours#"):
            hours.setdefault(pk[6:], []).append(row)
    return days, hours


def run(items: list[dict], config: A.AlertConfig, now: datetime = NOW, issues: list | None = None) -> list[dict]:
    days, hours = split(aggregate(items).rows)
    return A.window_alerts(days, now.date(), config, hours=hours, now=now, issues=issues)


def rules(*rules: dict) -> A.AlertConfig:
    return A.load_config({"version": 1, "ticket_rules": [], "window_rules": list(rules)})


SLA = {"name": "sla", "kind": "response_sla", "subject": "agent", "sla_seconds": 3600, "window_hours": 6,
       "min_responses": 4, "min_breaches": 2, "breach_share_above": 0.4}


def test_response_sla_per_agent_over_the_last_hours():
    recent = NOW - timedelta(hours=1)
    items = [item(i, "acme", recent, agent_id="ag-1", first_response_s=7200.0 if i < 3 else 60.0) for i in range(5)]
    items += [item(i, "acme", recent, agent_id="ag-2", first_response_s=60.0) for i in range(5, 10)]
    items += [item(i, "acme", NOW - timedelta(hours=8), agent_id="ag-2", first_response_s=9000.0) for i in range(10, 20)]
    (alert,) = run(items, rules(SLA))
    assert (alert["rule"], alert["subject_type"], alert["subject"]) == ("sla", "agent", "ag-1")
    assert alert["breaches"] == 3 and alert["responses"] == 5 and alert["observed"] == 0.6 and alert["threshold"] == 0.4
    assert alert["window"] == "2024-03-10T07:00Z..2024-03-10T12:59Z"
    assert set(alert["examples"]) <= {f"acme-{recent:%d%H%M}-{i}" for i in range(3)} and alert["examples"]
    assert "60 min SLA" in alert["summary"]


def test_response_sla_quiet_when_share_or_count_below():
    recent = NOW - timedelta(hours=1)
    few = [item(i, "acme", recent, agent_id="ag-1", first_response_s=7200.0) for i in range(3)]  # 3 < min_responses
    assert run(few, rules(SLA)) == []
    mostly_fast = [item(i, "acme", recent, agent_id="ag-1", first_response_s=7200.0 if i < 2 else 60.0) for i in range(10)]
    assert run(mostly_fast, rules(SLA)) == []  # 20 % < 40 %


def test_failed_calls_window_edges_across_midnight():
    rule = {"name": "fc", "kind": "failed_calls", "subject": "customer", "window_hours": 3, "min_count": 2}
    now = datetime(2024, 3, 10, 1, 10, tzinfo=timezone.utc)
    inside = [item(i, "tel", datetime(2024, 3, 9, 23, 5, tzinfo=timezone.utc), author_id="cx", call_status="failed") for i in range(2)]
    outside = [item(i, "tel", datetime(2024, 3, 9, 22, 55, tzinfo=timezone.utc), author_id="cy", call_status="failed") for i in range(5)]
    (alert,) = run(inside + outside, rules(rule), now=now)
    assert alert["subject"] == "cx" and alert["observed"] == 2 and alert["window"] == "2024-03-09T23:00Z..2024-03-10T01:59Z"


def test_abuse_rate_spike_against_own_baseline():
    rule = {"name": "abuse", "kind": "abuse_rate_spike", "window_hours": 24, "baseline_days": 3, "min_volume": 10,
            "rate_above": 0.1, "ratio_to_baseline": 2}
    now_items = [item(i, "acme", NOW - timedelta(hours=2), abusive=i < 3 or None) for i in range(20)]  # 15 %
    same_before = [item(i, "acme", NOW - timedelta(days=3), abusive=i < 23 or None) for i in range(20, 40)]  # 15 % before
    assert run(now_items + same_before, rules(rule)) == []
    calm_before = [item(i, "acme", NOW - timedelta(days=3), abusive=i < 21 or None) for i in range(20, 40)]  # 5 % before
    (alert,) = run(now_items + calm_before, rules(rule))
    assert alert["subject"] == "acme" and alert["observed"] == 0.15 and alert["baseline"] == 0.05
    assert "Abusive share 15%" in alert["summary"] and len(alert["examples"]) == 3


def test_negative_share_hour_window_uses_days_before_as_baseline():
    rule = {"name": "neg", "kind": "negative_share_spike", "window_hours": 6, "baseline_days": 2, "min_volume": 10,
            "share_above": 0.5, "ratio_to_baseline": 1.5}
    bad_now = [item(i, "acme", NOW - timedelta(hours=1), sentiment="negative" if i < 8 else "neutral") for i in range(10)]
    early_today = [item(i, "acme", NOW - timedelta(hours=9)) for i in range(10, 40)]  # outside the 6 h window
    before = [item(i, "acme", NOW - timedelta(days=1), sentiment="negative" if i < 42 else "neutral") for i in range(40, 60)]
    (alert,) = run(bad_now + early_today + before, rules(rule))
    assert alert["observed"] == 0.8 and alert["baseline"] == pytest.approx(0.1)


def test_emerging_issue_only_from_the_latest_clustering():
    rule = {"name": "emerging", "kind": "emerging_issue", "min_size": 5}
    issues = [
        {"issue_id": "i1", "label": "refund delay", "size": 12, "emerging": True, "emerging_reason": "4.0/day vs 0.5/day",
         "growth": 7.0, "model_version": "20240310T020000Z", "examples": [{"ticket_id": "t1", "text": "x"}]},
        {"issue_id": "i2", "label": "login", "size": 40, "emerging": False, "model_version": "20240310T020000Z"},
        {"issue_id": "i3", "label": "tiny", "size": 3, "emerging": True, "model_version": "20240310T020000Z"},
        {"issue_id": "i0", "label": "old", "size": 50, "emerging": True, "model_version": "20240309T020000Z"},
    ]
    (alert,) = run([], rules(rule), issues=issues)
    # observed/threshold are what the rule compared (size >= min_size); it read "observed 2.889 vs 10" before
    assert (alert["subject_type"], alert["subject"], alert["observed"], alert["threshold"], alert["examples"]) == (
        "issue", "i1", 12, 5, ["t1"])
    assert alert["growth"] == 7.0 and "refund delay" in alert["summary"] and "4.0/day" in alert["summary"]
    (new,) = run([], rules(rule), issues=[{**issues[0], "growth": 99.0}])
    assert new["growth"] is None  # no baseline: no growth number to show


def test_defaults_are_quiet_on_ordinary_traffic():
    items = [item(i, "acme", NOW - timedelta(hours=i % 20), sentiment=("negative", "neutral", "positive")[i % 3],
                  first_response_s=float(300 + i), agent_id=f"ag-{i % 4}") for i in range(200)]
    items += [item(i, "acme", NOW - timedelta(days=d), sentiment=("negative", "neutral", "positive")[i % 3])
              for d in range(1, 8) for i in range(1000 + 40 * d, 1040 + 40 * d)]
    assert run(items, A.load_config(A.DEFAULT_CONFIG)) == []


def test_cooldown_key_is_per_rule_and_subject():
    a = {"rule": "r", "subject_type": "company", "subject": "acme"}
    assert A.cooldown_key(a) == A.cooldown_key(dict(a)) != A.cooldown_key({**a, "subject": "beta"})
    assert A.cooldown_key(a).startswith("cooldown#r#")
    assert A.span_days(A.load_config(A.DEFAULT_CONFIG).window_rules[0]) == 8
