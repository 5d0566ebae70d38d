"""SpikeNAS-Bench's cell space (autost.model.spikenas), its facts table and the natural-image
batch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from autost.data.natural import natural_batch
from autost.errors import ConfigError
from autost.model.spikenas import (
    EDGES,
    NUM_ARCHITECTURES,
    OPS,
    SpikeNASSpace,
    build_spikenas_model,
    decode,
    encode,
    spikenas_param_count,
)

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from spikenas_extract import EDGE_COLUMNS, OUT, parse_log, read_table  # noqa: E402

ALL_ZERO, ALL_SKIP, ALL_CONV = 0, sum(5**k for k in range(6)), NUM_ARCHITECTURES - 1
IDS = [ALL_ZERO, ALL_SKIP, 3276, 14862, ALL_CONV]


@pytest.fixture(scope="module")
def table() -> dict[int, dict[str, str]]:
    return {int(r["id"]): r for r in read_table(OUT)}


def test_table_covers_the_space(table: dict[int, dict[str, str]]) -> None:
    assert sorted(table) == list(range(NUM_ARCHITECTURES))
    assert float(table[14862]["test_acc"]) == 88.5  # the README's search result
    assert int(table[14862]["params"]) == 21_607_908


@pytest.mark.parametrize("arch_id", [*IDS, 1, 5, 25, 125, 625, 3125, 9810])
def test_id_encoding_round_trip(arch_id: int, table: dict[int, dict[str, str]]) -> None:
    ops = decode(arch_id)
    row = table[arch_id]
    assert [OPS[int(row[c])] for c in EDGE_COLUMNS] == list(ops)
    assert encode(ops) == arch_id == encode([OPS.index(op) for op in ops])
    assert SpikeNASSpace.encode(SpikeNASSpace.decode(arch_id)) == arch_id
    assert spikenas_param_count(arch_id) == int(row["params"])


def test_digit_order() -> None:
    # base-5 digits, least significant first, are edges (0,1), (0,2), (0,3), (1,2), (1,3), (2,3)
    assert EDGES[0] == (0, 1) and EDGES[-1] == (2, 3)
    assert decode(1) == ("skip", "zero", "zero", "zero", "zero", "zero")
    assert decode(4 * 5**5) == ("zero",) * 5 + ("conv_t15",)
    assert decode(ALL_SKIP) == ("skip",) * 6


@pytest.mark.parametrize("bad", [-1, NUM_ARCHITECTURES, 2.0, True])
def test_bad_ids(bad: object) -> None:
    with pytest.raises(ConfigError):
        decode(bad)  # type: ignore[arg-type]


def test_bad_encodings() -> None:
    for ops in (["zero"] * 5, ["zero"] * 5 + ["conv"], [0] * 5 + [5]):
        with pytest.raises(ConfigError):
            encode(ops)


@pytest.mark.parametrize("arch_id", [ALL_ZERO, 14862])
def test_built_model_matches_recorded_params(
    arch_id: int, table: dict[int, dict[str, str]]
) -> None:
    model = build_spikenas_model(arch_id, backend="eager")
    assert sum(p.numel() for p in model.parameters()) == int(table[arch_id]["params"])


@pytest.mark.parametrize("arch_id", IDS)
def test_forward_backward(arch_id: int) -> None:
    torch.manual_seed(0)
    model = build_spikenas_model(arch_id, width=4, timesteps=2, backend="eager")
    assert sum(p.numel() for p in model.parameters()) == spikenas_param_count(arch_id, width=4)
    x, y = natural_batch(4, seed=1)
    logits = model(x)
    assert logits.shape == (4, 10)
    torch.nn.functional.cross_entropy(logits, y).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # time-major frames of a static image give the same logits
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.unsqueeze(0).repeat(2, 1, 1, 1, 1)), atol=1e-6)


def test_other_classes_and_sizes() -> None:
    model = build_spikenas_model(ALL_CONV, num_classes=3, width=4, timesteps=1, image_size=16)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    with pytest.raises(ConfigError):
        build_spikenas_model(0, timesteps=0)


def test_proxies_score_the_model() -> None:
    from autost.proxies import score

    model = build_spikenas_model(ALL_CONV, width=4, timesteps=2, backend="eager")
    result = score(model, natural_batch(8), ["firing_rate", "params"])
    assert 0.0 < result.raw["firing_rate"] < 1.0
    assert result.raw["params"] == spikenas_param_count(ALL_CONV, width=4)


def test_sample_is_seeded_and_distinct() -> None:
    first = SpikeNASSpace.sample(np.random.default_rng(3), 50)
    assert first == SpikeNASSpace.sample(np.random.default_rng(3), 50)
    assert len(set(first)) == 50 and all(0 <= i < len(SpikeNASSpace()) for i in first)


def test_natural_batch_is_deterministic() -> None:
    x, y = natural_batch(16, seed=5)
    x2, y2 = natural_batch(16, seed=5)
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and sorted(set(y.tolist())) == list(range(10))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, natural_batch(16, seed=6)[0])
    assert abs(float(x.mean())) < 1.0 and 0.3 < float(x.std()) < 3.0


def test_parse_log() -> None:
    epochs = "".join(f"{e}.000, 50.0, 1.0, {40 + e}.5, 1.2\r\n" for e in range(3))
    text = (
        "architecture id: 7\r\nmodel parameters: 123\r\n"
        "epoch, train_acc, train_loss, val_acc, val_loss\r\n"
        f"{epochs}test accuracy: 41.250\r\nfiring rate of layers: 0.1, 0.2\r\n"
        "Elapsed time: 1.0hour2.0minute3.5second\r\n"
    )
    row = parse_log(text)
    assert row == {
        "id": 7,
        "params": 123,
        "epochs": 3,
        "train_acc": 50.0,
        "val_acc": 42.5,
        "test_acc": 41.25,
        "train_seconds": 3723.5,
    }


@pytest.mark.slow
def test_report_pairs_every_proxy_with_flops_and_ranks_inside_a_flops_level(
    tmp_path: Path, table: dict[int, dict[str, str]]
) -> None:
    import csv

    import spikenas as bench

    ids = sorted(table)[:60]
    acc = {i: float(table[i]["test_acc"]) for i in ids}
    # flops: two levels, 45 cells and 15; sahd follows accuracy; grad_norm its reverse
    flops = {i: 1e8 if k < 45 else 2e8 for k, i in enumerate(ids)}
    settings = {"width": 4, "batch": 4, "timesteps": 5, "model_seed": 0, "batch_seed": 0}
    path = tmp_path / "spikenas_scores.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, bench.HEADER)
        writer.writeheader()
        for i in ids:
            for name, raw in (("flops", flops[i]), ("sahd", acc[i]), ("grad_norm", -acc[i])):
                writer.writerow(
                    {
                        "id": i,
                        "proxy": name,
                        "raw": raw,
                        "seconds": 0.1,
                        "arch_seconds": 0.3,
                        **settings,
                    }
                )
    weights = {"sahd": 1.0, "flops": 1.0}
    result = bench.report(path, ["flops", "sahd", "grad_norm"], table, 0, {"both": weights})
    stats = result["proxies"]
    assert set(stats) == {"flops", "sahd", "grad_norm", "both"}
    assert stats["sahd"]["kendall_tau"] == pytest.approx(1.0)
    assert stats["grad_norm"]["kendall_tau"] == pytest.approx(-1.0)
    gain = stats["sahd"]["minus_flops_tau"]
    assert gain == pytest.approx(1.0 - stats["flops"]["kendall_tau"])
    low, high = stats["sahd"]["minus_flops_tau_ci95"]
    assert low <= gain <= high
    assert stats["sahd"]["top1_test_acc"] == max(acc.values())
    (level,) = result["flops_levels"].values()  # only the level of 45 cells is reported
    assert level["n"] == 45 and level["flops"] == 1e8
    assert set(level["proxies"]) == {"sahd", "grad_norm", "both"}  # FLOPs constant: left out
    assert level["proxies"]["sahd"]["kendall_tau"] == pytest.approx(1.0)
    assert "Inside one budget" in bench.markdown(
        {
            **result,
            "settings": settings,
            "timing": bench.timing(path),
            "machine": "m",
            "ground_truth": "g",
            "models": "m",
            "batch": "b",
            "sample": "s",
            "sample_size": 60,
            "projected_minutes": 1.0,
            "width_check": {},
        },
        "cmd",
    )
