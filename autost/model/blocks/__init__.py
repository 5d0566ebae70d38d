"""Building blocks, each kind in its registry: stems, attention, MLPs, input coding, TIM."""

from autost.model.blocks.attention import ATTENTIONS, Attention
from autost.model.blocks.coding import CODINGS, Coding
from autost.model.blocks.common import LayerCost, ShortcutBranch
from autost.model.blocks.mlp import MLPS
from autost.model.blocks.stems import STEMS, QKDownsample, Stem

__all__ = [
    "ATTENTIONS",
    "CODINGS",
    "MLPS",
    "STEMS",
    "Attention",
    "Coding",
    "LayerCost",
    "QKDownsample",
    "ShortcutBranch",
    "Stem",
]

# Modules that register further entries (SEMM attention and MLP, GAC coding).
from autost.model.blocks import gac as _gac  # noqa: F401
from autost.model.blocks import semm as _semm  # noqa: F401
