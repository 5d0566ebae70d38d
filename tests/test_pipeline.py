"""``autost run`` end to end on digits: stages, skip on re-run, the bundle, its plots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from testkit import DIGITS_ARCH, run_cli

import autost

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def run_pipeline(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", "--quiet", *args, timeout=900)


def picture(path: Path) -> np.ndarray:
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
    assert image.shape[0] >= 300 and image.shape[1] >= 400, image.shape
    assert image.std() > 10, f"{path.name} is blank"
    return image


def colour_share(image: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """Share of pixels within 40 of ``rgb`` on every channel (a plotted colour)."""
    return float((np.abs(image - np.array(rgb)).max(axis=-1) < 40).mean())


@pytest.mark.slow
def test_run_end_to_end_then_rebuild_and_skip(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["--space", "digits", "--evaluator", "flops", "--budget", "10", "--top", "2"]
    args += ["--trials", "2", "--tune-epochs", "1", "--epochs", "8", "--out", str(out)]
    first = run_pipeline(*args)
    assert first.returncode == 0, first.stderr
    assert "ran: search, tune, train, export" in first.stdout
    bundle = out / "bundle"
    data = json.loads((bundle / "config.json").read_text())
    assert data["schema_version"] == 1
    prov = data["provenance"]
    assert prov["space"] == "digits" and prov["evaluator"] == "flops" and prov["seed"] == 0
    tuning = prov["tuning"]  # 1-epoch trials may all end at chance level: then none is picked
    assert tuning.get("at_chance", False) != (out / "tune" / "best.json").exists()
    assert tuning.get("at_chance") or {"lr", "weight_decay"} <= set(tuning["params"])
    assert "torch" in prov["versions"] and "final" in prov["training"]

    # the bundle rebuilds with its weights and reproduces the reported accuracy
    model = autost.create_model(bundle).eval()
    from autost.data import load_dataset

    val = load_dataset("digits", split="val", timesteps=1)
    x = torch.stack([val[i][0][0] for i in range(len(val))])
    with torch.no_grad():
        acc = (model(x).argmax(-1) == torch.tensor(val.targets)).float().mean().item()
    assert acc == pytest.approx(prov["training"]["final"]["val_acc"], abs=1e-6)
    assert acc > 0.5

    # the plots are real pictures: curves and points in matplotlib's colours
    blue, red = (31, 119, 180), (214, 39, 40)
    pareto = picture(bundle / "pareto.png")
    assert colour_share(pareto, red) > 0.001  # the Pareto front (every point of a FLOPs run)
    assert colour_share(pareto, (0, 0, 0)) > 0.005  # axes, ticks and labels
    training = picture(bundle / "training.png")
    assert colour_share(training, blue) > 0.001 and colour_share(training, (255, 127, 14)) > 0.001
    picture(bundle / "proxy_vs_accuracy.png")

    # a Hub-ready folder: no pickle; the card's metadata parses with huggingface_hub's parser
    assert sorted(p.name for p in bundle.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "pareto.png",
        "proxy_vs_accuracy.png",
        "training.png",
    ]
    from huggingface_hub import ModelCard

    card = ModelCard.load(bundle / "README.md")
    assert card.data.library_name == "autost" and "spiking-neural-network" in card.data.tags
    assert card.data.datasets == ["digits"]
    (result,) = card.data.eval_results
    assert result.metric_type == "accuracy"
    assert result.metric_value == pytest.approx(prov["training"]["final"]["val_acc"], abs=1e-6)
    assert "![Training curves of the winner](training.png)" in card.text
    chance = "Every tuning trial ended at chance level"
    assert (chance in card.text) == bool(tuning.get("at_chance"))
    assert "Kendall tau nan" not in card.text and "arch=" not in card.text
    assert f"{autost.count_params(data['config']):,}" in card.text
    assert prov["reproduce"] == (
        "autost run --space digits --dataset digits --evaluator flops --strategy evolution "
        "--budget 10 --top 2 --trials 2 --tune-epochs 1 --epochs 8 --seed 0 --out runs/run"
    )
    assert prov["reproduce"] in card.text
    # the bundle's logits are the trained weights' own
    trained = autost.create_model(data["config"]).eval()
    state = torch.load(out / "train" / "weights.pt", map_location="cpu", weights_only=True)
    trained.load_state_dict(state["model"])
    loaded = autost.SpikingTransformer.from_pretrained(bundle).eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), trained(x)) and torch.equal(loaded(x[:1]), trained(x[:1]))

    stamp = (bundle / "model.safetensors").stat().st_mtime_ns
    again = run_pipeline(*args)
    assert again.returncode == 0, again.stderr
    assert "ran: nothing" in again.stdout
    assert (bundle / "model.safetensors").stat().st_mtime_ns == stamp

    only = run_pipeline(*args, "--only", "nonsense")
    assert only.returncode == 2


def test_unknown_stage_is_a_clear_error(tmp_path: Path) -> None:
    from autost.pipeline import run

    with pytest.raises(autost.AutostError, match="unknown stage"):
        run("digits", out=tmp_path, skip=["serch"])


# ------------------------------------------------------------- a run whose winner is not rank 1

COMMON: dict[str, Any] = {
    "evaluator": "flops",
    "strategy": "random",
    "budget": 8,
    "epochs": 1,
    "progress": False,
}


@pytest.fixture(scope="module")
def third_place_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A run whose tuning (written by hand: tune/best.json) picked a finalist that is not the
    search's best; returns the run folder and the finalist's index on the search leaderboard."""
    out = tmp_path_factory.mktemp("third-place")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUTOST_LIF_BACKEND", "eager")  # compiling the LIF op costs more than 1 epoch
        return _third_place_run(out)


