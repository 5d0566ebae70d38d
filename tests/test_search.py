"""Training-free search end to end: strategies, run files, export, evolution budget, CLI, errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from search_helpers import RECIPE, SMALL_EVO, flops_search, leaderboard
from testkit import cli_in_process, run_cli

import autost
from autost.search import EvolutionSettings, export, load_run, search


@pytest.mark.parametrize("strategy", ["random", "evolution", "tpe", "nsga2"])
def test_strategies_write_the_run_files(tmp_path: Path, strategy: str) -> None:
    out = tmp_path / strategy
    result = search(
        "digits",
        "flops",
        strategy=strategy,
        budget=12,
        seed=1,
        out=out,
        evolution=EvolutionSettings(4, 2, 2, 2, 4),
        progress=False,
    )
    assert {p.name for p in out.iterdir()} >= {
        "study.db",
        "leaderboard.csv",
        "best.json",
        "run.json",
    }
    rows = leaderboard(out)
    assert 1 <= len(rows) <= 12
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    best = json.loads((out / "best.json").read_text())
    assert best["scores"]["score"] == scores[0]
    assert autost.create_model(out / "best.json").config == result.best.config
    run = json.loads((out / "run.json").read_text())
    assert run["settings"]["strategy"] == strategy and "torch" in run["versions"]
    # the flops proxy is AutoST's: the leader has the most FLOPs of all scored candidates
    assert result.best.metrics["flops"] == max(c.metrics["flops"] for c in result.leaderboard)


def test_constraints_hold_for_every_scored_candidate(tmp_path: Path) -> None:
    result = search(
        "digits",
        "flops",
        strategy="random",
        budget=15,
        out=tmp_path / "c",
        constraints=["params<=60e3", "params>=20e3"],
        progress=False,
    )
    assert all(20e3 <= c.metrics["params"] <= 60e3 for c in result.leaderboard)


def test_export_rebuilds_exactly(tmp_path: Path) -> None:
    out = tmp_path / "run"
    search("digits", "flops", strategy="random", budget=8, out=out, progress=False)
    board = load_run(out)
    [single] = export(out, top=1, target=tmp_path / "best.json")
    assert autost.create_model(single).config == board[0].config
    files = export(out, top=3, target=tmp_path / "top3")
    assert [autost.create_model(f).config for f in files] == [c.config for c in board[:3]]
    with pytest.raises(autost.AutostError, match="not overwriting"):
        export(out, top=1, target=single)


def test_cli_search_table_and_exit_code(tmp_path: Path) -> None:
    result = flops_search(tmp_path / "r", 6, "--strategy", "random")
    assert result.returncode == 0, result.stderr
    assert "best config" in result.stdout and "score" in result.stdout


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--strategy", "annealing"], "unknown strategy"),
        (["--evaluator", "no-such-recipe"], "no-such-recipe"),
        (["--constraint", "params<=10"], "no valid candidate"),
        (["--constraint", "parms<=10"], "bad constraint"),
        (["--space", "autost-smal"], "autost-small"),
    ],
)
def test_bad_input_is_one_line_exit_2(tmp_path: Path, extra: list[str], message: str) -> None:
    result = flops_search(tmp_path / "x", 3, *extra)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_bad_files_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.toml"
    space.write_text("[dimensions.depth\n")
    code, err = cli_in_process(
        capsys, "search", "--space", str(space), "--out", str(tmp_path / "a"), "--quiet"
    )
    assert code == 2 and "malformed TOML" in err
    space.write_text("[dimensions.depth]\nchoices = []\n")
    code, err = cli_in_process(
        capsys, "search", "--space", str(space), "--out", str(tmp_path / "b"), "--quiet"
    )
    assert code == 2 and "non-empty" in err
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("[proxies]\nnot_a_proxy = 1.0\n")
    code, err = cli_in_process(
        capsys, "search", "--evaluator", str(recipe), "--out", str(tmp_path / "c"), "--quiet"
    )
    assert code == 2 and "not_a_proxy" in err


@pytest.mark.slow
def test_two_worker_processes_give_the_same_leaderboard(tmp_path: Path) -> None:
    one = search(
        "digits", "flops", strategy="random", budget=8, seed=2, out=tmp_path / "one", progress=False
    )
    two = search(
        "digits",
        "flops",
        strategy="random",
        budget=8,
        seed=2,
        out=tmp_path / "two",
        workers=2,
        progress=False,
    )
    assert [c.key for c in one.leaderboard] == [c.key for c in two.leaderboard]
    assert [c.scores for c in one.leaderboard] == [c.scores for c in two.leaderboard]


class _Bar:
    """Stands in for the search's progress bar: records its total and the updates."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.total, self.n = total, min(done, total)

    def update(self, n: int) -> None:
        self.n += n

    def set_postfix(self, **kwargs: object) -> None:
        pass

    def close(self) -> None:
        pass


