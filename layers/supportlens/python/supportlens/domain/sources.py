"""Source formats: recognise a file's format from its columns and map rows to Tickets.

Each format says which columns identify it; `incoming/<source>/...` overrides the
guess. A row that cannot become a ticket raises `RowInvalid` with a reason a
person can act on. Reasons name the column and the problem, never the value (they are
shown and logged; the value is in the quarantined raw row).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from .reader import Record, column_list
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


EARLIEST = datetime(1990, 1, 1, tzinfo=timezone.utc)  # no support export predates it: older is a bad default
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones, not tickets from next week


def _parsed(value: str, fmt: str | None) -> datetime | None:
    try:
        return datetime.strptime(value, fmt) if fmt else datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        return None


def _utc(parsed: datetime, column: str) -> datetime:
    """The moment in UTC, if it is a plausible time for a support message."""
    try:
        moment = parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    except OverflowError:  # e.g. year 1 with a positive UTC offset
        raise RowInvalid(f"column '{column}' has a date out of range") from None
    if not EARLIEST <= moment <= datetime.now(timezone.utc) + FUTURE_SLACK:
        raise RowInvalid(f"column '{column}' has an implausible date (before {EARLIEST.year} or more than a day in the future)")
    return moment


def _time(value: str, fmt: str | None, column: str) -> datetime:
    parsed = _parsed(value, fmt)
    if parsed is None:
        expected = f" (expected like {datetime(2017, 10, 31, 22, 10, 47, tzinfo=timezone.utc).strftime(fmt)})" if fmt else " (expected ISO-8601)"
        raise RowInvalid(f"column '{column}' has an unreadable date{expected}")
    return _utc(parsed, column)


NON_NEGATIVE = ("first_response_s", "resolution_s", "call_duration_s", "concession_amount")


def _ticket(**fields: Any) -> Ticket:
    try:
        ticket = Ticket(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "row"
        raise RowInvalid(f"field '{where}': {first['msg']}") from None
    for name in NON_NEGATIVE:  # NaN/inf cannot be stored or summed; negative durations/refunds are errors
        value = getattr(ticket, name)
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise RowInvalid(f"field '{name}' must be a finite number >= 0")
    return ticket


TRUE, FALSE = frozenset({"true", "1", "yes", "t", "y"}), frozenset({"false", "0", "no", "f", "n"})


def _flag(value: Any, column: str) -> bool:
    text = str(value).strip().lower() if value is not None else ""
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowInvalid(f"column '{column}' must be true or false")


@dataclass
class TwcsIndex:
    """What a TWCS row needs from the rest of the file: thread root, first reply, and which authors are
    companies (the authors of outbound tweets)."""

    parent: dict[str, str] = field(default_factory=dict)
    inbound_at: dict[str, datetime] = field(default_factory=dict)
    first_reply: dict[str, tuple[datetime, str]] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)  # lower-cased company handle -> as written

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
            inbound = _flag(row.get("inbound"), "inbound")
        except RowInvalid:
            return  # the row itself is quarantined when it is mapped
        if inbound:
            self.inbound_at[tweet_id] = at
            return
        author = _opt(row, "author_id") or ""
        if author:
            self.handles.setdefault(author.lower(), author)
        if parent:
            parent = parent.split(".")[0]
            best = self.first_reply.get(parent)
            if best is None or at < best[0]:
                self.first_reply[parent] = (at, author)

    def company_of(self, tweet_id: str, text: str) -> str | None:
        """The company a customer tweet nobody answered directly is addressed to: the company that first
        answered the nearest tweet up its thread, else the first @mention of a company handle seen in the
        file. Without this a quarter of the sample's customer tweets had company "unknown"."""
        seen = {tweet_id}
        node = tweet_id
        while node in self.parent and self.parent[node] not in seen:
            node = self.parent[node]
            seen.add(node)
            if node in self.first_reply:
                return self.first_reply[node][1] or None
        for handle in _MENTION.findall(text):
            if handle.lower() in self.handles:
                return self.handles[handle.lower()]
        return None

    def root(self, tweet_id: str) -> str:
        seen = {tweet_id}
        while tweet_id in self.parent and self.parent[tweet_id] not in seen:
            tweet_id = self.parent[tweet_id]
            seen.add(tweet_id)
        return tweet_id


