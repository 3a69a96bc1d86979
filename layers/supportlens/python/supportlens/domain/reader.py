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
import re
import zlib
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from itertools import islice
from dataclasses import dataclass
from typing import IO, Any

CHUNK_ROWS = 2_000
MAX_JSON_ARRAY_BYTES = 256 * 1024 * 1024
SNIFF_BYTES = 64 * 1024
# Exports often put a title or "exported on ..." lines above the header. At most this many lines
# are taken for such a preamble, and only when the rows below agree with the header (below).
PREAMBLE_MAX_LINES = 10
PREAMBLE_CONFIRM_ROWS = 3
PREAMBLE_PEEK_LINES = 200  # physical lines looked at: the confirming records may hold quoted newlines
# Delimiters a CSV may use (European Excel writes ';', TSV '\t', some exports '|'), by name for the lineage.
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
csv.field_size_limit(10 * 1024 * 1024)
# NUL, and the lone surrogates that undecodable bytes (surrogateescape) or JSON escapes leave:
# never valid support text, and they cannot be encoded for the queue.
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
_COLUMN_NAME = re.compile(r"[A-Za-z][A-Za-z _.()/#-]{0,39}")
_HEADER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9 _.()/#:?-]{0,59}")  # a column name, not a value (no '@', digits first...)


def column_list(columns: Iterable[Any]) -> str:
    """Column names for a reason; names that may be data (a file without a header makes its
    first row the header: ids, e-mails, numbers) are counted, not echoed, so no value reaches
    the logs. Names with digits are rare enough in exports to pay that price."""
    columns = {str(c).strip() for c in columns}
    shown = sorted(c for c in columns if _COLUMN_NAME.fullmatch(c))
    text = ", ".join(f"'{c}'" for c in shown)[:300]
    if len(shown) < len(columns):
        text += f"{' and ' if shown else ''}{len(columns) - len(shown)} that look like data, not column names (not shown)"
    return text or "none"


class FileRejected(Exception):
    """The whole file cannot be read; `reason` says why in plain words."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ReadInfo:
    """What read_records learnt about the file's layout, for the lineage (filled as it reads)."""

    delimiter: str | None = None  # a CSV's field separator (a key of DELIMITERS); None for JSON


@dataclass
class Record:
    row_number: int  # 1-based record number (the CSV header is not counted; preamble lines above it are)
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


def read_records(stream: IO[bytes], key: str, chunk_rows: int = CHUNK_ROWS, info: ReadInfo | None = None) -> Iterator[list[Record]]:
    """Yield lists of records; raise FileRejected for unreadable files. `info`, when given, is
    filled with the layout found (the CSV delimiter) once the first chunk is read."""
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
    # Bytes past the sniff window that are not UTF-8 are kept as surrogates, so the record holding
    # them is quarantined with a reason instead of being stored with silently replaced characters.
    text = io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        if fmt == "csv":
            default = "\t" if key.lower().removesuffix(".gz").endswith(".tsv") else ","
            yield from _csv_chunks(text, chunk_rows, info or ReadInfo(), default)
        elif fmt == "jsonl":
            yield from _jsonl_chunks(text, chunk_rows)
        else:
            yield from _json_array_chunks(text, chunk_rows)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected(f"the file is truncated or corrupt ({exc})") from exc


class _Lines:
    """The text's physical lines, remembering those of the record being parsed so that a
    record which swallowed later lines (an unclosed quote) can hand them back to be re-read."""

    def __init__(self, text: io.TextIOBase):
        self._text = iter(text)
        self._back: deque[str] = deque()
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.popleft() if self._back else next(self._text)
        self.taken.append(line)
        return line

    def give_back(self, lines: list[str]) -> None:
        self._back.extendleft(reversed(lines))


