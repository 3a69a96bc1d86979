"""Property-based tests (Hypothesis) for the readers, the source mappers and ingest_file.

Whatever the bytes, encoding, quoting or values: nothing escapes as an exception, a file ends
rejected with a reason or with rows_read = tickets_emitted + rows_quarantined, every quarantined
row has a reason, and every message can be sent (UTF-8, no NaN/Infinity)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from supportlens.domain.ingest import MAX_MESSAGE_BYTES, ingest_file
from supportlens.domain.reader import FileRejected, ReadInfo, read_records
from supportlens.domain.sources import FORMATS, RowContext, RowInvalid

FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RECEIVED = datetime(2024, 6, 1, tzinfo=timezone.utc)

ODD_DATES = ["0001-01-01", "9999-12-31", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1970-01-01T00:00:00Z",
             "2024-02-30", "2024-06-01T25:00:00Z", "Tue Oct 31 22:10:47 +0000 2017", "Sun Feb 30 10:00:00 +2400 2017",
             "2015-02-24 11:35:52 -0800", "06/03/2024 08:00", "", "nan", "2024-06-01T09:00:00Z", "2024-06-01T09:00:00+14:00"]
ODD_NUMBERS = ["nan", "NaN", "inf", "-inf", "1e400", "-50", "0", "49.99", "1:-30", "1:75", "52:00", "0:52:00", "1:2:3:4", ":",
               "$1,000", "", " ", "1e-400", "12abc"]
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(list('",\n\r\t\\;\'\x00') + ["\u2028", "\ufeff", "\u4e2d", "\U0001f600", "a"]), max_size=30),
    st.sampled_from(ODD_DATES + ODD_NUMBERS + ["True", "False", "maybe", "1", "t", "voice", "carrier-pigeon", "E-Mail"]),
    st.just("x" * 5000),
)
dates = st.one_of(
    st.sampled_from(ODD_DATES),
    st.builds(lambda d, minutes: d.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
              st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)), st.integers(-1439, 1439)),
)

COLUMNS = {
    "ticket": ["ticket_id", "text", "created_at", "channel", "first_response_s", "concession_amount", "author_id"],
    "twcs": ["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"],
    "airline": ["tweet_id", "airline", "name", "text", "tweet_created", "negativereason"],
    "escalations": ["Case ID", "Customer ID", "Created At", "Description", "Refund Amount", "Delivery Status", "channel"],
    "calls": ["interaction_id", "customer_id", "agent_id", "channel", "start_time", "end_time", "duration", "status", "notes"],
    "helpdesk": ["ticket_id", "submitted_at", "first_response_at", "resolved_at", "priority", "subject", "description"],
    "endava": ["title", "body", "ticket_type", "category", "urgency", "impact"],
}
DATE_COLUMNS = {"created_at", "tweet_created", "Created At", "start_time", "end_time", "submitted_at", "first_response_at", "resolved_at"}


def row_for(fmt: str) -> st.SearchStrategy[dict[str, str]]:
    ids = st.sampled_from(["1", "2", "3", "1.0", "", "x" * 300])  # duplicate, empty and over-long ids
    return st.fixed_dictionaries({c: (dates if c in DATE_COLUMNS else ids if c.endswith("id") or c == "Case ID" else odd_text)
                                  for c in COLUMNS[fmt]})


def check_report(report, sent) -> None:
    """The invariants every ingest must keep."""
    if report.status in ("rejected", "partial"):
        assert report.reason and report.reason.strip()
    else:
        assert report.status == "emitted"
    assert report.rows_read == report.tickets_emitted + report.rows_quarantined
    assert len(report.quarantine) == report.rows_quarantined
    for q in report.quarantine:
        assert isinstance(q["reason"], str) and q["reason"].strip()
        json.dumps(q, ensure_ascii=False).encode()  # the quarantine file can be written
    messages = [m for batch in sent for m in batch]
    assert sum(len(m["tickets"]) for m in messages) == report.tickets_emitted
    for m in messages:  # as the SQS adapter encodes it; allow_nan=False: DynamoDB cannot store NaN
        assert len(json.dumps(m, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()) <= MAX_MESSAGE_BYTES


def run(data: bytes, key: str):
    sent: list[list[dict]] = []
    report = ingest_file(lambda: io.BytesIO(data), key, f"{key}#etag", sent.append, RECEIVED)
    check_report(report, sent)
    return report, sent


def csv_bytes(rows: list[dict[str, str]], columns: list[str], quoting: int, encoding: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, escapechar="\\" if quoting == csv.QUOTE_NONE else None)
    writer.writerow(columns)
    writer.writerows([[r[c] for c in columns] for r in rows])
    return out.getvalue().encode(encoding, errors="replace")


# --------------------------------------------------------------------------- whole files


@FAST
@given(data=st.binary(max_size=3000), key=st.sampled_from(["f.csv", "f.jsonl", "f.json", "f", "f.csv.gz"]), gz=st.booleans())
def test_arbitrary_bytes_never_escape(data, key, gz):
    run(gzip.compress(data) if gz else data, key)


@FAST
@given(
    fmt=st.sampled_from(sorted(COLUMNS)),
    rows=st.data(),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC, csv.QUOTE_NONE]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]),
    override=st.booleans(),
)
def test_csv_exports_in_any_quoting_and_encoding(fmt, rows, quoting, encoding, override):
    records = rows.draw(st.lists(row_for(fmt), min_size=1, max_size=8))
    body = csv_bytes(records, COLUMNS[fmt], quoting, encoding)
    report, _ = run(body, f"incoming/{fmt}/f.csv" if override else "incoming/f.csv")
    if encoding in ("utf-8", "utf-8-sig") and quoting != csv.QUOTE_NONE and report.status == "emitted":
        # Properly quoted UTF-8: every written row is exactly one record (none merged, none lost).
        assert report.rows_read == len(records)


title_line = st.text(alphabet=st.sampled_from(list("Exported tickets:  -/0123456789,")), max_size=60)


def test_a_title_line_above_a_header_of_blank_rows_is_still_a_title():
    """Found by the property below (endava, title "0", every field empty): rows of empty fields confirm the
    header's field count by their delimiters, so the title line is not taken for the header."""
    columns = COLUMNS["endava"]
    body = b"0\n" + csv_bytes([{c: "" for c in columns}] * 3, columns, csv.QUOTE_MINIMAL, "utf-8")
    report, _ = run(body, "incoming/f.csv")
    reasons = [q["reason"] for q in report.quarantine]
    assert report.rows_read == 4 and reasons[0].startswith("a line above the CSV header"), reasons
    assert all("fields but the header has" not in r for r in reasons), reasons


