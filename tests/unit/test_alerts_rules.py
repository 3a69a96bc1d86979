"""Unit tests for supportlens.domain.alerts: config validation, ticket and window rules, dedupe keys."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta, timezone

import pytest

from supportlens.domain.alerts import (
    DEFAULT_CONFIG,
    AlertConfig,
    AlertConfigError,
    dedupe_key,
    load_config,
    ticket_alerts,
    window_alerts,
)


@pytest.fixture(scope="module")
def config() -> AlertConfig:
    return load_config(DEFAULT_CONFIG)


def customer_ticket(**kw) -> dict:
    base = {"ticket_id": "t1", "role": "customer", "author_id": "cust-1", "company": "acme", "abuse_score": 0.0,
            "sentiment": "neutral"}
    base.update(kw)
    return base


def by_rule(alerts: list[dict]) -> dict[str, dict]:
    return {a["rule"]: a for a in alerts}


# --------------------------------------------------------------------------- config


def test_load_default_config(config):
    assert isinstance(config, AlertConfig)
    assert config.version == 1
    assert [r.kind for r in config.ticket_rules] == ["abusive", "escalation", "long_call", "failed_call"]
    assert config.window_rules[0].kind == "negative_share_spike"
    assert config.window_rules[0].cooldown_minutes == 360  # default filled in


def test_load_config_does_not_mutate_input():
    raw = copy.deepcopy(DEFAULT_CONFIG)
    load_config(raw)
    assert raw == DEFAULT_CONFIG


def test_window_rules_optional():
    cfg = load_config({"version": 1, "ticket_rules": []})
    assert cfg.window_rules == []


def _broken(path: tuple, value) -> dict:
    raw = copy.deepcopy(DEFAULT_CONFIG)
    target = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return raw


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        (("ticket_rules", 0, "kind"), "sentiment", "ticket_rules.0.kind"),
        (("ticket_rules", 1, "cooldown_minutes"), -5, "ticket_rules.1.cooldown_minutes"),
        (("ticket_rules", 2, "cooldown_minutes"), 0, "ticket_rules.2.cooldown_minutes"),
        (("ticket_rules", 0, "colour"), "red", "ticket_rules.0.colour"),
        (("ticket_rules", 3, "severity"), "panic", "ticket_rules.3.severity"),
        (("window_rules", 0, "share_above"), 2, "window_rules.0.share_above"),
        (("window_rules", 0, "kind"), "volume_drop", "window_rules.0.kind"),
        (("version",), 2, "version"),
        (("surprise",), True, "surprise"),
    ],
)
def test_invalid_config_names_bad_field(path, value, expected):
    with pytest.raises(AlertConfigError) as info:
        load_config(_broken(path, value))
    message = str(info.value)
    assert message.startswith("invalid alert rules:")
    assert f"{expected}:" in message
    assert isinstance(info.value, ValueError)


def test_invalid_config_missing_name_and_several_problems_listed():
    raw = {"version": 1, "ticket_rules": [{"kind": "abusive"}, {"name": "x", "kind": "nope", "cooldown_minutes": -1}]}
    with pytest.raises(AlertConfigError) as info:
        load_config(raw)
    message = str(info.value)
    assert "ticket_rules.0.name" in message
    assert "ticket_rules.1.kind" in message
    assert "ticket_rules.1.cooldown_minutes" in message


# --------------------------------------------------------------------------- ticket rules


def test_abusive_rule_fires_above_threshold(config):
    alerts = by_rule(ticket_alerts(customer_ticket(abuse_score=0.93), config))
    assert set(alerts) == {"abusive-message"}
    alert = alerts["abusive-message"]
    assert alert["subject_type"] == "customer" and alert["subject"] == "cust-1"
    assert alert["observed"] == pytest.approx(0.93)
    assert alert["threshold"] == 0.8
    assert alert["examples"] == ["t1"]
    assert alert["cooldown_minutes"] == 360
    assert "0.93" in alert["summary"] and "cust-1" in alert["summary"]


def test_abusive_rule_quiet_below_threshold(config):
    assert ticket_alerts(customer_ticket(abuse_score=0.79), config) == []


def test_escalation_rule_fires_about_company(config):
    alerts = by_rule(ticket_alerts(customer_ticket(escalation="legal_threat"), config))
    assert set(alerts) == {"escalation"}
    assert alerts["escalation"]["subject"] == "acme"
    assert alerts["escalation"]["subject_type"] == "company"
    assert alerts["escalation"]["severity"] == "critical"
    assert alerts["escalation"]["observed"] == "legal_threat"


def test_long_call_rule_fires_for_agent(config):
    alerts = by_rule(ticket_alerts(customer_ticket(call_duration_s=3600.0, agent_id="agent-7"), config))
    assert set(alerts) == {"long-call"}
    assert alerts["long-call"]["subject"] == "agent-7"
    assert alerts["long-call"]["observed"] == 3600.0
    assert "3600" in alerts["long-call"]["summary"]


def test_long_call_below_threshold_quiet(config):
    assert ticket_alerts(customer_ticket(call_duration_s=2999.0, agent_id="agent-7"), config) == []


def test_failed_call_rule_falls_back_to_company_as_agent(config):
    alerts = by_rule(ticket_alerts(customer_ticket(call_status="failed"), config))
    assert set(alerts) == {"failed-call"}
    assert alerts["failed-call"]["subject"] == "acme"


def test_all_rules_fire_together(config):
    t = customer_ticket(abuse_score=0.99, escalation="churn", call_duration_s=5000, call_status="failed", agent_id="a1")
    assert set(by_rule(ticket_alerts(t, config))) == {"abusive-message", "escalation", "long-call", "failed-call"}


def test_company_replies_never_alert(config):
    t = customer_ticket(role="company", abuse_score=0.99, escalation="legal_threat", call_duration_s=9999, call_status="failed")
    assert ticket_alerts(t, config) == []


def test_calm_ticket_no_alerts(config):
    assert ticket_alerts(customer_ticket(abuse_score=0.1, sentiment="positive", call_duration_s=120, call_status="success"), config) == []


def test_missing_subject_is_unknown(config):
    t = customer_ticket(abuse_score=0.95)
    del t["author_id"]
    assert ticket_alerts(t, config)[0]["subject"] == "unknown"


def test_long_call_rule_without_threshold_uses_default():
    cfg = load_config({"version": 1, "ticket_rules": [{"name": "lc", "kind": "long_call", "subject": "agent"}]})
    alerts = ticket_alerts(customer_ticket(call_duration_s=4000.0, agent_id="a1"), cfg)
    assert [a["rule"] for a in alerts] == ["lc"]
    assert alerts[0]["threshold"] == 3000
    assert "3000 s" in alerts[0]["summary"]
    assert ticket_alerts(customer_ticket(call_duration_s=2999.0, agent_id="a1"), cfg) == []


def test_abusive_rule_without_threshold_uses_default():
    cfg = load_config({"version": 1, "ticket_rules": [{"name": "ab", "kind": "abusive"}]})
    fired = ticket_alerts(customer_ticket(abuse_score=0.65), cfg)
    assert [a["rule"] for a in fired] == ["ab"]
    assert fired[0]["threshold"] == 0.6
    assert "None" not in fired[0]["summary"]
    assert ticket_alerts(customer_ticket(abuse_score=0.59), cfg) == []


# --------------------------------------------------------------------------- window rules


TODAY = date(2024, 3, 10)


def agg(company: str, volume: int, negative: int, channel: str = "twitter") -> dict:
    return {"pk": "day#x", "sk": f"company#{company}#channel#{channel}", "volume": volume, "negative": negative}


def history(today_rows: list[dict], baseline_rows_per_day: list[dict]) -> dict[str, list[dict]]:
    rows = {TODAY.isoformat(): today_rows}
    for d in range(1, 8):
        rows[(TODAY - timedelta(d)).isoformat()] = baseline_rows_per_day
    return rows


def test_window_alert_on_negative_share_spike(config):
    rows = history([agg("acme", 30, 18), agg("acme", 10, 6, channel="email")], [agg("acme", 40, 8)])
    alerts = window_alerts(rows, TODAY, config)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["rule"] == "negative-sentiment-spike"
    assert alert["subject_type"] == "company" and alert["subject"] == "acme"
    assert alert["observed"] == pytest.approx(0.6)
    assert alert["baseline"] == pytest.approx(0.2)
    assert alert["window"] == "2024-03-10..2024-03-10"
    assert "60%" in alert["summary"] and "20%" in alert["summary"] and "acme" in alert["summary"]


def test_window_alert_only_for_the_company_that_jumped(config):
    rows = history(
        [agg("acme", 40, 30), agg("beta", 40, 4)],
        [agg("acme", 40, 8), agg("beta", 40, 4)],
    )
    assert [a["subject"] for a in window_alerts(rows, TODAY, config)] == ["acme"]


def test_window_alert_without_baseline(config):
    alerts = window_alerts({TODAY.isoformat(): [agg("newco", 25, 20)]}, TODAY, config)
    assert len(alerts) == 1 and alerts[0]["baseline"] is None
    assert "no baseline" in alerts[0]["summary"]


def test_window_quiet_under_min_volume(config):
    rows = history([agg("acme", 19, 19)], [agg("acme", 40, 0)])
    assert window_alerts(rows, TODAY, config) == []


def test_window_quiet_when_baseline_as_bad(config):
    rows = history([agg("acme", 40, 28)], [agg("acme", 40, 28)])
    assert window_alerts(rows, TODAY, config) == []


def test_window_quiet_below_share_above(config):
    rows = history([agg("acme", 40, 16)], [agg("acme", 40, 2)])  # 40% < 50% even though 8x the baseline
    assert window_alerts(rows, TODAY, config) == []


def test_window_ignores_data_outside_window_and_baseline(config):
    # The bad day was 3 days ago (inside the baseline), not today; 20 days ago is outside both.
    rows = {(TODAY - timedelta(3)).isoformat(): [agg("acme", 40, 35)], TODAY.isoformat(): [agg("acme", 40, 8)]}
    assert window_alerts(rows, TODAY, config) == []
    old = {(TODAY - timedelta(20)).isoformat(): [agg("acme", 40, 35)]}
    assert window_alerts(old, TODAY, config) == []


def test_window_ignores_agent_rows(config):
    agent_row = {"pk": "day#x", "sk": "agent#ag-1#channel#voice", "volume": 100, "negative": 100}
    assert window_alerts(history([agent_row], []), TODAY, config) == []


def test_window_no_rules_no_alerts():
    cfg = load_config({"version": 1, "ticket_rules": []})
    assert window_alerts(history([agg("acme", 40, 40)], []), TODAY, cfg) == []


# --------------------------------------------------------------------------- dedupe


def test_dedupe_key_same_inside_cooldown_window(config):
    alert = ticket_alerts(customer_ticket(escalation="churn"), config)[0]  # 60 minute cooldown
    t0 = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
    assert dedupe_key(alert, t0) == dedupe_key(alert, t0 + timedelta(minutes=59, seconds=59))
    assert dedupe_key(alert, t0).startswith("escalation#")


def test_dedupe_key_differs_in_next_window(config):
    alert = ticket_alerts(customer_ticket(escalation="churn"), config)[0]
    t0 = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
    assert dedupe_key(alert, t0) != dedupe_key(alert, t0 + timedelta(minutes=60))
    assert dedupe_key(alert, t0 - timedelta(seconds=1)) != dedupe_key(alert, t0)


def test_dedupe_key_differs_by_subject_and_rule(config):
    t0 = datetime(2024, 3, 10, 12, 0, tzinfo=timezone.utc)
    a = ticket_alerts(customer_ticket(escalation="churn", company="acme"), config)[0]
    b = ticket_alerts(customer_ticket(escalation="churn", company="beta"), config)[0]
    assert dedupe_key(a, t0) != dedupe_key(b, t0)
    # A different ticket about the same company in the same window is the same alert.
    c = ticket_alerts(customer_ticket(ticket_id="t2", escalation="legal_threat", company="acme"), config)[0]
    assert dedupe_key(a, t0) == dedupe_key(c, t0)


def test_dedupe_key_uses_rule_cooldown(config):
    rows = history([agg("acme", 40, 30)], [agg("acme", 40, 8)])
    alert = window_alerts(rows, TODAY, config)[0]  # 360 minute cooldown
    t0 = datetime(2024, 3, 10, 0, 0, tzinfo=timezone.utc)
    assert dedupe_key(alert, t0) == dedupe_key(alert, t0 + timedelta(hours=5, minutes=59))
    assert dedupe_key(alert, t0) != dedupe_key(alert, t0 + timedelta(hours=6))