def _csv_chunks(text: io.TextIOBase, chunk_rows: int, info: ReadInfo, default: str = ",") -> Iterator[list[Record]]:
    lines = _Lines(text)
    peek = _peek(lines)
    delimiter = info.delimiter = _delimiter(peek, default)
    # strict: an unclosed quote fails at end of data (or at the next stray quote) instead of
    # silently turning the rest of the file into one field.
    preamble = peek[:_header_start(peek, delimiter)]
    for _ in preamble:
        next(lines)
    lines.taken = []
    reader = csv.reader(lines, strict=True, delimiter=delimiter)
    chunk: list[Record] = []
    row_number = 0
    for line in preamble:  # each one is quarantined with its reason, never silently dropped
        if not _field_counts([line], delimiter):
            continue  # a blank line, or only separators
        row_number += 1
        chunk.append(Record(row_number, None, _printable(line.rstrip("\r\n")),
                            "a line above the CSV header (a title or export note), not a record"))
    try:
        header = next(reader)
    except StopIteration:
        raise FileRejected("the file is empty") from None
    except csv.Error as exc:
        raise FileRejected(f"the CSV header cannot be parsed ({exc})") from exc
    header = _checked_header(header)
    seen_rows = False
    while True:
        lines.taken = []
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            seen_rows = True
            row_number += 1
            chunk.append(_unparsable(row_number, lines, f"the CSV record cannot be parsed ({exc})"))
        else:
            if not fields or (len(fields) == 1 and not fields[0].strip()):
                continue  # blank line
            seen_rows = True
            row_number += 1
            chunk.append(_csv_record(row_number, fields, header, lines, delimiter))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if not seen_rows:
        raise FileRejected("the file has a header row but no data rows")
    if chunk:
        yield chunk


def _field_counts(lines: list[str], delimiter: str = ",", limit: int | None = None, delimited_blanks: bool = False) -> list[int]:
    """Fields per record of `lines` read leniently (a quote may span lines), of the first `limit`
    counted records when given; [] when unreadable. Blank records are skipped; with `delimited_blanks`
    a record of empty fields (",,,,") still counts: its delimiters are evidence of the field count."""
    rows = csv.reader((line.replace("\x00", " ") for line in lines), delimiter=delimiter)
    try:
        return list(islice((len(row) for row in rows
                            if row and (any(f.strip() for f in row) or (delimited_blanks and len(row) > 1))), limit))
    except csv.Error:
        return []


def _looks_like_header(line: str, delimiter: str = ",") -> bool:
    names = [n.strip() for n in next(csv.reader([line], delimiter=delimiter), [])]
    return len(names) >= 2 and all(_HEADER_NAME.fullmatch(n) for n in names if n) and sum(map(bool, names)) * 2 > len(names)


def _peek(lines: _Lines) -> list[str]:
    """The first PREAMBLE_PEEK_LINES physical lines, handed back to be read again."""
    peek: list[str] = []
    for line in lines:
        peek.append(line)
        if len(peek) >= PREAMBLE_PEEK_LINES:
            break
    lines.give_back(peek)
    lines.taken = []
    return peek


def _delimiter(peek: list[str], default: str = ",") -> str:
    """The field separator of the file, from its first lines.

    Each candidate reads the lines as the file will be read (quotes respected, so a quoted ';' or
    ',' counts for nothing; title lines above the header found as below) and scores the records
    under its header: those that would read (as many fields as the header) minus those that would
    be quarantined. A candidate other than `default` must split the header into 2+ fields and read
    more records than it loses; the highest score wins and a tie keeps `default`. Reading the file
    as one column (`default` splits nothing) only competes with candidates that need title lines
    above their header: a header that splits into column names outweighs it, a guessed title not."""
    readings = {}
    for delimiter in DELIMITERS:
        start = _header_start(peek, delimiter)
        counts = _field_counts(peek[start:], delimiter)
        if counts:
            agree = counts[1:].count(counts[0])
            readings[delimiter] = (start, counts[0], agree - (len(counts) - 1 - agree))
    one_column = readings[default][2] if readings.get(default, (0, 0))[1] == 1 else None
    scores = {d: score for d, (start, fields, score) in readings.items()
              if fields >= 2 and (d == default or (score > 0 and not (start and one_column is not None and score <= one_column)))}
    best = max(scores.values(), default=0)
    winners = [d for d, n in scores.items() if n == best]
    return default if default in winners or len(winners) != 1 else winners[0]


def _header_start(peek: list[str], delimiter: str = ",") -> int:
    """How many of the first lines stand above the real header: 0 in the usual case.

    Lines are preamble only when each has fewer fields than a line below them that looks like a
    header (column names, not values) and whose field count the next PREAMBLE_CONFIRM_ROWS records
    confirm. A file whose rows disagree with its first line for any other reason keeps that line
    as the header, and its rows are quarantined one by one with the field counts in the reason."""
    for start in range(1, min(PREAMBLE_MAX_LINES, len(peek) - 1) + 1):
        # the header and its confirming rows (rows of empty fields confirm too)
        counts = _field_counts(peek[start:], delimiter, 1 + PREAMBLE_CONFIRM_ROWS, delimited_blanks=True)
        if len(counts) < 2 or counts[0] < 2:
            continue
        header_fields = counts[0]
        confirm = counts[1 : 1 + PREAMBLE_CONFIRM_ROWS]
        above = [max(_field_counts([line], delimiter) or [0]) for line in peek[:start]]
        # Fewer confirming records than PREAMBLE_CONFIRM_ROWS (a short file) confirm only when no line above
        # looks like a header itself: "id,text" over "aa,,a" and ",," had made "aa,,a" the header
        confirmed = len(confirm) == PREAMBLE_CONFIRM_ROWS or not any(_looks_like_header(line, delimiter) for line in peek[:start])
        if (confirmed and all(c == header_fields for c in confirm) and all(c < header_fields for c in above)
                and _looks_like_header(peek[start], delimiter)):
            return start
    return 0