@FAST
@given(fmt=st.sampled_from(sorted(COLUMNS)), rows=st.data(), preamble=st.lists(title_line, min_size=1, max_size=3))
def test_title_lines_above_the_header_cost_only_themselves(fmt, rows, preamble):
    """An export's title lines (fewer fields than the header) are quarantined one each; every row is read."""
    columns = COLUMNS[fmt]
    preamble = [line for line in preamble if line.count(",") < len(columns) - 1]
    records = rows.draw(st.lists(row_for(fmt), min_size=3, max_size=8))
    body = ("\n".join(preamble) + "\n").encode() + csv_bytes(records, columns, csv.QUOTE_MINIMAL, "utf-8")
    report, _ = run(body, "incoming/f.csv")
    if report.status == "emitted":  # (a NUL byte in a row rejects the whole file as binary)
        titles = [q for q in report.quarantine if "above the CSV header" in q["reason"]]
        assert len(titles) == sum(1 for line in preamble if line.strip(" ,"))
        assert report.rows_read == len(records) + len(titles)


@FAST
@given(lines=st.lists(st.one_of(
    st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True, allow_infinity=True) | st.integers() | odd_text,
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(COLUMNS["ticket"] + ["Text", "x"]), inner, max_size=4),
                 max_leaves=12),
    st.fixed_dictionaries({"ticket_id": odd_text, "text": odd_text, "created_at": dates}),
), min_size=1, max_size=8), as_array=st.booleans())
def test_json_and_jsonl_values_never_escape(lines, as_array):
    if as_array:
        body, key = json.dumps(lines).encode(), "f.json"
    else:
        body, key = "\n".join(json.dumps(v) for v in lines).encode(), "f.jsonl"
    report, _ = run(body, key)
    if report.status == "emitted" and not as_array:
        assert report.rows_read == len(lines)


@FAST
@given(text=st.text(alphabet=st.sampled_from(list('ab,"\n\r')), max_size=200))
@example(text="aa,,a\r,,")  # found by CI: "id,text" was taken for a title line above the header "aa,,a"
def test_hand_made_csv_quoting_is_never_silently_merged(text):
    body = ("id,text\n" + text + "\n").encode()
    try:
        records = [r for chunk in read_records(io.BytesIO(body), "f.csv") for r in chunk]
    except FileRejected as exc:
        assert exc.reason
        return
    for record in records:
        assert record.data is not None or record.error
        if record.data is not None:
            assert set(record.data) == {"id", "text"}


# --------------------------------------------------------------------------- mappers


