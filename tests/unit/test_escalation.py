"""escalation()'s ASCII fast path (one case-sensitive scan of the lower-cased text) names the same
rule as the rules' own IGNORECASE patterns, in their order."""

from __future__ import annotations

import pytest

from supportlens.domain import scoring


def _reference(value: str) -> str | None:
    for rule in scoring.ESCALATION_RULES:
        if rule.pattern.search(value):
            return rule.name
    return None


CASES = [
    "", "I WILL SUE YOU", "my Lawyer says", "Cancelled my order, calling the BBB and the Press", "cancelling",
    "there was SMOKE and a fire", "switching to verizon", "never flying you again", "NEVER BUY FROM YOU AGAIN",
    "ſue you", "I will ſue", "Kourt", "the court", "ﬁre in the kitchen", "İnjured", "injured İ", "attorney general",
    "news paper", "newspaper", "presser", "sue_me", "suing!", "leaving you", "close my account 😡", "burnt toast",
    "Ich werde Sie verklagen", "plain thanks", "LAWYER", "Lawsuit.", "lawyer\u00a0up", "cancel\u2028",
]


def test_rule_patterns_have_no_upper_case_letters():
    # the fast path compiles them without IGNORECASE for lower-cased text
    for rule in scoring.ESCALATION_RULES:
        assert not any(c.isupper() for c in rule.pattern.pattern.replace("\\b", "")), rule.name


def test_fast_path_names_the_same_rule():
    for value in CASES:
        assert scoring.escalation(value) == _reference(value), value
    assert scoring.escalation("I WILL SUE YOU") == "legal_threat"
    assert scoring.escalation("ſue you") == "legal_threat"  # re.I: long s is an s (non-ASCII: the rules' path)


@pytest.mark.shared_data
def test_fast_path_names_the_same_rule_on_the_shared_corpora():
    from supportlens.domain.text import clean_text, mask_pii
    from tests.conftest import shared_texts

    texts = shared_texts(5000)
    assert len(texts) > 20_000
    hits = 0
    for value in texts:
        for variant in (value, value.upper(), mask_pii(clean_text(value))[0]):
            got = scoring.escalation(variant)
            assert got == _reference(variant), variant
            hits += got is not None
    assert hits > 100


@pytest.mark.parametrize("text, rule", [
    # threats a lead must see
    ("I will take you to court over this", "legal_threat"),
    ("my lawyer will be in touch", "legal_threat"),
    ("Time to cancel my Amazon Prime membership", "churn"),
    ("I will never fly with you again", "churn"),
    ("switching to Verizon tomorrow", "churn"),
    ("switching to another provider, done", "churn"),
    ("reporting you to the BBB", "regulator_media"),
    ("great story for the media", "regulator_media"),
    ("the charger started to smoke", "safety"),
    ("it burned my hand", "safety"),
    # what a new user's uploads flagged at critical severity
    ("my flight was cancelled again", None),  # 6.9 % of airline tweets were 'churn' for this alone
    ("please cancel meetings organized by another person", None),
    ("switch to Pro account please", None),
    ("robotics st court, floor 3", None),
    ("press ctrl alt delete and log in", None),
    ("the media player crashes", None),
    ("trying to fix my fire stick", None),
    ("insult to injury, the bag is lost too", None),
    ("I'm burned out on these long flights", None),
])
def test_rules_need_a_threat_not_just_its_word(text, rule):
    assert scoring.escalation(text) == rule
