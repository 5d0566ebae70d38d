"""autost: training-free architecture search for spiking transformers."""

from typing import TYPE_CHECKING

from autost import presets as _presets  # noqa: F401  (registers the presets)
from autost.config import SCHEMA_VERSION, ArchConfig, NeuronConfig
from autost.cost import CostReport, count_params, estimate_cost, layer_table
from autost.errors import AutostError, ConfigError, UnknownNameError
from autost.models import SpikingTransformer, create_model, list_models, register_model

__version__ = "0.1.0"

if TYPE_CHECKING:  # type checkers see the real signatures of the lazily loaded names
    from autost.official import load_official
    from autost.search import search
    from autost.space import SearchSpace
    from autost.training import TrainResult, TrainSettings, train

# Entry points whose modules import more (optuna, the data loaders) load on first use.
_LAZY = {
    "SearchSpace": "autost.space",
    "search": "autost.search",
    "train": "autost.training",
    "TrainSettings": "autost.training",
    "TrainResult": "autost.training",
    "load_official": "autost.official",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'autost' has no attribute {name!r}")


__all__ = [
    "SCHEMA_VERSION",
    "ArchConfig",
    "AutostError",
    "ConfigError",
    "CostReport",
    "NeuronConfig",
    "SearchSpace",
    "SpikingTransformer",
    "TrainResult",
    "TrainSettings",
    "UnknownNameError",
    "__version__",
    "count_params",
    "create_model",
    "estimate_cost",
    "layer_table",
    "list_models",
    "load_official",
    "register_model",
    "search",
    "train",
]
