"""Hub-ready bundles: safetensors weights, the model card, from_pretrained (folder and Hub
repository id, offline through the Hugging Face cache), bundles from before, bad input."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file
from testkit import DIGITS_ARCH

import autost
from autost import AutostError, SpikingTransformer
from autost.cli import main

ARCH = DIGITS_ARCH.replace(depth=2, attention=("ssa", "sdsa"), num_heads=(2, 4))
PROVENANCE: dict[str, Any] = {
    "space": "digits",
    "evaluator": "zero-cost",
    "strategy": "evolution",
    "seed": 0,
    "search": {"rank": 2, "of": 10, "key": "k", "trial": 3, "scores": {"score": 1.5}},
    "training": {
        "dataset": "digits",
        "settings": {"epochs": 8, "batch_size": 64, "lr": 0.005, "dataset_options": {}},
        "final": {"epoch": 8, "val_acc": 0.925926, "val_loss": 0.41, "sops": 12345.0,
                  "energy_mj": 0.0123},
    },
    "reproduce": "autost run --space digits --out runs/x",
}  # fmt: skip


def trained_like(seed: int = 0) -> SpikingTransformer:
    """A model whose every tensor (BatchNorm statistics included) is off its initial value."""
    torch.manual_seed(seed)
    model = SpikingTransformer(ARCH)
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.add_(torch.randn_like(value) * 0.05)
    return model.eval()


def images(batch: int = 3) -> torch.Tensor:
    return torch.rand(batch, 1, 8, 8, generator=torch.Generator().manual_seed(7))


def logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model.eval()(x)
    return out


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def legacy_bundle(model: SpikingTransformer, folder: Path) -> Path:
    """A bundle as ``autost run`` wrote it before safetensors: config.json + weights.pt."""
    folder.mkdir(parents=True)
    data = {"schema_version": 1, "config": model.config.to_dict(), "provenance": PROVENANCE}
    (folder / "config.json").write_text(json.dumps(data))
    torch.save({"model": model.state_dict()}, folder / "weights.pt")
    return folder


def test_save_and_load_round_trip_and_the_card_parses(tmp_path: Path) -> None:
    model = trained_like()
    folder = model.save_pretrained(tmp_path / "bundle", provenance=PROVENANCE)
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    x = images()
    for loaded in (
        SpikingTransformer.from_pretrained(folder),
        SpikingTransformer.from_pretrained(str(folder)),
        autost.create_model(folder),
    ):
        assert loaded.config == ARCH
        assert torch.equal(logits(loaded, x), logits(model, x))
        assert torch.equal(logits(loaded, x[:1]), logits(model, x[:1]))
    # the weights file is tensors only, under the state dict's own names
    assert set(load_file(folder / "model.safetensors")) == set(model.state_dict())
    data = json.loads((folder / "config.json").read_text())
    assert data["schema_version"] == 1 and data["provenance"] == PROVENANCE

    card = ModelCard.load(folder / "README.md")
    meta = card.data
    assert meta.library_name == "autost" and meta.pipeline_tag == "image-classification"
    assert {"spiking-neural-network", "attention-ssa", "attention-sdsa"} <= set(meta.tags)
    assert meta.datasets == ["digits"] and meta.metrics == ["accuracy"]
    (result,) = meta.eval_results
    assert (result.dataset_name, result.metric_type) == ("digits", "accuracy")
    assert result.metric_value == pytest.approx(0.925926)
    text = card.text
    assert f"| {autost.count_params(ARCH):,} |" in text
    assert f"| {autost.estimate_cost(ARCH).macs:,} |" in text
    assert "| 12,345 | 0.0123 |" in text and "firing rates measured" in text
    assert f"| 1 | sdsa | 4 | {ARCH.mlp_ratios[1]:g} |" in text
    assert "ranked 2 of 10 in the search (proxy score 1.5)" in text
    assert "autost run --space digits --out runs/x" in text
    assert "| lr | 0.005 |" in text and "**0.9259**" in text
    assert (folder / "README.md").read_text().startswith("---\n")
    assert "\n# autost-2-64-digits\n" in text


def test_a_bare_model_card_says_what_is_not_known(tmp_path: Path) -> None:
    folder = trained_like().save_pretrained(tmp_path / "bare")
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "autost" and card.data.eval_results is None
    assert "upper bound" in card.text and "Not recorded in this bundle." in card.text
    assert json.loads((folder / "config.json").read_text())["provenance"] is None


def _hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundle: Path) -> Path:
    """``bundle`` as the Hugging Face cache holds a downloaded snapshot of ``me/tiny``, with
    the Hub switched offline (nothing here can reach it)."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    repo = cache / "models--me--tiny"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "README.md"):
        (snap / name).write_bytes((bundle / name).read_bytes())
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_from_pretrained_reads_a_hub_repository_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = trained_like(1)
    bundle = model.save_pretrained(tmp_path / "bundle", provenance=PROVENANCE)
    _hub_cache(tmp_path, monkeypatch, bundle)
    monkeypatch.chdir(tmp_path)  # "me/tiny" is no local folder here
    x = images()
    for loaded in (
        SpikingTransformer.from_pretrained("me/tiny"),
        autost.create_model("hf://me/tiny"),
    ):
        assert torch.equal(logits(loaded, x), logits(model, x))
    with pytest.raises(AutostError, match=r"^me/other: cannot fetch it from the Hugging Face Hub"):
        SpikingTransformer.from_pretrained("hf://me/other")
    # a mistyped local folder that looks like owner/name says both
    with pytest.raises(AutostError, match=r"^me/other: no such local folder, and cannot fetch"):
        SpikingTransformer.from_pretrained("me/other")
    with pytest.raises(AutostError, match=r"^no such file or folder: me/other$"):
        SpikingTransformer.from_pretrained(Path("me/other"))  # a path is never a repository
    with pytest.raises(AutostError, match=r"no such file or folder: \./me/tiny"):
        SpikingTransformer.from_pretrained("./me/tiny")


