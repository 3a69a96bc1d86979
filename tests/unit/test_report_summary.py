"""The report summary's rules: time bins, rankings, FTDS, most-active merging, empty sections with
reasons, issue growth against the issue's own baseline, dimension counters and alert data time."""

from __future__ import annotations

from datetime import date

import pytest

from supportlens.domain import behaviour
from supportlens.domain.enrichment import aggregate
from supportlens.domain.report import (ReportData, first_time_success, issue_rows, period_days, ranked, sparkline, summarise,
                                       summary, time_bins)

SECTIONS = ("volume_daily", "sentiment", "heatmap", "channels", "companies", "by_region", "by_tier", "by_industry",
            "ftds_trend", "escalation_trend", "abuse_trend", "agents", "issues", "not_issues", "emerging_issues",
            "alerts_by_rule_channel", "alerts", "most_active_customers", "abusive_customers")


def test_time_bins_are_days_up_to_three_weeks_then_weeks_ending_with_the_period():
    days = period_days(date(2024, 3, 31), 21)
    assert [b[1] for b in time_bins(days)] == [[d] for d in days]
    days = period_days(date(2024, 3, 31), 30)
    bins = time_bins(days)
    assert [len(m) for _, m in bins] == [2, 7, 7, 7, 7]
    assert bins[-1][1][-1] == "2024-03-31" and bins[0][0] == days[0]
    assert sum((m for _, m in bins), []) == days


def test_ranked_never_lists_a_row_as_both_fastest_and_slowest():
    rows = [{"company": f"c{i}", "avg_response_min": float(i), "responses": 5} for i in range(3)]
    fast, slow = ranked(rows)
    assert [r["company"] for r in fast] == ["c0", "c1"] and [r["company"] for r in slow] == ["c2"]
    fast, slow = ranked(rows[:1])
    assert [r["company"] for r in fast] == ["c0"] and slow == []
    many = [{"company": f"c{i:02d}", "avg_response_min": float(i), "responses": 5} for i in range(30)]
    fast, slow = ranked(many)
    assert len(fast) == len(slow) == 10 and slow[0]["company"] == "c29" and fast[0]["company"] == "c00"
    few = [{"company": "x", "avg_response_min": 1.0, "responses": 2}]  # too few answers to rank
    assert ranked(few) == ([], [])
    alike = [{"agent": f"a{i}", "avg_response_min": 60.0, "responses": 5} for i in range(4)]  # every answer took 60 min
    fast, slow = ranked(alike)
    assert len(fast) == 4 and slow == []  # no "slowest" agents with the fastest agents' time


def test_agents_without_calls_show_no_call_columns_and_failure_rate_is_of_calls():
    from supportlens.domain.report import render

    data = _data(7)
    data.agents = [{"agent": "ag-1", "volume": 40, "failed_calls": 0, "failure_rate": None, "calls": 0, "long_calls": 0,
                    "avg_call_min": None, "responses": 0, "avg_response_min": None, "median_response_min": None}]
    _, html_body, text_body, _ = render(data, report=summary(data))
    assert "Agent | Handled" in text_body and "Failure rate" not in text_body  # a helpdesk export: no calls
    data.agents = [{**data.agents[0], "calls": 10, "failed_calls": 2, "failure_rate": 0.2},
                   {**data.agents[0], "agent": "ag-2", "volume": 5}]
    _, html_body, text_body, _ = render(data, report=summary(data))
    assert "ag-1 | 40 | 2 | 20% | 10" in text_body and "ag-2 | 5 | n/a | n/a | 0" in text_body


@pytest.mark.parametrize("status, ok", [("delivered", True), ("Delivered on time", True), ("failed_first_attempt", False),
                                        ("not_delivered", False), ("delivered_late", False), ("returned", False),
                                        ("success", True), ("lost", False)])
def test_first_time_delivery_success(status, ok):
    assert first_time_success(status) is ok


def test_most_active_is_exact_unless_a_chunk_left_a_customer_out():
    deltas_a = {("alice", "2024-03-01"): {"tickets": 3}, ("bob", "2024-03-01"): {"tickets": 1}}
    deltas_b = {("bob", "2024-03-01"): {"tickets": 4}, ("carol", "2024-03-01"): {"tickets": 1},
                ("dave", "2024-03-01"): {"tickets": 1}}
    rows = [behaviour.activity_rows(deltas_a)["2024-03-01"], behaviour.activity_rows(deltas_b, top=2)["2024-03-01"]]
    assert rows[1] == {"top": {"bob": 4, "carol": 1}, "floor": 1, "customers": 3, "messages": 6}
    merged = behaviour.most_active(rows)
    assert merged[0] == {"customer": "bob", "messages": 5, "exact": True}
    # alice is missing from the capped chunk, which may have held one of hers: a lower bound
    assert merged[1] == {"customer": "alice", "messages": 3, "exact": False}
    assert behaviour.most_active([behaviour.activity_rows(deltas_a)["2024-03-01"]])[0] == {"customer": "alice", "messages": 3, "exact": True}