TWCS_TIME = "%a %b %d %H:%M:%S %z %Y"
_MENTION = re.compile(r"@(\w{1,30})")


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
        """`columns` are normalised (see `normalise`)."""
        return self.identifying_columns <= columns

    def build_index(self, chunks: Iterable[list[Record]]) -> Any:
        return None

    def to_ticket(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        """Every format sees its headers normalised: 'Tweet ID' is tweet_id."""
        return self.map_row(normalise_row(row), ctx)

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
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
                    try:
                        index.add(normalise_row(record.data))
                    except RowInvalid:
                        continue  # quarantined when mapped
        return index

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        tweet_id = _req(row, "tweet_id")
        author = _req(row, "author_id")
        created = _time(_req(row, "created_at"), TWCS_TIME, "created_at")
        inbound = _flag(row.get("inbound"), "inbound")
        parent = _opt(row, "in_response_to_tweet_id")
        parent = parent.split(".")[0] if parent else None
        index = ctx.index or TwcsIndex()
        conversation = _opt(row, "conversation_id") or index.root(tweet_id)
        first_response_s = responder = None
        if inbound and tweet_id in index.first_reply:
            replied_at, responder = index.first_reply[tweet_id]
            first_response_s = max(0.0, (replied_at - created).total_seconds())
        text = _req(row, "text")
        if not inbound:
            company = author
        else:
            company = responder or index.company_of(tweet_id, text)
        return _ticket(
            ticket_id=f"twcs:{tweet_id}",
            source=self.name,
            author_id=author,
            company=company,
            channel="twitter",
            created_at=created,
            text=text,
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

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
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
        # Checked on the names as written, so that data posing as a column name is not echoed.
        unknown = [c for c in row if normalise(str(c)) not in Ticket.model_fields and normalise(str(c)) != "schema"]
        if unknown:
            raise RowInvalid(f"unknown field(s) {column_list(unknown)} (see the ticket schema in the README)")
        return super().to_ticket(row, ctx)

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        fields = {k: (v if v != "" else None) for k, v in row.items() if k in Ticket.model_fields}
        fields.setdefault("source", "ticket")
        if isinstance(fields.get("channel"), str):
            fields["channel"] = _channel(fields["channel"], "other")
        _req(row, "ticket_id")
        _req(row, "text")
        created = _req(row, "created_at")
        fields["created_at"] = _time(created, None, "created_at")
        return _ticket(**fields)


@lru_cache(maxsize=4096)  # a file has few distinct headers and many rows
def normalise(column: str) -> str:
    """'Customer ID' / 'customer-id' / 'CustomerId' -> 'customer_id'."""
    column = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column.strip())
    return re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@lru_cache(maxsize=256)
def _distinct_names(columns: tuple[str, ...]) -> tuple[str, ...] | None:
    """The normalised names of a header, or None when two of them collide."""
    names = tuple(normalise(str(c)) for c in columns)
    return names if len(set(names)) == len(names) else None


def normalise_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with normalised column names. Two columns meaning the same one ('Text' and
    'text') may not disagree: which was meant cannot be known, so the row is invalid."""
    names = _distinct_names(tuple(row))  # the usual case: one header, no collisions
    if names is not None:
        return dict(zip(names, row.values()))
    out: dict[str, Any] = {}
    original: dict[str, str] = {}
    for column, value in row.items():
        name = normalise(str(column))
        if name in out and not _blank(out[name]):
            if not _blank(value) and value != out[name]:
                raise RowInvalid(f"columns {column_list([original[name], str(column)])} both mean '{name}' and differ")
            continue
        out[name], original[name] = value, str(column)
    return out


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
        number = float(cleaned)
    except ValueError:
        raise RowInvalid(f"column '{column}' is not a number") from None
    if not math.isfinite(number):  # 'nan', 'inf', '1e400'
        raise RowInvalid(f"column '{column}' is not a finite number")
    return number


def _amount(value: str | None, column: str) -> float | None:
    number = _number(value, column)
    if number is not None and number < 0:
        raise RowInvalid(f"column '{column}' is negative")
    return number


def _duration(value: str | None, column: str) -> float | None:
    """Seconds from '3120', '3120.5', '52:00' (mm:ss) or '0:52:00' (h:mm:ss)."""
    if value is None:
        return None
    if ":" not in value:
        return _amount(value, column)
    parts = value.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    # '1:-30' or '1:75' is not a duration: every part >= 0, minutes and seconds below 60.
    if not (2 <= len(parts) <= 3 and all(math.isfinite(n) and n >= 0 for n in numbers) and all(n < 60 for n in numbers[1:])):
        raise RowInvalid(f"column '{column}' is not a duration (expected seconds, mm:ss or h:mm:ss)")
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return seconds


def _when(row: Mapping[str, Any], aliases: tuple[str, ...], required: bool = True) -> datetime | None:
    value = _pick_req(row, aliases) if required else _pick(row, aliases)
    if value is None:
        return None
    for fmt in (None, "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%d.%m.%Y %H:%M", "%Y-%m-%d"):
        parsed = _parsed(value, fmt)
        if parsed is not None:
            return _utc(parsed, aliases[0])
    raise RowInvalid(f"column '{aliases[0]}' has an unreadable date (expected ISO-8601 like 2024-06-01T09:00:00Z)")


CUSTOMER = ("customer_id", "customer", "client_id", "account_id", "user_id", "caller_id")
AGENT = ("agent_id", "agent", "agent_name", "assignee", "handled_by")
TEXT = ("text", "description", "complaint", "summary", "notes", "message", "body", "transcript")


class _AliasFormat(SourceFormat):
    """Formats whose columns vary between exports: headers are normalised and aliases accepted."""

    signature: tuple[tuple[str, ...], ...] = ()

    def matches(self, columns: set[str]) -> bool:
        return all(any(alias in columns for alias in group) for group in self.signature)


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
            agent_id=_pick(row, AGENT), channel=_channel(_pick(row, ("channel",)), "escalation"),
            created_at=_when(row, ("created_at", "opened_at", "created", "date", "case_date", "timestamp")),
            text=_pick_req(row, TEXT), conversation_id=f"{self.name}:{case_id}",
            region=_pick(row, ("region", "market", "country")), category=_pick(row, ("category", "reason", "issue_type")),
            concession_amount=_amount(_pick(row, self.CONCESSION), "concession_amount"),
            delivery_status=_pick(row, self.DELIVERY), priority=_pick(row, ("priority", "severity")),
        )


CALL_STATUS = {"success": "success", "successful": "success", "resolved": "success", "completed": "success", "answered": "success",
               "ok": "success", "failed": "failed", "failure": "failed", "fail": "failed", "unresolved": "failed", "abandoned": "failed",
               "dropped": "failed", "missed": "failed", "error": "failed"}
CHANNELS = {"email": "email", "e-mail": "email", "mail": "email", "chat": "chat", "live chat": "chat", "voice": "voice",
            "phone": "voice", "call": "voice", "video": "video", "video call": "video"}
# Ticket channels besides call logs: known names and aliases; anything else is 'other', so an
# unexpected label neither loses the ticket nor adds a new aggregate dimension per typo.
TICKET_CHANNELS = {**CHANNELS, "phone": "phone", **{c: c for c in ("twitter", "web", "other", "escalation")}}


def _channel(value: str | None, default: str) -> str:
    return default if value is None else TICKET_CHANNELS.get(value.strip().lower(), "other")


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
            raise RowInvalid("column 'status' has an unknown value; expected success/failed (or resolved, abandoned, dropped, ...)")
        raw_channel = (_pick_req(row, ("channel", "medium", "contact_type"))).lower()
        channel = CHANNELS.get(raw_channel)
        if channel is None:
            # A call log's channel is what the row is about: an unknown one is quarantined, not guessed.
            raise RowInvalid("column 'channel' has an unknown value; expected email, chat, voice or video")
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
            channel=_channel(_pick(row, ("channel", "source_channel")), "web"), created_at=submitted, text=text,
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

    def content_id(self, row: Mapping[str, Any]) -> str:
        """The export has no ticket id: a digest of the row's content, so the same export uploaded
        again under another name is the same tickets (duplicates), not new ones."""
        content = json.dumps(sorted((normalise(str(k)), "" if v is None else str(v).strip()) for k, v in row.items()),
                             ensure_ascii=False)
        return f"{self.name}:{hashlib.sha256(content.encode('utf-8', 'surrogatepass')).hexdigest()[:20]}"

    def map_row(self, row: Mapping[str, Any], ctx: RowContext) -> Ticket:
        text = " - ".join(p for p in (_opt(row, "title"), _opt(row, "body")) if p)
        if not text:
            raise RowInvalid("both 'title' and 'body' are empty")
        if ctx.received_at is None:
            raise RowInvalid("the export has no timestamps and the upload time is unknown")
        return _ticket(
            ticket_id=self.content_id(row), source=self.name, channel="web",
            created_at=ctx.received_at, created_at_is_upload=True,  # no dates in the export: the upload time stands in
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
    columns = set(columns)
    present = {normalise(str(c)) for c in columns}
    for fmt in FORMATS.values():
        if fmt.matches(present):
            return fmt
    known = ", ".join(FORMATS)
    raise RowInvalid(
        f"unknown format: columns {column_list(columns)} match no known source ({known}); "
        "see 'Data formats' in the README, or upload under incoming/<source>/"
    )


def source_override(key: str) -> str | None:
    """`incoming/<source>/file.csv` names its source explicitly."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[0] == "incoming" and parts[1] in FORMATS:
        return parts[1]
    return None
