"""The one CSV writer neutralises cells a spreadsheet would run as formulas."""

import pytest

from entitlements.csvexport import csv_cell


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_every_cell_a_spreadsheet_would_run_starts_with_an_apostrophe(start):
    assert csv_cell(f"{start}1+1") == f"'{start}1+1"


def test_plain_cells_and_empty_values_are_written_as_they_are():
    assert (csv_cell("Moved on"), csv_cell(None), csv_cell(3)) == ("Moved on", "", "3")
