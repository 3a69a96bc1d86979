"""Unit tests for supportlens.domain.reader.read_records (in-memory streams only)."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random

import pytest

from supportlens.domain.reader import SNIFF_BYTES, FileRejected, ReadInfo, Record, read_records


def read_all(data: bytes, key: str = "upload.csv", **kwargs) -> list[Record]:
    return [record for chunk in read_records(io.BytesIO(data), key, **kwargs) for record in chunk]


def rejected(data: bytes, key: str = "upload.csv") -> str:
    with pytest.raises(FileRejected) as info:
        read_all(data, key)
    reason = info.value.reason
    assert isinstance(reason, str) and reason.strip()
    assert str(info.value) == reason
    return reason


CSV = (
    b"ticket_id,text,created_at\n"
    b"t1,\"my bill is wrong,\nand nobody answers\",2024-03-04T10:00:00Z\n"
    b"t2,plain text,2024-03-04T11:00:00Z\n"
)
JSONL = (
    b'{"ticket_id": "t1", "text": "hello"}\n'
    b'{"ticket_id": "t2", "text": "caf\xc3\xa9"}\n'
    b'\n'
    b'{"ticket_id": "t3", "text": "bye"}\n'
)


# --------------------------------------------------------------------------- CSV


def test_csv_quoted_embedded_newline_stays_one_record():
    records = read_all(CSV)
    assert len(records) == 2
    first = records[0]
    assert first.row_number == 1
    assert first.error is None
    assert first.data == {"ticket_id": "t1", "text": "my bill is wrong,\nand nobody answers", "created_at": "2024-03-04T10:00:00Z"}
    assert "nobody answers" in first.raw
    assert records[1].row_number == 2
    assert records[1].data["text"] == "plain text"


def test_csv_row_with_wrong_field_count_becomes_error_record_and_rest_still_reads():
    data = b"id,text\n1,alpha\n2,beta,EXTRA\n3\n4,delta\n"
    records = read_all(data)
    assert [r.row_number for r in records] == [1, 2, 3, 4]
    bad, short = records[1], records[2]
    assert bad.data is None
    assert bad.error and "3 fields" in bad.error and "header has 2" in bad.error
    assert bad.raw == "2,beta,EXTRA"
    assert short.data is None and "1 fields" in short.error
    assert short.raw == "3"
    assert records[0].data == {"id": "1", "text": "alpha"} and records[0].error is None
    assert records[3].data == {"id": "4", "text": "delta"} and records[3].error is None


def test_csv_blank_lines_are_skipped_and_not_numbered():
    records = read_all(b"id,text\n\n1,a\n\n\n2,b\n")
    assert [(r.row_number, r.data["id"]) for r in records] == [(1, "1"), (2, "2")]


def test_csv_header_whitespace_and_utf8_bom_are_stripped():
    records = read_all("\ufeff id , text \n1,caf\u00e9\n".encode())
    assert records[0].data == {"id": "1", "text": "caf\u00e9"}


def test_key_without_extension_sniffs_format():
    assert read_all(b'[{"a": 1}]', "noext")[0].data == {"a": 1}
    assert read_all(b'{"a": 1}\n{"a": 2}\n', "noext")[1].data == {"a": 2}
    assert read_all(b"a,b\n1,2\n", "noext")[0].data == {"a": "1", "b": "2"}


# --------------------------------------------------------------------------- JSONL / JSON


def test_jsonl_one_bad_line_is_one_error_record():
    data = b'{"id": 1}\n{"id": 2, oops}\n{"id": 3}\n'
    records = read_all(data, "tickets.jsonl")
    assert [r.row_number for r in records] == [1, 2, 3]
    assert records[0].data == {"id": 1} and records[0].error is None
    assert records[2].data == {"id": 3} and records[2].error is None
    bad = records[1]
    assert bad.data is None
    assert "not valid JSON" in bad.error
    assert bad.raw == '{"id": 2, oops}'


def test_jsonl_non_object_line_is_an_error_record():
    records = read_all(b'{"id": 1}\n[1, 2]\n"text"\n', "x.ndjson")
    assert records[0].error is None
    assert records[1].data is None and "got list" in records[1].error
    assert records[2].data is None and "got str" in records[2].error


def test_jsonl_blank_lines_skipped():
    records = read_all(JSONL, "x.jsonl")
    assert [r.data["ticket_id"] for r in records] == ["t1", "t2", "t3"]
    assert [r.row_number for r in records] == [1, 2, 3]
    assert records[1].data["text"] == "caf\u00e9"


def test_json_array_reads():
    items = [{"ticket_id": "t1", "text": "a"}, {"ticket_id": "t2", "text": "b"}]
    records = read_all(json.dumps(items).encode(), "tickets.json")
    assert [r.data for r in records] == items
    assert [r.row_number for r in records] == [1, 2]
    assert all(r.error is None for r in records)
    assert json.loads(records[0].raw) == items[0]


def test_json_tickets_wrapper_reads_same_as_array():
    items = [{"ticket_id": "t1", "text": "a"}, {"ticket_id": "t2", "text": "b"}]
    wrapped = read_all(json.dumps({"tickets": items}).encode(), "tickets.json")
    plain = read_all(json.dumps(items).encode(), "tickets.json")
    assert [r.data for r in wrapped] == [r.data for r in plain] == items


def test_json_array_non_object_items_are_error_records():
    records = read_all(b'[{"a": 1}, 7, null]', "x.json")
    assert records[0].error is None
    assert records[1].data is None and "got int" in records[1].error
    assert records[2].data is None and "got NoneType" in records[2].error


# --------------------------------------------------------------------------- gzip


@pytest.mark.parametrize(("plain", "key"), [(CSV, "x.csv"), (JSONL, "x.jsonl")])
def test_gzip_reads_identically_to_plain(plain, key):
    expected = [(r.row_number, r.data, r.raw, r.error) for r in read_all(plain, key)]
    got_gz_key = [(r.row_number, r.data, r.raw, r.error) for r in read_all(gzip.compress(plain), key + ".gz")]
    got_plain_key = [(r.row_number, r.data, r.raw, r.error) for r in read_all(gzip.compress(plain), key)]
    assert expected and got_gz_key == expected
    assert got_plain_key == expected


# --------------------------------------------------------------------------- rejected files


def test_reject_empty_file():
    assert "empty" in rejected(b"")


def test_reject_whitespace_only_file():
    assert "empty" in rejected(b"  \n\r\n\t \n")


def test_reject_empty_gzip_says_after_decompression():
    assert "empty after decompression" in rejected(gzip.compress(b""), "x.csv.gz")


def test_reject_header_only_csv():
    reason = rejected(b"ticket_id,text,created_at\n")
    assert "header" in reason and "no data rows" in reason


def test_reject_header_with_only_blank_lines():
    assert "no data rows" in rejected(b"ticket_id,text\n\n\n")


def test_reject_binary_with_nul_bytes():
    reason = rejected(b"PK\x03\x04\x00\x00\x08\x00binary stuff\x00\x00")
    assert "binary" in reason and "NUL" in reason


def test_reject_corrupt_gzip_with_valid_magic():
    reason = rejected(b"\x1f\x8b" + b"this is definitely not deflate data" * 4, "x.csv.gz")
    assert "gzip" in reason and "cannot be decompressed" in reason


def test_reject_truncated_gzip_small():
    payload = gzip.compress(CSV * 50)
    reason = rejected(payload[: len(payload) // 2], "x.csv.gz")
    assert "gzip" in reason or "truncated" in reason
    assert "end-of-stream" in reason


def test_reject_truncated_gzip_large_fails_midway_with_truncated_reason():
    rng = random.Random(7)
    body = b"id,text\n" + b"".join(
        b"%d,%s\n" % (i, "".join(rng.choice("abcdefghij klmnop") for _ in range(120)).encode()) for i in range(20_000)
    )
    payload = gzip.compress(body)
    reason = rejected(payload[: len(payload) // 2], "x.csv.gz")
    assert "truncated or corrupt" in reason


def test_reject_non_utf8_bytes():
    reason = rejected(b"id,text\n1,caf\xe9 au lait is cold\n2,ok\n")
    assert "not UTF-8" in reason
    assert "offset 13" in reason


def test_reject_non_utf8_byte_near_end_of_small_file():
    # The whole file fits in the sniff window, so a bad last byte is not a character cut by the window.
    assert "not UTF-8" in rejected(b"id,text\n1,ok\n2,caf\xe9\n")


def test_multibyte_char_cut_by_sniff_window_is_fine():
    prefix = b"id,text\n1,"
    filler = b"a" * (SNIFF_BYTES - len(prefix) - 1)
    data = prefix + filler + "\u00e9\n2,ok\n".encode()  # the 2-byte '\u00e9' straddles the 64 KiB window
    assert data[SNIFF_BYTES - 1 : SNIFF_BYTES + 1] == "\u00e9".encode()
    records = read_all(data)
    assert [r.row_number for r in records] == [1, 2]
    assert records[0].data["text"].endswith("a\u00e9")
    assert "\ufffd" not in records[0].data["text"]


def test_multibyte_utf8_is_not_rejected():
    records = read_all("id,text\n1,caf\u00e9 \U0001f600\n".encode())
    assert records[0].data["text"] == "caf\u00e9 \U0001f600"


def test_reject_json_object_without_tickets():
    reason = rejected(b'{"rows": [{"a": 1}]}', "x.json")
    assert "array" in reason and "tickets" in reason


def test_reject_empty_json_array():
    assert "empty" in rejected(b"[]", "x.json")
    assert "empty" in rejected(b'{"tickets": []}', "x.json")


def test_reject_invalid_json_document_with_position():
    reason = rejected(b'[{"a": 1}', "x.json")
    assert "not valid JSON" in reason and "line 1" in reason


def test_rejection_happens_on_iteration_not_call():
    gen = read_records(io.BytesIO(b""), "x.csv")  # a generator: nothing read yet
    with pytest.raises(FileRejected):
        next(gen)


# --------------------------------------------------------------------------- chunking


def test_chunking_5000_rows_in_2000_row_chunks():
    data = b"id,text\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(1, 5001))
    chunks = list(read_records(io.BytesIO(data), "big.csv", chunk_rows=2000))
    assert [len(c) for c in chunks] == [2000, 2000, 1000]
    numbers = [r.row_number for c in chunks for r in c]
    assert numbers == list(range(1, 5001))
    assert [int(r.data["id"]) for c in chunks for r in c] == numbers


@pytest.mark.parametrize("key", ["big.jsonl", "big.json"])
def test_chunking_json_formats(key):
    items = [{"id": i} for i in range(1, 5001)]
    data = json.dumps(items).encode() if key.endswith(".json") else "\n".join(json.dumps(i) for i in items).encode()
    chunks = list(read_records(io.BytesIO(data), key, chunk_rows=2000))
    assert [len(c) for c in chunks] == [2000, 2000, 1000]
    assert [r.row_number for c in chunks for r in c] == list(range(1, 5001))
    assert [r.data["id"] for c in chunks for r in c] == list(range(1, 5001))


# --------------------------------------------------------------------------- issue 13: hostile input


def test_unterminated_quote_costs_one_line_not_the_rest_of_the_file():
    rows = [f"t{i},text {i},2024-06-01T10:00:00Z" for i in range(1, 11)]
    rows[2] = 't3,"unterminated text,2024-06-01T10:00:00Z'
    records = read_all(("ticket_id,text,created_at\n" + "\n".join(rows) + "\n").encode())
    assert [r.row_number for r in records] == list(range(1, 11))
    assert [r.data["ticket_id"] for r in records if r.data] == [f"t{i}" for i in range(1, 11) if i != 3]
    assert records[2].data is None and "quote" in records[2].error and records[2].raw.startswith("t3,")


def test_quote_closed_by_a_later_rows_quote_costs_one_line():
    data = b'id,text\n1,"opened\n2,plain\n3,"quoted" then more\n4,last\n'
    records = read_all(data)
    assert [r.data["id"] for r in records if r.data] == ["2", "4"]
    assert all(r.error for r in records if r.data is None)


@pytest.mark.parametrize(
    "bad, reason",
    [(b"caf\xe9", "not valid UTF-8"), (b"nul\x00here", "NUL")],
)
def test_bad_bytes_after_the_sniff_window_quarantine_only_their_record(bad, reason):
    pad = b"1," + b"a" * SNIFF_BYTES + b"\n"
    records = read_all(b"id,text\n" + pad + b"2," + bad + b"\n3,ok\n")
    assert [r.error is None for r in records] == [True, False, True]
    assert reason in records[1].error
    json.dumps(records[1].raw, ensure_ascii=False).encode()  # the raw row can be written to the quarantine file


def test_duplicated_csv_header_column_rejects_the_file():
    assert "repeats column(s) 'text'" in rejected(b"id,text,text\n1,a,b\n")


@pytest.mark.parametrize("key", ["x.jsonl", "x.json"])
def test_json_record_with_a_repeated_key_or_escaped_nul_is_an_error(key):
    items = ['{"id": 1, "id": 2}', '{"id": "a\\u0000b"}', '{"id": "\\ud800"}', '{"id": 4}']
    data = ("\n".join(items) if key == "x.jsonl" else "[" + ",".join(items) + "]").encode()
    records = read_all(data, key)
    assert "more than once" in records[0].error and "NUL" in records[1].error and "UTF-8" in records[2].error
    assert records[3].data == {"id": 4}


@pytest.mark.parametrize("key", ["x.jsonl", "x.json"])
def test_deeply_nested_json_record_is_an_error_and_the_others_read(key):
    deep = '{"id": ' + "[" * 100_000 + "]" * 100_000 + "}"
    items = ['{"id": 1}', deep, '{"id": 3, "s": "]}\\""}']
    data = ("\n".join(items) if key == "x.jsonl" else "[" + ",".join(items) + "]").encode()
    records = read_all(data, key)
    assert [r.row_number for r in records] == [1, 2, 3]
    assert records[1].data is None and "too deeply" in records[1].error
    assert records[2].data == {"id": 3, "s": ']}"'}


def test_unclosed_quote_in_the_last_column_is_not_merged_into_one_record():
    # Lenient CSV would read one record ['1', 'open\n2,b\n3,c\n'] with the right field count.
    records = read_all(b'id,text\n1,"open\n2,b\n3,c\n')
    assert [r.data for r in records] == [None, {"id": "2", "text": "b"}, {"id": "3", "text": "c"}]
    assert "quote" in records[0].error


def test_csv_title_lines_above_the_header_become_error_records():
    body = b"Report: tickets, December\n\nid,text,created_at\n1,hello,2026-01-01\n2,\"two\nlines\",2026-01-02\n3,bye,2026-01-03\n"
    records = [r for chunk in read_records(io.BytesIO(body), "export.csv") for r in chunk]
    assert [(r.row_number, r.data is None) for r in records] == [(1, True), (2, False), (3, False), (4, False)]
    assert "above the CSV header" in records[0].error and records[0].raw == "Report: tickets, December"
    assert records[2].data == {"id": "2", "text": "two\nlines", "created_at": "2026-01-02"}


@pytest.mark.parametrize("body", [
    b"text\nhello\nworld, again\nthird\n",                  # one-column file: its header is the first line
    b"id,text\n1,a,b\n2,c,d\n3,e,f\n",                       # rows wider than the header: header kept
    b"Zendesk\nid,subject,body\n1,a\n",                       # the candidate header is not confirmed by rows
    b"note\n1,2,3\n4,5,6\n7,8,9\n10,11,12\n",             # numbers are values, not column names
    b"ticket_id,text,when\nabc,late again,today\ndef,lost bag,today\nghi,no refund,monday\njkl,rude,friday\n",  # rows that read like names
])
def test_csv_first_line_stays_the_header_unless_a_preamble_is_certain(body):
    records = [r for chunk in read_records(io.BytesIO(body), "x.csv") for r in chunk]
    assert not any(r.error and "above the CSV header" in r.error for r in records)


# --------------------------------------------------------------------------- delimiters


def read_with_info(data: bytes, key: str = "export.csv") -> tuple[list[Record], str | None]:
    info = ReadInfo()
    records = [r for chunk in read_records(io.BytesIO(data), key, info=info) for r in chunk]
    return records, info.delimiter


EXCEL_EU = (  # European Excel "CSV UTF-8": BOM, ';', CRLF, quoted fields holding ';', ',' and quotes
    "\ufeffTicket #;Subject;Description;Tier\r\n"
    'HD-1;"Login; again";"Cannot log in, the ""reset"" mail never arrives";Gold\r\n'
    "HD-2;Invoice;Wrong seats, 40 not 25;Silver\r\n"
    "\r\n"
    'HD-3;"Two\r\nlines";plain;NA\r\n'
).encode()


def test_semicolon_excel_export_with_bom_crlf_and_quoted_separators_reads_every_row():
    records, delimiter = read_with_info(EXCEL_EU)
    assert delimiter == ";"
    assert [r.data for r in records] == [
        {"Ticket #": "HD-1", "Subject": "Login; again", "Description": 'Cannot log in, the "reset" mail never arrives', "Tier": "Gold"},
        {"Ticket #": "HD-2", "Subject": "Invoice", "Description": "Wrong seats, 40 not 25", "Tier": "Silver"},
        {"Ticket #": "HD-3", "Subject": "Two\r\nlines", "Description": "plain", "Tier": "NA"},
    ]


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_tab_and_pipe_separated_files_are_read(delimiter):
    body = delimiter.join(["id", "text", "when"]) + "\n" + delimiter.join(["1", "hello, there; you", "today"]) + "\n"
    records, found = read_with_info(body.encode(), "export.txt")
    assert found == delimiter and records[0].data == {"id": "1", "text": "hello, there; you", "when": "today"}


def test_comma_file_whose_quoted_texts_hold_semicolons_stays_comma():
    body = b'id,text,when\n1,"a; b; c",x\n2,"d; e; f",y\n3,"g; h; i",z\n'
    records, delimiter = read_with_info(body)
    assert delimiter == "," and records[0].data == {"id": "1", "text": "a; b; c", "when": "x"}


@pytest.mark.parametrize("body", [
    # its first value looks like '; ' column names and three more confirm them: "text" a title line?
    b'text\nhello; world\nfoo; bar\nbaz; qux\nqux; quux\n"not, this; one"\n',
    b'text\n"a, b"\n"c, d"\n"e, f"\n',                                # quoted commas, as a CSV writer leaves them
    b"text\na|b\nc\td\ne;f\n",
])
def test_single_column_file_stays_one_column_whatever_its_text_holds(body):
    records, delimiter = read_with_info(body)
    assert delimiter == ","
    assert [r.data for r in records] == [{"text": line} for line in list(csv.reader(io.StringIO(body.decode())))[1:] for line in line]


def test_semicolon_file_with_title_lines_above_its_header():
    body = b"Tickets export, generated 2026-12-01\nFilter: open\n\nid;text;when\n1;a;x\n2;b, c;y\n3;d;z\n"
    records, delimiter = read_with_info(body)
    assert delimiter == ";"
    assert [r.error is not None and "above the CSV header" in r.error for r in records] == [True, True, False, False, False]
    assert records[3].data == {"id": "2", "text": "b, c", "when": "y"}


def test_semicolon_file_with_a_comma_in_its_title_and_decimal_commas_in_every_row():
    # Read with ',' the title would be a 2-column header that every row matches: the real header
    # line, which ',' cannot split, is what tips it.
    body = b"Tickets export, generated 2026-12-01\nid;amount;text\n1;49,99;a\n2;5,00;b\n3;1,50;c\n"
    records, delimiter = read_with_info(body)
    assert delimiter == ";" and records[1].data == {"id": "1", "amount": "49,99", "text": "a"}


def test_ambiguous_evidence_keeps_comma():
    # Both ',' and ';' split every line in two: nothing says which is meant, so the default holds.
    records, delimiter = read_with_info(b"a;b,c\n1;2,3\n4;5,6\n")
    assert delimiter == "," and records[0].data == {"a;b": "1;2", "c": "3"}


def test_quarantined_row_of_a_semicolon_file_keeps_its_own_delimiter():
    records, _ = read_with_info(b"id;text;when\n1;a;x\n2;only two\n3;c;z\n")
    assert records[1].data is None and "2 fields but the header has 3" in records[1].error
    assert records[1].raw == "2;only two"


def test_tsv_key_prefers_tab_when_nothing_else_decides():
    _, delimiter = read_with_info(b"text\nhello, world\n", "notes.tsv")
    assert delimiter == "\t"
    _, delimiter = read_with_info(b"text\nhello, world\n", "notes.csv")
    assert delimiter == ","
