"""The built-in trainer: accuracy on digits, resume equality, NaN handling, checkpoints, losses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from testkit import DIGITS_ARCH, ROOT, cli_in_process, run_cli

import autost
from autost.search.space import SearchSpace
from autost.training import TrainSettings, train
from autost.training.augment import augment_batch
from autost.training.losses import Objective

TINY = DIGITS_ARCH.replace(embed_dim=32)
TIMING_KEYS = {"train_images_per_s", "epoch_seconds"}


def metrics(out: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]


@pytest.mark.slow
def test_digits_architecture_reaches_90_percent_in_30_epochs(tmp_path: Path) -> None:
    # how long that takes is measured by benchmarks/train.py --digits, not asserted here
    assert SearchSpace.load("digits").contains(DIGITS_ARCH)
    result = train(DIGITS_ARCH, "digits", out=tmp_path / "run", epochs=30, lr=5e-3, progress=False)
    assert result.status == "completed" and len(result.metrics) == 30
    assert result.final["val_acc"] >= 0.90, result.final
    rates = result.final["firing_rates"]
    assert "blocks.0.attn.q_lif" in rates and 0 < result.final["mean_firing_rate"] < 1
    assert result.final["sops"] > 0 and result.final["energy_mj"] > 0
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,train_loss,train_acc,val_loss,val_acc")


@pytest.mark.slow
def test_resume_after_sigkill_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    config = tmp_path / "arch.json"
    TINY.to_json(config)
    common = ["train", str(config), "--dataset", "digits", "--epochs", "6", "--quiet"]
    full = run_cli(*common, "--out", str(tmp_path / "full"))
    assert full.returncode == 0, full.stderr
    cut = tmp_path / "cut"
    env = {**os.environ, "AUTOST_LIF_BACKEND": "eager"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autost", *common, "--out", str(cut)], cwd=ROOT, env=env
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        lines = (cut / "metrics.jsonl").read_text() if (cut / "metrics.jsonl").exists() else ""
        if lines.count("\n") >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run must be killed mid-way"
    done = torch.load(cut / "checkpoint.pt", weights_only=True)["epoch"]
    assert 2 <= done < 6
    resumed = run_cli(*common, "--out", str(cut), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert metrics(cut) == metrics(tmp_path / "full")
    assert len(metrics(cut)) == 6
    a = torch.load(cut / "weights.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "full" / "weights.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_nan_loss_stops_the_run_and_is_recorded(tmp_path: Path) -> None:
    config = tmp_path / "arch.json"
    TINY.to_json(config)
    out = tmp_path / "nan"
    result = run_cli(
        "train", str(config), "--epochs", "3", "--lr", "1e10", "--out", str(out), "--quiet"
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "non-finite loss" in result.stderr, result.stderr
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["status"] == "diverged" and "non-finite" in last["failure"]
    status = json.loads((out / "train.json").read_text())
    assert status["status"] == "diverged"
    again = run_cli("train", str(config), "--out", str(out), "--resume", "--quiet")
    assert again.returncode == 2 and "diverged" in again.stderr


def test_checkpoints_load_weights_only_and_rebuild_the_model(tmp_path: Path) -> None:
    result = train(TINY, "digits", out=tmp_path / "r", epochs=2, progress=False)
    state = torch.load(tmp_path / "r" / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "scaler", "rng"} <= set(
        state
    )
    saved = torch.load(tmp_path / "r" / "weights.pt", weights_only=True)
    model = autost.create_model(autost.ArchConfig.from_json(saved["config"]))
    model.load_state_dict(saved["model"])
    model.eval()
    from autost.data import load_dataset

    val = load_dataset("digits", split="val", timesteps=1)
    x = torch.stack([val[i][0][0] for i in range(len(val))])
    y = torch.tensor(val.targets)
    with torch.no_grad():
        acc = (model(x).argmax(-1) == y).float().mean().item()
    assert acc == pytest.approx(result.final["val_acc"], abs=1e-6)
    rebuilt = autost.create_model(tmp_path / "r" / "train.json")
    assert rebuilt.config == TINY


@pytest.mark.slow
@pytest.mark.parametrize(
    ("loss", "dataset"), [("tet", "digits"), ("trt", "digits"), ("trt", "digits-events")]
)
def test_tet_and_trt_train(tmp_path: Path, loss: str, dataset: str) -> None:
    arch = TINY if dataset == "digits" else TINY.replace(in_channels=2, timesteps=8)
    result = train(arch, dataset, out=tmp_path / "r", epochs=1, loss=loss, progress=False)
    assert result.status == "completed" and result.final["train_loss"] > 0


def test_trt_reverses_time() -> None:
    """Static input: the stem's spikes are reversed; events: the frames are."""
    torch.manual_seed(0)
    model = autost.create_model(TINY.replace(timesteps=4))
    objective = Objective(model, TrainSettings(loss="trt"), static=True)
    x = torch.rand(3, 1, 8, 8)
    forward = model.forward_features(x)
    backward = objective._reversed_features(x)
    assert not torch.equal(forward, backward)
    events = Objective(model, TrainSettings(loss="trt"), static=False)
    seq = torch.rand(4, 3, 1, 8, 8)
    assert torch.equal(events._reversed_features(seq), model.forward_features(seq.flip(0)))