def _evolution_draws(budget: int, settings: EvolutionSettings) -> list[str]:
    """Keys ``evolution_candidates`` draws for ``budget`` (scores from the config, no study)."""
    from autost.search.space import SearchSpace
    from autost.search.strategies import evolution_candidates

    space = SearchSpace.load("digits")
    configs: dict[str, autost.ArchConfig] = {}

    def scored(key: str) -> float:
        cfg = configs[key]
        return float(cfg.embed_dim * cfg.depth + sum(cfg.num_heads))

    for batch in evolution_candidates(space, 0, budget, settings, scored):
        configs.update(batch)
    return list(configs)


def test_budget_drives_the_number_of_evolution_generations() -> None:
    small = EvolutionSettings(population=6, parents=3, mutations=3, crossovers=3)
    more, fewer = _evolution_draws(1500, small), _evolution_draws(1000, small)
    assert len(more) == 1500 > len(fewer) == 1000  # not population x 20 generations (120)
    assert more[:1000] == fewer  # a larger budget continues the same evolution
    assert len(_evolution_draws(5000, EvolutionSettings())) == 5000
    capped = EvolutionSettings(population=6, parents=3, mutations=3, crossovers=3, generations=4)
    assert len(_evolution_draws(24, capped)) == 24
    with pytest.raises(autost.AutostError, match="at most 24 candidates"):
        capped.check_budget(25)
    with pytest.raises(autost.AutostError, match="at least one child"):
        EvolutionSettings(mutations=0, crossovers=0)


@pytest.mark.slow
def test_evolution_bar_and_summary_reach_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars: list[_Bar] = []

    def fake_bar(total: int, done: int, enabled: bool) -> _Bar:
        bars.append(_Bar(total, done, enabled))
        return bars[-1]

    monkeypatch.setattr(sys.modules["autost.search"], "progress_bar", fake_bar)
    evo = EvolutionSettings(population=6, parents=3, mutations=3, crossovers=3)
    common = {"strategy": "evolution", "seed": 0, "evolution": evo, "progress": False}
    part = search("digits", "flops", budget=100, out=tmp_path / "e", **common)
    result = search("digits", "flops", budget=150, out=tmp_path / "e", resume=True, **common)
    assert [(b.total, b.n) for b in bars] == [(100, 100), (150, 150)]
    assert (part.drawn, result.drawn) == (100, 150)  # more than 6 x the old 20 generations
    distinct = len(result.leaderboard)
    assert distinct == result.evaluated + result.resumed and result.resumed == len(part.leaderboard)
    assert result.repeats == 150 - distinct > 0
    assert result.summary().startswith(
        f"150 candidates drawn, {distinct} distinct ({150 - distinct} repeats of an already "
        f"scored config, reusing its score); {distinct} scored ({result.evaluated} now, "
        f"{result.resumed} before this resume)"
    )


TINY_SPACE = """
[space]
name = "tiny"
[fixed]
in_channels = 1
image_size = 8
num_classes = 10
stem = "sps"
stem_pooling = "0011"
timesteps = 2
depth = 1
num_heads = [2]
mlp_ratios = [2]
[dimensions.embed_dim]
choices = [32, 64]
"""


def test_tpe_resume_summary_adds_up(tmp_path: Path) -> None:
    space = tmp_path / "tiny.toml"
    space.write_text(TINY_SPACE)
    common = {"strategy": "tpe", "seed": 0, "progress": False, "out": tmp_path / "t"}
    search(str(space), "flops", budget=4, **common)  # type: ignore[arg-type]
    result = search(str(space), "flops", budget=9, resume=True, **common)  # type: ignore[arg-type]
    assert (result.drawn, result.resumed, result.evaluated) == (9, 4, 5)
    assert len(result.leaderboard) == 2 and result.repeats == 7  # two configs in the space
    assert result.summary() == (
        "9 candidates drawn, 2 distinct (7 repeats of an already scored config, scored "
        "again); 9 scored (5 now, 4 before this resume)"
    )


