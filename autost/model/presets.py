"""Presets reproducing the official Spikformer, Spike-driven Transformer and QKFormer models.

Names are ``<family>-<depth>-<dim>-<dataset>``. Each preset equals its official implementation
parameter for parameter, leaving out modules that the official code builds but never calls
(Spikformer's LayerNorms, DVS ``pos_embed``/``norm``/``res_lif``; SDT's talking-heads conv,
``attn_lif`` and stem ``rpe_lif``). The exact counts are held by ``tests/test_presets.py``.
The SDT CIFAR10-DVS preset turns on ``sdsa_dvs_pool``, the official "DVS mode" max-pools.

Known output difference: every official QKFormer runs its SSA's output neuron (``proj_lif``)
over the flattened ``T*B`` axis, so the membrane carries from one sample to the next. The
presets keep per-sample dynamics (identical at batch 1; at batch >= 2 official logits differ);
``ssa_flat_proj_lif=True`` reproduces the official behaviour, e.g. to evaluate official
checkpoints exactly: ``create_model("qkformer-10-768-imagenet", ssa_flat_proj_lif=True)``.

Sources (read for structure, not copied): ZK-Zhou/spikformer (cifar10, cifar10dvs, imagenet
``model.py``), BICLab/Spike-Driven-Transformer (``module/``, ``conf/``), zhouchenlin2096/QKFormer
(cifar10, cifar100, cifar10-dvs, dvs128-gesture ``model.py``, ``imagenet/qkformer.py``).
"""

from __future__ import annotations

from typing import Any

from autost.model.config import ArchConfig
from autost.model.network import register_model

#: dataset -> (in_channels, image_size, num_classes)
DATASETS: dict[str, tuple[int, int, int]] = {
    "cifar10": (3, 32, 10),
    "cifar100": (3, 32, 100),
    "imagenet": (3, 224, 1000),
    "cifar10dvs": (2, 128, 10),
    "dvsgesture": (2, 128, 11),
}


def _register(name: str, **fields: Any) -> None:
    def factory() -> ArchConfig:
        return ArchConfig(**fields)

    factory.__name__ = name.replace("-", "_")
    factory.__doc__ = f"The official {name} configuration."
    register_model(name)(factory)


def _input(dataset: str, **fields: Any) -> dict[str, Any]:
    channels, size, classes = DATASETS[dataset]
    return {"in_channels": channels, "image_size": size, "num_classes": classes, **fields}


# Spikformer (Zhou et al., ICLR 2023). CIFAR models use biased q/k/v linears; ImageNet and DVS
# use bias-free q/k/v 1x1 convs. DVS models scale attention by 0.25 and use T=16.
for _dataset in ("cifar10", "cifar100"):
    _register(
        f"spikformer-4-384-{_dataset}",
        **_input(
            _dataset,
            timesteps=4,
            stem="sps",
            stem_pooling="0011",
            embed_dim=384,
            depth=4,
            num_heads=12,
            mlp_ratios=4,
            attention="ssa",
            qkv_bias=True,
        ),
    )
for _depth, _dim in ((8, 384), (6, 512), (8, 512), (10, 512), (8, 768)):
    _register(
        f"spikformer-{_depth}-{_dim}-imagenet",
        **_input(
            "imagenet",
            timesteps=4,
            stem="sps",
            stem_pooling="1111",
            embed_dim=_dim,
            depth=_depth,
            num_heads=8 if _dim == 512 else 12,
            mlp_ratios=4,
            attention="ssa",
        ),
    )
for _dataset in ("cifar10dvs", "dvsgesture"):
    _register(
        f"spikformer-2-256-{_dataset}",
        **_input(
            _dataset,
            timesteps=16,
            stem="sps",
            stem_pooling="1111",
            embed_dim=256,
            depth=2,
            num_heads=16,
            mlp_ratios=4,
            attention="ssa",
            attn_scale=0.25,
        ),
    )

# Spike-driven Transformer (Yao et al., NeurIPS 2023): membrane shortcuts, SDSA, head LIF.
# Pooling patterns and T from the official conf/ files.
_SDT = {
    "stem": "sps-membrane",
    "shortcut": "membrane",
    "attention": "sdsa",
    "num_heads": 8,
    "mlp_ratios": 4,
}
for _dataset in ("cifar10", "cifar100"):
    _register(
        f"sdt-2-512-{_dataset}",
        **_input(_dataset, timesteps=4, stem_pooling="0011", embed_dim=512, depth=2, **_SDT),
    )
for _depth, _dim in ((8, 384), (6, 512), (8, 512), (10, 512), (8, 768)):
    _register(
        f"sdt-{_depth}-{_dim}-imagenet",
        **_input(
            "imagenet", timesteps=4, stem_pooling="1111", embed_dim=_dim, depth=_depth, **_SDT
        ),
    )
_register(  # the official code runs CIFAR10-DVS (only) in "DVS mode"
    "sdt-2-256-cifar10dvs",
    **{
        **_input("cifar10dvs", timesteps=10, stem_pooling="0011", embed_dim=256, depth=2, **_SDT),
        "image_size": 64,
        "sdsa_dvs_pool": True,
    },
)
_register(
    "sdt-2-256-dvsgesture",
    **_input("dvsgesture", timesteps=16, stem_pooling="0111", embed_dim=256, depth=2, **_SDT),
)

# QKFormer (Zhou et al., NeurIPS 2024): hierarchical, Q-K token attention in the early stages,
# SSA in the last. Heads: 8 on CIFAR (hard-coded officially), D/64 on ImageNet, 16 on DVS.
for _dataset in ("cifar10", "cifar100"):
    _register(
        f"qkformer-4-384-{_dataset}",
        **_input(
            _dataset,
            timesteps=4,
            stem="qk-cifar",
            embed_dim=384,
            depth=4,
            stages=(1, 1, 2),
            num_heads=8,
            mlp_ratios=4,
            attention=("qk-token", "qk-token", "ssa", "ssa"),
        ),
    )
for _dim, _heads in ((384, 6), (512, 8), (768, 12)):
    _register(
        f"qkformer-10-{_dim}-imagenet",
        **_input(
            "imagenet",
            timesteps=4,
            stem="qk-imagenet",
            embed_dim=_dim,
            depth=10,
            stages=(1, 2, 7),
            num_heads=_heads,
            mlp_ratios=4,
            attention=("qk-token",) * 3 + ("ssa",) * 7,
        ),
    )
for _dataset, _ratio in (("cifar10dvs", 1), ("dvsgesture", 4)):
    _register(
        f"qkformer-2-256-{_dataset}",
        **_input(
            _dataset,
            timesteps=16,
            stem="qk-dvs",
            embed_dim=256,
            depth=2,
            stages=(1, 1),
            num_heads=16,
            mlp_ratios=_ratio,
            attention=("qk-token", "ssa"),
        ),
    )
