"""The canonical ticket every source format is mapped to."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Channel = Literal["twitter", "email", "chat", "voice", "video", "web", "phone", "other"]


class Ticket(BaseModel):
    """One customer message (or company reply) in the shape every stage shares."""

    model_config = ConfigDict(extra="forbid")

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