def test_cli_table_explains_score_and_shows_heads_and_mlp(tmp_path: Path) -> None:
    result = run_cli(
        *["search", "--space", "digits", "--evaluator", "flops", "--budget", "30"],
        *["--strategy", "evolution", "--out", str(tmp_path / "r"), "--quiet", *SMALL_EVO],
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "30 candidates drawn, " in result.stdout
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert "heads" in header and "mlp" in header
    board = load_run(tmp_path / "r")[:10]  # --show 10
    rows = lines[lines.index(header) + 1 : lines.index(header) + 1 + len(board)]
    for row, cand in zip(rows, board, strict=True):
        heads = " ".join(map(str, cand.config.num_heads))
        mlp = " ".join(f"{r:g}" for r in cand.config.mlp_ratios)
        assert f"  {heads}" in row and f"  {mlp}" in row
    assert len(set(rows)) == len(rows)  # distinct configs give distinct rows
    meaning = lines[lines.index(header) + 1 + len(rows)]
    assert meaning.startswith("score: flops (") and "higher is better" in meaning
    best = json.loads((tmp_path / "r" / "best.json").read_text())
    assert best["score_meaning"] == meaning


def test_refused_generations_cap_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    result = run_cli(
        *["search", "--evaluator", "flops", "--budget", "31", "--strategy", "evolution"],
        *["--out", str(tmp_path / "x"), "--quiet", *SMALL_EVO],
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--generations 5 draws at most 30 candidates" in result.stderr
    assert not (tmp_path / "x").exists()


def test_reference_pool_has_a_progress_bar(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))  # no pool cached before
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("sahd", "params"))
    search("digits", str(recipe), strategy="random", budget=2, out=tmp_path / "a", progress=True)
    err = capfd.readouterr().err
    assert "reference pool" in err and "8/8" in err
    search("digits", str(recipe), strategy="random", budget=2, out=tmp_path / "b", progress=False)
    assert capfd.readouterr().err == ""


# ------------------------------------------------------------------ leaderboard ties (issue 14)


def _documented_key(row: dict[str, str]) -> tuple[float, float, float]:
    """The zero-cost leaderboard's order as describe_score states it: score, then sahd, then
    flops (both higher first); the candidate key decides what is still equal."""
    return (-float(row["score"]), -float(row["proxy_sahd"]), -float(row["proxy_flops"]))


@pytest.mark.parametrize("budget", [60, pytest.param(200, marks=pytest.mark.slow)])
def test_readme_search_top_10_is_strictly_ordered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int
) -> None:
    """The README's first command (budget 60 as the fast variant: its top 10 has ties too)."""
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    result = run_cli(
        *["search", "--space", "digits", "--evaluator", "zero-cost", "--budget", str(budget)],
        *["--out", str(out), "--quiet"],
    )
    assert result.returncode == 0, result.stderr
    top = leaderboard(out)[:10]
    scores = [float(r["score"]) for r in top]
    assert len(set(scores)) < len(scores), "no tie in score: the test would check nothing"
    keys = [(*_documented_key(r), r["key"]) for r in top]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # strict, documented order
    # the printed table shows the raw values that order equal scores, and says how
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.lstrip().startswith("#"))
    assert header.split()[:4] == ["#", "score", "sahd", "flops"]
    printed = lines[lines.index(header) + 1 : lines.index(header) + 11]
    for line, row in zip(printed, top, strict=True):
        rank, _, sahd, flops = line.split()[:4]
        assert int(rank) == int(row["rank"])
        assert float(sahd) == pytest.approx(float(row["proxy_sahd"]), rel=1e-5)
        assert float(flops) == pytest.approx(float(row["proxy_flops"]), rel=1e-5)
    assert "equal scores are ordered by sahd, then flops" in lines[lines.index(header) + 11]


def test_rank_leaderboard_breaks_ties_by_members_in_weight_order_then_key() -> None:
    import math

    from autost.search.study import Candidate, rank_leaderboard

    def cand(key: str, score: float, sahd: float, sops: float, depth: int) -> Candidate:
        cfg = autost.ArchConfig(depth=depth, num_heads=(2,) * depth, mlp_ratios=(2.0,) * depth)
        return Candidate(key, cfg, {"sahd": sahd, "sops": sops, "score": score}, {})

    stored = {
        c.key: c
        for c in [
            cand("a", 0.5, 1.0, 9.0, 1),  # equal score, sahd: fewer sops (sign -1) first
            cand("b", 0.5, 1.0, 5.0, 2),
            cand("c", 0.5, 2.0, 1.0, 3),  # best sahd among the tied
            cand("d", 0.9, 0.0, 0.0, 4),  # best score
            cand("e", 0.5, math.nan, 0.0, 5),  # NaN ranks last among the tied
            cand("f", 0.5, 1.0, 5.0, 6),  # ties on everything: the key decides
        ]
    }
    board = rank_leaderboard(stored)  # members in the order they were scored: sahd, sops
    assert [c.key for c in board] == ["d", "c", "b", "f", "a", "e"]
    assert board[0].tie_break == ("sahd", "sops")
    heavier_sops = rank_leaderboard(stored, {"sahd": 1.0, "sops": 2.0})
    assert [c.key for c in heavier_sops] == ["d", "e", "c", "b", "f", "a"]
    assert heavier_sops[0].tie_break == ("sops", "sahd")
    alone = {k: Candidate(k, c.config, {"sahd": c.scores["sahd"], "score": 0.5}, {})
             for k, c in stored.items()}  # fmt: skip
    assert [c.key for c in rank_leaderboard(alone)] == ["a", "b", "c", "d", "e", "f"]
    assert rank_leaderboard(alone)[0].tie_break == ()  # one proxy: its value is the score