def test_every_section_is_present_and_an_empty_one_says_why():
    empty = summary(summarise({}, "daily", date(2024, 3, 1), date(2024, 3, 1), "No tickets have been stored yet."))
    for key in SECTIONS:
        assert empty[key]["rows"] == [] and empty[key]["reason"], key
    assert empty["issues"]["reason"].startswith("not computed yet")
    assert empty["response_times"]["reason"]
    assert empty["kpis"]["customer_messages"] == 0 and empty["kpis"]["negative_share"] is None
    assert set(empty["kpis"]) >= {"customer_messages", "negative_share", "abusive", "escalations",
                                  "first_response_avg_s", "first_response_median_s"}
    assert empty["period"] == {"label": "daily", "start": "2024-03-01", "end": "2024-03-01", "days": 1,
                               "clock": empty["period"]["clock"], "bins": "day", "notice": "No tickets have been stored yet."}


def _data(days: int = 14) -> ReportData:
    end = date(2024, 3, 14)
    return summarise({}, f"{days}-day", date.fromordinal(end.toordinal() - days + 1), end, None)


def test_issue_growth_is_against_its_own_baseline_and_needs_enough_of_it():
    data = _data(7)  # 2024-03-08 .. 2024-03-14; the baseline is 2024-03-01 .. 2024-03-07
    data.issues = [
        {"issue_id": "a", "label": "refund", "daily_counts": {"2024-03-02": 10, "2024-03-10": 25}},
        {"issue_id": "b", "label": "login", "daily_counts": {"2024-03-03": 1, "2024-03-12": 40}},
        {"issue_id": "c", "label": "new", "daily_counts": {"2024-03-13": 5}},
        {"issue_id": "d", "label": "old", "daily_counts": {"2024-02-01": 50, "2024-03-09": 2}},
        {"issue_id": "e", "label": "outside", "daily_counts": {"2024-02-01": 99}},
    ]
    rows = {r["issue_id"]: r for r in issue_rows(data)}
    assert set(rows) == {"a", "b", "c", "d"}  # an issue with nothing in the period is not listed
    assert rows["a"]["in_period"] == 25 and rows["a"]["growth"] == 1.5
    assert rows["b"]["growth"] is None and "too few to compare" in rows["b"]["growth_text"]
    assert rows["c"]["growth_text"] == "first seen in this period"
    assert rows["d"]["growth_text"] == "none in the 7 days before, 50 earlier"  # ("seen earlier" read as a contradiction)
    assert rows["a"]["trend"] == [0, 0, 25, 0, 0, 0, 0]
    assert [r["issue_id"] for r in issue_rows(data)] == ["b", "a", "c", "d"]


def test_sparkline():
    assert sparkline([0, 1, 4, 8]) == "·▂▅█" and sparkline([0, 0]) == ""


def test_dimension_counters_per_region_tier_industry():
    items = [{"day": "2024-03-01", "hour": 9, "sentiment": "negative", "company": "acme", "channel": "email",
              "region": " EMEA ", "tier": "Gold", "escalation": "churn"},
             {"day": "2024-03-01", "hour": 9, "sentiment": "neutral", "company": "acme", "channel": "email",
              "region": "emea", "industry": "retail#x", "abusive": True}]
    rows = aggregate(items).rows
    assert rows[("day#2024-03-01", "dim#region#EMEA")] == {"volume": 1, "negative": 1, "escalations": 1}  # as written
    assert rows[("day#2024-03-01", "dim#region#emea")] == {"volume": 1, "neutral": 1, "abusive": 1}
    assert rows[("day#2024-03-01", "dim#tier#Gold")]["volume"] == 1
    assert ("day#2024-03-01", "dim#industry#retail x") in rows  # '#' never splits a key
    data = summarise({"2024-03-01": [{"pk": "day#2024-03-01", "sk": sk, **c} for (_, sk), c in rows.items()]},
                     "daily", date(2024, 3, 1), date(2024, 3, 1), None)
    assert data.totals["volume"] == 2  # dimension rows repeat the tickets: never counted twice
    s = summary(data)
    # grouped case-blind; a tie shows the spelling that sorts first (upper case)
    assert s["by_region"]["rows"] == [{"value": "EMEA", "messages": 2, "negative_share": 0.5, "escalations": 1, "abusive": 1}]
    assert s["by_tier"]["rows"][0]["value"] == "Gold" and s["by_industry"]["rows"][0]["value"] == "retail x"


