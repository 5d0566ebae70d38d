"""``autost run`` end to end on digits: stages, skip on re-run, the bundle, its plots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from testkit import run_cli

import autost


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
    assert {"lr", "weight_decay"} <= set(prov["tuning"]["params"])
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
    assert "Kendall tau" in (bundle / "report.md").read_text()

    stamp = (bundle / "weights.pt").stat().st_mtime_ns
    again = run_pipeline(*args)
    assert again.returncode == 0, again.stderr
    assert "ran: nothing" in again.stdout
    assert (bundle / "weights.pt").stat().st_mtime_ns == stamp

    only = run_pipeline(*args, "--only", "nonsense")
    assert only.returncode == 2


def test_unknown_stage_is_a_clear_error(tmp_path: Path) -> None:
    from autost.pipeline import run

    with pytest.raises(autost.AutostError, match="unknown stage"):
        run("digits", out=tmp_path, skip=["serch"])
