"""Customer behaviour: rolling per-customer counts, an abusive-behaviour score with reasons,
and fingerprints that reveal coordinated complaints (near-identical texts from many accounts).

Pure functions only. Storage layout (Aggregates table), written by logic/behaviour.py:

  pk "customer#<id>"          sk "<YYYY-MM-DD>#<chunk>" counters of one day from one chunk (a put: redelivery rewrites it),
                                                  written only for customers with a signal in the chunk or a profile
                                                  already (`rows_worth_writing`): a profile's `tickets` counts the
                                                  messages from the customer's first signalled chunk on
  pk "customer#<id>"          sk "profile"        score, reasons, counts over the last 30 days
  pk "behaviour#<YYYY-MM-DD>" sk "<id>"           profiles refreshed that (UTC) day, for alert rules
  pk "complaint#<hour>"       sk "packed<n>#<chunk>" {fingerprint: accounts, tickets, company} of one chunk
                                                  (unpacked to rows sk "<fingerprint>#<chunk>" and merged when read)
  pk "active#<YYYY-MM-DD>"    sk "top#<chunk>"    one chunk's most active customers that day (merged when read)
"""

from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from .text import HANDLE, URL

WINDOW_DAYS = 30
COUNTERS = ("tickets", "escalations", "abusive", "concession_claims", "escalated_claims", "failed_calls")
SIGNALS = ("escalations", "abusive", "concession_claims", "failed_calls")

# Refund / compensation language: the customer asks for money or a goodwill gesture.
CLAIM_LANGUAGE = re.compile(
    r"\b(?:refund(?:s|ed|ing)?|money back|compensat\w*|reimburs\w*|charge ?back|"
    r"goodwill (?:gesture|credit|payment)|vouchers?|credit (?:my|to my) account|"
    r"pay (?:me|for (?:my|the) (?:damage|hotel|meal|taxi)s?)|remboursement|rückerstattung|reembolso)\b",
    re.IGNORECASE,
)


# --------------------------------------------------------------------------- per-ticket counters


def is_concession_claim(item: Mapping[str, Any]) -> bool:
    """A ticket with a concession/refund amount > 0, or one asking for money back in words."""
    try:
        if float(item.get("concession_amount") or 0) > 0:
            return True
    except (TypeError, ValueError):
        pass
    return bool(CLAIM_LANGUAGE.search(item.get("clean_text") or item.get("text") or ""))


def customer_counters(item: Mapping[str, Any]) -> dict[str, int]:
    """Counter increments one enriched customer message adds to its author's daily row."""
    if item.get("role") == "company" or not item.get("author_id"):
        return {}
    counts = {"tickets": 1}
    escalated = bool(item.get("escalation"))
    claim = is_concession_claim(item)
    if escalated:
        counts["escalations"] = 1
    if item.get("abusive"):
        counts["abusive"] = 1
    if claim:
        counts["concession_claims"] = 1
    if escalated and claim:
        counts["escalated_claims"] = 1
    if item.get("call_status") == "failed":
        counts["failed_calls"] = 1
    return counts


