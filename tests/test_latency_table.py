"""The per-device latency table: profiling a space, predicting, and refusing a foreign table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from testkit import run_cli

from autost.errors import AutostError
from autost.search import latency_table
from autost.search.latency_table import LatencyTable, block_kinds, layer_config, profile_space
from autost.search.space import SearchSpace

TINY_SPACE = """
[space]
name = "tiny"
[fixed]
in_channels = 1
image_size = 8
num_classes = 10
stem = "sps"
stem_pooling = "0011"
embed_dim = 32
timesteps = 2
[dimensions.depth]
type = "int"
low = 1
high = 3
[dimensions.attention]
choices = ["ssa", "sdsa"]
per_layer = true
[dimensions.num_heads]
choices = [1, 2]
per_layer = true
"""


@pytest.fixture
def space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SearchSpace:
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPACE)
    return SearchSpace.load(path)


@pytest.fixture
def table(space: SearchSpace) -> LatencyTable:
    return profile_space(space, threads=1, fit=2, repeats=3, warmup=1)


def test_a_space_is_profiled_once_per_block_kind(space: SearchSpace, table: LatencyTable) -> None:
    assert len(block_kinds(space)) == 4  # 2 attentions x 2 head counts
    assert len(table.blocks) == len(table.bases) == 4
    assert all(v > 0 for v in [*table.blocks.values(), *table.bases.values()])
    assert len(table.fit) == 2
    assert table.machine["threads"] == 1 and table.machine["device"] == "cpu"


def test_a_prediction_is_base_plus_blocks_plus_the_constant(
    space: SearchSpace, table: LatencyTable
) -> None:
    cfg = space.sample(np.random.default_rng(3)).replace(
        depth=3, num_heads=[1, 2, 2], attention=["ssa", "sdsa", "ssa"]
    )
    keys = [latency_table._digest(layer_config(cfg, i)) for i in range(3)]
    expected = table.bases[keys[0]] + sum(table.blocks[k] for k in keys) + table.constant_ms
    assert table.predict(cfg) == pytest.approx(expected)
    assert len(table.blocks) == 4  # nothing new was timed
    wider = cfg.replace(embed_dim=64)  # not a kind of the space: timed once, then kept
    table.predict(wider)
    assert len(table.blocks) == 7  # its three layer kinds at width 64


def test_a_saved_table_loads_here_and_is_refused_elsewhere(
    table: LatencyTable, tmp_path: Path
) -> None:
    path = table.save(tmp_path / "table.json")
    again = LatencyTable.load(path, threads=1)
    assert again.to_dict() == table.to_dict()
    with pytest.raises(AutostError, match="threads 1, this run has 2"):
        LatencyTable.load(path, threads=2)
    for key, value in (("device_name", "Some Other CPU (64 CPUs)"), ("torch", "1.0"),
                       ("autost", "0.0.1")):  # fmt: skip
        data = json.loads(path.read_text())
        data["machine"][key] = value
        other = tmp_path / f"{key}.json"
        other.write_text(json.dumps(data))
        with pytest.raises(AutostError, match=f"measured with {key}.*profile this device again"):
            LatencyTable.load(other, threads=1)
    for text in ("{", "[]", json.dumps({"kind": "autost latency table", "schema": 99})):
        path.write_text(text)
        with pytest.raises(AutostError, match="not a readable latency table") as info:
            LatencyTable.load(path, threads=1)
        assert "\n" not in str(info.value)
    with pytest.raises(AutostError, match="unknown device"):
        LatencyTable.load(tmp_path / "torch.json", device="tpu", threads=1)


def test_spaces_that_cannot_be_tabled_are_refused(
    space: SearchSpace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(latency_table, "MAX_KINDS", 3)
    with pytest.raises(AutostError, match="4 block kinds"):
        block_kinds(space)
    with pytest.raises(AutostError, match="4 block kinds"):
        profile_space(space, threads=1, fit=1, repeats=2, warmup=0)
    lazy = profile_space(space, threads=1, fit=1, repeats=2, warmup=0, on_demand=True)
    timed = len(lazy.blocks)
    assert 1 <= timed <= 3  # the kinds of the one fit candidate only
    cfg = space.sample(np.random.default_rng(5)).replace(
        depth=2, num_heads=[1, 2], attention=["ssa", "sdsa"]
    )
    lazy.predict(cfg)
    assert timed <= len(lazy.blocks) <= 4
    from autost.model.network import resolve_config

    staged = resolve_config("qkformer-10-384-imagenet")
    assert staged.stages
    with pytest.raises(AutostError, match="single-stage"):
        layer_config(staged, 0)


def test_profile_device_writes_a_table_and_refuses_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOST_CACHE", str(tmp_path / "cache"))
    space = tmp_path / "tiny.toml"
    space.write_text(TINY_SPACE)
    out = tmp_path / "table.json"
    args = ("profile-device", "--space", str(space), "--threads", "1", "--fit", "1", "--quiet")
    done = run_cli(*args, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "profiled 4 block kinds of tiny on cpu" in done.stdout
    assert LatencyTable.load(out, threads=1).space == "tiny"
    for extra, message in (
        (("--device", "tpu", "--out", str(tmp_path / "a.json")), "unknown device 'tpu'"),
        (("--out", str(tmp_path)), "is a folder"),
        (("--out", str(tmp_path / "no" / "t.json")), "does not exist"),
        (("--batch", "0", "--out", str(tmp_path / "b.json")), "--batch must be >= 1"),
    ):
        bad = run_cli(*args, *extra)
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "table.json", "tiny.toml"]
