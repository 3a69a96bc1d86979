"""domain/en_tokenizer.py: spaCy's English tokenizer without spaCy, checked against spaCy itself."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import sys

import pytest

from supportlens.domain import en_tokenizer, entities, text
from tests.conftest import ROOT, shared_texts

spacy = pytest.importorskip("spacy")  # the reference; the port itself never imports it

EDGE_CASES = [
    "", " ", "  ", "a", " a", "a ", "  a  b  ", "a\tb\nc", "\n\nhello\n", "a \xa0b", "tab\t tab", "x\u2028y", "\x1cz",
    "I can't, won't and shouldn't.", "Don't!!", "y'all gonna", "it's 5 a.m. or 6 p.m.", "Mr. Smith & Dr. Who",
    "e.g. i.e. etc.", ":) :-) :( <3 ;) :D xD (:", "hello:)", "(hello)", "\"quoted\"", "'single'", "...", "wait...what",
    "U.S. cellular", "u.s.", "amazon.com/orders", "https://t.co/abc?x=1&y=2", "www.example.com.", "hi@example.com",
    "t-mobile", "wal-mart's", "set-top box", "papa john's", "dunkin' donuts", "m&s", "ps+", "$25.00", "25$", "€40,50",
    "US$20k", "1,000,000.50", "10:30pm", "#AppleSupport", "@delta", "[EMAIL]", "at[EMAIL]x", "#[ORDER_ID].",
    "[ORDER_ID][PHONE]", "(iphone 8)", "iOS 11.0.3", "iPhoneX!!", "ca n't", "gon na", "Ünïcödé café’s", "ﬁne İstanbul",
    "emoji 😡😡 here 👍🏽", "--", "—dash—", "a/b", "and/or", "1/2", "3x4", "5km", "10kg.", "'s", "n't", "''", "``",
]
ALPHABET = list("aAbBzZ09 .,;:!?'\"()[]{}-_/\\&@#$€%*+=<>~^|`") + [" ", " ", " ", "  ", "\t", "\n", "\xa0", "n't", "'s",
                                                                 "a.m.", ":)", "[EMAIL]", "http://", "www.", ".com", "é"]


@pytest.fixture(scope="module")
def reference():
    nlp = spacy.blank("en")
    for placeholder in entities.PLACEHOLDERS:
        nlp.tokenizer.add_special_case(placeholder, [{spacy.symbols.ORTH: placeholder}])
    return nlp.tokenizer


@pytest.fixture(scope="module")
def port():
    return en_tokenizer.Tokenizer(en_tokenizer.rules(), {p: [p] for p in entities.PLACEHOLDERS})


def spacy_tokens(tokenizer, value: str) -> list[tuple[str, int, bool]]:
    return [(t.text, t.idx, bool(t.whitespace_)) for t in tokenizer(value)]


def port_tokens(port, value: str) -> list[tuple[str, int, bool]]:
    return [tuple(t) for t in port.tokenize(value)]


def test_rules_file_is_the_installed_spacy_rules():
    spec = importlib.util.spec_from_file_location("export_tokenizer_rules", ROOT / "tools" / "export_tokenizer_rules.py")
    exporter = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exporter)
    shipped = json.loads(en_tokenizer.RULES_FILE.read_text(encoding="utf-8"))
    assert shipped == exporter.spacy_rules(), "re-run tools/export_tokenizer_rules.py after a spaCy upgrade"


def test_edge_cases_tokenize_like_spacy(reference, port):
    for value in EDGE_CASES:
        assert port_tokens(port, value) == spacy_tokens(reference, value), value


def test_random_strings_tokenize_like_spacy(reference, port):
    rng = random.Random(14)
    for _ in range(3000):
        value = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 25)))
        assert port_tokens(port, value) == spacy_tokens(reference, value), repr(value)


def test_the_port_does_not_import_spacy():
    code = ("import sys; from supportlens.domain import entities; "
            "entities.extract_entities(['Apple charged me $25 for my iPhone 8']); "
            "assert 'spacy' not in sys.modules, 'spacy imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.shared_data
def test_shared_corpora_tokenize_like_spacy(reference, port):
    rows = shared_texts(4000)
    texts = rows + [text.mask_pii(text.clean_text(r))[0] for r in rows]
    assert len(texts) > 20_000
    differ = [t for t in texts if port_tokens(port, t) != spacy_tokens(reference, t)]
    assert not differ, differ[:3]


def test_a_chunk_whose_inner_part_is_cached_tokenizes_like_spacy(reference):
    """_split stops at a cached inner chunk ("thanks" inside '("thanks!")'): same tokens as spaCy and as a cold cache."""
    port = en_tokenizer.Tokenizer(en_tokenizer.rules(), {p: [p] for p in entities.PLACEHOLDERS})
    cold = en_tokenizer.Tokenizer(en_tokenizer.rules(), {p: [p] for p in entities.PLACEHOLDERS})
    words = ["thanks", "a.m.", "can't", "U.S.", "5km", "iPhoneX", ":)", "gonna", "don't", "t-mobile", "www.example.com",
             "'s", "[EMAIL]", "wait...what", "e.g.", "$25", "hello"]
    affixes = [("", "!"), ("(", ")"), ('"', '"'), ("", "..."), ("'", "'"), ("", "?!)"), ("[", "]."), ("(", ":"),
               ("", "'s"), ("$", "!!"), ("", ".")]
    for word in words:
        port.split(word)  # the bare words are now in the cache
    hits = 0
    for word in words:
        for before, after in affixes:
            value = f"{before}{word}{after} and {word}{after}{after}"
            assert port_tokens(port, value) == spacy_tokens(reference, value), value
            cold._cache.clear()
            assert port.split(value) == cold.split(value), value
            hits += f"{before}{word}{after}" not in port.specials
    assert hits > 100
    # without special cases (how add_special_case finds the pieces affixes make) the cache, built with them, is not read
    assert port.split("gonna") == (["gon", "na"], [False, False])
    assert port.split("(gonna)", with_specials=False) == (["(", "gonna", ")"], [False, False, False])
