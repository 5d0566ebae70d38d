"""ArchConfig: JSON round trip, schema version, per-layer broadcast, validation naming fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import autost
from autost import ArchConfig, ConfigError
from autost.model.config import ATTENTION_TYPES, REQUIRED_FIELDS, SCHEMA_VERSION, check_field


def test_defaults_are_spikformer_cifar() -> None:
    cfg = ArchConfig()
    assert cfg.num_heads == (12,) * 4
    assert cfg.mlp_ratios == (4.0,) * 4
    assert cfg.stem_pooling == "0011"
    assert cfg.num_tokens == 64
    assert cfg.neuron.tau == 2.0 and cfg.neuron.threshold == 1.0
    assert cfg.neuron.attn_threshold == 0.5 and cfg.neuron.surrogate == "sigmoid"


def test_per_layer_fields_broadcast_and_keep_lists() -> None:
    cfg = ArchConfig(embed_dim=256, depth=3, num_heads=[4, 8, 4], mlp_ratios=3, attention="sdsa")
    assert cfg.num_heads == (4, 8, 4)
    assert cfg.mlp_ratios == (3.0, 3.0, 3.0)
    assert cfg.attention == ("sdsa",) * 3


@pytest.mark.parametrize("name", autost.list_models())
def test_presets_round_trip_json(name: str, tmp_path: Path) -> None:
    from autost.model.network import resolve_config

    cfg = resolve_config(name)
    assert ArchConfig.from_json(cfg.to_json()) == cfg
    path = tmp_path / "c.json"
    cfg.to_json(path)
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION
    assert ArchConfig.from_json(path) == cfg
    assert ArchConfig.from_json(str(path)) == cfg


@settings(max_examples=60, deadline=None)
@given(
    depth=st.integers(1, 6),
    width_mult=st.integers(1, 8),
    heads=st.sampled_from([1, 2, 4, 8]),
    ratio=st.sampled_from([1.0, 2.0, 3.5, 4.0]),
    attention=st.sampled_from(ATTENTION_TYPES),
    timesteps=st.integers(1, 8),
    tim=st.booleans(),
    kind=st.sampled_from(["lif", "plif"]),
)
def test_random_configs_round_trip(
    depth: int,
    width_mult: int,
    heads: int,
    ratio: float,
    attention: str,
    timesteps: int,
    tim: bool,
    kind: str,
) -> None:
    cfg = ArchConfig(
        embed_dim=64 * width_mult,
        depth=depth,
        num_heads=heads,
        mlp_ratios=ratio,
        attention=attention,
        timesteps=timesteps,
        tim=tim,
        neuron={"kind": kind},
    )
    assert ArchConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


BAD: list[tuple[dict[str, Any], str]] = [
    ({"embed_dim": 384, "num_heads": 5}, "num_heads[0]"),
    ({"embed_dim": 384, "depth": 2, "num_heads": [12, 7]}, "num_heads[1]"),
    ({"embed_dim": 100}, "embed_dim"),  # SPS splits the width by 8
    ({"stem": "qk-cifar", "embed_dim": 100, "num_heads": 2}, "embed_dim"),
    ({"attention": "softmax"}, "attention[0]"),
    ({"timesteps": 0}, "timesteps"),
    ({"timesteps": -3}, "timesteps"),
    ({"image_size": 30}, "image_size"),  # "0011" pooling needs a multiple of 4
    ({"image_size": 224, "stem_pooling": "1111", "num_heads": 12}, None),
    ({"image_size": 100, "stem_pooling": "1111"}, "image_size"),
    ({"stem": "sps", "stem_pooling": "011"}, "stem_pooling"),
    ({"stem": "nope"}, "stem"),
    ({"depth": 2, "mlp_ratios": [4, 4, 4]}, "mlp_ratios"),
    ({"mlp_ratios": 0}, "mlp_ratios[0]"),
    ({"neuron": {"tau": 0.5}}, "neuron.tau"),
    ({"neuron": {"threshold": 0}}, "neuron.threshold"),
    ({"neuron": {"surrogate": "tanh"}}, "neuron.surrogate"),
    ({"neuron": {"kind": "izhikevich"}}, "neuron.kind"),
    ({"stem": "qk-cifar", "depth": 4, "stages": [1, 1, 1], "num_heads": 2}, "stages"),
    ({"stages": [2, 2]}, "stages"),
    ({"tim": True, "tim_kernel": 4}, "tim_kernel"),
    ({"tim_alpha": 1.5}, "tim_alpha"),
    ({"num_experts": 0}, "num_experts"),
    ({"coding": "rate"}, "coding"),
    ({"shortcut": "dense"}, "shortcut"),
    # wrong types are ConfigErrors naming the field, never a TypeError from inside
    ({"stem": ["sps"]}, "stem"),
    ({"attn_scale": "big"}, "attn_scale"),
    ({"tim": "yes"}, "tim"),
    ({"qkv_bias": 1}, "qkv_bias"),
    ({"tim_alpha": "half"}, "tim_alpha"),
    ({"mlp_ratios": [4, "x", 4, 4]}, "mlp_ratios[1]"),
    ({"embed_dim": 64.0}, "embed_dim"),
    ({"neuron": {"tau": "slow"}}, "neuron.tau"),
    ({"neuron": {"detach_reset": "no"}}, "neuron.detach_reset"),
]


@pytest.mark.parametrize(("fields", "field"), BAD)
def test_bad_configs_name_the_field(fields: dict[str, Any], field: str | None) -> None:
    if field is None:
        ArchConfig(**fields)  # a valid control case
        return
    with pytest.raises(autost.AutostError) as info:
        ArchConfig(**fields)
    assert isinstance(info.value, ConfigError)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_from_dict_rejects_unknown_keys_and_versions() -> None:
    with pytest.raises(ConfigError, match="embed_dims"):
        ArchConfig.from_dict({"embed_dims": 384})
    with pytest.raises(ConfigError, match="schema_version"):
        ArchConfig.from_dict({"schema_version": 99})


def test_from_dict_names_missing_required_fields(tmp_path: Path) -> None:
    data = ArchConfig(embed_dim=64, num_heads=4).to_dict()
    del data["embed_dim"]  # the default 384 would fit; still a config must say its width
    with pytest.raises(ConfigError) as info:
        ArchConfig.from_dict(data)
    assert str(info.value) == "embed_dim: config is missing required field 'embed_dim'"
    assert info.value.field == "embed_dim"
    with pytest.raises(ConfigError, match="required fields 'in_channels', 'image_size'"):
        ArchConfig.from_dict({"depth": 2})
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({k: v for k, v in data.items() if k != "num_heads"}))
    with pytest.raises(
        ConfigError, match="missing required fields 'embed_dim', 'num_heads'"
    ) as err:
        ArchConfig.from_json(path)
    assert str(path) in str(err.value) and err.value.field == "embed_dim"
    # only the required fields: the others take the reference papers' defaults
    required = {k: data.get(k, 64) for k in REQUIRED_FIELDS}
    assert ArchConfig.from_dict(required) == ArchConfig(embed_dim=64, num_heads=4)


def test_from_json_refuses_unknown_fields_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "typo.json"
    path.write_text(json.dumps({**ArchConfig().to_dict(), "embed_dims": 256}))
    with pytest.raises(ConfigError, match="unknown value 'embed_dims'; did you mean 'embed_dim'"):
        ArchConfig.from_json(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "malformed config JSON: Expecting property name"),
        (b"\xff\xfe{", "malformed config JSON: not UTF-8"),
        (b"[1, 2]", "expected a JSON object"),
    ],
)
def test_bad_json_files_are_one_line_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(autost.AutostError, match=message) as info:
        ArchConfig.from_json(bad)
    assert str(info.value).startswith(f"{bad}: ") and "\n" not in str(info.value)
    with pytest.raises(autost.AutostError, match="cannot read"):
        ArchConfig.from_json(tmp_path / "missing.json")


def test_check_field_applies_the_rules_of_one_field() -> None:
    check_field("attention", ["ssa", "sdsa"])
    check_field("num_heads", 7)  # 7 heads may divide some width
    with pytest.raises(ConfigError, match=r"unknown value 'nosuch'.*choices: ssa") as info:
        check_field("attention", ["ssa", "nosuch"])
    assert info.value.field == "attention[1]"
    with pytest.raises(ConfigError, match="positive integer, got 0"):
        check_field("depth", 0)
    with pytest.raises(ConfigError, match="'0'/'1'"):
        check_field("stem_pooling", "0021")
    with pytest.raises(ConfigError, match=r"neuron\.surrogate"):
        check_field("neuron", {"surrogate": "tanh"})
    with pytest.raises(ConfigError, match="embed_dims"):
        check_field("embed_dims", 64)


def test_replace_rebroadcasts_uniform_layers_on_depth_change() -> None:
    cfg = ArchConfig().replace(depth=6)
    assert cfg.num_heads == (12,) * 6 and cfg.attention == ("ssa",) * 6
    qk = autost.model.network.resolve_config("qkformer-4-384-cifar10")
    qk = qk.replace(depth=5, attention=["qk-token"] * 2 + ["ssa"] * 3)
    assert qk.stages == (1, 1, 3)


def test_official_forward_settings_round_trip_and_default_off() -> None:
    cfg = ArchConfig(attention=["sdsa", "ssa", "ssa", "ssa"], sdsa_dvs_pool=True,
                     ssa_flat_proj_lif=True)  # fmt: skip
    assert ArchConfig.from_json(cfg.to_json()) == cfg
    data = ArchConfig().to_dict()
    del data["sdsa_dvs_pool"], data["ssa_flat_proj_lif"]  # a config written before they existed
    old = ArchConfig.from_dict(data)
    assert old == ArchConfig() and not old.sdsa_dvs_pool and not old.ssa_flat_proj_lif
    for name in ("sdsa_dvs_pool", "ssa_flat_proj_lif"):
        with pytest.raises(ConfigError, match="true or false") as info:
            ArchConfig(**{name: "yes"})
        assert info.value.field == name
        check_field(name, True)


def test_an_outer_schema_version_this_autost_does_not_know_is_refused(tmp_path: Path) -> None:
    inner = ArchConfig(depth=2).to_dict()
    path = tmp_path / "best.json"
    for version in (99, True, "1"):
        path.write_text(json.dumps({"schema_version": version, "config": inner}))
        for read in (ArchConfig.from_json, autost.create_model):
            with pytest.raises(autost.AutostError) as info:
                read(path)
            message = str(info.value)
            assert "\n" not in message and message.startswith(f"{path}: ")
            assert f"unsupported schema_version {version!r}" in message
    for outer in ({"schema_version": 1}, {}):  # this version's, or a file from before it
        path.write_text(json.dumps({**outer, "config": inner, "key": "k"}))
        assert ArchConfig.from_json(path) == ArchConfig(depth=2)


def test_settings_of_one_attention_type_need_a_layer_of_it() -> None:
    for name, present in (("ssa_flat_proj_lif", "ssa"), ("sdsa_dvs_pool", "sdsa")):
        for attention in ATTENTION_TYPES:
            if attention == present:
                assert getattr(ArchConfig(attention=attention, **{name: True}), name)
                continue
            with pytest.raises(ConfigError, match=f"only changes '{present}' attention") as info:
                ArchConfig(attention=attention, **{name: True})
            assert info.value.field == name and "\n" not in str(info.value)
        mixed = ["qk-token", present, "qk-token", "qk-token"]
        assert getattr(ArchConfig(attention=mixed, **{name: True}), name)
    with pytest.raises(ConfigError, match="shortcut 'membrane' has none"):
        ArchConfig(shortcut="membrane", ssa_flat_proj_lif=True)
    sdt = autost.model.network.resolve_config("sdt-2-256-cifar10dvs")
    with pytest.raises(ConfigError, match="sdsa_dvs_pool: only changes 'sdsa'"):
        sdt.replace(attention="ssa")


def test_overrides_parse_like_the_config_fields() -> None:
    from autost.model.config import parse_overrides

    items = ["ssa_flat_proj_lif=true", "timesteps=2", "num_heads=[4, 8]", "stem_pooling=1111"]
    items += ["attention=ssa", "neuron.tau=1.5", "neuron.surrogate=atan", "mlp_ratios=2.5"]
    assert parse_overrides(items) == {
        "ssa_flat_proj_lif": True,
        "timesteps": 2,
        "num_heads": [4, 8],
        "stem_pooling": "1111",
        "attention": "ssa",
        "neuron": {"tau": 1.5, "surrogate": "atan"},
        "mlp_ratios": 2.5,
    }
    for item, field, expected in (
        ("ssa_flat_proj=true", "ssa_flat_proj", "did you mean 'ssa_flat_proj_lif'"),
        ("ssa_flat_proj_lif=yes", "ssa_flat_proj_lif", "must be true or false, got 'yes'"),
        ("timesteps=0", "timesteps", "must be >= 1, got 0"),
        ("neuron.tua=3", "neuron.tua", "did you mean 'tau'"),
        ("stem.x=1", "stem.x", "only neuron settings take a dotted name"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_overrides([item])
        assert info.value.field == field and expected in str(info.value)
        assert f"(in override {item!r})" in str(info.value)
    with pytest.raises(autost.AutostError, match="expected KEY=VALUE"):
        parse_overrides(["ssa_flat_proj_lif"])


def test_layer_sides_follow_the_stem_and_the_stages() -> None:
    assert ArchConfig(image_size=32).layer_sides == (8,) * 4  # SPS CIFAR: stride 4
    qk = autost.model.network.resolve_config("qkformer-10-768-imagenet")
    assert qk.stages == (1, 2, 7) and qk.layer_sides == (56, 28, 28) + (14,) * 7
    assert qk.layer_sides[-1] ** 2 == qk.num_tokens


def test_every_field_has_exactly_one_single_field_rule() -> None:
    import dataclasses

    from autost.model.fields import FIELD_NAMES

    assert tuple(sorted(f.name for f in dataclasses.fields(autost.ArchConfig))) == FIELD_NAMES
