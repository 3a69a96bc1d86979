"""Unit tests for supportlens.domain.behaviour (counters, score and reasons, fingerprints,
coordinated-complaint detection) and the behaviour alert rules in domain.alerts."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from supportlens.domain import behaviour
from supportlens.domain.alerts import DEFAULT_CONFIG, AlertConfigError, behaviour_alerts, load_config
from supportlens.domain.enrichment import aggregate


def item(**kw) -> dict:
    base = {"ticket_id": "t1", "author_id": "c1", "role": "customer", "day": "2024-03-04", "hour": 10,
            "company": "acme", "channel": "email", "sentiment": "neutral", "clean_text": "hello there",
            "created_at": "2024-03-04T10:15:00Z"}
    base.update(kw)
    return base


# --------------------------------------------------------------------------- counters


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, {"tickets": 1}),
        ({"escalation": "churn"}, {"tickets": 1, "escalations": 1}),
        ({"abusive": True}, {"tickets": 1, "abusive": 1}),
        ({"concession_amount": 25.0}, {"tickets": 1, "concession_claims": 1}),
        ({"concession_amount": 0.0}, {"tickets": 1}),
        ({"clean_text": "I want my money back now"}, {"tickets": 1, "concession_claims": 1}),
        ({"clean_text": "where is my refund?", "escalation": "legal_threat"},
         {"tickets": 1, "escalations": 1, "concession_claims": 1, "escalated_claims": 1}),
        ({"call_status": "failed"}, {"tickets": 1, "failed_calls": 1}),
        ({"role": "company", "escalation": "churn"}, {}),
        ({"author_id": None, "abusive": True}, {}),
    ],
)
def test_customer_counters(fields, expected):
    assert behaviour.customer_counters(item(**fields)) == expected


@pytest.mark.parametrize("text", ["please compensate me for the delay", "I demand a full refund",
                                  "need a reimbursement for the hotel", "filing a chargeback"])
def test_claim_language(text):
    assert behaviour.is_concession_claim({"clean_text": text})


@pytest.mark.parametrize("text", ["my parcel is late", "the refrigerator is broken", "credit card declined"])
def test_no_claim_language(text):
    assert not behaviour.is_concession_claim({"clean_text": text})


def test_customer_deltas_sum_per_customer_and_day():
    items = [item(escalation="churn", clean_text="refund now"), item(ticket_id="t2"), item(ticket_id="t3", day="2024-03-05"),
             item(ticket_id="t4", author_id="c2", abusive=True), item(ticket_id="t5", role="company", author_id="acme")]
    rows = behaviour.customer_deltas(items)
    assert rows == {
        ("c1", "2024-03-04"): {"tickets": 2, "escalations": 1, "concession_claims": 1, "escalated_claims": 1},
        ("c1", "2024-03-05"): {"tickets": 1},
        ("c2", "2024-03-04"): {"tickets": 1, "abusive": 1},
    }
    assert not any(pk.startswith("customer#") for pk, _ in aggregate(items).rows)  # not in the chunk transaction


# --------------------------------------------------------------------------- score


def test_quiet_customer_scores_zero_without_reasons():
    assert behaviour.behaviour_score({"tickets": 12, "escalations": 1, "concession_claims": 1}) == (0.0, [])


def test_escalations_with_claims_give_a_high_score_and_readable_reasons():
    score, reasons = behaviour.behaviour_score(
        {"tickets": 9, "escalations": 7, "escalated_claims": 4, "concession_claims": 4})
    assert 0.7 <= score < 1
    assert reasons[0] == "7 escalations in 30 days, 4 with concession claims"
    assert "4 refund/concession claims in 30 days" in reasons
    assert reasons[-1] == "9 messages in 30 days in total"


def test_abuse_counts_from_the_first_message_and_leads_the_reasons():
    one, _ = behaviour.behaviour_score({"tickets": 1, "abusive": 1})
    three, reasons = behaviour.behaviour_score({"tickets": 5, "abusive": 3, "escalations": 3})
    assert 0.3 < one < 0.5 < three
    assert reasons[0] == "3 abusive messages in 30 days"
    assert "3 escalations in 30 days" in reasons


def test_score_is_monotonic_and_bounded():
    previous = -1.0
    for n in range(0, 40, 3):
        score, _ = behaviour.behaviour_score({"tickets": n, "escalations": n, "concession_claims": n, "abusive": n // 3,
                                              "escalated_claims": n // 2, "failed_calls": n})
        assert 0 <= score <= 1 and score >= previous
        previous = score


def test_window_counts_only_sum_days_inside_the_window():
    rows = [{"sk": "2024-01-01", "tickets": 5, "escalations": 5},  # 64 days before the end: outside
            {"sk": "2024-02-05", "tickets": 1, "escalations": 1},  # first day of the window
            {"sk": "2024-03-05", "tickets": 2, "abusive": 1},
            {"sk": "profile", "score": 0.9}]
    counts = behaviour.window_counts(rows, date(2024, 3, 5))
    assert counts["tickets"] == 3 and counts["escalations"] == 1 and counts["abusive"] == 1


def test_profile_window_ends_at_the_latest_day():
    rows = [{"sk": f"2024-03-{d:02d}", "tickets": 1, "escalations": 1, "concession_claims": 1, "escalated_claims": 1}
            for d in range(1, 8)] + [{"sk": "profile", "score": 0.1}]
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    p = behaviour.profile("c9", rows, now)
    assert (p["pk"], p["sk"], p["window_end"], p["window_start"]) == ("customer#c9", "profile", "2024-03-07", "2024-02-07")
    assert p["counts"]["escalations"] == 7 and p["score"] >= 0.7
    assert p["reasons"][0] == "7 escalations in 30 days, 7 with concession claims"
    assert behaviour.profile("c9", [{"sk": "profile"}], now) is None


# --------------------------------------------------------------------------- fingerprints

BASE = "@AcmeCare I want a full refund for the outage on 12/03, this is unacceptable! https://t.co/x1"
VARIANTS = [
    "I want a full refund for the outage on 14/03. This is UNACCEPTABLE!!!",
    "i want a FULL refund for the outage on 3/12 this is unacceptable [EMAIL]",
    "This is unacceptable: I want a full refund for the outage!!! 😡",
    "I want a full refund for the outage on 12/03, this is unacceptaaaable! #acme",
]
DIFFERENT = [
    "I want a full refund for my broken phone, this is unacceptable",
    "My parcel never arrived and nobody answers the phone",
    "The outage on 12/03 lasted all day, please give an update",
]


def test_near_identical_variants_share_a_fingerprint():
    base = behaviour.fingerprint(BASE)
    assert base is not None
    for text in VARIANTS[:3]:
        assert behaviour.fingerprint(text) == base, text


def test_hashtag_is_content_but_letter_runs_are_not():
    assert behaviour.fingerprint(VARIANTS[3]) != behaviour.fingerprint(BASE)  # "#acme" adds a word
    assert behaviour.fingerprint(VARIANTS[3].replace(" #acme", "")) == behaviour.fingerprint(BASE)


def test_different_complaints_do_not_match():
    prints = {behaviour.fingerprint(t) for t in [BASE, *DIFFERENT]}
    assert None not in prints and len(prints) == 1 + len(DIFFERENT)


@pytest.mark.parametrize("text", ["thanks!", "help me please", "[EMAIL] [PHONE] 12345", "no no no no no"])
def test_short_texts_have_no_fingerprint(text):
    assert behaviour.fingerprint(text) is None


def test_hour_buckets_cover_the_window():
    now = datetime(2024, 6, 1, 10, 20, tzinfo=timezone.utc)
    assert behaviour.hour_buckets(now, 60) == ["2024-06-01T10", "2024-06-01T09"]
    assert behaviour.hour_buckets(now, 20) == ["2024-06-01T10"]
    assert behaviour.hour_buckets(now, 180) == ["2024-06-01T10", "2024-06-01T09", "2024-06-01T08", "2024-06-01T07"]
    assert behaviour.hour_bucket("2024-06-01T23:59:59Z") == "2024-06-01T23"


def test_complaint_groups_collect_distinct_accounts_per_hour():
    items = [item(ticket_id=f"t{i}", author_id=f"c{i % 3}", sentiment="negative", clean_text=VARIANTS[i % 3]) for i in range(6)]
    items.append(item(ticket_id="t9", author_id="c9", sentiment="positive", clean_text=BASE.replace("refund", "bonus")))
    items.append(item(ticket_id="t10", author_id="c10", sentiment="negative", clean_text=BASE, created_at="2024-03-04T11:01:00Z"))
    groups = behaviour.complaint_groups(items)
    fp = behaviour.fingerprint(BASE)
    assert groups[("2024-03-04T10", fp)]["accounts"] == {"c0", "c1", "c2"}
    assert groups[("2024-03-04T10", fp)]["tickets"] == {f"t{i}" for i in range(6)}
    assert groups[("2024-03-04T11", fp)]["accounts"] == {"c10"}
    assert len(groups) == 2  # the positive, non-claim message is not a complaint


def test_coordinated_merges_hours_and_counts_distinct_accounts():
    rows = [{"sk": "fpA", "accounts": ["a", "b", "c"], "tickets": ["1", "2", "3"], "company": "acme"},
            {"sk": "fpA", "accounts": ["c", "d", "e"], "tickets": ["4", "5"]},
            {"sk": "fpB", "accounts": ["a", "a2", "a3", "a4"], "tickets": ["9"]}]
    found = behaviour.coordinated(rows, 5)
    assert [f["fingerprint"] for f in found] == ["fpA"]
    assert found[0]["accounts"] == ["a", "b", "c", "d", "e"] and found[0]["company"] == "acme"
    assert behaviour.coordinated(rows, 6) == []


# --------------------------------------------------------------------------- alert rules


def test_behaviour_alerts_from_profiles_and_buckets():
    config = load_config(DEFAULT_CONFIG)
    now = datetime(2024, 6, 1, 10, 20, tzinfo=timezone.utc)
    profiles = [
        {"customer_id": "c1", "score": 0.83, "reasons": ["7 escalations in 30 days, 4 with concession claims"],
         "window_start": "2024-05-03", "window_end": "2024-06-01"},
        {"customer_id": "c2", "score": 0.2, "reasons": [], "window_end": "2024-06-01"},
        {"customer_id": "c3", "score": 0.95, "reasons": ["x"], "window_end": "2017-10-01"},  # old data replayed
    ]
    buckets = {"2024-06-01T09": [{"sk": "fp1", "accounts": ["a", "b", "c"], "tickets": ["t1"]}],
               "2024-06-01T10": [{"sk": "fp1", "accounts": ["d", "e", "f"], "tickets": ["t2"], "company": "acme"}],
               "2024-06-01T08": [{"sk": "fp2", "accounts": list("abcdefg"), "tickets": ["t3"]}]}  # outside the window
    alerts = behaviour_alerts(profiles, buckets, now, config)
    by_rule = {a["rule"]: a for a in alerts}
    assert len(alerts) == 2
    abusive = by_rule["abusive-customer"]
    assert abusive["subject"] == "c1" and abusive["observed"] == 0.83
    assert "7 escalations in 30 days, 4 with concession claims" in abusive["summary"]
    coord = by_rule["coordinated-complaint"]
    assert coord["subject"] == "fp1" and coord["observed"] == 6 and coord["severity"] == "critical"
    assert "6 accounts" in coord["summary"] and "acme" in coord["summary"]


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"name": "x", "kind": "abusive_behaviour", "threshold": 5}, "score in (0, 1]"),
        ({"name": "x", "kind": "coordinated_complaint", "threshold": 1}, "distinct accounts"),
        ({"name": "x", "kind": "coordinated_complaint", "threshold": 5, "window_minutes": 0}, "window_minutes"),
    ],
)
def test_behaviour_rule_validation(rule, message):
    with pytest.raises(AlertConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        load_config({**DEFAULT_CONFIG, "behaviour_rules": [rule]})


def test_counter_rows_of_one_day_from_several_chunks_add_up():
    day_a, day_b = behaviour.chunk_row_sk("2024-03-05", "file#chunk0"), behaviour.chunk_row_sk("2024-03-05", "event#t9")
    assert day_a != day_b and behaviour.row_day(day_a) == "2024-03-05"
    assert behaviour.chunk_row_sk("2024-03-05", "file#chunk0") == day_a  # a redelivered chunk rewrites its own row
    rows = [{"sk": day_a, "tickets": 2, "abusive": 1}, {"sk": day_b, "tickets": 1, "abusive": 1}, {"sk": "profile", "tickets": 99}]
    counts = behaviour.window_counts(rows, date(2024, 3, 5))
    assert counts["tickets"] == 3 and counts["abusive"] == 2
    assert behaviour.row_day("profile") is None and behaviour.row_day("2024-13-01#x") is None



def test_packed_complaint_items_unpack_to_the_rows_coordinated_reads():
    from supportlens.logic.behaviour import MAX_PACKED_BYTES, complaint_rows, unpack_complaints

    groups = {("2024-06-01T09", f"{i:020x}"): {"accounts": {f"a{i}", "b"}, "tickets": {f"t{i}"}, "company": "acme" if i % 2 else None}
              for i in range(40)}
    groups[("2024-06-01T10", "f" * 20)] = {"accounts": {"z"}, "tickets": {"tz"}, "company": None}
    items = complaint_rows(groups, "file#chunk3", expires=123)
    assert len(items) == 2  # one per hour: 41 fingerprints, 2 items (each at least 1 WRU)
    assert {i["pk"] for i in items} == {"complaint#2024-06-01T09", "complaint#2024-06-01T10"}
    rows = unpack_complaints(items)
    assert len(rows) == 41
    found = behaviour.coordinated(rows, min_accounts=2)
    assert len(found) == 40 and all(len(f["accounts"]) == 2 and f["tickets"] for f in found)
    # The same chunk writes the same keys again (redelivery), another chunk other keys.
    assert [i["sk"] for i in complaint_rows(groups, "file#chunk3", 1)] == [i["sk"] for i in items]
    assert not {i["sk"] for i in complaint_rows(groups, "file#chunk4", 1)} & {i["sk"] for i in items}
    # Rows written before packing (one fingerprint each) still read.
    old = {"pk": "complaint#2024-06-01T09", "sk": f"{'e' * 20}#abc", "accounts": ["q"], "tickets": ["tq"]}
    assert unpack_complaints([old]) == [old]
    # A chunk with many large fingerprints is split under the item limit.
    wide = {("2024-06-01T09", f"{i:020x}"): {"accounts": {f"acct-{i}-{j:04d}" for j in range(200)}, "tickets": set(), "company": None}
            for i in range(200)}
    parts = complaint_rows(wide, "c", 1)
    assert len(parts) > 1 and all(len(str(p["fingerprints"])) < MAX_PACKED_BYTES * 1.2 for p in parts)
    assert len(unpack_complaints(parts)) == 200


def test_complaint_groups_older_than_the_ttl_are_dropped_at_the_hour_boundary():
    now = datetime(2024, 3, 20, 12, 30, tzinfo=timezone.utc)
    groups = {("2024-03-06T11", "a"): 1, ("2024-03-06T12", "b"): 2, ("2024-03-20T12", "c"): 3, ("2023-12-01T00", "d"): 4}
    # 14 days before now is 2024-03-06T12:30: the hour 11 ended before it, the hour 12 did not.
    assert behaviour.recent_groups(groups, now, 14 * 24 * 3600) == {("2024-03-06T12", "b"): 2, ("2024-03-20T12", "c"): 3}


def test_only_signalled_or_profiled_customers_get_daily_rows():
    items = [{"author_id": "loud", "day": "2024-03-01", "escalation": True, "text": "I will sue you"},
             {"author_id": "loud", "day": "2024-03-02", "text": "ok thanks"},
             {"author_id": "quiet", "day": "2024-03-01", "text": "ok thanks"},
             {"author_id": "known", "day": "2024-03-01", "text": "ok thanks"}]
    deltas = behaviour.customer_deltas(items)
    assert behaviour.signalled_customers(items) == {"loud"}
    kept = behaviour.rows_worth_writing(deltas, behaviour.signalled_customers(items) | {"known"})
    assert sorted(kept) == [("known", "2024-03-01"), ("loud", "2024-03-01"), ("loud", "2024-03-02")]
    assert kept[("loud", "2024-03-01")]["escalations"] == 1