def _third_place_run(out: Path) -> tuple[Path, int]:
    from autost.pipeline import run
    from autost.search import load_run

    run("digits", out=out, only="search", **COMMON)
    board = load_run(out / "search")
    # the search's last place (the fewest FLOPs: the quickest to train), at least rank 3
    pick = len(board) - 1
    assert pick >= 2 and board[pick].score != board[0].score
    best = {
        "schema_version": 1,
        "trial_id": "by-hand",
        "params": {"arch": pick, "lr": 5e-3, "weight_decay": 0.01},
        "metrics": {"val_acc": 0.5},
        "config": board[pick].config.to_dict(),
    }
    (out / "tune").mkdir()
    (out / "tune" / "best.json").write_text(json.dumps(best))
    result = run("digits", out=out, skip=["tune"], **COMMON)
    assert result.ran == ["train", "export"], result
    return out, pick


def test_bundle_provenance_is_the_exported_architectures_own(
    third_place_run: tuple[Path, int],
) -> None:
    from autost.bundle.report import search_match
    from autost.search import load_run

    out, pick = third_place_run
    board = load_run(out / "search")
    data = json.loads((out / "bundle" / "config.json").read_text())
    assert data["config"] == board[pick].config.to_dict()  # the tuned finalist was exported
    match = data["provenance"]["search"]
    assert match["rank"] == pick + 1 >= 3 and match["of"] == len(board)
    assert match["key"] == board[pick].key and match["trial"] == board[pick].trial
    assert match["scores"] == board[pick].scores and match["scores"] != board[0].scores
    assert match["metrics"] == board[pick].metrics
    card = (out / "bundle" / "README.md").read_text()
    assert f"This architecture ranked {pick + 1} of {len(board)} in the search" in card
    # a config the search never stored gets no borrowed scores
    stranger = DIGITS_ARCH.replace(embed_dim=48)
    assert all(c.config != stranger for c in board)
    none = search_match(out / "search", stranger.to_dict())
    assert none["rank"] is None and none["scores"] is None and "none of the" in none["reason"]


