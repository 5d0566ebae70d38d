"""Every shipped evaluator recipe runs on every shipped search space with nothing on disk: the
recipe's own dataset where it fits the space's input, a stated stand-in where it does not, and
for a short-training recipe on 3-channel input a one-line refusal naming the data to pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from every_recipe import SMALL, run_cell

from autost.errors import AutostError
from autost.search.evaluator import Evaluator, list_evaluators
from autost.search.inputs import STANDINS, choose_data
from autost.search.space import SearchSpace, list_spaces

SPACES = list_spaces()
RECIPES = list_evaluators()


def test_every_shipped_space_is_covered() -> None:
    assert set(SPACES) == set(SMALL)
    assert len(RECIPES) >= 18


@pytest.mark.parametrize("space", SPACES)
@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_data_fits_every_space(recipe: str, space: str) -> None:
    probe = SearchSpace.load(space).sample(0)
    scorer = Evaluator.load(recipe)
    if scorer.kind == "short-training" and probe.in_channels == 3:
        with pytest.raises(AutostError, match=r"trains its candidates.*pass --dataset"):
            choose_data(scorer, space, probe, user_data=False)
        return
    fitted, data = choose_data(scorer, space, probe, user_data=False)
    if not scorer.needs_data:
        assert data is None and fitted is scorer
        return
    assert data is not None
    fitted.check_data(probe)  # reads the batch (or both splits) and checks its shape
    if probe.in_channels == 1 and probe.image_size == 8:
        assert not data.standin and data.dataset == "digits"
    else:
        assert data.standin and data.dataset == STANDINS[probe.in_channels][0]
        assert data.options["image_size"] == probe.image_size
        assert "no files" in data.note and "--dataset" in data.note


#: the cells the suite runs (tests/every_recipe.py runs all of them and records the table):
#: every recipe on the smallest 3x32x32 space and on digits, the default and one data proxy
#: on every space
CELLS = sorted(
    {(r, s) for r in RECIPES for s in ("autost-tiny", "digits")}
    | {(r, s) for r in ("zero-cost", "sahd") for s in SPACES}
)


@pytest.mark.slow
@pytest.mark.parametrize(("recipe", "space"), CELLS)
def test_recipe_searches_space(recipe: str, space: str, tmp_path: Path) -> None:
    cell = run_cell(recipe, space, tmp_path)
    if Evaluator.load(recipe).kind == "short-training" and space != "digits":
        assert cell.outcome == "refused" and not cell.written
        assert "pass --dataset with 3-channel images" in cell.data
    else:
        assert cell.outcome == "scored", cell.data


def test_the_recorded_table_has_every_cell() -> None:
    table = (Path(__file__).parent / "every_recipe.md").read_text()
    for recipe in RECIPES:
        for space in SPACES:
            assert f"| {recipe} | {space} | " in table
    assert "every refusal left no folder: yes." in table
    assert "FOLDER WRITTEN" not in table