def _checked_header(header: list[str]) -> list[str]:
    header = [h.strip() for h in header]
    if not any(header):
        raise FileRejected("the CSV header row is blank")
    if any(_BAD_TEXT.search(h) for h in header):
        raise FileRejected("the CSV header contains NUL bytes or bytes that are not UTF-8")
    repeated = sorted({h for h in header if h and header.count(h) > 1})
    if repeated:  # which of the two would be meant cannot be known: never pick one silently
        raise FileRejected(f"the CSV header repeats column(s) {column_list(repeated)}; rename or remove the copies")
    return header


def _csv_record(row_number: int, fields: list[str], header: list[str], lines: _Lines, delimiter: str = ",") -> Record:
    problem = _text_problem("".join(lines.taken))
    if problem:
        return Record(row_number, None, _printable(_csv_line(fields, delimiter)), problem)
    if len(fields) != len(header):
        if len(lines.taken) > 1:
            return _unparsable(row_number, lines, f"the record has {len(fields)} fields but the header has {len(header)}")
        return Record(row_number, None, _csv_line(fields, delimiter), f"the record has {len(fields)} fields but the header has {len(header)}")
    return Record(row_number, dict(zip(header, fields)), _csv_line(fields, delimiter))


def _unparsable(row_number: int, lines: _Lines, reason: str) -> Record:
    """A record spanning several lines that did not parse: most likely a quote opened in its
    first line never closed. Quarantine that line alone and read the lines after it again."""
    first, rest = (lines.taken or [""])[0], lines.taken[1:]
    if rest:
        lines.give_back(rest)
        reason += f"; a quote opened in this line is not closed where expected, so only this line is quarantined and the {len(rest)} line(s) after it are read again"
    return Record(row_number, None, _printable(first.rstrip("\r\n")), reason)


def _text_problem(text: str) -> str | None:
    bad = _BAD_TEXT.search(text)
    if bad is None:
        return None
    if bad.group() == "\x00":
        return "the record contains a NUL byte"
    return "the record contains bytes that are not valid UTF-8 text (or an unpaired surrogate escape)"


def _printable(raw: str) -> str:
    """Raw text safe to write as UTF-8 into the quarantine file."""
    return re.sub("[\ud800-\udfff]", "\ufffd", raw)


def _csv_line(fields: list[str], delimiter: str = ",") -> str:
    out = io.StringIO()  # in the file's own delimiter: the quarantined raw row reads like the file
    csv.writer(out, lineterminator="", delimiter=delimiter).writerow(fields)
    return out.getvalue()


class _Object(dict):
    """A decoded JSON object that remembers keys it had twice (json keeps the last silently)."""

    repeated: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        obj.repeated = tuple(sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1))
    return obj


_DECODER = json.JSONDecoder(object_pairs_hook=_object)
_TOO_DEEP = "the record nests objects or arrays too deeply to be read"