def test_augmentation_is_seeded_and_moves_frames_together() -> None:
    x = torch.rand(5, 4, 2, 16, 16)  # [T, B, C, H, W]
    a = augment_batch(x, "crop-flip", torch.Generator().manual_seed(1))
    b = augment_batch(x, "crop-flip", torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape
    # every frame of a sample moved by the same offset: frame differences move with them
    shifted = augment_batch(x - x[0], "crop-flip", torch.Generator().manual_seed(1))
    assert torch.allclose(shifted, a - a[0])
    assert torch.equal(augment_batch(x, "none", torch.Generator()), x)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--dataset", "mnist", "--root", "/nonexistent"], "missing MNIST file"),
        (["--dataset", "digits-events"], "channels"),
        (["--amp", "fp16", "--device", "cpu"], "fp16"),
        (["--epochs", "0"], "epochs"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "arch.json"
    TINY.to_json(config)
    code, err = cli_in_process(
        capsys, "train", str(config), "--out", str(tmp_path / "x"), "--quiet", *extra
    )
    assert code == 2, err
    assert message in err and err.count("\n") == 1, err


def test_existing_run_is_never_overwritten(tmp_path: Path) -> None:
    train(TINY, "digits", out=tmp_path / "r", epochs=1, progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()}
    with pytest.raises(autost.AutostError, match="--resume"):
        train(TINY, "digits", out=tmp_path / "r", epochs=1, progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "r").iterdir()} == before


@pytest.mark.slow
def test_two_worker_ray_train_run_on_a_running_cluster(tmp_path: Path) -> None:
    """Ray Train's TorchTrainer, 2 workers over gloo on CPU, through ``--address`` on a running
    two-node cluster (head + worker on loopback, one CPU each): the same loop gives the same
    metrics shape as a single-process run and a valid checkpoint, Ray keeps its own copy, and
    the cluster outlives the run; stopping it leaves none of its processes behind."""
    from ray_cluster import LocalRayCluster

    single = train(TINY, "digits", out=tmp_path / "one", epochs=2, progress=False)
    config = tmp_path / "arch.json"
    TINY.to_json(config)
    cluster = LocalRayCluster(head_cpus=1)
    try:
        cluster.add_worker(num_cpus=1)
        out = tmp_path / "two"
        result = run_cli(
            *["train", str(config), "--epochs", "2", "--workers", "2", "--quiet"],
            *["--out", str(out), "--address", cluster.address],
        )
        assert result.returncode == 0, result.stderr
        assert cluster.alive_nodes() == 2  # the cluster outlives the run
    finally:
        cluster.stop()
    assert cluster.our_processes() == []
    status = json.loads((out / "train.json").read_text())
    assert status["world_size"] == 2 and status["epochs_done"] == 2
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [set(m) for m in rows] == [set(m) for m in single.metrics]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2
    model = autost.create_model(TINY)
    model.load_state_dict(state["model"])
    reported = sorted((out / "ray" / "train").glob("checkpoint_*/checkpoint.pt"))
    assert len(reported) == 2
    last = torch.load(reported[-1], weights_only=True)
    assert all(torch.equal(last["model"][k], state["model"][k]) for k in state["model"])


def test_train_prints_lines_not_json_and_its_bar_ends_once_in_a_log(tmp_path: Path) -> None:
    import re

    config = tmp_path / "arch.json"
    TINY.to_json(config)
    out = tmp_path / "run"
    result = run_cli("train", str(config), "--epochs", "1", "--out", str(out))  # stderr: a pipe
    assert result.returncode == 0, result.stderr
    final = json.loads((out / "train.json").read_text())["final"]
    assert final["val_acc"] <= final["val_chance"], "one epoch on digits is expected at chance"
    params = autost.count_params(TINY)
    assert result.stdout.splitlines() == [
        f"model: depth 1, dim 32, heads 2, mlp ratios 2, attention ssa, T 2; {params:,} params",
        f"final val accuracy: {final['val_acc']:.4f} after 1 epoch on digits (best "
        f"{final['val_acc']:.4f}); at chance level: always answering the most frequent class "
        f"scores {final['val_chance']:.4f}",
        f"energy per sample: {final['energy_mj']:.4g} mJ ({final['sops']:,.0f} SOPs) at the "
        f"measured mean firing rate {final['mean_firing_rate']:.4f}",
        f"run: {out} (weights.pt, metrics.csv, train.json)",
    ]
    states = [s for s in re.split(r"[\r\n]", result.stderr) if s.startswith("train:")]
    assert "\r" not in result.stderr and states[0].startswith("train:   0%"), result.stderr
    assert sum("100%" in s for s in states) == 1, result.stderr  # the final state, once


def test_a_bar_in_a_log_writes_lines_at_an_interval_and_its_final_state_once() -> None:
    import io

    from autost.training.progress import LogBar, progress_bar

    log = io.StringIO()  # not a terminal
    bar = progress_bar(4, desc="work", unit="step", file=log)
    assert isinstance(bar, LogBar)
    for i in range(4):
        bar.update(1)
        bar.set_postfix(best=i)  # a refresh each: all within the interval
    bar.close()
    bar.close()
    assert log.getvalue().splitlines()[0].startswith("work:   0%")
    assert [line.split("|")[-1].strip()[:3] for line in log.getvalue().splitlines()] == [
        "0/4",
        "4/4",
    ]
    assert log.getvalue().splitlines()[-1].endswith("best=3]")

    every = io.StringIO()  # interval 0: every refresh but the final state writes a line
    bar = progress_bar(2, desc="work", unit="step", file=every, interval=0)
    bar.update(1)
    bar.update(1)
    bar.set_postfix(best=1)
    bar.close()
    states = [line.split("|")[-1].strip()[:3] for line in every.getvalue().splitlines()]
    assert states == ["0/2", "1/2", "2/2"]
    early = io.StringIO()  # closed before the end, right after a line of its state
    bar = progress_bar(3, desc="work", unit="step", file=early, interval=0)
    bar.update(1)
    bar.close()
    assert [line.split("|")[-1].strip()[:3] for line in early.getvalue().splitlines()] == [
        "0/3",
        "1/3",
    ]
    quiet = io.StringIO()
    progress_bar(2, desc="work", unit="step", file=quiet, enabled=False).close()
    assert quiet.getvalue() == ""
