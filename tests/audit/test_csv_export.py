"""The CSV export's guard against spreadsheet formulas (CSV injection), shared by the API and the console."""

from __future__ import annotations

import csv
import io

import pytest

from app.audit.services import CSV_FORMULA_START, _csv_cell
from app.connectors.models import DataAccessRecord
from app.ledger import chain


@pytest.mark.parametrize("start", CSV_FORMULA_START)
def test_a_cell_starting_like_a_formula_gets_a_quote(start):
    assert _csv_cell(f"{start}1+1") == f"'{start}1+1"


def test_a_list_is_guarded_as_the_cell_it_becomes():
    assert _csv_cell(["=cmd|' /C calc'!A0", "b"]) == "'=cmd|' /C calc'!A0;b"
    assert _csv_cell(["a", "=b"]) == "a;=b"  # the cell starts with `a`: nothing to run
    assert _csv_cell([]) == "" and _csv_cell(-5) == "'-5"


def test_plain_text_numbers_and_none_stay(app):
    assert _csv_cell("实名认证") == "实名认证" and _csv_cell(200) == "200" and _csv_cell(None) == ""
    assert _csv_cell("a=b") == "a=b" and _csv_cell(" =1") == " =1"


def test_the_apis_csv_export_defuses_each_cell(app, client, staff_headers):
    with app.app_context():
        chain.append(DataAccessRecord, connector_id="ga-population", bureau="ga", bureau_name="@公安局",
                     citizen_pseudonym="p" * 64, application_id=None, purpose="+SUM(1)", actor="citizen:x",
                     elements_requested=["-x"], elements_returned=["=y"], outcome="ok", latency_ms=1,
                     error="\rcmd", http_status=200, request_id="r" * 8)
    answer = client.get("/api/v1/audit/data-access/export", headers=staff_headers("auditor"),
                        query_string={"format": "csv"})
    [row] = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True), newline="")))
    assert (row["bureau_name"], row["purpose"], row["elements_requested"], row["elements_returned"]) == (
        "'@公安局", "'+SUM(1)", "'-x", "'=y")
    assert row["error"] == "'\rcmd" and row["bureau"] == "ga"
