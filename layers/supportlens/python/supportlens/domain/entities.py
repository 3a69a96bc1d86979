"""Support entities (order ids, money, brands, products, PII placeholders) with spaCy rules.

Runs on PII-masked text: `text.mask_pii` has already replaced e-mail addresses, phone and card
numbers and order ids by "[EMAIL]", "[PHONE]", "[CARD]" and "[ORDER_ID]". Those placeholders
are the only EMAIL/PHONE/CARD/ORDER_ID entities this module emits (their text is the
placeholder), so no PII value can reach storage through entities. BRAND and PRODUCT
entities carry the canonical name from `entity_terms.json` ("iphone 8" -> "iPhone",
"#AppleSupport" -> "Apple"); MONEY carries the amount as written ("$25", "100 USD").

The pipeline is `spacy.blank("en")` (the tokenizer) plus one rule component,
`supportlens_rules`: PhraseMatchers on the lower-cased token (brand/product terms, support
handles, and decoys such as "United States" that outvote "United" and are then dropped) and
on the exact token (placeholders, words that are also plain English: "Target", "UPS",
"Chase"), and compiled regular expressions on the text for MONEY and model numbers
("iPhoneX", "iOS 11.0.3"), aligned to tokens. Overlaps: the longest span wins.
Token-pattern rules (`{"LOWER": {"REGEX": ...}}`, `{"IN": [...]}`) ran at a third of the
speed, and an EntityRuler re-counts its patterns for every doc, so neither is used.

spaCy is imported lazily, once per process, by `nlp()`: importing this module is free, the
first call pays for `import spacy` and building the rules. If a trained English pipeline is
installed (never downloaded), its NER runs after the rules and contributes MONEY only: its
ORG/PERSON/GPE labels are unreliable on support text (e-mail addresses become PERSON).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only, spaCy is imported lazily
    from spacy.language import Language
    from spacy.tokens import Doc

LABELS = ("ORDER_ID", "MONEY", "EMAIL", "PHONE", "CARD", "BRAND", "PRODUCT")
PLACEHOLDERS = {"[EMAIL]": "EMAIL", "[PHONE]": "PHONE", "[CARD]": "CARD", "[ORDER_ID]": "ORDER_ID"}
MAX_ENTITIES = 20  # per ticket, after de-duplication
MAX_CHARS = 20_000  # longer texts are cut: entities summarise a ticket, they do not index it
BATCH_SIZE = 256
TERMS_FILE = Path(__file__).with_name("entity_terms.json")
# Trained English pipelines used when installed, in order of preference (model="auto").
MODEL_CANDIDATES = ("en_core_web_sm", "en_core_web_md", "en_core_web_lg")
COMPONENT = "supportlens_rules"

_IGNORE = "_IGNORE"  # longest-match-wins decoys ("United States"), dropped from the output
_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CARD|ORDER_ID)\]")
_MAX_MONEY_DIGITS = 9  # "$" before a 10+ digit run is an unmasked number, not an amount

_SYMBOL = r"(?:US|C|A|AU|CA)?[$€£¥₹]"
_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:[.,]\d+)?"
_NUMBER_WORD = (
    r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|"
    r"fifty|sixty|seventy|eighty|ninety|hundred|a hundred|a thousand|a few|few|couple of|a couple of"
)
_SCALE = r"(?:\s?(?:k|m|bn|million|billion|thousand)\b)?"
_CODES = ("usd", "eur", "gbp", "cad", "aud", "inr", "jpy")
_UNITS = ("dollar", "buck", "euro", "quid", "cent", "pence", "rupee", "naira", "ringgit", "yen", "shilling", "grand")
_CODE = "|".join(_CODES)
_UNIT = r"dollars?|bucks?|euros?|quid|cents?|pence|rupees?|naira|ringgit|yen|shillings?|grand"
MONEY = re.compile(
    rf"(?<![\w$€£¥₹]){_SYMBOL}\s?(?:{_NUMBER}){_SCALE}"  # $25, € 40.50, US$20, $5k, $1.2 million
    rf"|\b(?:{_NUMBER}|{_NUMBER_WORD})\s?(?:k|m|million|thousand)?\s?(?:{_CODE}|{_UNIT})\b"  # 25 dollars, 100 USD
    rf"|\b(?:{_NUMBER})\s?[$€£¥₹](?![\w$€£¥₹])"  # 25$, 40.50€
    rf"|\b(?:{_CODE})\s?(?:{_NUMBER}){_SCALE}",  # USD 100, EUR40
    re.IGNORECASE,
)
# MONEY needs a currency sign or a currency word: checking for those first is ~20x cheaper than the regex.
_CURRENCY_SIGN = re.compile(r"[$€£¥₹]")
_MONEY_HINTS = _CODES + _UNITS


def load_terms(path: Path = TERMS_FILE) -> dict[str, Any]:
    """The brand/product gazetteer shipped with the package."""
    return json.loads(path.read_text(encoding="utf-8"))


class RuleEntities:
    """The rules: gazetteer phrases (LOWER and ORTH PhraseMatchers) and regexes on the text.

    One component instead of an EntityRuler: the ruler re-counts all its patterns for every
    doc (`_require_patterns`), which with ~150 (label, id) groups cost more than the matching.
    """

    def __init__(self, nlp: Language, terms: dict[str, Any]):
        from spacy.matcher import PhraseMatcher

        self.lower = PhraseMatcher(nlp.vocab, attr="LOWER")  # terms, handles, decoys
        self.exact = PhraseMatcher(nlp.vocab, attr="ORTH")  # placeholders, case-sensitive words
        self.keys: dict[int, tuple[str, str]] = {}
        # (regex, label, canonical name, lower-case words one of which the text must contain)
        self.regexes: list[tuple[re.Pattern[str], str, str, tuple[str, ...]]] = []

        def add(matcher: PhraseMatcher, label: str, name: str, phrases: Iterable[str]) -> None:
            docs = [nlp.make_doc(p) for p in sorted(set(phrases)) if p.strip()]
            if docs:
                key = f"{label}|{name}"
                self.keys[nlp.vocab.strings.add(key)] = (label, name)
                matcher.add(key, docs)

        for placeholder, label in PLACEHOLDERS.items():
            add(self.exact, label, placeholder, [placeholder])
        for label, group in (("BRAND", "brands"), ("PRODUCT", "products")):
            for entry in terms[group]:
                name = entry["name"]
                add(self.lower, label, name, [t.lower() for t in entry.get("terms", []) + entry.get("handles", [])])
                add(self.exact, label, name, entry.get("exact", []))
                if entry.get("regex"):
                    hints = tuple(entry.get("hints") or [entry["name"].lower()])
                    self.regexes.append((re.compile(entry["regex"], re.IGNORECASE), label, name, hints))
        add(self.lower, _IGNORE, "", terms.get("ignore", []))

    def __call__(self, doc: Doc) -> Doc:
        from spacy.tokens import Span
        from spacy.util import filter_spans

        found: list[Span] = []
        for match_id, start, end in [*self.lower(doc), *self.exact(doc)]:
            label, name = self.keys[match_id]
            found.append(Span(doc, start, end, label=label, span_id=name))
        text = doc.text  # built from the tokens on every access: once per doc
        lowered = text.lower()
        regexes = [(r, label, name) for r, label, name, hints in self.regexes if any(h in lowered for h in hints)]
        if _CURRENCY_SIGN.search(text) or any(h in lowered for h in _MONEY_HINTS):
            regexes.append((MONEY, "MONEY", ""))
        for pattern, label, name in regexes:
            for match in pattern.finditer(text):
                span = doc.char_span(match.start(), match.end(), alignment_mode="expand")
                if span is not None:
                    found.append(Span(doc, span.start, span.end, label=label, span_id=name))
        if found:
            doc.ents = filter_spans([*doc.ents, *found])  # longest wins, then the earliest
        return doc


def _installed_model(choice: str) -> str | None:
    """The trained pipeline to use: "auto" = first installed candidate, "blank" = none, else a name or path."""
    if choice == "blank":
        return None
    if choice != "auto":
        return choice
    import spacy

    return next((name for name in MODEL_CANDIDATES if spacy.util.is_package(name)), None)


def _register_component() -> None:
    from spacy.language import Language

    if not Language.has_factory(COMPONENT):
        Language.factory(COMPONENT, func=lambda nlp, name: RuleEntities(nlp, load_terms()))


@lru_cache(maxsize=4)
def nlp(model: str = "auto") -> Language:
    """The entity pipeline, built once per process (and per `model` choice)."""
    import spacy
    from spacy.symbols import ORTH

    _register_component()
    name = _installed_model(model)
    if name is None:
        pipeline = spacy.blank("en")
    else:  # only the NER of a trained pipeline (and the tok2vec it listens to): the rest costs time
        pipeline = spacy.load(name)
        needed = {"ner"} | {c for c, pipe in pipeline.pipeline if "ner" in getattr(pipe, "listening_components", ())}
        for component in pipeline.pipe_names:
            if component not in needed:
                pipeline.disable_pipe(component)
    for placeholder in PLACEHOLDERS:  # "[ORDER_ID]" stays one token
        pipeline.tokenizer.add_special_case(placeholder, [{ORTH: placeholder}])
    # Before a trained NER, which then keeps the rule entities and labels only the rest.
    pipeline.add_pipe(COMPONENT, **({"before": "ner"} if "ner" in pipeline.pipe_names else {}))
    return pipeline


def _prepare(value: object) -> str:
    text = value[:MAX_CHARS] if isinstance(value, str) else ""
    if "[" in text:  # "at[EMAIL]" or "#[ORDER_ID]x": placeholders stand alone for the tokenizer
        text = _PLACEHOLDER.sub(lambda m: f" {m.group(0)} ", text)
    return text


def _keep(label: str, value: str) -> bool:
    if label in PLACEHOLDERS.values():  # never a raw e-mail/phone/card/order id, only the placeholder
        return PLACEHOLDERS.get(value) == label
    if label == "MONEY":  # an amount, not an unmasked account or phone number
        return sum(ch.isdigit() for ch in value) <= _MAX_MONEY_DIGITS and "@" not in value
    return label in LABELS and bool(value)


def _entities(doc: Doc, limit: int) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for ent in doc.ents:
        label = ent.label_
        value = (ent.id_ or ent.text) if label in ("BRAND", "PRODUCT") else ent.text
        if (label, value) in seen or not _keep(label, value):
            continue
        seen.add((label, value))
        found.append({"label": label, "text": value})
        if len(found) >= limit:
            break
    return found


def extract_entities(
    texts: Iterable[str], *, model: str = "auto", batch_size: int = BATCH_SIZE, limit: int = MAX_ENTITIES
) -> list[list[dict[str, str]]]:
    """Entities per text, in order of appearance, de-duplicated by (label, text), at most `limit` each.

    Each entity is {"label": one of LABELS, "text": ...}. Pass PII-masked text: placeholders
    become EMAIL/PHONE/CARD/ORDER_ID entities; raw values are never returned either way.
    Empty, non-English, emoji-only or non-string inputs give [] and never raise.
    """
    prepared = [_prepare(t) for t in texts]
    if not any(prepared):
        return [[] for _ in prepared]
    docs = nlp(model).pipe(prepared, batch_size=batch_size)
    return [_entities(doc, limit) for doc in docs]
