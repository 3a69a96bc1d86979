"""The canonical ticket every source format is mapped to."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Channel = Literal["twitter", "email", "chat", "voice", "video", "web", "phone", "other"]


class Ticket(BaseModel):
    """One customer message (or company reply) in the shape every stage shares."""

    # NaN/inf (pandas writes NaN for empty numbers; 1e400 parses as inf) cannot be stored in
    # DynamoDB: reject them here, so the row or event is quarantined with a reason.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    ticket_id: str = Field(min_length=1, max_length=256)
    source: str
    author_id: str | None = None  # customer (or, for company replies, the company account)
    company: str | None = None  # brand / company the message is about or from
    agent_id: str | None = None
    channel: str = "other"
    created_at: datetime
    text: str = Field(min_length=1, max_length=100_000)
    role: Literal["customer", "company"] = "customer"
    conversation_id: str | None = None
    in_reply_to: str | None = None
    # Response accounting (customer messages answered by the company).
    first_response_s: float | None = None
    resolution_s: float | None = None
    responder: str | None = None
    text_is_summary: bool = False  # True when a log line had no text and `text` describes it
    # True when the export had no timestamp and `created_at` is the upload time (stored only then): such
    # tickets are counted on that day but never make an issue emerge.
    created_at_is_upload: bool | None = None
    # Source-specific fields.
    call_duration_s: float | None = None
    call_status: Literal["success", "failed"] | None = None
    region: str | None = None
    category: str | None = None
    concession_amount: float | None = None
    delivery_status: str | None = None
    tier: str | None = None
    industry: str | None = None
    priority: str | None = None

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is blank")
        return value

    def to_message(self) -> dict:
        """JSON-safe dict for queue messages (datetimes as ISO-8601 UTC)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


# DynamoDB's item limit is 400 KB of UTF-8; the 100,000-character check above lets 300 KB of
# CJK text (or 400 KB of emoji) through, and a stored ticket holds the text twice (text and
# clean_text). Each text is cut to this many bytes, which keeps the item well under the limit.
MAX_STORED_TEXT_BYTES = 100_000
MAX_ITEM_BYTES = 350_000  # anything still larger (huge source fields) is quarantined, not retried


def truncate_utf8(value: str, max_bytes: int) -> tuple[str, bool]:
    """(value cut to at most `max_bytes` of UTF-8 at a character boundary, whether it was cut)."""
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= max_bytes:
        return value, False
    return encoded[:max_bytes].decode("utf-8", "ignore"), True


def fit_stored_text(item: dict[str, Any], fields: tuple[str, ...] = ("text", "clean_text")) -> None:
    """Cut the item's texts to MAX_STORED_TEXT_BYTES each; marks the item `text_truncated`."""
    for name in fields:
        if isinstance(item.get(name), str):
            item[name], cut = truncate_utf8(item[name], MAX_STORED_TEXT_BYTES)
            if cut:
                item["text_truncated"] = True


def stored_size(item: dict[str, Any]) -> int:
    """An upper estimate of the item's DynamoDB size (names + values as UTF-8 JSON)."""
    return len(json.dumps(item, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
