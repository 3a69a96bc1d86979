"""Support entities (order ids, money, brands, products, PII placeholders) by rules on spaCy's tokens.

Runs on PII-masked text: `text.mask_pii` has already replaced e-mail addresses, phone and card
numbers and order ids by "[EMAIL]", "[PHONE]", "[CARD]" and "[ORDER_ID]". Those placeholders
are the only EMAIL/PHONE/CARD/ORDER_ID entities this module emits (their text is the
placeholder), so no PII value can reach storage through entities. BRAND and PRODUCT
entities carry the canonical name from `entity_terms.json` ("iphone 8" -> "iPhone",
"#AppleSupport" -> "Apple"); MONEY carries the amount as written ("$25", "100 USD").

The rules: phrase gazetteers on the lower-cased token (brand/product terms, support handles,
and decoys such as "United States" that outvote "United" and are then dropped) and on the exact
token (placeholders, words that are also plain English: "Target", "UPS", "Chase"), and compiled
regular expressions on the text for MONEY and model numbers ("iPhoneX", "iOS 11.0.3"), aligned
to tokens. Overlaps: the longest span wins.

Tokens are spaCy's English tokens. By default `Rules` runs without spaCy: `en_tokenizer` is a
port of spaCy's tokenizer over spaCy's exported rules, the gazetteers are dicts of token
tuples and overlaps are resolved as `spacy.util.filter_spans` does; tests compare its tokens
and entities with spaCy's on the shared corpora. This keeps spaCy's import and `blank("en")`
(≈ 0.7 s) out of Enrich's cold start and is 2-3x faster per text on new words.

The same rules also exist as a spaCy component (`RuleEntities`, `spacy.blank("en")` plus
PhraseMatchers), which runs when a trained English pipeline is installed (never downloaded):
its NER runs after the rules and contributes MONEY only (its ORG/PERSON/GPE labels are
unreliable on support text: e-mail addresses become PERSON). spaCy is then imported lazily,
once per process, by `nlp()`. Token-pattern rules (`{"LOWER": {"REGEX": ...}}`) ran at a third
of the speed, and an EntityRuler re-counts its patterns for every doc, so neither is used.
"""

from __future__ import annotations

import bisect
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


