"""The ``README.md`` model card of a bundle, written from its ``config.json`` alone: YAML
metadata for the Hugging Face Hub (library, tags, dataset, metrics, model-index) and the
architecture, cost, training, search provenance and the command that reproduces it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from autost.model.config import ArchConfig

#: what the card's pictures show, by file name (an ``autost run`` bundle holds them)
PICTURES = {
    "pareto.png": "Proxy score against cost, Pareto fronts",
    "proxy_vs_accuracy.png": "Finalists: proxy score against short-training accuracy",
    "training.png": "Training curves of the winner",
}
#: training settings the card lists, in this order
RECIPE = ("epochs", "batch_size", "lr", "min_lr", "weight_decay", "warmup_epochs",
          "label_smoothing", "clip_grad", "loss", "tet_lambda", "tet_target",
          "trt_consistency", "trt_star", "augment", "amp", "seed")  # fmt: skip
#: settings that only matter with one loss
LOSS_ONLY = {"tet_lambda": "tet", "tet_target": "tet", "trt_consistency": "trt", "trt_star": "trt"}


def _dict(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else empty (hand-edited provenance never crashes)."""
    return value if isinstance(value, Mapping) else {}


def _join(values: Iterable[Any]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _number(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def metadata(config: ArchConfig, provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The card's YAML metadata as a dict (``huggingface_hub.ModelCardData`` fields)."""
    training = _dict(provenance.get("training"))
    dataset = training.get("dataset") if isinstance(training.get("dataset"), str) else None
    tags = ["spiking-neural-network", "spiking-transformer", "autost", "image-classification"]
    tags += [f"attention-{a}" for a in dict.fromkeys(config.attention)]
    data: dict[str, Any] = {
        "library_name": "autost",
        "pipeline_tag": "image-classification",
        "tags": tags,
    }
    if dataset:
        data["datasets"] = [dataset]
    final = _dict(training.get("final"))
    if dataset and isinstance(final.get("val_acc"), (int, float)):
        data["metrics"] = ["accuracy"]
        data["eval_results"] = [
            {
                "task_type": "image-classification",
                "dataset_type": dataset,
                "dataset_name": dataset,
                "dataset_split": "validation",
                "metric_type": "accuracy",
                "metric_value": round(float(final["val_acc"]), 6),
            }
        ]
    return data


def _yaml(config: ArchConfig, provenance: Mapping[str, Any], name: str) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    data = metadata(config, provenance)
    results = [EvalResult(**r) for r in data.pop("eval_results", [])]
    card = ModelCardData(**data, model_name=name if results else None, eval_results=results or None)
    return card.to_yaml()


def _architecture(config: ArchConfig) -> list[str]:
    lines = [
        "| field | value |",
        "| --- | --- |",
        f"| depth | {config.depth} |",
        f"| embedding width | {config.embed_dim} |",
        f"| timesteps T | {config.timesteps} |",
        f"| input | {config.in_channels} x {config.image_size} x {config.image_size} |",
        f"| classes | {config.num_classes} |",
        f"| stem / coding / MLP / shortcut | {config.stem} / {config.coding} / {config.mlp} / "
        f"{config.shortcut} |",
        f"| neuron | {config.neuron.kind}, tau {config.neuron.tau:g}, threshold "
        f"{config.neuron.threshold:g}, surrogate {config.neuron.surrogate} |",
        "",
        "| layer | attention | heads | MLP ratio |",
        "| ---: | --- | ---: | ---: |",
    ]
    for i in range(config.depth):
        lines.append(
            f"| {i} | {config.attention[i]} | {config.num_heads[i]} | {config.mlp_ratios[i]:g} |"
        )
    return lines


def _cost(config: ArchConfig, provenance: Mapping[str, Any]) -> list[str]:
    from autost.model.cost import estimate_cost

    cost = estimate_cost(config)
    final = _dict(_dict(provenance.get("training")).get("final"))
    measured = all(isinstance(final.get(k), (int, float)) for k in ("sops", "energy_mj"))
    sops = float(final["sops"]) if measured else cost.sops
    energy = float(final["energy_mj"]) if measured else cost.energy_mj
    where = (
        "at the firing rates measured on the first validation batch after the last epoch"
        if measured
        else "an upper bound: every spiking layer counted at firing rate 1 (no rates measured)"
    )
    return [
        "Per sample, all timesteps summed (`autost.estimate_cost`; 4.6 pJ per MAC, 0.9 pJ "
        "per synaptic operation).",
        "",
        "| params | MACs | attention-product MACs | SOPs | energy (mJ) |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {cost.params:,} | {cost.macs:,} | {cost.matmul_macs:,} | {sops:,.0f} | {energy:.4g} |",
        "",
        f"SOPs and energy: {where}.",
    ]


def _training(provenance: Mapping[str, Any]) -> list[str]:
    training = _dict(provenance.get("training"))
    if not training:
        return ["Not recorded in this bundle."]
    settings = _dict(training.get("settings"))
    final = _dict(training.get("final"))
    lines = [f"Dataset `{training.get('dataset')}`; autost's trainer (`autost train`).", ""]
    lines += ["| setting | value |", "| --- | --- |"]
    lines += [
        f"| {k} | {_number(settings[k])} |"
        for k in RECIPE
        if k in settings and LOSS_ONLY.get(k, settings.get("loss")) == settings.get("loss")
    ]
    limit = settings.get("limit_train_batches")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:  # a shortened run
        lines.append(f"| batches per epoch | at most {limit:,} (epochs cut short) |")
    options = _dict(settings.get("dataset_options"))
    if options:
        lines.append(f"| dataset options | {_join(f'{k}={v}' for k, v in options.items())} |")
    if isinstance(final.get("val_acc"), (int, float)):
        loss = final.get("val_loss")
        lines += [
            "",
            f"Final validation accuracy **{float(final['val_acc']):.4f}**"
            + (f" (loss {float(loss):.4f})" if isinstance(loss, (int, float)) else "")
            + f" after epoch {final.get('epoch')}.",
        ]
    return lines


def _tuning(tuning: Mapping[str, Any]) -> str:
    """The tuning in a sentence or two: the finalists' correlation and the chosen trial (its
    finalist by search rank and key), or that every trial ended at chance level."""
    tau = tuning.get("finalists_kendall_tau")
    tau = float(tau) if isinstance(tau, (int, float)) else float("nan")
    text = "Tuned finalists' proxy score against short-training accuracy: " + (
        f"Kendall tau {tau:.3f}"
        if tau == tau
        else "no correlation (fewer than two finalists with distinct scores and accuracies)"
    )
    if tuning.get("at_chance"):
        acc, chance = tuning.get("best_val_acc"), tuning.get("chance")
        shown = (
            f" (val accuracy at most {float(acc):.4f}; always answering the most frequent "
            f"class scores {float(chance):.4f})"
            if isinstance(acc, (int, float)) and isinstance(chance, (int, float))
            else ""
        )
        return (
            f"{text}. Every tuning trial ended at chance level{shown}, so the tuning chose no "
            "finalist: the search's best architecture was trained with the default recipe."
        )
    params = dict(_dict(tuning.get("params")))
    arch = params.pop("arch", None)
    finalist = _dict(tuning.get("finalist"))
    if finalist.get("rank") is not None:
        chosen = f"the finalist ranked {finalist['rank']} in the search"
        chosen += f" (key `{finalist['key']}`)" if finalist.get("key") else ""
    elif isinstance(arch, int):
        chosen = f"finalist {arch + 1} of the search's top candidates"
    else:
        chosen = "an architecture of the search space"
    hyper = _join(f"{k}={_number(v)}" for k, v in params.items())
    return f"{text}. The chosen trial: {chosen}" + (f", with {hyper}." if hyper else ".")


def _provenance(provenance: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    if "space" in provenance:
        lines.append(
            f"Search space `{provenance['space']}`, evaluator `{provenance.get('evaluator')}`, "
            f"strategy `{provenance.get('strategy')}`, seed {provenance.get('seed')}."
        )
        match = _dict(provenance.get("search"))
        if match.get("rank") is not None:
            score = _dict(match.get("scores")).get("score")
            if not isinstance(score, (int, float)):
                score = None
            lines.append(
                f"This architecture ranked {match['rank']} of {match['of']} in the search"
                + (f" (proxy score {float(score):.4g})." if score is not None else ".")
            )
        elif match:
            lines.append(f"Search rank: none ({match.get('reason')}).")
        tuning = _dict(provenance.get("tuning"))
        if tuning:
            lines.append(_tuning(tuning))
    if isinstance(provenance.get("converted_from"), str):
        lines.append(
            f"Converted from the official checkpoint `{Path(provenance['converted_from']).name}` "
            f"(sha256 `{provenance.get('sha256')}`) onto preset `{provenance.get('preset')}` "
            f"({provenance.get('official_layout')} key layout) by `autost convert`."
        )
    versions = _dict(provenance.get("versions"))
    if versions:
        lines.append("Versions: " + _join(f"{k} {v}" for k, v in versions.items()) + ".")
    return lines or ["None recorded (saved with `save_pretrained`)."]


def model_card(data: Mapping[str, Any], folder: Path | None = None) -> str:
    """The card text for bundle data ``data`` (``config.json``'s content); pictures present in
    ``folder`` are shown."""
    config = ArchConfig.from_dict(data["config"])
    provenance = _dict(data.get("provenance"))
    dataset = _dict(provenance.get("training")).get("dataset")
    if isinstance(dataset, str) and dataset:  # as presets: <family>-<depth>-<dim>-<dataset>
        name = f"autost-{config.depth}-{config.embed_dim}-{dataset}"
    else:
        name = folder.resolve().name if folder is not None else "autost-model"
    lines = [
        "---",
        _yaml(config, provenance, name).rstrip(),
        "---",
        "",
        f"# {name}",
        "",
        f"A spiking transformer ({config.depth} layers, width {config.embed_dim}, T = "
        f"{config.timesteps}) in the layout of an autost bundle: `config.json` (the versioned "
        "architecture config and its provenance), `model.safetensors` (the weights) and this "
        "card.",
        "",
        "## Architecture",
        "",
        *_architecture(config),
        "",
        "## Cost",
        "",
        *_cost(config, provenance),
        "",
        "## Training",
        "",
        *_training(provenance),
        "",
        "## Provenance",
        "",
        *_provenance(provenance),
        "",
    ]
    command = provenance.get("reproduce")
    if isinstance(command, str) and command:
        lines += ["## Reproduce", "", "```bash", command, "```", ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import autost",
        "",
        'model = autost.SpikingTransformer.from_pretrained("<this folder or owner/name>")',
        "logits = model(images)  # [B, C, H, W] -> [B, classes]",
        "```",
        "",
    ]
    shown = [(f, t) for f, t in PICTURES.items() if folder is not None and (folder / f).is_file()]
    for file, title in shown:
        lines += [f"![{title}]({file})", ""]
    return "\n".join(lines)
