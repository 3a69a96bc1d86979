"""Text cleaning and PII masking (pure, regex-based, vectorised per batch by the caller)."""

from __future__ import annotations

import html
import re
from functools import lru_cache

URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@\w{1,30}")
# Agent sign-offs used by support accounts: "^JK", "-KC", "- Ana", "~MB", "/JN" at the very end.
SIGNATURE = re.compile(r"\s+(?:\^|~|-{1,2}|/|–|—)\s?[A-Z][A-Za-z]{0,2}\.?\s*$")
WHITESPACE = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")  # the same class as the \d in IPV4, CARD, PHONE and ORDER_ID

EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
# A customer introducing themself: "My name is Jane Doe", "my name's Ana", "Name: John Smith". Only capitalised
# words are a name ("my name is not on the account" keeps its words); a new user's "Jane Doe" became an issue label.
NAME_INTRO = re.compile(r"\b(?i:my\s+name\s+is|my\s+name's|my\s+name\s+’s|name\s*:)\s+"
                        r"((?:Mr|Mrs|Ms|Miss|Dr)\.?\s+)?([A-Z][a-z'’-]+(?:\s+[A-Z][a-z'’-]+){0,2})")
# An IPv4 address identifies a customer's line (personal data under the GDPR): customers paste traceroutes.
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w.]*\d)")
CARD = re.compile(r"\b(?:\d[ .-]?){12,18}\d\b")  # separators: spaces, dashes or dots (4111.1111.1111.1111)
PHONE = re.compile(r"(?<!\w)(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?!\w)")
# An id after an order-ish word must contain a digit: "order yesterday" is not an id.
ORDER_ID = re.compile(
    r"\b(?:order|ord|tracking|track|case|ticket|ref|reference|confirmation|booking)"
    r"\s*(?:no\.?|number|num|#|id)?\s*(?:is\s+|was\s+)?[:#]?\s*(?=[A-Z0-9-]*\d)([A-Z0-9][A-Z0-9-]{4,})\b",
    re.IGNORECASE,
)

# ORDER_ID's words, shortened to the parts every spelling holds ("ord" for "order", "track" for "tracking")
_ORDER_WORDS = ("ord", "track", "case", "ticket", "ref", "confirmation", "booking")
_MANY = 1 << 30  # "as many digits as any regex needs": non-ASCII text is not counted


@lru_cache(maxsize=4096)  # enrichment cleans each text again inside the sentiment and abuse models
def clean_text(text: str) -> str:
    """Readable text for models: no URLs, handles, agent signatures, HTML entities or runs of spaces."""
    text = html.unescape(text)
    text = URL.sub(" ", text)
    if "@" in text:  # a handle starts with "@"
        text = HANDLE.sub(" ", text)
    text = WHITESPACE.sub(" ", text).strip()
    text = SIGNATURE.sub("", text)
    return text.strip()


def _luhn_ok(digits: str) -> bool:
    total, parity = 0, len(digits) % 2
    for i, ch in enumerate(digits):
        d = int(ch)
        if i % 2 == parity:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else match.group(0)


def mask_pii(text: str) -> tuple[str, list[str]]:
    """Mask emails, self-introduced names, IP addresses, card numbers, phone numbers and order/tracking ids;
    return the kinds found."""
    found: list[str] = []

    def sub(pattern: re.Pattern[str], repl, kind: str, value: str) -> str:
        new = pattern.sub(repl, value)
        if new != value:
            found.append(kind)
        return new

    # Cheap tests first: an e-mail address needs "@", the other three kinds a digit (most texts have neither).
    if "@" in text:
        text = sub(EMAIL, "[EMAIL]", "email", text)
    if "ame" in text or "AME" in text:  # "name", "Name", "NAME"
        text = sub(NAME_INTRO, lambda m: m.group(0)[: m.start(2) - m.start(0)] + "[NAME]", "name", text)
    if _DIGIT.search(text) is None:
        return text, found
    if "." in text:  # an IPv4 address has three dots
        text = sub(IPV4, "[IP]", "ip", text)
    # More cheap tests, exact for ASCII text (other text takes every regex): a card number has 13+ digits, a
    # masked phone number 9+ (masking only removes digits, so the count here bounds the later texts'), an
    # order id follows one of ORDER_ID's words (IGNORECASE's only non-ASCII equivalents are 'K', 'ſ', 'ı'/'İ').
    ascii_text = text.isascii()
    digits = sum(map(text.count, "0123456789")) if ascii_text else _MANY
    if digits >= 13:
        text = sub(CARD, _mask_card, "card", text)
    if not ascii_text or any(map(text.lower().__contains__, _ORDER_WORDS)):
        text = sub(ORDER_ID, lambda m: m.group(0).replace(m.group(1), "[ORDER_ID]"), "order_id", text)
    if digits >= 9:
        text = sub(PHONE, lambda m: "[PHONE]" if sum(c.isdigit() for c in m.group(0)) >= 9 else m.group(0), "phone", text)
    return text, found


def mask_pii_deep(value: object) -> object:
    """mask_pii over every string inside a value (a raw CSV line, a JSON record): quarantine evidence
    keeps its shape and its reasons, never the e-mail addresses, phone or card numbers."""
    if isinstance(value, str):
        return mask_pii(value)[0]
    if isinstance(value, dict):
        return {k: mask_pii_deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_pii_deep(v) for v in value]
    return value


_ENGLISH_HINTS = frozenset(
    "the a an and or but is are was were be been to of in on for with my your you i we it this that not no "
    "have has had do does did can can't cannot will would please thanks thank help why what when how "
    "me our us they them just still get got service account order phone".split()
)
# Frequent function words of the languages support teams most often see besides English.
_OTHER_HINTS = frozenset(
    "el la los las de del que y en un una por para con mi su es no me nada este esta pero muy ha "
    "le les des du et est je suis vous votre mon ma pas une très pour avec "
    "der die das und ist nicht ich sie mein meine ein eine mit für bitte "
    "o os as do da em um uma não eu meu minha com obrigado "
    "il lo gli di che è sono non mio mia con per".split()
)
_ENGLISH_ONLY = _ENGLISH_HINTS - _OTHER_HINTS
_OTHER_ONLY = _OTHER_HINTS - _ENGLISH_HINTS
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def detect_language(text: str) -> str:
    """'en', 'non-en' or 'unknown': a cheap stopword/script check, good enough to mark, never to crash."""
    words = _WORD.findall(text.lower())
    if len(words) < 3:
        return "unknown"
    letters = "".join(words)
    if len(letters.encode("ascii", "ignore")) / len(letters) < 0.7:  # the share of ASCII letters
        return "non-en"
    # Words both lists share ('no', 'me', 'do', 'con') are evidence for neither language.
    english = sum(map(_ENGLISH_ONLY.__contains__, words))
    other = sum(map(_OTHER_ONLY.__contains__, words))
    if other > english:
        return "non-en"
    return "en" if english / len(words) >= 0.12 or english >= 3 else "non-en"
