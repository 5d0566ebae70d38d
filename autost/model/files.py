"""What a saved model is on disk, as far as the model layer needs to tell one apart: the file
names of a bundle folder and the ``hf://`` prefix of a Hub repository id. Reading and writing
bundles is :mod:`autost.bundle.hub`'s work."""

from __future__ import annotations

import os
from pathlib import Path

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
LEGACY_WEIGHTS = "weights.pt"
#: ``create_model`` reads ``hf://owner/name`` as a Hub repository id
HUB_PREFIX = "hf://"


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a bundle folder: ``config.json`` and weights (either format)."""
    folder = Path(path)
    return (
        folder.is_dir()
        and (folder / CONFIG).is_file()
        and ((folder / WEIGHTS).is_file() or (folder / LEGACY_WEIGHTS).is_file())
    )