def _jsonl_chunks(text: io.TextIOBase, chunk_rows: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    row_number = 0
    for line in text:
        if not line.strip():
            continue
        row_number += 1
        raw = line.rstrip("\r\n")
        problem = _text_problem(raw)
        if problem:
            chunk.append(Record(row_number, None, _printable(raw), problem))
        else:
            try:
                value = _DECODER.decode(raw)
            except json.JSONDecodeError as exc:
                chunk.append(Record(row_number, None, raw, f"the line is not valid JSON ({exc.msg} at column {exc.colno})"))
            except RecursionError:
                chunk.append(Record(row_number, None, raw[:1000], _TOO_DEEP))
            else:
                chunk.append(_json_record(row_number, value, raw, escaped="\\u" in raw))
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
        value: Any = _DECODER.decode(body)
    except json.JSONDecodeError as exc:
        raise FileRejected(f"the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
    except RecursionError:
        value = None  # some item nests too deeply: read the array item by item below
    if isinstance(value, dict) and isinstance(value.get("tickets"), list):
        value = value["tickets"]
    if value is not None and not isinstance(value, list):
        raise FileRejected("a JSON file must hold an array of objects (or {\"tickets\": [...]})")
    if value == []:
        raise FileRejected("the JSON array is empty")
    escaped = "\\u" in body or _BAD_TEXT.search(body) is not None
    items = ((v, None) for v in value) if value is not None else _array_items(body)
    chunk: list[Record] = []
    for row_number, (item, error) in enumerate(items, start=1):
        if error:
            chunk.append(Record(row_number, None, "", error))
        else:
            try:
                raw = json.dumps(item, ensure_ascii=False, default=str)
            except RecursionError:
                chunk.append(Record(row_number, None, "", _TOO_DEEP))
            else:
                chunk.append(_json_record(row_number, item, _printable(raw) if escaped else raw, escaped))
        if len(chunk) >= chunk_rows:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


_WS = re.compile(r"[ \t\r\n]*")


def _tickets_array_at(body: str, pos: int) -> int:
    """Where the array of a {"tickets": [...]} wrapper starts (its other keys are skipped), read
    without recursing, for a wrapper holding an item too deep for the decoder."""
    pos = _WS.match(body, pos + 1).end()
    while body[pos : pos + 1] == '"':
        try:
            key, pos = _DECODER.raw_decode(body, pos)
        except json.JSONDecodeError as exc:
            raise FileRejected(f"the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
        pos = _WS.match(body, pos).end()
        if body[pos : pos + 1] != ":":
            break
        pos = _WS.match(body, pos + 1).end()
        if key == "tickets" and body[pos : pos + 1] == "[":
            return pos
        pos = _value_end(body, pos) if body[pos : pos + 1] in "[{" else _DECODER.raw_decode(body, pos)[1]
        pos = _WS.match(body, pos).end()
        if body[pos : pos + 1] == ",":
            pos = _WS.match(body, pos + 1).end()
    raise FileRejected("the JSON document nests objects or arrays too deeply to be read")


def _array_items(body: str) -> Iterator[tuple[Any, str | None]]:
    """The items of a top-level JSON array (or of a {"tickets": [...]} wrapper's array) one by one,
    so one item nested too deeply for the decoder is reported alone and the others are still read."""
    ws = _WS
    pos = ws.match(body, 0).end()
    if body[pos : pos + 1] == "{":
        pos = _tickets_array_at(body, pos)
    if body[pos : pos + 1] != "[":
        raise FileRejected("the JSON document nests objects or arrays too deeply to be read")
    pos = ws.match(body, pos + 1).end()
    while body[pos : pos + 1] != "]":
        try:
            item, pos = _DECODER.raw_decode(body, pos)
            yield item, None
        except RecursionError:
            pos = _value_end(body, pos)
            yield None, _TOO_DEEP
        except json.JSONDecodeError as exc:
            raise FileRejected(f"the file is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from exc
        pos = ws.match(body, pos).end()
        if body[pos : pos + 1] == ",":
            pos = ws.match(body, pos + 1).end()
        elif body[pos : pos + 1] != "]":
            raise FileRejected(f"the file is not valid JSON (expected ',' or ']' at offset {pos})")


def _value_end(body: str, pos: int) -> int:
    """Where the array or object starting at `pos` ends, without recursing."""
    depth, in_string, escape = 0, False, False
    for i in range(pos, len(body)):
        char = body[i]
        if in_string:
            if escape:
                escape = False
            elif char == "\\":
                escape = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
    raise FileRejected("the file is not valid JSON (an array or object is not closed)")


def _json_record(row_number: int, value: Any, raw: str, escaped: bool = False) -> Record:
    if not isinstance(value, dict):
        return Record(row_number, None, raw, f"expected a JSON object, got {type(value).__name__}")
    if getattr(value, "repeated", ()):
        return Record(row_number, None, raw, f"the object has the key(s) {column_list(value.repeated)} more than once")
    if escaped:  # only when the text has escapes or odd bytes: walking every value costs time
        problem = _text_problem_in(value)
        if problem:
            return Record(row_number, None, _printable(raw), problem)
    return Record(row_number, dict(value), raw)


def _text_problem_in(value: Any) -> str | None:
    """The first NUL / unpaired surrogate in any key or string of a decoded value (iterative:
    values may nest deeply)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                return problem
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None
