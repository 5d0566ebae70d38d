"""Every row of tests/hostile_inputs.py: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_inputs import ROWS, Row, run_row


@pytest.mark.slow
@pytest.mark.parametrize("row", ROWS, ids=[row.item for row in ROWS])
def test_hostile_input_is_one_line_exit_2_and_changes_nothing(row: Row, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    outcome = run_row(row, work)
    assert outcome.code == 2, outcome.stderr
    assert len(outcome.stderr) == 1, outcome.stderr
    assert outcome.stderr[0].startswith("autost: error: "), outcome.stderr
    assert outcome.unchanged


def test_the_recorded_table_lists_every_row() -> None:
    table = (Path(__file__).parent / "hostile_inputs.md").read_text()
    for row in ROWS:
        assert f"| {row.item} |" in table
    assert f"{len(ROWS)} of {len(ROWS)} rows refused as required." in table