class Rules:
    """The same rules as RuleEntities (and the same entities: tests/unit/test_entities.py compares
    them on the shared corpora) without spaCy: `en_tokenizer` gives spaCy's English tokens, the
    gazetteers are dicts of token tuples, and overlaps are resolved like `spacy.util.filter_spans`.
    """

    def __init__(self, terms: dict[str, Any]):
        from . import en_tokenizer

        self.tokenizer = en_tokenizer.Tokenizer(en_tokenizer.rules(), {p: [p] for p in PLACEHOLDERS})
        # first token -> {phrase tokens: (label, name)}; LOWER (terms, handles, decoys) and ORTH
        self.lower: dict[str, dict[tuple[str, ...], tuple[str, str]]] = {}
        self.exact: dict[str, dict[tuple[str, ...], tuple[str, str]]] = {}
        self.regexes: list[tuple[re.Pattern[str], str, str, tuple[str, ...]]] = []

        def add(table: dict, label: str, name: str, phrases: Iterable[str], lower: bool) -> None:
            for phrase in sorted(set(phrases)):
                if not phrase.strip():
                    continue
                key = tuple(t.text.lower() if lower else t.text for t in self.tokenizer.tokenize(phrase))
                table.setdefault(key[0], {})[key] = (label, name)

        for placeholder, label in PLACEHOLDERS.items():
            add(self.exact, label, placeholder, [placeholder], False)
        for label, group in (("BRAND", "brands"), ("PRODUCT", "products")):
            for entry in terms[group]:
                name = entry["name"]
                add(self.lower, label, name, [t.lower() for t in entry.get("terms", []) + entry.get("handles", [])], True)
                add(self.exact, label, name, entry.get("exact", []), False)
                if entry.get("regex"):
                    hints = tuple(entry.get("hints") or [entry["name"].lower()])
                    self.regexes.append((re.compile(entry["regex"], re.IGNORECASE), label, name, hints))
        add(self.lower, _IGNORE, "", terms.get("ignore", []), True)

    @staticmethod
    def _phrases(table: dict, words: list[str], found: list[tuple[int, int, str, str]]) -> None:
        """All occurrences, by start then end (the PhraseMatcher's order)."""
        if table.keys().isdisjoint(words):
            return
        n = len(words)
        for i, word in enumerate(words):
            phrases = table.get(word)
            if phrases is None:
                continue
            hits = [(len(key), value) for key, value in phrases.items()
                    if i + len(key) <= n and (len(key) == 1 or tuple(words[i : i + len(key)]) == key)]
            for length, (label, name) in sorted(hits, key=lambda h: h[0]):
                found.append((i, i + length, label, name))

    def __call__(self, text: str) -> list[tuple[str, str]]:
        """(label, value) per entity in order of appearance, like doc.ents after RuleEntities."""
        from .en_tokenizer import offsets

        words, spaces = self.tokenizer.split(text)
        if not words:
            return []
        found: list[tuple[int, int, str, str]] = []  # (start token, end token, label, name)
        self._phrases(self.lower, [w.lower() for w in words], found)
        self._phrases(self.exact, words, found)
        lowered = text.lower()
        regexes = [(r, label, name) for r, label, name, hints in self.regexes if any(h in lowered for h in hints)]
        if _CURRENCY_SIGN.search(text) or any(h in lowered for h in _MONEY_HINTS):
            regexes.append((MONEY, "MONEY", ""))
        starts: list[int] = []
        if regexes:
            starts = offsets(words, spaces)
            ends = [i + len(w) + sp for i, w, sp in zip(starts, words, spaces)]  # with the trailing space, as token_by_char
            for pattern, label, name in regexes:
                for match in pattern.finditer(text):
                    span = _expand(starts, ends, words, match.start(), match.end())
                    if span is not None:
                        found.append((*span, label, name))
        if not found:
            return []
        # spacy.util.filter_spans: the longest span wins, then the earliest (a stable sort).
        found.sort(key=lambda f: (f[1] - f[0], -f[0]), reverse=True)
        seen: set[int] = set()
        kept = []
        for span in found:
            if span[0] not in seen and span[1] - 1 not in seen:
                kept.append(span)
                seen.update(range(span[0], span[1]))
        kept.sort(key=lambda f: f[0])
        out = []
        for s, e, label, name in kept:
            if name and label in ("BRAND", "PRODUCT"):
                out.append((label, name))
                continue
            starts = starts or offsets(words, spaces)
            out.append((label, text[starts[s] : starts[e - 1] + len(words[e - 1])]))
        return out


def _expand(starts: list[int], ends: list[int], words: list[str], start_char: int, end_char: int) -> tuple[int, int] | None:
    """Doc.char_span(alignment_mode="expand") as token indices: every token the characters touch."""
    start = bisect.bisect_right(ends, start_char)  # the token whose text or trailing space holds start_char
    end = bisect.bisect_right(ends, end_char - 1)
    if start >= len(words) or starts[start] > start_char or end >= len(words) or starts[end] > end_char - 1:
        return None
    if start_char == starts[start] + len(words[start]):  # on the trailing space: the next token
        start += 1
    return start, end + 1


@lru_cache(maxsize=1)
def rules() -> Rules:
    """The spaCy-free rules, built once per process."""
    return Rules(load_terms())


@lru_cache(maxsize=8)  # a metadata lookup per candidate costs ≈ 1 ms: once per process, like nlp()
def _installed_model(choice: str) -> str | None:
    """The trained pipeline to use: "auto" = first installed candidate, "blank" = none, else a name or path."""
    if choice == "blank":
        return None
    if choice != "auto":
        return choice
    from importlib import metadata

    def installed(name: str) -> bool:  # = spacy.util.is_package, without importing spaCy
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return False
        return True

    return next((name for name in MODEL_CANDIDATES if installed(name)), None)


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
    return _found(((ent.label_, (ent.id_ or ent.text) if ent.label_ in ("BRAND", "PRODUCT") else ent.text) for ent in doc.ents), limit)


def _found(ents: Iterable[tuple[str, str]], limit: int) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for label, value in ents:
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
    if _installed_model(model) is None:  # the rules alone: no spaCy needed
        rule = rules()
        return [_found(rule(text), limit) for text in prepared]
    docs = nlp(model).pipe(prepared, batch_size=batch_size)
    return [_entities(doc, limit) for doc in docs]
