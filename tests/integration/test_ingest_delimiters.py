"""A European Excel export (';', UTF-8 with BOM, CRLF) and tab/pipe files, through IngestFunction's
handler in-process on moto: before, the ';' file was "unknown format" (its header one column that
looks like data) and with `incoming/helpdesk/` all 50 rows were quarantined."""

from __future__ import annotations

import pytest

from supportlens_cli.client import print_table, summary
from tests.integration.test_ingest_faults import upload  # noqa: F401 - the fixture

HEADER = ["Ticket #", "Subject", "Description", "Submitted At", "First Response At", "Priority", "Tier", "Industry", "Company"]


def export(delimiter: str, n: int = 50) -> bytes:
    """What Excel's "CSV UTF-8" writes in a ';' locale (any delimiter here): BOM, CRLF, quoted fields
    holding the delimiter, commas and quotes."""
    q = '"'
    rows = [delimiter.join(HEADER)]
    for i in range(n):
        rows.append(delimiter.join([
            f"HD-{i}", f'{q}Login{delimiter} again{q}', f'{q}Cannot log in, the ""reset"" mail never arrives ({i}){q}',
            f"2024-06-03 08:{i % 60:02d}:00", f"2024-06-03 09:{i % 60:02d}:00", "high", "Gold", "Retail", "ACME GmbH",
        ]))
    return "\ufeff".encode() + ("\r\n".join(rows) + "\r\n").encode()


@pytest.mark.parametrize("folder", ["", "helpdesk/"])
def test_semicolon_excel_export_is_read_as_helpdesk_tickets(upload, folder, capsys):  # noqa: F811
    _key, record, tickets, quarantined = upload(f"{folder}tickets-eu.csv", export(";"))
    assert record["status"] == "emitted" and record["source"] == "helpdesk" and record["delimiter"] == "semicolon"
    assert (record["rows_read"], record["tickets_emitted"], record["rows_quarantined"]) == (50, 50, 0) and not quarantined
    first = next(t for t in tickets if t["ticket_id"] == "helpdesk:HD-0")
    assert first["text"] == 'Login; again - Cannot log in, the "reset" mail never arrives (0)'
    assert (first["first_response_s"], first["tier"], first["company"]) == (3600.0, "Gold", "ACME GmbH")
    print_table([summary(record)])  # what `supportlens status` prints for it
    assert "read as CSV separated by semicolon" in capsys.readouterr().out


@pytest.mark.parametrize(("delimiter", "name"), [("\t", "tab"), ("|", "pipe"), (",", "comma")])
def test_tab_pipe_and_comma_exports_read_alike(upload, delimiter, name, capsys):  # noqa: F811
    _key, record, tickets, _ = upload("tickets.txt", export(delimiter, 5))
    assert (record["source"], record["delimiter"], record["tickets_emitted"], record["rows_quarantined"]) == ("helpdesk", name, 5, 0)
    assert {t["text"] for t in tickets} == {f'Login{delimiter} again - Cannot log in, the "reset" mail never arrives ({i})' for i in range(5)}
    print_table([summary(record)])
    assert ("separated by" in capsys.readouterr().out) == (name != "comma")  # the default needs no word


def test_json_files_carry_no_delimiter(upload):  # noqa: F811
    _key, record, _tickets, _ = upload("t.jsonl", b'{"ticket_id": "j1", "text": "hi", "created_at": "2024-06-01T00:00:00Z"}\n')
    assert record["tickets_emitted"] == 1 and "delimiter" not in record