def test_dimension_values_show_as_most_messages_spell_them():
    base = {"day": "2024-03-01", "hour": 9, "sentiment": "neutral", "company": "acme", "channel": "email"}
    regions = ["NA"] * 3 + ["na"] + ["Na"] + ["emea"] * 2 + ["EMEA"]
    tiers = ["gold", "gold", "Gold", "GOLD", "silver", "Silver", "Silver", "platinum"]
    rows = aggregate([{**base, "region": r, "tier": t} for r, t in zip(regions, tiers)]).rows
    data = summarise({"2024-03-01": [{"pk": "day#2024-03-01", "sk": sk, **c} for (_, sk), c in rows.items()]},
                     "daily", date(2024, 3, 1), date(2024, 3, 1), None)
    s = summary(data)
    assert [(r["value"], r["messages"]) for r in s["by_region"]["rows"]] == [("NA", 5), ("emea", 3)]
    assert [(r["value"], r["messages"]) for r in s["by_tier"]["rows"]] == [("gold", 4), ("Silver", 3), ("platinum", 1)]
    # rows stored by an older version (lower-cased keys) join the group of the same value
    old = [{"pk": "day#2024-03-02", "sk": "dim#region#na", "volume": 4}, {"pk": "day#2024-03-02", "sk": "dim#region#NA", "volume": 1}]
    first = [{"pk": "day#2024-03-01", "sk": sk, **c} for (_, sk), c in rows.items()]
    both = summarise({"2024-03-01": first, "2024-03-02": old}, "2d", date(2024, 3, 1), date(2024, 3, 2), None)
    # NA 3+1, na 1+4, Na 1: one group of 10, spelt as the 5 "na" messages were
    assert {v: int(c["volume"]) for v, c in both.dimensions["region"].items()} == {"na": 10, "emea": 3}



def test_ticket_alerts_carry_data_time_company_channel_and_a_masked_excerpt():
    from supportlens.domain.alerts import load_config, read_default_config, ticket_alerts

    ticket = {"ticket_id": "t1", "role": "customer", "company": "acme", "channel": "email", "created_at": "2017-10-31T22:00:00Z",
              "author_id": "c1", "escalation": "legal_threat", "abuse_score": 0.0, "text": "My lawyer  will call [EMAIL] " + "x" * 300}
    alerts = ticket_alerts(ticket, load_config(read_default_config()))
    assert alerts and all(a["data_time"] == "2017-10-31T22:00:00Z" and a["company"] == "acme" and a["channel"] == "email"
                          for a in alerts)
    assert alerts[0]["excerpt"].startswith("My lawyer will call [EMAIL] x") and len(alerts[0]["excerpt"]) == 160


def test_buckets_are_counted_apart_from_issues():
    data = _data(7)
    data.issues_computed = True
    data.issues = [
        {"issue_id": "a", "label": "refund not received", "kind": "issue", "daily_counts": {"2024-03-10": 12}},
        {"issue_id": "bucket-gratitude", "label": "gratitude", "kind": "bucket", "bucket": "gratitude",
         "daily_counts": {"2024-03-10": 30}, "emerging": True},
        {"issue_id": "bucket-language-es", "label": "Spanish", "kind": "bucket", "bucket": "language-es",
         "daily_counts": {"2024-03-11": 4}},
    ]
    s = summary(data)
    assert [r["issue_id"] for r in s["issues"]["rows"]] == ["a"] and s["emerging_issues"]["rows"] == []
    assert [(r["bucket"], r["in_period"]) for r in s["not_issues"]["rows"]] == [("gratitude", 30), ("language-es", 4)]
    from supportlens.domain.report import render

    _, html_body, text_body, _ = render(data, report=s)
    assert "Not issues (counted apart): gratitude 30, Spanish 4." in text_body and "gratitude 30" in html_body


def test_an_issues_companies_are_shares_of_its_window_not_counts_beside_the_period():
    """"6 tickets in the period" beside "United (7)" read as a contradiction: the companies count the
    clustering window. They are shown as shares of the issue's tickets."""
    data = _data(7)
    data.issues_computed = True
    data.issues = [{"issue_id": "a", "label": "bag, baggage", "kind": "issue", "size": 20, "daily_counts": {"2024-03-10": 6},
                    "top_companies": [{"company": "United", "count": 7}, {"company": "Delta", "count": 5}]}]
    from supportlens.domain.report import render

    _, html_body, text_body, _ = render(data, report=summary(data))
    assert "United 35%, Delta 25% of the issue's 20 tickets" in text_body and "United (7)" not in text_body
    assert "United 35%" in html_body


def test_the_emerging_issue_rule_never_alerts_on_a_bucket():
    from supportlens.domain.alerts import WindowData, emerging_issue, load_config, read_default_config

    rule = next(r for r in load_config(read_default_config()).window_rules if r.kind == "emerging_issue")
    issues = [{"issue_id": "bucket-gratitude", "label": "gratitude", "kind": "bucket", "size": 500, "emerging": True,
               "model_version": "v1"},
              {"issue_id": "a", "label": "refund", "kind": "issue", "size": 500, "emerging": True, "model_version": "v1"}]
    alerts = emerging_issue(rule, WindowData(today=date(2024, 3, 14), now=None, days={}, issues=issues))
    assert [a["subject"] for a in alerts] == ["a"]
