"""Unit tests for supportlens.domain.entities (spaCy rules) and its use in enrichment.enrich()."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from supportlens.domain import entities, text
from supportlens.domain.enrichment import enrich
from supportlens.domain.entities import LABELS, PLACEHOLDERS, extract_entities
from supportlens.domain.tickets import Ticket
from tests.conftest import ROOT, SAMPLE, shared_file, shared_texts

EMAIL = "jane.doe@example.com"
PHONE = "415-555-0132"
CARD = "4111 1111 1111 1111"


def one(raw: str) -> list[dict[str, str]]:
    """Entities of one text the way enrichment sees it: cleaned, then PII-masked."""
    masked, _ = text.mask_pii(text.clean_text(raw))
    return extract_entities([masked])[0]


def pairs(found: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(e["label"], e["text"]) for e in found}


def values(found: list[dict[str, str]], label: str) -> list[str]:
    return [e["text"] for e in found if e["label"] == label]


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    "raw, amount",
    [
        ("@AmazonHelp you charged me $25 twice for the same order", "$25"),
        ("they owe me 25 dollars for the cancelled delivery", "25 dollars"),
        ("Booking fee was €40.50 and nobody can explain it", "€40.50"),
        ("still waiting on a refund of 100 USD since March", "100 USD"),
        ("I was billed $1,200.00 for a $40 plan", "$1,200.00"),
        ("£10 delivery charge on a click and collect order??", "£10"),
        ("paid 25$ extra for a seat that didn't recline", "25$"),
        ("compensation offered: USD 150. Not acceptable", "USD 150"),
        ("ten bucks for wifi that never connected", "ten bucks"),
        ("a $5k hotel bill because you cancelled my flight", "$5k"),
        ("the repair quote was 2 grand, for a 1 year old laptop", "2 grand"),
    ],
)
def test_money_formats(raw, amount):
    assert amount in values(one(raw), "MONEY")


@pytest.mark.parametrize(
    "raw",
    [
        "my flight at 3pm was delayed 45 minutes",
        "2 items missing from my order of 12",
        "bag was 50 pounds and you charged overweight",  # weight, not money
        "battery drops to 10% in an hour",
        "flight UA 1234 from gate 22",
    ],
)
def test_numbers_that_are_not_money(raw):
    assert values(one(raw), "MONEY") == []


# --------------------------------------------------------------------------- brands / products


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("#AppleSupport my battery dies at 40%", {("BRAND", "Apple")}),
        ("flying united again and again the wifi is down", {("BRAND", "United Airlines"), ("PRODUCT", "Wi-Fi")}),
        ("Delta lost my bag in Atlanta", {("BRAND", "Delta")}),
        ("switched from Sprint to T-Mobile and now no signal", {("BRAND", "Sprint"), ("BRAND", "T-Mobile")}),
        ("British Airways cancelled, rebooked on Virgin Atlantic", {("BRAND", "British Airways"), ("BRAND", "Virgin Atlantic")}),
        ("ordered on Amazon, UPS says delivered, nothing here", {("BRAND", "Amazon"), ("BRAND", "UPS")}),
        ("bought it at Target with a gift card", {("BRAND", "Target"), ("PRODUCT", "Gift card")}),
    ],
)
def test_brands(raw, expected):
    assert expected <= pairs(one(raw))


def test_brand_words_in_ordinary_english_are_not_brands():
    found = one("I moved to the United States, my target is to chase a refund, ups and downs, apple pie")
    assert values(found, "BRAND") == []


@pytest.mark.parametrize(
    "raw, product",
    [
        ("my iPhone 8 keeps restarting since the update", "iPhone"),
        ("iPhoneX screen flickers", "iPhone"),
        ("after iOS 11.0.3 the keyboard types the letter I as A", "iOS"),
        ("Xbox One won't connect to Xbox Live", "Xbox"),
        ("my PS4 says the PSN is under maintenance", "PlayStation"),
        ("cancel my prime membership please", "Prime"),
        ("Alexa stopped responding to my Echo Dot", "Alexa"),
        ("the kindle app lost my books", "Kindle"),
        ("router light blinking orange all day", "Router"),
        ("the app crashes when I open my account", "App"),
        ("Spotify Premium charged twice", "Spotify Premium"),
    ],
)
def test_products(raw, product):
    assert product in values(one(raw), "PRODUCT")


def test_every_company_in_the_samples_is_a_known_brand():
    with SAMPLE.open(newline="", encoding="utf-8") as f:
        companies = {row["author_id"] for row in csv.DictReader(f) if row["inbound"].strip().lower() == "false"}
    with (ROOT / "events" / "samples" / "airline_sample.csv").open(newline="", encoding="utf-8") as f:
        airlines = {row["airline"] for row in csv.DictReader(f)}
    assert len(companies) > 40 and airlines
    missing = [c for c in sorted(companies) if not values(extract_entities([f"thanks #{c}"])[0], "BRAND")]
    assert missing == []
    for airline in sorted(airlines | {"United", "US Airways", "American Airlines", "Southwest", "Delta"}):
        assert values(extract_entities([f"stuck on the tarmac with {airline} for 3 hours"])[0], "BRAND"), airline


def test_gazetteer_entries_are_well_formed():
    terms = entities.load_terms()
    for group in ("brands", "products"):
        names = [e["name"] for e in terms[group]]
        assert len(names) == len(set(names)), group
        for entry in terms[group]:
            assert entry.get("terms") or entry.get("exact") or entry.get("handles"), entry
            if entry.get("regex"):
                re.compile(entry["regex"])


# --------------------------------------------------------------------------- PII placeholders


def test_masked_pii_becomes_placeholder_entities_and_raw_values_never_appear():
    raw = f"@AcmeHelp email me at {EMAIL} about order #AB12345, call {PHONE}, card {CARD} was charged $25"
    found = one(raw)
    assert {("EMAIL", "[EMAIL]"), ("PHONE", "[PHONE]"), ("CARD", "[CARD]"), ("ORDER_ID", "[ORDER_ID]"),
            ("MONEY", "$25")} <= pairs(found)
    flat = repr(found)
    for secret in (EMAIL, "example.com", "AB12345", PHONE, "0132", "4111"):
        assert secret not in flat


def test_placeholders_glued_to_words_still_match():
    found = extract_entities(["(at[EMAIL]) x:[CARD],[PHONE]/[EMAIL] order#[ORDER_ID]x"])[0]
    assert pairs(found) == {(label, p) for p, label in PLACEHOLDERS.items()}


def test_unmasked_text_still_never_yields_raw_pii():
    # extract_entities is meant for masked text, but even raw text cannot leak a value:
    # PII labels only ever carry placeholders and MONEY refuses long digit runs.
    raw = f"mail {EMAIL} or call {PHONE} or +1 (415) 555 0132, card {CARD}, pay ${'4155550132'}"
    found = extract_entities([raw])[0]
    assert all(e["text"] in PLACEHOLDERS for e in found if e["label"] in PLACEHOLDERS.values())
    flat = repr(found)
    for secret in (EMAIL, PHONE, "555", "4111", "4155550132"):
        assert secret not in flat


# --------------------------------------------------------------------------- robustness, shape, limits


@pytest.mark.parametrize(
    "value",
    ["", "   ", "😡😡😡 🙄", "no funciona mi teléfono desde ayer, ¿qué pasa?", "这个应用程序无法打开",
     "مرحبا لا يعمل الإنترنت", "[", "]]][[[", "$", "$$$ €€ 25 25 25", "a" * 50_000, None, 42],
)
def test_odd_input_never_raises(value):
    out = extract_entities([value, "Delta"])
    assert len(out) == 2 and out[1] == [{"label": "BRAND", "text": "Delta"}]
    assert all(e["label"] in LABELS for e in out[0])


def test_empty_batches():
    assert extract_entities([]) == []
    assert extract_entities(["", ""]) == [[], []]


def test_shape_order_and_deduplication():
    found = one("iPhone died. My iPhone, my iphone!! Apple store said $25, Apple said $25 again, then $30")
    assert found == [
        {"label": "PRODUCT", "text": "iPhone"},
        {"label": "BRAND", "text": "Apple"},
        {"label": "MONEY", "text": "$25"},
        {"label": "MONEY", "text": "$30"},
    ]
    assert all(set(e) == {"label", "text"} for e in found)


def test_entities_are_capped_per_ticket():
    brands = [e["name"] for e in entities.load_terms()["brands"] if e.get("terms")][:30]
    found = extract_entities([", ".join(brands)])[0]
    assert len(found) == entities.MAX_ENTITIES == 20
    assert extract_entities([", ".join(brands)], limit=5)[0] == found[:5]


def test_batches_give_the_same_answer_as_single_texts():
    texts = ["Delta owes me $40", "", "my ps4 and xbox", "[EMAIL] wrote about Uber Eats", "nothing here"]
    assert extract_entities(texts, batch_size=2) == [extract_entities([t])[0] for t in texts]


def test_pipeline_is_built_once_and_spacy_is_imported_lazily():
    assert entities.nlp() is entities.nlp()
    assert entities.nlp().pipe_names[0] == entities.COMPONENT
    assert entities.rules() is entities.rules()
    code = ("import sys; import supportlens.domain.entities, supportlens.domain.enrichment; "
            "assert 'spacy' not in sys.modules, 'spacy imported at module import'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def spacy_entities(texts: list[str]) -> list[list[dict[str, str]]]:
    """The same rules run by spaCy (blank("en") + RuleEntities): the reference of the spaCy-free path."""
    docs = entities.nlp("blank").pipe([entities._prepare(t) for t in texts])
    return [entities._entities(doc, entities.MAX_ENTITIES) for doc in docs]


RULE_CASES = [
    "iPhone died. My iPhone, my iphone!! Apple store said $25, Apple said $25 again, then $30",
    "United States flights on United, Delta and american airlines; UPS and ups and downs", "Target vs target",
    "T-Mobile's wi-fi, t-mobile and at&t", "papa john's pizza, dunkin' donuts and Dunkin", "m&s and marks & spencer",
    "iphone 8 plus, iPhoneX, iphone xs max, iOS 11.0.3 and ios11", "charged 25$ then $ 40 then USD 100 and 3 bucks",
    "a hundred dollars, a couple of euros, $1.2 million, $12345678901", "order #[ORDER_ID], at[EMAIL]x [PHONE][CARD]",
    "my ps4, PS+ and xbox one x", "U.S. Cellular u.s. cellular", "amazon.com/orders amazon.co.uk", "Uber_Support uber eats",
    "  spaced   out  Delta   $5  ", "tab\tDelta\n$5\n", "", "😡😡 @AppleSupport 👍", "MAC mac Mac", "chase bank, Chase",
]


def test_the_spacy_free_rules_find_what_spacy_finds():
    assert extract_entities(RULE_CASES) == spacy_entities(RULE_CASES)
    assert any(extract_entities(RULE_CASES))


@pytest.mark.shared_data
def test_the_spacy_free_rules_equal_spacy_on_the_shared_corpora():
    rows = shared_texts(4000)
    texts = rows + [text.mask_pii(text.clean_text(r))[0] for r in rows]
    fast, reference = extract_entities(texts), spacy_entities(texts)
    assert sum(bool(f) for f in reference) > 2000
    differ = [(t, f, r) for t, f, r in zip(texts, fast, reference) if f != r]
    assert not differ, differ[:3]


def test_an_installed_trained_pipeline_keeps_the_rules_and_only_our_labels(tmp_path):
    """A trained pipeline (here a freshly initialised one saved to disk, loaded like an installed
    package) runs its NER after the rules: rule entities survive, foreign labels are dropped."""
    import spacy

    trained = spacy.blank("en")
    ner = trained.add_pipe("ner")
    for label in ("ORG", "PERSON", "GPE", "MONEY"):
        ner.add_label(label)
    trained.initialize()
    trained.to_disk(tmp_path)
    pipeline = entities.nlp(str(tmp_path))
    assert pipeline.pipe_names == [entities.COMPONENT, "ner"]
    texts = ["Apple charged me $25, email [EMAIL], order #[ORDER_ID] for my iPhone", "John Smith from Acme in Paris"]
    found = extract_entities(texts, model=str(tmp_path))
    assert {("BRAND", "Apple"), ("MONEY", "$25"), ("EMAIL", "[EMAIL]"), ("ORDER_ID", "[ORDER_ID]"),
            ("PRODUCT", "iPhone")} <= pairs(found[0])
    assert all(e["label"] in LABELS for doc in found for e in doc)


# --------------------------------------------------------------------------- through enrich()


def test_enrich_stores_entities_on_the_item_and_no_pii():
    created = datetime(2024, 3, 4, 15, 30, tzinfo=timezone.utc)
    tickets = [
        Ticket(ticket_id="t1", source="ticket", created_at=created, company="apple", channel="twitter",
               text=f"@AppleSupport the Apple store swapped my iPhone 8, refund of $25 never arrived, "
                    f"email me at {EMAIL} or {PHONE}"),
        Ticket(ticket_id="t2", source="ticket", created_at=created, text="thank you, all good now"),
    ]
    batch = enrich(tickets, now=created)
    first, second = batch.items
    assert {("BRAND", "Apple"), ("PRODUCT", "iPhone"), ("MONEY", "$25"), ("EMAIL", "[EMAIL]"),
            ("PHONE", "[PHONE]")} <= pairs(first["entities"])
    assert EMAIL not in repr(first) and PHONE not in repr(first)
    assert "entities" not in second  # empty lists are not stored


@pytest.mark.shared_data
def test_twcs_customer_tweets_yield_entities_and_never_raw_pii():
    path = shared_file("twcs", "train.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = [r["text"] for r in csv.DictReader(f) if r["inbound"].strip().lower() == "true"]
    masked = [text.mask_pii(text.clean_text(t))[0] for t in rows]
    found = extract_entities(masked)
    assert len(found) == len(rows) > 1000
    assert sum(bool(f) for f in found) / len(found) > 0.15  # brands, products, money, placeholders
    labels = {e["label"] for f in found for e in f}
    assert {"BRAND", "PRODUCT", "MONEY"} <= labels
    for f in found:
        for e in f:
            assert e["label"] in LABELS and "@" not in e["text"]
            assert not re.search(r"\d{10,}", e["text"].replace(",", ""))


def test_char_span_expansion_is_spacys():
    """Regex hits snap to tokens as Doc.char_span(alignment_mode="expand") does, for every character range."""
    from supportlens.domain.en_tokenizer import offsets

    nlp = entities.nlp("blank")
    tokenizer = entities.rules().tokenizer
    for value in ("Delta owes me $40 , ok", "  two  spaces\tand tab ", "a", "x [EMAIL] y"):
        doc = nlp.make_doc(value)
        words, spaces = tokenizer.split(value)
        starts = offsets(words, spaces)
        ends = [i + len(w) + sp for i, w, sp in zip(starts, words, spaces)]
        for start in range(len(value)):
            for end in range(start + 1, len(value) + 1):
                span = doc.char_span(start, end, alignment_mode="expand")
                expected = None if span is None else (span.start, span.end)
                assert entities._expand(starts, ends, words, start, end) == expected, (value, start, end)
