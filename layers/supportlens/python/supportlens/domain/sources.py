"""Source formats: recognise a file's format from its columns and map rows to Tickets.

Each format says which columns identify it; `incoming/<source>/...` overrides the
guess. A row that cannot become a ticket raises `RowInvalid` with a reason a
person can act on.
"""

from __future__ import annotations

import hashlib
import re
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


@dataclass
class RowContext:
    """What a mapper may know besides the row: the file-wide index and where the row came from."""

    index: Any = None
    file_id: str = ""
    row_number: int = 0
    received_at: datetime | None = None

    def fallback_id(self, source: str) -> str:
        """A stable id for rows without one: the file (key + ETag) and the row number."""
        digest = hashlib.sha256(self.file_id.encode()).hexdigest()[:12]
        return f"{source}:{digest}:{self.row_number}"


class SourceFormat:
    name: str = ""
    identifying_columns: frozenset[str] = frozenset()
    needs_index: bool = False

    def matches(self, columns: set[str]) -> bool:
        return self.identifying_columns <= columns

    def build_index(self, chunks: Iterable[list[Record]]) -> Any:
        return None

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
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

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        tweet_id = _req(row, "tweet_id")
        author = _req(row, "author_id")
        created = _time(_req(row, "created_at"), TWCS_TIME, "created_at")
        inbound = _bool(row.get("inbound"))
        parent = _opt(row, "in_response_to_tweet_id")
        parent = parent.split(".")[0] if parent else None
        index = ctx.index or TwcsIndex()
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

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
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

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
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


def normalise(column: str) -> str:
    """'Customer ID' / 'customer-id' / 'CustomerId' -> 'customer_id'."""
    column = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column.strip())
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def _pick(row: Mapping[str, Any], aliases: tuple[str, ...]) -> str | None:
    for alias in aliases:
        value = _opt(row, alias)
        if value is not None:
            return value
    return None


def _pick_req(row: Mapping[str, Any], aliases: tuple[str, ...]) -> str:
    value = _pick(row, aliases)
    if value is None:
        raise RowInvalid(f"required column '{aliases[0]}' is empty" + (f" (also looked for {', '.join(aliases[1:])})" if len(aliases) > 1 else ""))
    return value


def _number(value: str | None, column: str) -> float | None:
    if value is None:
        return None
    cleaned = re.sub(r"[,$€£\s]", "", value)
    try:
        return float(cleaned)
    except ValueError:
        raise RowInvalid(f"column '{column}' is not a number: '{value[:40]}'") from None


def _duration(value: str | None, column: str) -> float | None:
    """Seconds from '3120', '3120.5', '52:00' (mm:ss) or '0:52:00' (h:mm:ss)."""
    if value is None:
        return None
    if ":" in value:
        try:
            parts = [float(p) for p in value.split(":")]
        except ValueError:
            raise RowInvalid(f"column '{column}' is not a duration: '{value[:40]}'") from None
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + part
        return seconds
    return _number(value, column)


