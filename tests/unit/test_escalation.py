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