# ------------------------------------------------------------------ reference pool cache (issue 15)


@pytest.fixture
def pool_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``$AUTOST_CACHE``, and the package's sources held still (in a shared working
    tree they change between two searches of one test, and so would the cache key)."""
    from autost.search import scoring

    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(scoring, "_source_digest", lambda: "sources")
    return tmp_path / "cache" / scoring.REFERENCE_CACHE


def _pool_search(tmp_path: Path, name: str, **kwargs: object) -> dict[str, object]:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / name
    search("digits", str(recipe), strategy="random", budget=3, out=out, **kwargs)  # type: ignore[arg-type]
    meta: dict[str, object] = json.loads((out / "reference.json").read_text())["meta"]
    return meta


def test_reference_pool_is_cached_reused_and_recorded(
    tmp_path: Path, pool_cache: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from autost.search.evaluator import Evaluator
    from autost.search.scoring import reference_pool_info
    from autost.search.space import SearchSpace

    first = _pool_search(tmp_path, "a", progress=True)
    assert "8/8" in capfd.readouterr().err  # scored
    assert first["source"] == "computed"
    (cached,) = pool_cache.iterdir()
    second = _pool_search(tmp_path, "b", progress=True)
    err = capfd.readouterr().err
    assert "8/8" not in err and f"reference pool: 8 candidates reused from {cached}" in err
    assert second["source"] == "cache" and second["cache_digest"] == first["cache_digest"]
    values = [json.loads((tmp_path / n / "reference.json").read_text())["values"] for n in "ab"]
    assert values[0] == values[1]
    assert leaderboard(tmp_path / "a") == leaderboard(tmp_path / "b")
    # another draw seed, or constraints on the space, is another pool
    assert _pool_search(tmp_path, "c", seed=1, progress=False)["source"] == "computed"
    constrained = _pool_search(tmp_path, "d", constraints=["params<=1e6"], progress=False)
    assert constrained["source"] == "computed" and len(list(pool_cache.iterdir())) == 3
    # what the caller records in run.json
    scorer = Evaluator.load(tmp_path / "recipe.toml")
    info = reference_pool_info(scorer, SearchSpace.load("digits"), tmp_path / "e", 0, False, False)
    assert info is not None and info.source == "cache" and info.cache == str(cached)
    assert info.to_dict() == {
        "path": str((tmp_path / "e" / "reference.json").resolve()),
        "key": first["cache_digest"],
        "source": "cache",
        "cache": str(cached),
        "size": 8,
    }
    assert scorer.reference is not None and scorer.reference.size == 8


@pytest.mark.parametrize("damage", ["truncated", "number", "key"])
def test_damaged_reference_pool_cache_is_never_used(
    tmp_path: Path, pool_cache: Path, capfd: pytest.CaptureFixture[str], damage: str
) -> None:
    first = _pool_search(tmp_path, "a", progress=False)
    (cached,) = pool_cache.iterdir()
    good = cached.read_text()
    data = json.loads(good)
    if damage == "truncated":
        cached.write_text(good[: len(good) // 2])
    elif damage == "number":  # valid JSON, one value changed
        data["values"]["sahd"][0] = data["values"]["sahd"][0] + 1.0
        cached.write_text(json.dumps(data))
    else:  # a file of another key under this name
        data["meta"]["cache_key"]["draw_seed"] = 7
        cached.write_text(json.dumps(data))
    capfd.readouterr()
    again = _pool_search(tmp_path, "b", progress=False)
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and f"ignoring the cached reference pool {cached}" in err, err
    assert err.rstrip().endswith("scoring it again")
    assert again["source"] == "computed"
    runs = [json.loads((tmp_path / n / "reference.json").read_text()) for n in "ab"]
    assert runs[0]["values"] == runs[1]["values"] and again["cache_key"] == first["cache_key"]
    assert json.loads(cached.read_text()) == json.loads(good)  # rewritten
