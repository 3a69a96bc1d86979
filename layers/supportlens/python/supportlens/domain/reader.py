"""Streaming reader for uploaded files: CSV, JSON array or JSONL, optionally gzip.

Yields records in chunks so memory stays flat whatever the file size (a JSON
array is the exception: it must be parsed whole, so it is capped).
Everything a person would need to fix a bad file is in `FileRejected.reason`.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

CHUNK_ROWS = 2_000
MAX_JSON_ARRAY_BYTES = 256 * 1024 * 1024
SNIFF_BYTES = 64 * 1024
csv.field_size_limit(10 * 1024 * 1024)


class FileRejected(Exception):
    """The whole file cannot be read; `reason` says why in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Record:
    row_number: int  # 1-based data record number (the CSV header is not counted)
    data: dict[str, Any] | None  # None when the record itself could not be parsed
    raw: str  # the raw text of the record, for the quarantine file
    error: str | None = None


def _open_text(stream: IO[bytes]) -> tuple[io.BufferedReader, bool]:
    buffered = io.BufferedReader(stream, buffer_size=1024 * 1024) if not hasattr(stream, "peek") else stream
    head = buffered.peek(2)[:2]
    if head == b"\x1f\x8b":
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered), buffer_size=1024 * 1024), True
    return buffered, False


def detect_format(key: str, first_char: str) -> str:
    name = key.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".json"):
        return "json"
    if name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if first_char == "[":
        return "json"
    if first_char == "{":
        return "jsonl"
    return "csv"


def read_records(stream: IO[bytes], key: str, chunk_rows: int = CHUNK_ROWS) -> Iterator[list[Record]]:
    """Yield lists of records; raise FileRejected for unreadable files."""
    binary, gzipped = _open_text(stream)
    try:
        head = binary.peek(SNIFF_BYTES)[:SNIFF_BYTES]
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"the file looks gzip-compressed but cannot be decompressed ({exc})") from exc
    if not head.strip():
        raise FileRejected("the file is empty" + (" after decompression" if gzipped else ""))
    if b"\x00" in head:
        raise FileRejected("the file is binary (it contains NUL bytes), not CSV, JSON or JSONL text")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut_by_window = len(head) == SNIFF_BYTES and exc.start >= len(head) - 4
        if not cut_by_window:  # only a multi-byte character cut by the sniff window is fine
            raise FileRejected(f"the file is not UTF-8 text (invalid byte at offset {exc.start})") from exc
    first_char = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1].decode("ascii", "replace")
    fmt = detect_format(key, first_char)
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="replace", newline="")
    try:
        if fmt == "csv":
            yield from _csv_chunks(text, chunk_rows)
        elif fmt == "jsonl":
            yield from _jsonl_chunks(text, chunk_rows)
        else:
            yield from _json_array_chunks(text, chunk_rows)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"the file is truncated or corrupt ({exc})") from exc


def _csv_chunks(text: io.TextIOBase, chunk_rows: int) -> Iterator[list[Record]]:
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("the file is empty") from None
    except csv.Error as exc:
        raise FileRejected(f"the CSV header cannot be parsed ({exc})") from exc
    header = [h.strip() for h in header]
    if not any(header):
        raise FileRejected("the CSV header row is blank")
    chunk: list[Record] = []
    row_number = 0
    seen_rows = False
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            row_number += 1
            chunk.append(Record(row_number, None, "", f"the CSV record cannot be parsed ({exc})"))
            continue
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        seen_rows = True
        row_number += 1
        raw = _csv_line(fields)
        if len(fields) != len(header):
            chunk.append(
                Record(row_number, None, raw, f"the record has {len(fields)} fields but the header has {len(header)}")
            )
        else:
            chunk.append(Record(row_number, dict(zip(header, fields)), raw))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if not seen_rows:
        raise FileRejected("the file has a header row but no data rows")
    if chunk:
        yield chunk


def _csv_line(fields: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _jsonl_chunks(text: io.TextIOBase, chunk_rows: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    row_number = 0
    for line in text:
        if not line.strip():
            continue
        row_number += 1
        raw = line.rstrip("\r\n")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            chunk.append(Record(row_number, None, raw, f"the line is not valid JSON ({exc.msg} at column {exc.colno})"))
        else:
            chunk.append(_json_record(row_number, value, raw))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if row_number == 0:
        raise FileRejected("the file is empty")
    if chunk:
        yield chunk


def _json_array_chunks(text: io.TextIOBase, chunk_rows: int) -> Iterator[list[Record]]:
    body = text.read(MAX_JSON_ARRAY_BYTES + 1)
    if len(body) > MAX_JSON_ARRAY_BYTES:
        raise FileRejected(
            f"a JSON array file larger than {MAX_JSON_ARRAY_BYTES // 2**20} MB cannot be streamed; send it as JSONL"
        )
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise FileRejected(f"the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    if isinstance(value, dict) and isinstance(value.get("tickets"), list):
        value = value["tickets"]
    if not isinstance(value, list):
        raise FileRejected("a JSON file must hold an array of objects (or {\"tickets\": [...]})")
    if not value:
        raise FileRejected("the JSON array is empty")
    for start in range(0, len(value), chunk_rows):
        yield [
            _json_record(start + i + 1, item, json.dumps(item, ensure_ascii=False, default=str))
            for i, item in enumerate(value[start : start + chunk_rows])
        ]


def _json_record(row_number: int, value: Any, raw: str) -> Record:
    if not isinstance(value, dict):
        return Record(row_number, None, raw, f"expected a JSON object, got {type(value).__name__}")
    return Record(row_number, value, raw)