def test_bundles_from_before_load_and_convert_rewrites_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = trained_like(2)
    old = legacy_bundle(model, tmp_path / "old")
    x = images()
    assert torch.equal(logits(autost.create_model(old), x), logits(model, x))
    assert torch.equal(logits(SpikingTransformer.from_pretrained(old), x), logits(model, x))

    before = snapshot(old)
    assert main(["convert", str(old), "-o", str(tmp_path / "new")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "new")
    assert snapshot(old) == before  # the source is left as it was
    new = tmp_path / "new"
    assert sorted(p.name for p in new.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert torch.equal(logits(autost.create_model(new), x), logits(model, x))
    data = json.loads((new / "config.json").read_text())
    assert data["config"] == ARCH.to_dict() and data["provenance"]["space"] == "digits"
    assert "rewritten" in data["provenance"]
    assert ModelCard.load(new / "README.md").data.eval_results[0].metric_value == pytest.approx(
        0.925926
    )

    # in place: the pickle goes once the safetensors file reads back equal
    assert main(["convert", str(old), "-o", str(old)]) == 0
    assert sorted(p.name for p in old.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert torch.equal(logits(autost.create_model(old), x), logits(model, x))
    # --preset belongs to official checkpoints
    assert main(["convert", str(new), "--preset", "spikformer-4-384-cifar10", "-o", "x"]) == 2
    assert "--preset is for official checkpoints" in capsys.readouterr().err


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_a_legacy_bundle_with_code_in_its_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    old = legacy_bundle(trained_like(), tmp_path / "old")
    (old / "weights.pt").write_bytes(pickle.dumps({"model": _Payload(str(marker))}))
    with pytest.raises(AutostError, match=r"weights.pt: cannot load the weights") as info:
        autost.create_model(old)
    assert "\n" not in str(info.value) and not marker.exists()


def _tamper(folder: Path, how: str) -> str:
    """Damage bundle ``folder`` one way; the text its error must hold."""
    weights = folder / "model.safetensors"
    if how == "renamed":
        state = load_file(weights)
        state["blocks.0.attn.extra"] = state.pop("blocks.0.attn.q.linear.weight")
        save_file(state, weights)
        return "tensor 'blocks.0.attn.extra' is not in the model config.json describes"
    if how == "missing":
        state = load_file(weights)
        del state["head.weight"]
        save_file(state, weights)
        return "tensor 'head.weight' of the model config.json describes is missing"
    if how == "reshaped":
        data = json.loads((folder / "config.json").read_text())
        data["config"]["num_classes"] = 7
        (folder / "config.json").write_text(json.dumps(data))
        return (
            "tensor 'head.weight' has shape [10, 64], the model config.json describes needs [7, 64]"
        )
    if how == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return "model.safetensors: not a readable safetensors file, truncated or damaged"
    if how == "cut-header":
        weights.write_bytes(weights.read_bytes()[:6])
        return "model.safetensors: not a readable safetensors file, truncated or damaged"
    if how == "no-metadata":
        card = (folder / "README.md").read_text()
        (folder / "README.md").write_text(card.split("\n---\n", 1)[1])
        return "README.md: the model card has no YAML metadata"
    if how == "bad-metadata":
        (folder / "README.md").write_text("---\nlibrary_name: [autost\n---\n# x\n")
        return "README.md: the model card's metadata does not parse"
    raise AssertionError(how)


DAMAGES = [
    "renamed",
    "missing",
    "reshaped",
    "truncated",
    "cut-header",
    "no-metadata",
    "bad-metadata",
]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_bundle_is_refused_in_one_line_and_nothing_is_overwritten(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = trained_like().save_pretrained(tmp_path / "bundle", provenance=PROVENANCE)
    expected = _tamper(folder, how)
    for load in (autost.create_model, SpikingTransformer.from_pretrained):
        with pytest.raises(AutostError) as info:
            load(folder)
        assert expected in str(info.value) and "\n" not in str(info.value)
    before = snapshot(folder)
    for out in (folder, tmp_path / "elsewhere"):
        assert main(["convert", str(folder), "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("autost: error:") and err.count("\n") == 1 and expected in err
        assert snapshot(folder) == before
    assert not (tmp_path / "elsewhere").exists()


def test_saving_onto_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep")
    with pytest.raises(AutostError, match="is a file, not a folder"):
        trained_like().save_pretrained(target)
    assert target.read_text() == "keep"


def test_odd_provenance_schema_and_cards(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, x = trained_like(), images()
    folder = model.save_pretrained(
        tmp_path / "b", provenance={"space": "s", "training": "x", "tuning": {"x": float("nan")}}
    )
    data = json.loads((folder / "config.json").read_text())  # strict JSON: NaN became null
    assert data["provenance"]["tuning"] == {"x": None}
    assert "NaN" not in (folder / "config.json").read_text()
    assert main(["convert", str(folder), "-o", str(tmp_path / "c")]) == 0  # hand-edited: a card
    assert ModelCard.load(tmp_path / "c" / "README.md").data.library_name == "autost"
    capsys.readouterr()
    (folder / "README.md").unlink()  # the card is optional
    assert torch.equal(logits(autost.create_model(folder), x), logits(model, x))
    for key, value, message in (
        ("provenance", ["x"], "'provenance' is a list, not an object"),
        ("schema_version", 99, "unsupported schema_version 99 of the file around the config"),
    ):
        changed = {**data, key: value}
        (folder / "config.json").write_text(json.dumps(changed))
        before = snapshot(folder)
        assert main(["convert", str(folder), "-o", str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
        assert snapshot(folder) == before


def test_tensors_of_another_kind_and_a_torn_legacy_file_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = trained_like().save_pretrained(tmp_path / "b")
    state = load_file(folder / "model.safetensors")
    state["head.weight"] = state["head.weight"] > 0
    save_file(state, folder / "model.safetensors")
    with pytest.raises(AutostError, match=r"tensor 'head.weight' is bool, .* needs float32"):
        autost.create_model(folder)
    with pytest.raises(AutostError, match=r"describes with the overrides needs \[5, 64\]"):
        autost.create_model(folder, num_classes=5)
    old = legacy_bundle(trained_like(), tmp_path / "old")
    (old / "weights.pt").write_bytes((old / "weights.pt").read_bytes()[:500])
    before = snapshot(old)
    assert main(["convert", str(old), "-o", str(old)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.pt: cannot load the weights" in err
    assert snapshot(old) == before


def test_the_reproduce_command_names_skipped_stages() -> None:
    from autost.bundle.report import reproduce_command

    settings = {"space": "digits", "dataset": "mnist", "evaluator": "zero-cost",
                "strategy": "evolution", "budget": 200, "top": 3, "trials": 6, "tune_epochs": 3,
                "epochs": 30, "seed": 1, "root": "../data dir",
                "dataset_options": {"source": "test"}}  # fmt: skip
    assert reproduce_command(settings, "runs/a", ["tune"]) == (
        "autost run --space digits --dataset mnist --evaluator zero-cost --strategy evolution "
        "--budget 200 --top 3 --trials 6 --tune-epochs 3 --epochs 30 --seed 1 --root '../data dir' "
        "--dataset-option source=test --skip tune --out runs/a"
    )


def test_a_legacy_bundle_whose_weights_are_a_plain_pickle_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    old = legacy_bundle(trained_like(), tmp_path / "old")
    (old / "weights.pt").write_bytes(pickle.dumps({"model": {"head.weight": [1.0]}}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["convert", str(old), "-o", str(tmp_path / "new")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.pt: cannot load the weights" in err
    assert not caught, [str(w.message) for w in caught]  # none of torch's warnings
    assert not (tmp_path / "new").exists()
