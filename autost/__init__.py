"""autost: training-free architecture search for spiking transformers."""

from typing import TYPE_CHECKING

from autost.bundle import hub as _hub  # noqa: F401  (create_model reads and writes bundles with it)
from autost.errors import AutostError, ConfigError, UnknownNameError
from autost.model import presets as _presets  # noqa: F401  (registers the presets)
from autost.model.config import SCHEMA_VERSION, ArchConfig, NeuronConfig
from autost.model.cost import CostReport, count_params, estimate_cost, layer_table
from autost.model.latency import Latency, measure_latency
from autost.model.network import SpikingTransformer, create_model, list_models, register_model
from autost.version import __version__

if TYPE_CHECKING:  # type checkers see the real signatures of the lazily loaded names
    from autost.bundle.official import load_official
    from autost.search import search
    from autost.search.space import SearchSpace
    from autost.training import TrainResult, TrainSettings, train

# Entry points whose modules import more (optuna, the data loaders) load on first use.
_LAZY = {
    "SearchSpace": "autost.search.space",
    "search": "autost.search",
    "train": "autost.training",
    "TrainSettings": "autost.training",
    "TrainResult": "autost.training",
    "load_official": "autost.bundle.official",
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
    "Latency",
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
    "measure_latency",
    "register_model",
    "search",
    "train",
]