def customer_deltas(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    """(customer id, day) -> counter increments for one chunk of enriched items."""
    rows: dict[tuple[str, str], dict[str, int]] = {}
    for item in items:
        counts = customer_counters(item)
        if counts:
            row = rows.setdefault((str(item["author_id"]), item["day"]), {})
            for name, n in counts.items():
                row[name] = row.get(name, 0) + n
    return rows


ACTIVE_TOP = 2000  # customers kept per chunk and day: a chunk holds at most 2,000 tickets, so all of them (an item of < 60 KB)


def activity_rows(deltas: Mapping[tuple[str, str], Mapping[str, int]], top: int = ACTIVE_TOP) -> dict[str, dict[str, Any]]:
    """day -> one chunk's most active customers: their message counts (`top`), how many customers
    and messages the chunk had that day, and `floor`: the count a customer left out had at most.

    One row per chunk and day (not one per customer) keeps the writes to one item per chunk; merged
    over a period the counts are exact, unless a chunk held more customers than `top` (then those it
    left out are lower bounds, off by at most the floors of the chunks that left them out).
    """
    by_day: dict[str, dict[str, int]] = {}
    for (customer, day), counters in deltas.items():
        if counters.get("tickets"):
            by_day.setdefault(day, {})[customer] = int(counters["tickets"])
    rows = {}
    for day, counts in by_day.items():
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept, rest = ranked[:top], ranked[top:]
        rows[day] = {"top": dict(kept), "floor": rest[0][1] if rest else 0,
                     "customers": len(counts), "messages": sum(counts.values())}
    return rows


def most_active(rows: Iterable[Mapping[str, Any]], n: int = 10) -> list[dict[str, Any]]:
    """Merge per-chunk activity rows: customers by messages; `exact` is False when a chunk that left
    a customer out could have held some of their messages (its floor > 0)."""
    totals: dict[str, int] = {}
    floor_where_listed: dict[str, int] = {}
    all_floors = 0
    for row in rows:
        floor = int(row.get("floor") or 0)
        all_floors += floor
        for customer, count in (row.get("top") or {}).items():
            totals[customer] = totals.get(customer, 0) + int(count)
            floor_where_listed[customer] = floor_where_listed.get(customer, 0) + floor
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [{"customer": c, "messages": m, "exact": all_floors - floor_where_listed[c] == 0} for c, m in ranked]


def has_signal(item: Mapping[str, Any]) -> bool:
    """True when the message can raise its author's score, so the profile is worth refreshing."""
    counts = customer_counters(item)
    return any(counts.get(name) for name in SIGNALS)


def signalled_customers(items: Iterable[Mapping[str, Any]]) -> set[str]:
    """Authors with at least one signal (abuse, escalation, claim, failed call) among `items`."""
    return {str(item["author_id"]) for item in items if has_signal(item)}


def rows_worth_writing(deltas: Mapping[tuple[str, str], Mapping[str, int]], keep: set[str]) -> dict[tuple[str, str], dict[str, int]]:
    """The daily rows of customers in `keep` (signalled in this chunk, or with a profile already).

    Only the score reads these rows, and it counts signals: a customer who never had one needs no
    row (most customers write once and never do; a row costs >= 1 WRU, checking for a profile 0.5 RRU).
    The price: a profile's `tickets` counts the messages from the customer's first signalled chunk on,
    not the quiet ones before it (the per-day `active#` rows still count every message)."""
    return {key: dict(counters) for key, counters in deltas.items() if key[0] in keep}


# --------------------------------------------------------------------------- score


@dataclass(frozen=True)
class ScoreWeights:
    """Points per event beyond a free allowance; score = 1 - exp(-points).

    One escalation or one refund request is ordinary customer behaviour, so each signal has an
    allowance that earns no points. Abuse has none: every abusive message counts.
    """

    abusive: float = 0.5
    escalations: float = 0.15
    escalations_free: int = 2
    concession_claims: float = 0.2
    concession_claims_free: int = 1
    escalated_claims: float = 0.1  # escalations that also ask for money: pressure for a concession
    failed_calls: float = 0.05
    failed_calls_free: int = 3


DEFAULT_WEIGHTS = ScoreWeights()


def row_day(sk: str) -> str | None:
    """The day of a counter row: sk 'YYYY-MM-DD#<chunk>' (or a plain 'YYYY-MM-DD'); None for others."""
    day = sk.split("#", 1)[0]
    return day if _is_day(day) else None


def chunk_row_sk(key: str, chunk_id: str) -> str:
    """Sort key of a row one chunk writes about `key` (a day, a fingerprint): redelivery rewrites it."""
    return f"{key}#{hashlib.sha256(chunk_id.encode()).hexdigest()[:16]}"


def window_counts(daily_rows: Iterable[Mapping[str, Any]], end: date, days: int = WINDOW_DAYS) -> dict[str, int]:
    """Sum counter rows whose day lies in the `days` days ending at `end`."""
    start = (end - timedelta(days=days - 1)).isoformat()
    last = end.isoformat()
    totals = dict.fromkeys(COUNTERS, 0)
    for row in daily_rows:
        day = row_day(str(row.get("sk", "")))
        if day is None or not (start <= day <= last):
            continue
        for name in COUNTERS:
            totals[name] += int(row.get(name) or 0)
    return totals


def _is_day(value: str) -> bool:
    try:
        date.fromisoformat(value)
        return len(value) == 10
    except ValueError:
        return False


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def behaviour_score(
    counts: Mapping[str, int], window_days: int = WINDOW_DAYS, weights: ScoreWeights = DEFAULT_WEIGHTS
) -> tuple[float, list[str]]:
    """(score in [0, 1], reasons) from a customer's counts over the window, strongest reason first."""
    c = {name: int(counts.get(name) or 0) for name in COUNTERS}
    span = f"in {window_days} days"
    parts: list[tuple[float, str]] = []
    if c["abusive"]:
        parts.append((weights.abusive * c["abusive"], f"{_plural(c['abusive'], 'abusive message')} {span}"))
    extra_esc = max(0, c["escalations"] - weights.escalations_free)
    esc_points = weights.escalations * extra_esc + weights.escalated_claims * c["escalated_claims"] * (extra_esc > 0)
    if esc_points:
        text = f"{_plural(c['escalations'], 'escalation')} {span}"
        if c["escalated_claims"]:
            text += f", {c['escalated_claims']} with concession claims"
        parts.append((esc_points, text))
    extra_claims = max(0, c["concession_claims"] - weights.concession_claims_free)
    if extra_claims:
        parts.append((weights.concession_claims * extra_claims, f"{_plural(c['concession_claims'], 'refund/concession claim')} {span}"))
    extra_failed = max(0, c["failed_calls"] - weights.failed_calls_free)
    if extra_failed:
        parts.append((weights.failed_calls * extra_failed, f"{_plural(c['failed_calls'], 'failed call')} {span}"))
    points = sum(p for p, _ in parts)
    score = round(1.0 - math.exp(-points), 4)
    reasons = [text for _, text in sorted(parts, key=lambda p: -p[0])]
    if reasons:
        reasons.append(f"{_plural(c['tickets'], 'message')} {span} in total")
    return score, reasons


def profile(customer_id: str, daily_rows: list[Mapping[str, Any]], now: datetime, window_days: int = WINDOW_DAYS) -> dict[str, Any] | None:
    """The profile item for one customer from their daily rows; the window ends at their latest day.

    Event time, not wall-clock time, closes the window, so replaying old data scores it as it was.
    """
    days = [d for d in (row_day(str(r.get("sk", ""))) for r in daily_rows) if d]
    if not days:
        return None
    end = date.fromisoformat(max(days))
    counts = window_counts(daily_rows, end, window_days)
    score, reasons = behaviour_score(counts, window_days)
    return {
        "pk": f"customer#{customer_id}", "sk": "profile", "customer_id": customer_id,
        "score": score, "reasons": reasons, "counts": counts,
        "window_start": (end - timedelta(days=window_days - 1)).isoformat(), "window_end": end.isoformat(),
        "updated_at": now.isoformat(),
    }


# --------------------------------------------------------------------------- coordinated complaints

MIN_CONTENT_TOKENS = 4
PLACEHOLDER = re.compile(r"\[[A-Z_]+\]")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
_RUN = re.compile(r"(\w)\1{2,}")
STOPWORDS = frozenset(
    "a an the and or but so to of in on at for from with by as is are was were be been am i im i'm me my mine "
    "we our us you your yours u ur it its it's this that these those there here just very really please pls "
    "plz hi hello hey dear thanks thank thx again still now today yesterday".split()
)


def content_tokens(text: str) -> list[str]:
    """Lowercased words without placeholders, digits, punctuation, accents, stop words or letter runs."""
    text = PLACEHOLDER.sub(" ", URL.sub(" ", HANDLE.sub(" ", text or "")))
    text = unicodedata.normalize("NFKD", text.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.replace("’", "'")
    text = _RUN.sub(r"\1", text)  # "sooooo" -> "so", "!!!!" is dropped anyway
    return [w for w in _WORD.findall(text) if w not in STOPWORDS and len(w) > 1]


def fingerprint(text: str) -> str | None:
    """Same value for near-identical complaints (case, numbers, ids, handles, punctuation, word order,
    repeated or filler words may differ); None when too little content is left to compare safely."""
    tokens = sorted(set(content_tokens(text)))
    if len(tokens) < MIN_CONTENT_TOKENS:
        return None
    return hashlib.sha1(" ".join(tokens).encode()).hexdigest()[:20]


def hour_bucket(created_at: str | datetime) -> str:
    """'2024-06-01T09' for any ISO timestamp (UTC, as stored on tickets)."""
    value = created_at if isinstance(created_at, datetime) else datetime.fromisoformat(str(created_at).replace("Z", "+00:00"))
    return value.strftime("%Y-%m-%dT%H")


def recent_groups(groups: Mapping[tuple[str, str], Any], now: datetime, max_age_s: int) -> dict[tuple[str, str], Any]:
    """The complaint groups whose hour ended less than `max_age_s` before `now`. Older ones feed no
    alert (coordinated complaints look at the last hours, and the rows expire after 14 days), so a
    backfill of old tickets writes no fingerprint rows."""
    oldest = (now - timedelta(seconds=max_age_s) - timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    return {key: group for key, group in groups.items() if key[0] > oldest}


def hour_buckets(now: datetime, window_minutes: int) -> list[str]:
    """Hour buckets overlapping the `window_minutes` before `now` (newest first)."""
    start = now - timedelta(minutes=window_minutes)
    out, t = [], now.replace(minute=0, second=0, microsecond=0)
    while t > start - timedelta(hours=1):
        out.append(t.strftime("%Y-%m-%dT%H"))
        t -= timedelta(hours=1)
    return out


def is_complaint(item: Mapping[str, Any]) -> bool:
    """Customer messages that can be part of a complaint campaign."""
    if item.get("role") == "company" or not item.get("author_id") or item.get("text_is_summary"):
        return False
    return item.get("sentiment") == "negative" or bool(item.get("escalation")) or is_concession_claim(item)


def complaint_groups(items: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """(hour, fingerprint) -> {accounts, tickets, company} for the complaints of one chunk."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        if not is_complaint(item):
            continue
        fp = fingerprint(item.get("clean_text") or item.get("text") or "")
        if fp is None:
            continue
        group = groups.setdefault((hour_bucket(item["created_at"]), fp), {"accounts": set(), "tickets": set(), "company": None})
        group["accounts"].add(str(item["author_id"]))
        group["tickets"].add(str(item["ticket_id"]))
        group["company"] = group["company"] or item.get("company")
    return groups


def coordinated(buckets: Iterable[Mapping[str, Any]], min_accounts: int) -> list[dict[str, Any]]:
    """Fingerprints whose distinct accounts, merged over the given hour-bucket rows, reach `min_accounts`.

    Rows are {sk: fingerprint[#chunk], accounts: [...], tickets: [...], company?}; most accounts first.
    """
    merged: dict[str, dict[str, Any]] = {}
    for row in buckets:
        fp = str(row["sk"]).split("#", 1)[0]  # sk = fingerprint#chunk: one row per chunk
        entry = merged.setdefault(fp, {"fingerprint": fp, "accounts": set(), "tickets": set(), "company": None})
        entry["accounts"].update(row.get("accounts") or [])
        entry["tickets"].update(row.get("tickets") or [])
        entry["company"] = entry["company"] or row.get("company")
    found = [
        {**e, "accounts": sorted(e["accounts"]), "tickets": sorted(e["tickets"])}
        for e in merged.values() if len(e["accounts"]) >= min_accounts
    ]
    return sorted(found, key=lambda e: (-len(e["accounts"]), e["fingerprint"]))