def test_only_export_rewrites_the_bundle_and_the_run_prints_a_summary(
    third_place_run: tuple[Path, int], capsys: pytest.CaptureFixture[str]
) -> None:
    from autost.cli import main
    from autost.pipeline import describe

    out, pick = third_place_run
    config = json.loads((out / "bundle" / "config.json").read_text())
    (out / "bundle" / "config.json").unlink()
    args = ["run", "--space", "digits", "--evaluator", "flops", "--strategy", "random"]
    args += ["--budget", "8", "--epochs", "1", "--out", str(out), "--quiet"]
    assert main([*args, "--only", "export"]) == 0
    stdout = capsys.readouterr().out
    assert "ran: export;" in stdout
    again = json.loads((out / "bundle" / "config.json").read_text())
    assert again["config"] == config["config"]
    assert again["provenance"]["search"] == config["provenance"]["search"]

    arch = autost.ArchConfig.from_dict(config["config"])
    status = json.loads((out / "train" / "train.json").read_text())
    lines = stdout.splitlines()
    assert f"winner: {describe(arch)}; {autost.count_params(arch):,} params" in lines
    assert describe(arch).startswith(f"depth {arch.depth}, dim {arch.embed_dim}, heads ")
    assert f"T {arch.timesteps}" in describe(arch) and "mlp ratios" in describe(arch)
    assert any(
        line.startswith(f"final val accuracy: {status['final']['val_acc']:.4f}") for line in lines
    )
    assert f"search rank of the winner: {pick + 1} of " in stdout
    assert any(line.startswith(f"bundle: {out / 'bundle'}") for line in lines)


def test_rerun_with_other_settings_is_refused_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from autost.cli import main

    args = ["run", "--space", "digits", "--evaluator", "flops", "--strategy", "random"]
    args += ["--budget", "4", "--out", str(tmp_path), "--quiet"]
    args += ["--skip", "tune", "--skip", "train", "--skip", "export"]
    assert main(args) == 0
    assert "ran: search;" in capsys.readouterr().out
    record = (tmp_path / "pipeline.json").read_text()
    assert json.loads(record)["settings"]["budget"] == 4

    for flag, value, previous in (("--budget", "5", 4), ("--seed", "1", 0), ("--epochs", "2", 30)):
        assert main([*args, flag, value]) == 2  # the last --budget wins
        err = capsys.readouterr().err
        setting = flag.removeprefix("--")
        assert err.count("\n") == 1 and f"made with {setting}={previous}, not {value}" in err, err
    assert (tmp_path / "pipeline.json").read_text() == record  # nothing was changed

    assert main(args) == 0  # the same settings resume: the finished search is not re-run
    assert "ran: nothing;" in capsys.readouterr().out


@pytest.mark.skipif(not (SHARED_MNIST).is_dir(), reason="../shared/data/mnist is absent")
def test_run_passes_root_and_dataset_options_to_the_search(tmp_path: Path) -> None:
    from autost.pipeline import run

    options = {"source": "test", "image_size": 8}
    kwargs: dict[str, Any] = {**COMMON, "evaluator": "sahd", "budget": 2, "only": "search"}
    run("digits", "mnist", out=tmp_path, root=SHARED_MNIST, dataset_options=options, **kwargs)
    recipe = json.loads((tmp_path / "search" / "evaluator.json").read_text())
    assert recipe["data"]["dataset"] == "mnist" and recipe["data"]["options"] == options
    assert recipe["data"]["root"] == str(SHARED_MNIST)
    settings = json.loads((tmp_path / "pipeline.json").read_text())["settings"]
    assert settings["root"] == str(SHARED_MNIST) and settings["dataset_options"] == options
    with pytest.raises(autost.AutostError, match=r"dataset_options=\{'source': 'test'"):
        run("digits", "mnist", out=tmp_path, root=SHARED_MNIST, dataset_options={}, **kwargs)


