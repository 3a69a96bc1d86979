"""Source formats: recognise a file's format from its columns and map rows to Tickets.

Each format says which columns identify it; `incoming/<source>/...` overrides the
guess. A row that cannot become a ticket raises `RowInvalid` with a reason a
person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import ValidationError

from .reader import Record
from .tickets import Ticket


class RowInvalid(ValueError):
    """This row cannot become a ticket; the message is the human-readable reason."""


def _req(row: Mapping[str, Any], column: str) -> str:
    value = row.get(column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowInvalid(f"required column '{column}' is empty")
    return str(value).strip()


def _opt(row: Mapping[str, Any], column: str) -> str | None:
    value = row.get(column)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _time(value: str, fmt: str | None, column: str) -> datetime:
    try:
        parsed = datetime.strptime(value, fmt) if fmt else datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        expected = f" (expected like {datetime(2017, 10, 31, 22, 10, 47, tzinfo=timezone.utc).strftime(fmt)})" if fmt else " (expected ISO-8601)"
        raise RowInvalid(f"column '{column}' has an unreadable date '{value[:40]}'{expected}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _ticket(**fields: Any) -> Ticket:
    try:
        return Ticket(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "row"
        raise RowInvalid(f"field '{where}': {first['msg']}") from None


def _bool(value: str | None) -> bool:
    return str(value).strip().lower() in {"true", "1", "yes", "t"}


@dataclass
class TwcsIndex:
    """What a TWCS row needs from the rest of the file: thread root and first reply."""

    parent: dict[str, str] = field(default_factory=dict)
    inbound_at: dict[str, datetime] = field(default_factory=dict)
    first_reply: dict[str, tuple[datetime, str]] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        tweet_id = _opt(row, "tweet_id")
        if not tweet_id:
            return
        parent = _opt(row, "in_response_to_tweet_id")
        if parent:
            self.parent[tweet_id] = parent.split(".")[0]
        created = _opt(row, "created_at")
        if not created:
            return
        try:
            at = _time(created, TWCS_TIME, "created_at")
        except RowInvalid:
            return
        if _bool(row.get("inbound")):
            self.inbound_at[tweet_id] = at
        elif parent:
            parent = parent.split(".")[0]
            author = _opt(row, "author_id") or ""
            best = self.first_reply.get(parent)
            if best is None or at < best[0]:
                self.first_reply[parent] = (at, author)

    def root(self, tweet_id: str) -> str:
        seen = {tweet_id}
        while tweet_id in self.parent and self.parent[tweet_id] not in seen:
            tweet_id = self.parent[tweet_id]
            seen.add(tweet_id)
        return tweet_id


TWCS_TIME = "%a %b %d %H:%M:%S %z %Y"


class SourceFormat:
    name: str = ""
    identifying_columns: frozenset[str] = frozenset()
    needs_index: bool = False

    def matches(self, columns: set[str]) -> bool:
        return self.identifying_columns <= columns

    def build_index(self, chunks: Iterable[list[Record]]) -> Any:
        return None

    def to_ticket(self, row: Mapping[str, Any], index: Any) -> Ticket:
        raise NotImplementedError


class TwcsFormat(SourceFormat):
    """Customer Support on Twitter (Kaggle thoughtvector/customer-support-on-twitter)."""

    name = "twcs"
    identifying_columns = frozenset({"tweet_id", "author_id", "inbound", "created_at", "text", "in_response_to_tweet_id"})
    needs_index = True

    def build_index(self, chunks: Iterable[list[Record]]) -> TwcsIndex:
        index = TwcsIndex()
        for chunk in chunks:
            for record in chunk:
                if record.data is not None:
                    index.add(record.data)
        return index

    def to_ticket(self, row: Mapping[str, Any], index: TwcsIndex | None) -> Ticket:
        tweet_id = _req(row, "tweet_id")
        author = _req(row, "author_id")
        created = _time(_req(row, "created_at"), TWCS_TIME, "created_at")
        inbound = _bool(row.get("inbound"))
        parent = _opt(row, "in_response_to_tweet_id")
        parent = parent.split(".")[0] if parent else None
        index = index or TwcsIndex()
        conversation = _opt(row, "conversation_id") or index.root(tweet_id)
        first_response_s = responder = None
        if inbound and tweet_id in index.first_reply:
            replied_at, responder = index.first_reply[tweet_id]
            first_response_s = max(0.0, (replied_at - created).total_seconds())
        company = None
        if not inbound:
            company = author
        elif responder:
            company = responder
        return _ticket(
            ticket_id=f"twcs:{tweet_id}",
            source=self.name,
            author_id=author,
            company=company,
            channel="twitter",
            created_at=created,
            text=_req(row, "text"),
            role="customer" if inbound else "company",
            conversation_id=f"twcs:{conversation}",
            in_reply_to=f"twcs:{parent}" if parent else None,
            first_response_s=first_response_s,
            responder=responder,
        )


class AirlineFormat(SourceFormat):
    """Twitter US Airline Sentiment (CrowdFlower) tweets."""

    name = "airline"
    identifying_columns = frozenset({"tweet_id", "airline", "text", "tweet_created"})

    def to_ticket(self, row: Mapping[str, Any], index: Any) -> Ticket:
        tweet_id = _req(row, "tweet_id")
        return _ticket(
            ticket_id=f"airline:{tweet_id}",
            source=self.name,
            author_id=_opt(row, "name"),
            company=_opt(row, "airline"),
            channel="twitter",
            created_at=_time(_req(row, "tweet_created"), "%Y-%m-%d %H:%M:%S %z", "tweet_created"),
            text=_req(row, "text"),
            conversation_id=f"airline:{tweet_id}",
            category=_opt(row, "negativereason"),
        )


class GenericTicketFormat(SourceFormat):
    """Rows (or JSON events) already in the canonical ticket shape."""

    name = "ticket"
    identifying_columns = frozenset({"ticket_id", "text", "created_at"})

    def to_ticket(self, row: Mapping[str, Any], index: Any) -> Ticket:
        fields = {k: (v if v != "" else None) for k, v in row.items() if k in Ticket.model_fields}
        unknown = sorted(set(row) - set(Ticket.model_fields) - {"schema"})
        if unknown:
            raise RowInvalid(f"unknown field(s) {', '.join(unknown)} (see the ticket schema in the README)")
        fields.setdefault("source", "ticket")
        _req(row, "ticket_id")
        _req(row, "text")
        created = _req(row, "created_at")
        fields["created_at"] = _time(created, None, "created_at")
        return _ticket(**fields)


FORMATS: dict[str, SourceFormat] = {f.name: f for f in (TwcsFormat(), AirlineFormat(), GenericTicketFormat())}


def detect_source(columns: Iterable[str], override: str | None = None) -> SourceFormat:
    """The format for these columns; `override` (from the key prefix) wins when known."""
    if override and override in FORMATS:
        return FORMATS[override]
    present = {c.strip() for c in columns}
    for fmt in FORMATS.values():
        if fmt.matches(present):
            return fmt
    known = "; ".join(f"{f.name}: {', '.join(sorted(f.identifying_columns))}" for f in FORMATS.values())
    raise RowInvalid(f"unknown format: columns {', '.join(sorted(present))[:300]} match no known source ({known})")


def source_override(key: str) -> str | None:
    """`incoming/<source>/file.csv` names its source explicitly."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "incoming" and parts[1] in FORMATS:
        return parts[1]
    return None
