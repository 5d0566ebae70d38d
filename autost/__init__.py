"""autost: training-free architecture search for spiking transformers."""

from autost import presets as _presets  # noqa: F401  (registers the presets)
from autost.config import SCHEMA_VERSION, ArchConfig, NeuronConfig
from autost.cost import CostReport, count_params, estimate_cost, layer_table
from autost.errors import AutostError, ConfigError, UnknownNameError
from autost.models import SpikingTransformer, create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "ArchConfig",
    "AutostError",
    "ConfigError",
    "CostReport",
    "NeuronConfig",
    "SpikingTransformer",
    "UnknownNameError",
    "__version__",
    "count_params",
    "create_model",
    "estimate_cost",
    "layer_table",
    "list_models",
    "register_model",
]