@FAST
@given(st.data())
def test_mappers_raise_only_row_invalid(data):
    fmt = data.draw(st.sampled_from(sorted(COLUMNS)))
    row = data.draw(row_for(fmt))
    ctx = RowContext(None, "f#e", 1, data.draw(st.sampled_from([None, RECEIVED])))
    try:
        ticket = FORMATS[fmt].to_ticket(row, ctx)
    except RowInvalid as exc:
        assert str(exc).strip()
        return
    message = ticket.to_message()
    json.dumps(message, allow_nan=False)
    for name in ("first_response_s", "resolution_s", "call_duration_s", "concession_amount"):
        value = getattr(ticket, name)
        assert value is None or (math.isfinite(value) and value >= 0)
    assert datetime(1990, 1, 1, tzinfo=timezone.utc) <= ticket.created_at <= datetime.now(timezone.utc) + timedelta(days=1)
    assert ticket.channel in {"twitter", "email", "chat", "voice", "video", "web", "phone", "other", "escalation"}


@FAST
@given(created=dates, fmt=st.sampled_from(["ticket", "escalations", "helpdesk", "calls"]))
def test_any_date_ends_plausible_or_quarantined(created, fmt):
    """A row valid in every other way: its date alone decides, and only plausible dates pass."""
    row = {"ticket": {"ticket_id": "t1", "text": "hello", "created_at": created},
           "escalations": {"case_id": "E1", "customer_id": "C1", "text": "refund", "created_at": created},
           "helpdesk": {"ticket_id": "H1", "submitted_at": created, "priority": "high", "subject": "hi"},
           "calls": {"call_id": "K1", "customer_id": "C1", "agent_id": "A1", "channel": "voice", "start_time": created,
                     "status": "ok"}}[fmt]
    try:
        ticket = FORMATS[fmt].to_ticket(row, RowContext())
    except RowInvalid as exc:
        assert "date" in str(exc) and created not in str(exc) or not created
        return
    assert datetime(1990, 1, 1, tzinfo=timezone.utc) <= ticket.created_at <= datetime.now(timezone.utc) + timedelta(days=1)


@FAST
@given(number=st.one_of(st.sampled_from(ODD_NUMBERS), st.floats().map(repr), st.floats().map(str)),
       field=st.sampled_from(["first_response_s", "resolution_s", "call_duration_s", "concession_amount"]))
def test_numbers_end_finite_and_non_negative_or_quarantined(number, field):
    row = {"ticket_id": "t1", "text": "hello", "created_at": "2024-06-01T09:00:00Z", field: number}
    try:
        message = FORMATS["ticket"].to_ticket(row, RowContext()).to_message()
    except RowInvalid as exc:
        assert field in str(exc)
        return
    json.dumps(message, allow_nan=False)  # NaN/Infinity would fail DynamoDB and the counters
    assert message.get(field, 0) >= 0


# --------------------------------------------------------------------------- delimiters

cell = st.one_of(
    st.text(alphabet=st.sampled_from(list(',;\t|"\n\r \'ab1') + ["\u00e9", "\ufeff"]), max_size=12),
    st.text(max_size=12).filter(lambda t: not any(c in t for c in "\x00") and not any("\ud800" <= c <= "\udfff" for c in t)),
)
column_names = st.lists(st.from_regex(r"[A-Za-z][A-Za-z0-9 _#]{0,10}", fullmatch=True).map(str.strip).filter(bool),
                        min_size=2, max_size=5, unique_by=str.lower)


@FAST
@given(names=column_names, data=st.data(), delimiter=st.sampled_from([",", ";", "\t", "|"]),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]), excel=st.booleans())
def test_a_table_written_with_any_delimiter_reads_back_the_same_rows(names, data, delimiter, quoting, excel):
    """Whatever the cells hold (other delimiters, quotes, newlines), a table a CSV writer wrote with
    ',', ';', tab or '|' reads back row for row; `excel`: BOM and CRLF as Excel writes them."""
    rows = data.draw(st.lists(st.lists(cell, min_size=len(names), max_size=len(names)), min_size=1, max_size=8))
    if not excel:  # a writer ending lines with "\n" leaves a "\r" in a cell unquoted: no reader could tell it apart
        rows = [[c.replace("\r", "") for c in r] for r in rows]
    rows = [r for r in rows if any(c.strip() for c in r)]  # a row of blanks is a blank line to the reader
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\r\n" if excel else "\n")
    writer.writerow(names)
    writer.writerows(rows)
    body = ("\ufeff" if excel else "") + out.getvalue()
    info = ReadInfo()
    records = [r for chunk in read_records(io.BytesIO(body.encode()), "export.csv", info=info) for r in chunk] if rows else []
    assert [r.data for r in records] == [dict(zip(names, row)) for row in rows]
    assert info.delimiter == (delimiter if rows else None)


@FAST
@given(values=st.lists(cell.filter(lambda t: t.strip()), min_size=1, max_size=8))
def test_a_one_column_table_stays_one_column(values):
    out = io.StringIO()
    csv.writer(out).writerows([["text"]] + [[v] for v in values])
    records = [r for chunk in read_records(io.BytesIO(out.getvalue().encode()), "export.csv") for r in chunk]
    assert [r.data for r in records] == [{"text": v} for v in values]
