"""Bundles in the Hugging Face Hub layout: ``config.json`` (the versioned ArchConfig with its
provenance), ``model.safetensors`` (tensors only: nothing in it can run) and a ``README.md``
model card whose YAML metadata and tables hold what the bundle knows.

Bundles from before (``config.json`` + ``weights.pt``) keep loading, with
``torch.load(..., weights_only=True)``; :func:`rewrite_bundle` turns one into the new layout.
Everything read is checked before anything is written: a config and tensors that disagree
(names or shapes), a damaged safetensors file or a card without metadata is refused with one
line naming the file.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from autost.errors import AutostError
from autost.io import atomic_write_bytes, atomic_write_text
from autost.model import network
from autost.model.config import WRAPPER_SCHEMA_VERSION
from autost.model.files import CONFIG, HUB_PREFIX, LEGACY_WEIGHTS, WEIGHTS, is_bundle

if TYPE_CHECKING:
    from autost.model.config import ArchConfig
    from autost.model.network import SpikingTransformer

#: ``config.json``'s own version: the one ``ArchConfig.from_json`` reads around a config
BUNDLE_SCHEMA = WRAPPER_SCHEMA_VERSION
CARD = "README.md"
#: pictures an ``autost run`` bundle holds; the card shows them and a rewrite carries them along
PLOTS = ("pareto.png", "proxy_vs_accuracy.png", "training.png")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ------------------------------------------------------------------------------------ reading


def read_bundle_config(folder: Path) -> tuple[ArchConfig, dict[str, Any]]:
    """The bundle's config and the whole ``config.json`` (schema, config, provenance); a
    bundle schema this version does not know, or provenance that is not an object, raises."""
    from autost.model.config import ArchConfig

    path = folder / CONFIG
    # one-line errors for unreadable or invalid configs and for a schema_version, inner or
    # outer, other than this version's
    config = ArchConfig.from_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "config" not in data:
        return config, {"schema_version": BUNDLE_SCHEMA, "config": data, "provenance": None}
    if not isinstance(data.get("provenance"), (dict, type(None))):
        raise AutostError(
            f"{path}: 'provenance' is a {type(data['provenance']).__name__}, not an object"
        )
    return config, data


def read_card(path: Path) -> dict[str, Any]:
    """The YAML metadata of the model card at ``path``, parsed by ``huggingface_hub``'s card
    parser; a card without metadata, or with metadata that does not parse, raises."""
    from huggingface_hub import ModelCard

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AutostError(f"{path}: cannot read the model card ({_reason(exc)})") from None
    if not text.lstrip().startswith("---"):
        raise AutostError(
            f"{path}: the model card has no YAML metadata (a block between '---' lines at the "
            "top); a Hub model card needs one"
        )
    try:
        card = ModelCard(text, ignore_metadata_errors=False)
    except Exception as exc:  # huggingface_hub raises ValueError or yaml's errors
        raise AutostError(
            f"{path}: the model card's metadata does not parse ({_reason(exc)})"
        ) from None
    metadata = card.data.to_dict()
    if not metadata:
        raise AutostError(f"{path}: the model card's YAML metadata is empty")
    return metadata


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def read_weights(folder: Path) -> tuple[dict[str, Tensor], str]:
    """The bundle's tensors and the file they came from (``model.safetensors`` when present,
    else a legacy ``weights.pt`` read with ``weights_only=True``)."""
    path = folder / WEIGHTS
    if path.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(path), WEIGHTS
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise AutostError(
                f"{path}: not a readable safetensors file, truncated or damaged ({_reason(exc)})"
            ) from None
    path = folder / LEGACY_WEIGHTS
    try:
        with warnings.catch_warnings():  # torch's own (pickle protocols): the error says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses pickles with code; torn files raise too
        raise AutostError(f"{path}: cannot load the weights ({_reason(exc)})") from None
    if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
        state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise AutostError(f"{path}: expected a state dict of tensors (or one under 'model')")
    return dict(state), LEGACY_WEIGHTS


def check_tensors(
    state: Mapping[str, Tensor],
    expected: Mapping[str, Tensor],
    source: str,
    model: str = "the model config.json describes",
) -> None:
    """Raise naming the first tensor of ``state`` that ``model`` lacks, the first it needs
    that ``state`` lacks, or the first whose shape or kind (floating point or integer)
    differs."""

    def shape(values: Any) -> str:
        return "[" + ", ".join(str(v) for v in values) + "]"

    for key in state:
        if key not in expected:
            raise AutostError(f"{source}: tensor {key!r} is not in {model}")
    for key, value in expected.items():  # in the model's own order
        if key not in state:
            raise AutostError(f"{source}: tensor {key!r} of {model} is missing")
        found = state[key]
        if tuple(found.shape) != tuple(value.shape):
            raise AutostError(
                f"{source}: tensor {key!r} has shape {shape(found.shape)}, {model} needs "
                f"{shape(value.shape)}"
            )
        if found.is_complex() or found.is_floating_point() != value.is_floating_point():
            raise AutostError(
                f"{source}: tensor {key!r} is {str(found.dtype).removeprefix('torch.')}, "
                f"{model} needs {str(value.dtype).removeprefix('torch.')}"
            )


def load_bundle(
    folder: str | os.PathLike[str], **overrides: Any
) -> tuple[SpikingTransformer, dict[str, Any]]:
    """The model of bundle ``folder`` with its weights, and its ``config.json`` data. The card
    (when present) must carry metadata; the tensors must fit the config exactly."""
    from autost.model.network import SpikingTransformer

    folder = Path(folder)
    if not is_bundle(folder):
        raise AutostError(
            f"{folder}: not a bundle folder (it needs {CONFIG} and {WEIGHTS} or {LEGACY_WEIGHTS})"
        )
    config, data = read_bundle_config(folder)
    if (folder / CARD).exists():
        read_card(folder / CARD)
    state, source = read_weights(folder)
    model = SpikingTransformer(config.replace(**overrides) if overrides else config)
    described = "the model config.json describes" + (" with the overrides" if overrides else "")
    check_tensors(state, model.state_dict(), str(folder / source), described)
    model.load_state_dict(state, strict=True)
    return model, data


def resolve_pretrained(name: str | os.PathLike[str], revision: str | None = None) -> Path:
    """A local bundle folder, or the snapshot of Hub repository ``name`` (``owner/name`` or
    ``hf://owner/name``) in the Hugging Face cache, downloaded when not cached. Only the
    config, the safetensors file and the card are fetched: never a pickle. A path object, or
    a string that is no ``owner/name``, is always local."""
    text = str(name)
    local = Path(text)
    hub_only = isinstance(name, str) and text.startswith(HUB_PREFIX)
    if not hub_only and (local.exists() or not isinstance(name, str) or not _REPO_ID.match(text)):
        if not local.exists():
            raise AutostError(f"no such file or folder: {text}")
        return local
    repo = text.removeprefix(HUB_PREFIX)
    if not _REPO_ID.match(repo):
        raise AutostError(f"{text}: not a Hub repository id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        snapshot = snapshot_download(
            repo_id=repo, revision=revision, allow_patterns=[CONFIG, WEIGHTS, CARD]
        )
    except Exception as exc:  # offline, unknown repository, gated, network errors
        where = "" if hub_only else "no such local folder, and "
        raise AutostError(
            f"{repo}: {where}cannot fetch it from the Hugging Face Hub ({type(exc).__name__}: "
            f"{_reason(exc)})"
        ) from None
    return Path(snapshot)


# ------------------------------------------------------------------------------------ writing


def save_bundle(
    model: SpikingTransformer,
    folder: str | os.PathLike[str],
    provenance: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a Hub-ready bundle: weights (their bytes read back and compared
    before they are written), then ``config.json``, then the card, each file atomically;
    returns the folder. A ``weights.pt`` of an older bundle in the folder is removed
    afterwards, so that publishing the folder never publishes a pickle. (Saving over a bundle
    of the same shapes and crashing between files can leave new weights under the old
    config.)"""
    from safetensors.torch import load, save

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AutostError(f"{folder} is a file, not a folder")
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    payload = save(tensors, metadata={"format": "pt"})
    back = load(payload)
    if set(back) != set(tensors) or any(not torch.equal(back[k], v) for k, v in tensors.items()):
        raise AutostError(f"{folder / WEIGHTS}: the tensors did not read back equal; not written")
    atomic_write_bytes(folder / WEIGHTS, payload)
    data = {
        "schema_version": BUNDLE_SCHEMA,
        "config": model.config.to_dict(),
        "provenance": _finite(dict(provenance)) if provenance is not None else None,
    }
    atomic_write_text(folder / CONFIG, json.dumps(data, indent=2, allow_nan=False) + "\n")
    from autost.bundle.card import model_card

    atomic_write_text(folder / CARD, model_card(data, folder))
    (folder / LEGACY_WEIGHTS).unlink(missing_ok=True)
    return folder


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities as ``None`` (strict JSON, as the Hub reads it)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def rewrite_bundle(source: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Rewrite bundle ``source`` (either weights format) as a Hub-ready bundle at ``dest``,
    which may be ``source`` itself (its ``weights.pt`` and ``report.md`` go once the
    safetensors file and the card are written). ``source`` is checked whole before anything
    is written; the card is written anew from ``config.json``."""
    source, dest = Path(source), Path(dest)
    model, data = load_bundle(source)
    if dest.exists() and not dest.is_dir():
        raise AutostError(f"{dest} is a file, not a folder")
    if not (dest.exists() and dest.resolve() == source.resolve()):
        dest.mkdir(parents=True, exist_ok=True)
        for name in PLOTS:
            if (source / name).is_file():
                shutil.copy2(source / name, dest / name)
    provenance = dict(data.get("provenance") or {})
    provenance.setdefault("rewritten", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    save_bundle(model, dest, provenance)
    (dest / "report.md").unlink(missing_ok=True)  # an older autost bundle's: the card says it
    return dest


def _load_pretrained(
    name: str | os.PathLike[str], revision: str | None = None, **overrides: Any
) -> SpikingTransformer:
    return load_bundle(resolve_pretrained(name, revision), **overrides)[0]


# The model layer's create_model / save_pretrained / from_pretrained read and write bundles
# through these (it does not import this module: autost's __init__ imports it).
network.BUNDLE_IO.update(load=_load_pretrained, save=save_bundle)
