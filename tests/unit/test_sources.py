"""Unit tests for supportlens.domain.sources (format detection, TWCS mapping) and domain.ingest."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from supportlens.domain.ingest import BATCH_SCHEMA, MAX_MESSAGE_BYTES, ingest_file, pack_messages
from supportlens.domain.reader import Record
from supportlens.domain.sources import (
    FORMATS,
    AirlineFormat,
    GenericTicketFormat,
    RowContext,
    RowInvalid,
    TwcsFormat,
    TwcsIndex,
    detect_source,
    source_override,
)
from supportlens.domain.tickets import Ticket

TWCS_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "twcs" / "train.csv"

TWCS_HEADER = "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id"
AIRLINE_HEADER = (
    "tweet_id,airline_sentiment,airline_sentiment_confidence,negativereason,negativereason_confidence,airline,"
    "airline_sentiment_gold,name,negativereason_gold,retweet_count,text,tweet_coord,tweet_created,tweet_location,user_timezone"
)

# A thread: 100 (customer) <- 101 (company, +5 min) <- 102 (customer, written in +01:00) <- 103 (company).
# 200 is a customer tweet nobody answered; 300 is answered twice (the earliest reply counts).
TWCS_CSV = f"""{TWCS_HEADER}
100,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare my phone has had no signal since noon,101,
101,sprintcare,False,Tue Oct 31 22:15:47 +0000 2017,@115712 Sorry to hear that! Please DM us your zip code ^JK,102,100
102,115712,True,Tue Oct 31 23:20:00 +0100 2017,"@sprintcare done, check your DMs",103,101.0
103,sprintcare,False,Tue Oct 31 22:40:00 +0000 2017,@115712 Got it -KC,,102
200,115800,True,Wed Nov 01 08:00:00 +0000 2017,@AppleSupport my battery drains overnight,,
300,115900,True,Wed Nov 01 09:00:00 +0000 2017,@AmazonHelp where is my parcel,"301,302",
302,AmazonHelp,False,Wed Nov 01 09:30:00 +0000 2017,@115900 Let us check. ^AB,,300
301,AmazonHelp,False,Wed Nov 01 09:02:00 +0000 2017,@115900 Hi! Can you DM us? ^CD,,300
"""


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def map_twcs(csv_text: str) -> dict[str, Ticket]:
    """Run the inline TWCS file through ingest_file; the emitted tickets (parsed back as a consumer does) by tweet id."""
    sent: list[list[dict]] = []
    data = csv_text.encode()
    report = ingest_file(lambda: io.BytesIO(data), "incoming/twcs/x.csv", "file-1", sent.append)
    assert report.status == "emitted", report
    tickets = [Ticket.model_validate(t) for batch in sent for message in batch for t in message["tickets"]]
    return {t.ticket_id.split(":", 1)[1]: t for t in tickets}


# --------------------------------------------------------------------------- detect_source / override


def test_detect_source_twcs():
    assert detect_source(TWCS_HEADER.split(",")).name == "twcs"
    assert isinstance(detect_source(TWCS_HEADER.split(",")), TwcsFormat)


def test_detect_source_twcs_with_extra_columns():
    columns = ["conversation_id", *TWCS_HEADER.split(","), "thread_complete"]
    assert detect_source(columns).name == "twcs"


def test_detect_source_airline():
    fmt = detect_source(AIRLINE_HEADER.split(","))
    assert fmt.name == "airline"
    assert isinstance(fmt, AirlineFormat)


def test_detect_source_generic_ticket():
    fmt = detect_source(["ticket_id", "text", "created_at", "company", "channel"])
    assert fmt.name == "ticket"
    assert isinstance(fmt, GenericTicketFormat)


def test_detect_source_strips_column_whitespace():
    assert detect_source([" ticket_id", "text ", " created_at "]).name == "ticket"


def test_detect_source_unknown_columns_names_known_formats():
    with pytest.raises(RowInvalid) as info:
        detect_source(["foo", "bar", "baz"])
    message = str(info.value)
    assert "unknown format" in message
    assert "foo" in message and "bar" in message
    for name in FORMATS:
        assert name in message
    assert "twcs" in message and "airline" in message and "ticket" in message


def test_detect_source_override_wins():
    assert detect_source(["foo"], override="twcs").name == "twcs"
    assert detect_source(["ticket_id", "text", "created_at"], override="airline").name == "airline"
    # An unknown override is ignored: the columns decide.
    assert detect_source(["ticket_id", "text", "created_at"], override="nope").name == "ticket"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/twcs/x.csv", "twcs"),
        ("incoming/airline/2024/03/tweets.csv.gz", "airline"),
        ("incoming/ticket/t.jsonl", "ticket"),
        ("incoming/unknown/x.csv", None),
        ("incoming/x.csv", None),
        ("uploads/twcs/x.csv", None),
        ("twcs", None),
    ],
)
def test_source_override(key, expected):
    assert source_override(key) == expected


# --------------------------------------------------------------------------- TWCS mapping


def test_twcs_first_response_is_seconds_to_first_company_reply():
    tickets = map_twcs(TWCS_CSV)
    customer = tickets["100"]
    assert customer.role == "customer"
    assert customer.first_response_s == 300.0
    assert customer.responder == "sprintcare"
    assert customer.company == "sprintcare"
    assert customer.author_id == "115712"


def test_twcs_earliest_reply_counts_even_if_listed_later():
    tickets = map_twcs(TWCS_CSV)
    assert tickets["300"].first_response_s == 120.0
    assert tickets["300"].responder == "AmazonHelp"


def test_twcs_unanswered_customer_tweet_has_no_response_fields():
    ticket = map_twcs(TWCS_CSV)["200"]
    assert ticket.role == "customer"
    assert ticket.first_response_s is None
    assert ticket.responder is None


def test_twcs_customer_tweet_without_a_direct_reply_gets_its_company_from_the_thread_or_a_mention():
    """A follow-up nobody answered belongs to the company answering its thread; a first tweet nobody
    answered to the company handle it mentions, when that handle is a company of the file (an outbound
    author): otherwise `@AppleSupport` could be anyone."""
    csv_text = TWCS_CSV + "\n".join([
        "400,115950,True,Wed Nov 01 10:00:00 +0000 2017,@sprintcare still nothing,,103",  # follows up 103
        "500,116000,True,Wed Nov 01 11:00:00 +0000 2017,my parcel is late @AMAZONHELP @sprintcare,,",
        "600,116100,True,Wed Nov 01 12:00:00 +0000 2017,@116000 same here,,",
    ]) + "\n"
    tickets = map_twcs(csv_text)
    assert tickets["400"].company == "sprintcare" and tickets["400"].responder is None
    assert tickets["500"].company == "AmazonHelp"  # the first company handle, matched case-insensitively
    assert tickets["600"].company is None  # a customer mentioning a customer
    assert tickets["200"].company is None  # AppleSupport never answers in this file
    assert tickets["102"].company == "sprintcare"  # direct replies still decide first


def test_twcs_company_replies_have_company_role():
    tickets = map_twcs(TWCS_CSV)
    for tweet_id in ("101", "103", "301", "302"):
        assert tickets[tweet_id].role == "company"
        assert tickets[tweet_id].company == tickets[tweet_id].author_id
        assert tickets[tweet_id].first_response_s is None
    for tweet_id in ("100", "102", "200", "300"):
        assert tickets[tweet_id].role == "customer"
    assert tickets["101"].in_reply_to == "twcs:100"
    assert tickets["102"].in_reply_to == "twcs:101"  # '101.0' (pandas float export) is normalised


def test_twcs_conversation_id_is_thread_root():
    tickets = map_twcs(TWCS_CSV)
    assert {tickets[t].conversation_id for t in ("100", "101", "102", "103")} == {"twcs:100"}
    assert tickets["200"].conversation_id == "twcs:200"
    assert {tickets[t].conversation_id for t in ("300", "301", "302")} == {"twcs:300"}


def test_twcs_created_at_is_utc():
    sent: list[list[dict]] = []
    ingest_file(lambda: io.BytesIO(TWCS_CSV.encode()), "incoming/twcs/x.csv", "file-1", sent.append)
    raw = {t["ticket_id"]: t for batch in sent for m in batch for t in m["tickets"]}
    assert raw["twcs:100"]["created_at"] == "2017-10-31T22:10:47Z"
    # Written at 23:20 +01:00 -> 22:20 UTC
    assert raw["twcs:102"]["created_at"] == "2017-10-31T22:20:00Z"
    tickets = map_twcs(TWCS_CSV)
    assert tickets["102"].created_at == utc(2017, 10, 31, 22, 20)
    assert all(t.created_at.utcoffset() == timedelta(0) for t in tickets.values())
    # ... and its answer at 22:40 UTC is 20 minutes later, not 1 h 20 min earlier.
    assert tickets["102"].first_response_s == 1200.0


def test_twcs_to_ticket_direct():
    fmt = TwcsFormat()
    rows = [
        {"tweet_id": "1", "author_id": "9", "inbound": "True", "created_at": "Tue Oct 31 22:10:47 +0000 2017",
         "text": "help", "in_response_to_tweet_id": ""},
        {"tweet_id": "2", "author_id": "acme", "inbound": "False", "created_at": "Tue Oct 31 22:15:47 +0000 2017",
         "text": "hi", "in_response_to_tweet_id": "1"},
    ]
    index = fmt.build_index([[Record(i + 1, row, "") for i, row in enumerate(rows)]])
    ticket = fmt.to_ticket(rows[0], RowContext(index=index))
    assert ticket.created_at == utc(2017, 10, 31, 22, 10, 47)
    assert ticket.created_at.utcoffset() == timedelta(0)
    assert ticket.first_response_s == 300.0
    assert ticket.responder == "acme"
    assert ticket.channel == "twitter"
    reply = fmt.to_ticket(rows[1], RowContext(index=index))
    assert reply.role == "company" and reply.conversation_id == "twcs:1"
    # Without an index a row still maps; it is its own thread root.
    alone = fmt.to_ticket(rows[0], RowContext())
    assert alone.conversation_id == "twcs:1" and alone.first_response_s is None


def test_twcs_index_root_survives_cycles():
    index = TwcsIndex(parent={"a": "b", "b": "a"})
    assert index.root("a") in {"a", "b"}


def test_twcs_row_errors_are_human_readable():
    fmt = TwcsFormat()
    base = {"tweet_id": "1", "author_id": "9", "inbound": "True", "created_at": "Tue Oct 31 22:10:47 +0000 2017", "text": "x"}
    with pytest.raises(RowInvalid, match="required column 'text' is empty"):
        fmt.to_ticket({**base, "text": "   "}, RowContext())
    with pytest.raises(RowInvalid, match="unreadable date.*expected like Tue Oct 31 22:10:47 \\+0000 2017") as info:
        fmt.to_ticket({**base, "created_at": "2017-10-31"}, RowContext())
    assert "2017-10-31" not in str(info.value)  # reasons name the column, never echo the value


def test_airline_row_maps():
    row = dict.fromkeys(AIRLINE_HEADER.split(","), "")
    row.update(tweet_id="570306133677760513", airline="Virgin America", name="cairdin", negativereason="Late Flight",
               text="@VirginAmerica What @dhepburn said.", tweet_created="2015-02-24 11:35:52 -0800")
    ticket = FORMATS["airline"].to_ticket(row, RowContext())
    assert ticket.ticket_id == "airline:570306133677760513"
    assert ticket.company == "Virgin America"
    assert ticket.category == "Late Flight"
    assert ticket.created_at == utc(2015, 2, 24, 19, 35, 52)


def test_generic_ticket_rejects_unknown_fields():
    with pytest.raises(RowInvalid, match="unknown field"):
        FORMATS["ticket"].to_ticket({"ticket_id": "t1", "text": "x", "created_at": "2024-01-01T00:00:00Z", "colour": "red"}, RowContext())


# --------------------------------------------------------------------------- ingest_file


BAD_ROWS_CSV = f"""{TWCS_HEADER}
1,115712,True,Tue Oct 31 22:10:47 +0000 2017,@sprintcare no signal,2,
2,sprintcare,False,Tue Oct 31 22:15:47 +0000 2017,@115712 Please DM us ^JK,,1
3,115713,True,Tue Oct 31 22:20:00 +0000 2017,   ,,
4,115714,True,31/10/2017 22:30,@sprintcare hello?,,
5,115715,True,Tue Oct 31 22:40:00 +0000 2017,@sprintcare still nothing,,
"""


def run_ingest(data: bytes, key: str = "incoming/twcs/batch.csv", file_id: str = "file-1"):
    sent: list[list[dict]] = []
    opened = []

    def open_stream():
        opened.append(1)
        return io.BytesIO(data)

    report = ingest_file(open_stream, key, file_id, sent.append)
    return report, sent, opened


def test_ingest_counts_and_quarantine():
    report, sent, _ = run_ingest(BAD_ROWS_CSV.encode())
    assert report.status == "emitted"
    assert report.source == "twcs"
    assert report.rows_read == 5
    assert report.rows_read == report.tickets_emitted + report.rows_quarantined
    assert report.tickets_emitted == 3
    assert report.rows_quarantined == 2
    assert len(report.quarantine) == 2
    by_row = {q["row"]: q for q in report.quarantine}
    assert set(by_row) == {3, 4}
    assert "text" in by_row[3]["reason"] and "empty" in by_row[3]["reason"]
    assert "created_at" in by_row[4]["reason"] and "unreadable date" in by_row[4]["reason"]
    assert by_row[4]["raw"].startswith("4,115714,True,31/10/2017")
    counts = report.counts()
    assert "quarantine" not in counts and counts["rows_read"] == 5


def test_ingest_messages_shape():
    report, sent, _ = run_ingest(BAD_ROWS_CSV.encode(), file_id="f-42")
    messages = [m for batch in sent for m in batch]
    assert messages and all(isinstance(m, dict) for m in messages)
    for m in messages:
        assert m["schema"] == BATCH_SCHEMA == "supportlens.ticket-batch/v1"
        assert m["file_id"] == "f-42"
        json.dumps(m)  # JSON-safe
    assert [m["chunk"] for m in messages] == list(range(len(messages)))
    assert report.chunks == len(messages)
    ids = [t["ticket_id"] for m in messages for t in m["tickets"]]
    assert ids == ["twcs:1", "twcs:2", "twcs:5"]


def test_ingest_generic_ticket_file_with_bad_rows():
    data = (
        b"ticket_id,text,created_at,company,channel\n"
        b"t1,my order is late,2024-03-04T10:00:00Z,acme,email\n"
        b"t2,,2024-03-04T10:01:00Z,acme,email\n"
        b"t3,hello,yesterday-ish,acme,email\n"
        b"t4,all good now,2024-03-04T12:00:00+02:00,acme,chat\n"
    )
    report, sent, _ = run_ingest(data, key="uploads/tickets.csv")
    assert report.source == "ticket"
    assert (report.rows_read, report.tickets_emitted, report.rows_quarantined) == (4, 2, 2)
    assert sorted(q["row"] for q in report.quarantine) == [2, 3]
    tickets = [t for batch in sent for m in batch for t in m["tickets"]]
    assert tickets[1]["created_at"] == "2024-03-04T10:00:00Z"


def test_ingest_3000_long_tickets_split_into_messages_under_limit():
    rows = ["ticket_id,text,created_at,company,channel"]
    for i in range(3000):
        rows.append(f"t{i},{'my router keeps dropping the connection ' * 40}{i},2024-03-04T10:00:00Z,acme,chat")
    data = ("\n".join(rows) + "\n").encode()
    report, sent, _ = run_ingest(data, key="incoming/ticket/big.csv", file_id="incoming/ticket/big.csv#etag")
    messages = [m for batch in sent for m in batch]
    assert report.rows_read == 3000 == report.tickets_emitted
    assert len(messages) > 1
    assert [m["chunk"] for m in messages] == list(range(len(messages)))
    assert sum(len(m["tickets"]) for m in messages) == 3000
    assert [t["ticket_id"] for m in messages for t in m["tickets"]] == [f"t{i}" for i in range(3000)]
    for m in messages:
        assert len(json.dumps(m).encode()) < MAX_MESSAGE_BYTES <= 200 * 1024
        assert len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()) < 200 * 1024


def test_pack_messages_respects_limit_for_non_ascii_text_as_sent():
    tickets = [{"ticket_id": f"t{i}", "text": "caf\u00e9 \U0001f600 " * 200} for i in range(3000)]
    messages = list(pack_messages(tickets, "f", first_chunk=7))
    assert [m["chunk"] for m in messages] == list(range(7, 7 + len(messages)))
    assert sum(len(m["tickets"]) for m in messages) == 3000
    for m in messages:
        # how the SQS adapter encodes bodies
        assert len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()) < 200 * 1024


def test_pack_messages_single_oversized_ticket_still_sent_alone():
    tickets = [{"ticket_id": "a", "text": "x" * 10}, {"ticket_id": "b", "text": "y" * (300 * 1024)}, {"ticket_id": "c", "text": "z"}]
    messages = list(pack_messages(tickets, "f", 0))
    assert [[t["ticket_id"] for t in m["tickets"]] for m in messages] == [["a"], ["b"], ["c"]]


def test_pack_messages_empty():
    assert list(pack_messages([], "f", 0)) == []


def test_ingest_rejected_empty_file():
    report, sent, _ = run_ingest(b"")
    assert report.status == "rejected"
    assert report.reason and "empty" in report.reason
    assert report.rows_read == 0
    assert report.tickets_emitted == 0 == report.rows_quarantined
    assert sent == []


def test_ingest_rejected_unknown_format_names_formats():
    report, sent, _ = run_ingest(b"foo,bar\n1,2\n", key="uploads/x.csv")
    assert report.status == "rejected"
    assert "unknown format" in report.reason and "twcs" in report.reason
    assert report.rows_read == 0 and sent == []


def test_ingest_rejected_corrupt_gzip():
    report, sent, _ = run_ingest(b"\x1f\x8bnot really gzip at all", key="incoming/twcs/x.csv.gz")
    assert report.status == "rejected"
    assert "gzip" in report.reason
    assert report.rows_read == 0 and sent == []


# --------------------------------------------------------------------------- the shared TWCS sample


@pytest.mark.shared_data
@pytest.mark.skipif(not TWCS_DATA.exists(), reason=f"{TWCS_DATA} not present")
def test_ingest_shared_twcs_train_accounts_for_every_row():
    sent: list[list[dict]] = []
    report = ingest_file(lambda: TWCS_DATA.open("rb"), "incoming/twcs/train.csv", "twcs-train", sent.append)
    assert report.status == "emitted", report.reason
    assert report.source == "twcs"
    assert report.rows_read == 3974
    assert report.tickets_emitted + report.rows_quarantined == report.rows_read
    assert len(report.quarantine) == report.rows_quarantined
    messages = [m for batch in sent for m in batch]
    raw = [t for m in messages for t in m["tickets"]]
    assert all(t["created_at"].endswith("Z") for t in raw)
    tickets = [Ticket.model_validate(t) for t in raw]
    assert len(tickets) == report.tickets_emitted
    assert len({t.ticket_id for t in tickets}) == len(tickets)
    assert [m["chunk"] for m in messages] == list(range(len(messages)))
    assert all(len(json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()) < MAX_MESSAGE_BYTES for m in messages)
    answered = [t for t in tickets if t.role == "customer" and t.first_response_s is not None]
    assert len(answered) >= 1500
    assert all(t.first_response_s >= 0 and t.responder for t in answered)
    assert {t.role for t in tickets} == {"customer", "company"}


# --------------------------------------------------------------------------- issue 13: lax values


ESC_ROW = {"case_id": "E1", "customer_id": "C1", "created_at": "2024-06-03T08:12:00Z", "text": "refund please"}
CALL_ROW = {"call_id": "K1", "customer_id": "C1", "agent_id": "A1", "channel": "voice", "start_time": "2024-06-03T08:00:00Z",
            "status": "success"}


@pytest.mark.parametrize(
    "fmt, row, reason",
    [
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "0001-01-01"}, "implausible date"),
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "0001-01-01T00:00:00+05:00"}, "out of range"),
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "9999-12-31T23:59:59-05:00"}, "out of range"),
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "9999-12-31"}, "implausible date"),
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "1989-12-31T23:59:59Z"}, "implausible date"),
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "2024-06-01T00:00:00Z", "first_response_s": "nan"}, "finite"),
        ("ticket", {"ticket_id": "t", "text": "x", "created_at": "2024-06-01T00:00:00Z", "concession_amount": "-5"}, ">= 0"),
        ("escalations", {**ESC_ROW, "refund_amount": "-50"}, "negative"),
        ("escalations", {**ESC_ROW, "refund_amount": "1e400"}, "column 'concession_amount' is not a finite number"),
        ("escalations", {**ESC_ROW, "refund_amount": "NaN"}, "column 'concession_amount' is not a finite number"),
        ("calls", {**CALL_ROW, "duration": "1:-30"}, "not a duration"),
        ("calls", {**CALL_ROW, "duration": "1:75"}, "not a duration"),
        ("calls", {**CALL_ROW, "duration": "1:2:3:4"}, "not a duration"),
        ("calls", {**CALL_ROW, "duration": "inf"}, "finite"),
        ("calls", {**CALL_ROW, "duration": "-30"}, "negative"),
        ("twcs", {"tweet_id": "1", "author_id": "9", "inbound": "maybe", "created_at": "Tue Oct 31 22:10:47 +0000 2017",
                  "text": "x"}, "inbound"),
        ("ticket", {"ticket_id": "t", "text": "a", "Text": "b", "created_at": "2024-06-01T00:00:00Z"}, "both mean 'text'"),
    ],
)
def test_lax_values_are_invalid_rows(fmt, row, reason):
    with pytest.raises(RowInvalid, match=reason):
        FORMATS[fmt].to_ticket(row, RowContext())


def test_duration_forms_still_read():
    for value, seconds in (("52:00", 3120.0), ("0:52:00", 3120.0), ("1:30", 90.0), ("3120.5", 3120.5)):
        assert FORMATS["calls"].to_ticket({**CALL_ROW, "duration": value}, RowContext()).call_duration_s == seconds


@pytest.mark.parametrize("fmt, row", [("ticket", {"ticket_id": "t", "text": "x", "created_at": "2024-06-01T00:00:00Z"}),
                                      ("escalations", ESC_ROW)])
def test_unknown_channel_is_other_and_aliases_are_canonical(fmt, row):
    assert FORMATS[fmt].to_ticket({**row, "channel": "carrier-pigeon"}, RowContext()).channel == "other"
    assert FORMATS[fmt].to_ticket({**row, "channel": " E-Mail "}, RowContext()).channel == "email"
    with pytest.raises(RowInvalid, match="channel"):  # a call log's channel is its subject: never guessed
        FORMATS["calls"].to_ticket({**CALL_ROW, "channel": "carrier-pigeon"}, RowContext())


def test_twcs_and_airline_headers_are_matched_like_the_others():
    assert detect_source({"Tweet ID", "Author ID", "Inbound", "Created At", "Text", "In Response To Tweet ID"}).name == "twcs"
    assert detect_source({"TweetId", "Airline", "Text", "Tweet Created"}).name == "airline"
    row = {"Tweet ID": "1", "Author ID": "9", "Inbound": "TRUE", "Created At": "Tue Oct 31 22:10:47 +0000 2017", "Text": "x"}
    assert TwcsFormat().to_ticket(row, RowContext()).ticket_id == "twcs:1"


def test_reasons_never_echo_values():
    secret = "jane.doe@example.com"
    rows = [("ticket", {"ticket_id": "t", "text": "x", "created_at": secret}),
            ("escalations", {**ESC_ROW, "refund_amount": secret}),
            ("calls", {**CALL_ROW, "duration": secret}), ("calls", {**CALL_ROW, "status": secret}),
            ("calls", {**CALL_ROW, "channel": secret}),
            ("ticket", {"ticket_id": "t", "text": "x", "created_at": "2024-06-01T00:00:00Z", secret: "1"})]
    for fmt, row in rows:
        with pytest.raises(RowInvalid) as info:
            FORMATS[fmt].to_ticket(row, RowContext())
        assert "jane" not in str(info.value), str(info.value)
    with pytest.raises(RowInvalid) as info:  # a header-less file: its first row is taken for the header
        detect_source({secret, "C-501", "refund"})
    assert "jane" not in str(info.value) and "2 that look like data" in str(info.value)


def test_ingest_detection_skips_unreadable_rows_at_the_top():
    data = ("ticket_id,text,created_at\n" + "junk,row\n" * 80 + "t1,hello,2024-06-01T00:00:00Z\n").encode()
    report, sent, _ = run_ingest(data, key="uploads/t.csv")
    assert (report.status, report.source, report.rows_read, report.tickets_emitted, report.rows_quarantined) == ("emitted", "ticket", 81, 1, 80)


def test_ingest_quarantines_a_ticket_too_big_for_a_message():
    data = ("ticket_id,text,created_at\nt1," + "\u4e2d" * 90_000 + ",2024-06-01T00:00:00Z\nt2,ok,2024-06-01T00:00:00Z\n").encode()
    report, sent, _ = run_ingest(data, key="uploads/t.csv")
    assert (report.tickets_emitted, report.rows_quarantined) == (1, 1)
    assert "KiB" in report.quarantine[0]["reason"]


def test_ingest_unexpected_mapper_error_quarantines_the_row(monkeypatch):
    original = GenericTicketFormat.map_row

    def explode(self, row, ctx):
        if row["ticket_id"] == "t1":
            raise OverflowError("boom")
        return original(self, row, ctx)

    monkeypatch.setattr(GenericTicketFormat, "map_row", explode)
    data = b"ticket_id,text,created_at\nt1,a,2024-06-01T00:00:00Z\nt2,b,2024-06-01T00:00:00Z\n"
    report, _, _ = run_ingest(data, key="uploads/t.csv")
    assert (report.status, report.tickets_emitted, report.rows_quarantined) == ("emitted", 1, 1)
    assert report.quarantine[0]["reason"] == "the row could not be mapped (OverflowError)"