def test_card_names_the_tuned_finalist_and_reads_as_a_card(
    third_place_run: tuple[Path, int],
) -> None:
    from autost.bundle.card import model_card
    from autost.search import load_run

    out, pick = third_place_run
    key = load_run(out / "search")[pick].key
    card = (out / "bundle" / "README.md").read_text()
    assert (
        f"The chosen trial: the finalist ranked {pick + 1} in the search (key `{key}`), with "
        "lr=0.005, weight_decay=0.01." in card
    )
    assert "arch=" not in card and "limit_train_batches" not in card
    data = json.loads((out / "bundle" / "config.json").read_text())
    tuning = data["provenance"]["tuning"]
    assert tuning["finalist"] == {"rank": pick + 1, "of": len(load_run(out / "search")), "key": key}

    # a one-finalist tuning, every trial at chance level, a shortened training
    data["provenance"]["tuning"] = {
        "at_chance": True,
        "best_val_acc": 0.1037,
        "chance": 0.1037,
        "params": None,
        "finalists_kendall_tau": float("nan"),
    }
    data["provenance"]["training"]["settings"]["limit_train_batches"] = 3
    text = model_card(data)
    assert (
        "Tuned finalists' proxy score against short-training accuracy: no correlation (fewer "
        "than two finalists with distinct scores and accuracies). Every tuning trial ended at "
        "chance level (val accuracy at most 0.1037; always answering the most frequent class "
        "scores 0.1037), so the tuning chose no finalist: the search's best architecture was "
        "trained with the default recipe." in text
    )
    assert "| batches per epoch | at most 3 (epochs cut short) |" in text
    assert "Kendall tau nan" not in text and "chosen trial" not in text


def test_plots_say_one_finalist_mark_the_winner_and_count_whole_epochs(tmp_path: Path) -> None:
    from autost.bundle.report import plot_proxy_vs_accuracy, plot_training

    one = plot_proxy_vs_accuracy([(1, 0.5, 0.1037)], float("nan"), tmp_path / "a.png", winner=1)
    (ax,) = one.axes
    assert ax.get_title() == "One finalist: no correlation"
    assert [t.get_text() for t in ax.texts] == ["#1"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["trained winner"]
    three = plot_proxy_vs_accuracy(
        [(1, 0.9, 0.5), (2, 0.8, 0.6), (3, 0.7, 0.4)], 1 / 3, tmp_path / "b.png", winner=2
    )
    (ax,) = three.axes
    assert ax.get_title() == "3 finalists: Kendall tau 0.33"
    assert [t.get_text() for t in ax.texts] == ["#1", "#2", "#3"]
    won = [c for c in ax.collections if c.get_label() == "trained winner"]
    assert len(won) == 1 and won[0].get_offsets().tolist() == [[0.8, 0.6]]
    tied = plot_proxy_vs_accuracy([(1, 0.9, 0.1), (2, 0.8, 0.1)], float("nan"), tmp_path / "c")
    assert tied.axes[0].get_title() == "2 finalists: Kendall tau undefined (ties)"

    rows = [
        {"epoch": e, "train_loss": 2 / e, "val_loss": 2 / e, "train_acc": e / 4, "val_acc": e / 5}
        for e in (1, 2)
    ]
    training = plot_training(rows, tmp_path / "t.png")
    for ax in training.axes:
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_search_output_starts_with_its_summary_and_its_bar_ends_once_in_a_log(
    tmp_path: Path,
) -> None:
    import re

    result = run_cli(  # stdout and stderr are pipes, not terminals
        *["search", "--space", "digits", "--evaluator", "flops", "--strategy", "random"],
        *["--budget", "12", "--out", str(tmp_path / "s")],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("12 candidates drawn, "), result.stdout[:200]
    states = [s for s in re.split(r"[\r\n]", result.stderr) if s.startswith("search:")]
    assert "\r" not in result.stderr and states, result.stderr
    assert sum("12/12" in s for s in states) == 1, result.stderr  # the final state, once