def _when(row: Mapping[str, Any], aliases: tuple[str, ...], required: bool = True) -> datetime | None:
    value = _pick_req(row, aliases) if required else _pick(row, aliases)
    if value is None:
        return None
    for fmt in (None, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d"):
        try:
            return _time(value, fmt, aliases[0])
        except RowInvalid:
            continue
    raise RowInvalid(f"column '{aliases[0]}' has an unreadable date '{value[:40]}' (expected ISO-8601 like 2024-06-01T09:00:00Z)")


CUSTOMER = ("customer_id", "customer", "client_id", "account_id", "user_id", "caller_id")
AGENT = ("agent_id", "agent", "agent_name", "assignee", "handled_by")
TEXT = ("text", "description", "complaint", "summary", "notes", "message", "body", "transcript")


class _AliasFormat(SourceFormat):
    """Formats whose columns vary between exports: headers are normalised and aliases accepted."""

    signature: tuple[tuple[str, ...], ...] = ()

    def matches(self, columns: set[str]) -> bool:
        present = {normalise(c) for c in columns}
        return all(any(alias in present for alias in group) for group in self.signature)

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        return self.map_row({normalise(k): v for k, v in row.items()}, ctx)

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        raise NotImplementedError


class EscalationFormat(_AliasFormat):
    """Executive / complaint escalation cases with concessions and delivery outcomes."""

    name = "escalations"
    CASE = ("case_id", "case_number", "escalation_id", "case")
    CONCESSION = ("concession_amount", "refund_amount", "concession", "refund", "compensation", "goodwill_amount")
    DELIVERY = ("delivery_status", "ftds", "first_time_delivery_status", "delivery_outcome")
    signature = (CASE, CUSTOMER, TEXT, CONCESSION + DELIVERY)

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        case_id = _pick_req(row, self.CASE)
        return _ticket(
            ticket_id=f"{self.name}:{case_id}", source=self.name,
            author_id=_pick_req(row, CUSTOMER), company=_pick(row, ("company", "brand", "business_unit")),
            agent_id=_pick(row, AGENT), channel=(_pick(row, ("channel",)) or "escalation").lower(),
            created_at=_when(row, ("created_at", "opened_at", "created", "date", "case_date", "timestamp")),
            text=_pick_req(row, TEXT), conversation_id=f"{self.name}:{case_id}",
            region=_pick(row, ("region", "market", "country")), category=_pick(row, ("category", "reason", "issue_type")),
            concession_amount=_number(_pick(row, self.CONCESSION), "concession_amount"),
            delivery_status=_pick(row, self.DELIVERY), priority=_pick(row, ("priority", "severity")),
        )


CALL_STATUS = {"success": "success", "successful": "success", "resolved": "success", "completed": "success", "answered": "success",
               "ok": "success", "failed": "failed", "failure": "failed", "fail": "failed", "unresolved": "failed", "abandoned": "failed",
               "dropped": "failed", "missed": "failed", "error": "failed"}
CHANNELS = {"email": "email", "e-mail": "email", "mail": "email", "chat": "chat", "live chat": "chat", "voice": "voice",
            "phone": "voice", "call": "voice", "video": "video", "video call": "video"}


class CallLogFormat(_AliasFormat):
    """Call-centre interaction logs: agent, channel, duration, success or failure."""

    name = "calls"
    CALL = ("interaction_id", "call_id", "session_id", "contact_id", "id")
    START = ("start_time", "started_at", "start", "call_start")
    END = ("end_time", "ended_at", "end", "call_end")
    DURATION = ("duration", "duration_s", "duration_seconds", "call_duration", "handle_time", "duration_sec")
    STATUS = ("status", "outcome", "result", "call_status", "resolution")
    signature = (CUSTOMER, AGENT, ("channel", "medium", "contact_type"), START + DURATION, STATUS)

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        started = _when(row, self.START + ("created_at", "timestamp", "date"))
        ended = _when(row, self.END, required=False)
        duration = _duration(_pick(row, self.DURATION), "duration")
        if duration is None and ended is not None:
            duration = (ended - started).total_seconds()
        if duration is not None and duration < 0:
            raise RowInvalid(f"the interaction ends before it starts ({duration:.0f} s)")
        raw_status = _pick_req(row, self.STATUS)
        status = CALL_STATUS.get(raw_status.lower())
        if status is None:
            raise RowInvalid(f"column 'status' has '{raw_status[:30]}'; expected success/failed (or resolved, abandoned, dropped, ...)")
        raw_channel = (_pick_req(row, ("channel", "medium", "contact_type"))).lower()
        channel = CHANNELS.get(raw_channel)
        if channel is None:
            raise RowInvalid(f"column 'channel' has '{raw_channel[:30]}'; expected email, chat, voice or video")
        notes = _pick(row, TEXT)
        call_id = _pick(row, self.CALL) or ctx.fallback_id(self.name).split(":", 1)[1]
        return _ticket(
            ticket_id=f"{self.name}:{call_id}", source=self.name, author_id=_pick_req(row, CUSTOMER),
            agent_id=_pick_req(row, AGENT), company=_pick(row, ("company", "brand", "client")),
            channel=channel, created_at=started, conversation_id=f"{self.name}:{call_id}",
            # A log line without notes still counts as an interaction; its text says what it was.
            text=notes or f"[{channel} interaction, {status}" + (f", {duration:.0f} s]" if duration is not None else "]"),
            text_is_summary=notes is None,
            call_duration_s=duration, call_status=status, category=_pick(row, ("category", "reason", "topic", "queue")),
            region=_pick(row, ("region", "site", "country")),
        )


class HelpdeskFormat(_AliasFormat):
    """Helpdesk tickets with submitted / first-response / resolved times, tier, industry, priority."""

    name = "helpdesk"
    TICKET = ("ticket_id", "ticket_number", "ticket", "id")
    SUBMITTED = ("submitted_at", "submitted", "created_at", "created", "opened_at", "date_submitted")
    FIRST = ("first_response_at", "first_response", "first_response_time", "first_reply_at", "responded_at")
    RESOLVED = ("resolved_at", "resolved", "resolution_time", "closed_at", "date_resolved")
    signature = (TICKET, SUBMITTED, FIRST + RESOLVED, ("priority", "tier", "industry", "customer_tier"))

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        ticket_id = _pick_req(row, self.TICKET)
        submitted = _when(row, self.SUBMITTED)
        first = _when(row, self.FIRST, required=False)
        resolved = _when(row, self.RESOLVED, required=False)
        for label, moment in (("first response", first), ("resolution", resolved)):
            if moment is not None and moment < submitted:
                raise RowInvalid(f"the {label} time is before the ticket was submitted")
        subject, body = _pick(row, ("subject", "title")), _pick(row, TEXT)
        text = " - ".join(p for p in (subject, body) if p)
        if not text:
            raise RowInvalid("required column 'text' is empty (also looked for description, body, subject)")
        return _ticket(
            ticket_id=f"{self.name}:{ticket_id}", source=self.name, author_id=_pick(row, CUSTOMER + ("requester", "requester_id")),
            agent_id=_pick(row, AGENT), company=_pick(row, ("company", "organization", "organisation", "client")),
            channel=(_pick(row, ("channel", "source_channel")) or "web").lower(), created_at=submitted, text=text,
            conversation_id=f"{self.name}:{ticket_id}",
            first_response_s=(first - submitted).total_seconds() if first else None,
            resolution_s=(resolved - submitted).total_seconds() if resolved else None,
            responder=_pick(row, AGENT) if first else None,
            tier=_pick(row, ("tier", "customer_tier", "plan")), industry=_pick(row, ("industry", "sector")),
            priority=_pick(row, ("priority", "urgency")), category=_pick(row, ("category", "type", "ticket_type")),
        )


class EndavaFormat(SourceFormat):
    """Endava helpdesk export (karolzak/support-tickets-classification): coded labels, no timestamps."""

    name = "endava"
    identifying_columns = frozenset({"title", "body", "ticket_type", "category", "urgency", "impact"})

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        text = " - ".join(p for p in (_opt(row, "title"), _opt(row, "body")) if p)
        if not text:
            raise RowInvalid("both 'title' and 'body' are empty")
        if ctx.received_at is None:
            raise RowInvalid("the export has no timestamps and the upload time is unknown")
        return _ticket(
            ticket_id=ctx.fallback_id(self.name), source=self.name, channel="web",
            created_at=ctx.received_at,  # the export carries no dates: the upload time stands in
            text=text, category=_opt(row, "category"), priority=_opt(row, "urgency"),
        )


FORMATS: dict[str, SourceFormat] = {
    f.name: f
    for f in (TwcsFormat(), AirlineFormat(), EscalationFormat(), CallLogFormat(), HelpdeskFormat(), EndavaFormat(), GenericTicketFormat())
}


def detect_source(columns: Iterable[str], override: str | None = None) -> SourceFormat:
    """The format for these columns; `override` (from the key prefix) wins when known."""
    if override and override in FORMATS:
        return FORMATS[override]
    present = {c.strip() for c in columns}
    for fmt in FORMATS.values():
        if fmt.matches(present):
            return fmt
    known = ", ".join(FORMATS)
    raise RowInvalid(
        f"unknown format: columns {', '.join(sorted(present))[:300]} match no known source ({known}); "
        "see 'Data formats' in the README, or upload under incoming/<source>/"
    )


def source_override(key: str) -> str | None:
    """`incoming/<source>/file.csv` names its source explicitly."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "incoming" and parts[1] in FORMATS:
        return parts[1]
    return None
