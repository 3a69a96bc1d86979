"""Turn one uploaded file into ticket messages and quarantine records, with exact counts.

Pure: the caller passes a way to (re)open the file and callbacks that send and store.
Invariant: rows_read == tickets_emitted + rows_quarantined.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import IO, Any

from .reader import DELIMITERS, FileRejected, ReadInfo, Record, read_records
from .sources import FORMATS, RowContext, RowInvalid, SourceFormat, detect_source, source_override

BATCH_SCHEMA = "supportlens.ticket-batch/v1"
EVENT_SCHEMA = "supportlens.ticket/v1"
MAX_MESSAGE_BYTES = 200 * 1024  # SQS allows 256 KiB (1 MiB on AWS since 2025); keep headroom
ENVELOPE_BYTES = 200  # schema, file_id, chunk around the tickets
MAX_RAW_CHARS = 10_000
DETECT_RECORDS = 50  # readable records that decide the format


@dataclass
class IngestReport:
    source: str | None = None
    delimiter: str | None = None  # a CSV's field separator by name (comma, semicolon, tab, pipe)
    rows_read: int = 0
    tickets_emitted: int = 0
    rows_quarantined: int = 0
    chunks: int = 0
    status: str = "ingesting"
    reason: str | None = None
    quarantine: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("quarantine")
        return {k: v for k, v in data.items() if v is not None}


def pack_messages(tickets: list[dict[str, Any]], file_id: str, first_chunk: int) -> Iterator[dict[str, Any]]:
    """Group tickets into message bodies under MAX_MESSAGE_BYTES, numbering chunks."""
    chunk_no = first_chunk
    batch: list[dict[str, Any]] = []
    size = ENVELOPE_BYTES
    for ticket in tickets:
        ticket_size = len(json.dumps(ticket, ensure_ascii=False).encode()) + 2
        if batch and size + ticket_size > MAX_MESSAGE_BYTES:
            yield {"schema": BATCH_SCHEMA, "file_id": file_id, "chunk": chunk_no, "tickets": batch}
            chunk_no += 1
            batch, size = [], ENVELOPE_BYTES
        batch.append(ticket)
        size += ticket_size
    if batch:
        yield {"schema": BATCH_SCHEMA, "file_id": file_id, "chunk": chunk_no, "tickets": batch}


def ingest_file(
    open_stream: Callable[[], IO[bytes]],
    key: str,
    file_id: str,
    send: Callable[[list[dict[str, Any]]], None],
    received_at: datetime | None = None,
) -> IngestReport:
    """Read, map and send one file. `send` receives a list of message bodies to enqueue."""
    report = IngestReport()
    override = source_override(key)
    try:
        layout = ReadInfo()
        fmt = _detect(open_stream, key, override, layout)
        report.source = fmt.name if fmt else None
        report.delimiter = DELIMITERS.get(layout.delimiter or "")
        index = fmt.build_index(read_records(open_stream(), key)) if fmt and fmt.needs_index else None
        for chunk in read_records(open_stream(), key):
            tickets = []
            for record in chunk:
                report.rows_read += 1
                ctx = RowContext(index, file_id, record.row_number, received_at)
                ticket = _map(record, fmt, ctx, report)
                if ticket is not None:
                    tickets.append(ticket)
            messages = list(pack_messages(tickets, file_id, report.chunks))
            if messages:
                send(messages)
            report.chunks += len(messages)
            report.tickets_emitted += len(tickets)
    except FileRejected as exc:
        return _rejected(report, exc.reason)
    except RowInvalid as exc:  # raised by format detection: the file as a whole is unusable
        return _rejected(report, str(exc))
    report.status = "emitted"
    return report


def _detect(open_stream: Callable[[], IO[bytes]], key: str, override: str | None, layout: ReadInfo) -> SourceFormat | None:
    """The format, from the columns of the first readable records: unreadable (ragged) records
    at the top are skipped here and quarantined later, they do not decide the format.
    None when no record at all is readable (every record is then quarantined with its reason)."""
    columns: set[str] = set()
    readable = 0
    for chunk in read_records(open_stream(), key, chunk_rows=DETECT_RECORDS, info=layout):
        for record in chunk:
            if record.data is not None:
                columns |= set(record.data)
                readable += 1
        if readable >= DETECT_RECORDS:
            break
    if not readable:
        return FORMATS.get(override) if override else None
    return detect_source(columns, override)


def _map(record: Record, fmt: SourceFormat | None, ctx: RowContext, report: IngestReport) -> dict[str, Any] | None:
    reason = record.error
    if reason is None and fmt is not None:
        try:
            ticket = fmt.to_ticket(record.data or {}, ctx).to_message()
            if _fits(ticket):
                return ticket
            size = len(json.dumps(ticket, ensure_ascii=False).encode())
            reason = f"the ticket is {size // 1024} KiB as JSON, more than a queue message holds ({MAX_MESSAGE_BYTES // 1024} KiB)"
        except RowInvalid as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a row must end quarantined, never crash the file
            reason = f"the row could not be mapped ({type(exc).__name__})"
    report.rows_quarantined += 1
    reason = reason or "no record of the file is readable, so its format is unknown"
    report.quarantine.append({"row": record.row_number, "reason": reason, "raw": record.raw[:MAX_RAW_CHARS]})
    return None


def _fits(ticket: dict[str, Any]) -> bool:
    """Whether the ticket fits a message on its own. Measured exactly only when it might not:
    JSON takes at most 6 bytes per character (\\u00XX), plus names and numbers."""
    chars = sum(len(v) for v in ticket.values() if isinstance(v, str))
    if 6 * chars + 4096 + ENVELOPE_BYTES <= MAX_MESSAGE_BYTES:
        return True
    return len(json.dumps(ticket, ensure_ascii=False).encode()) + ENVELOPE_BYTES <= MAX_MESSAGE_BYTES


def _rejected(report: IngestReport, reason: str) -> IngestReport:
    """A file-level failure: nothing of it is emitted; counts restart so the invariant holds."""
    report.status = "rejected"
    report.reason = reason
    if report.tickets_emitted:
        # Part of the file was already sent before the corruption showed; keep those counts honest.
        report.status = "partial"
    return report
