"""Which data a search scores its candidates with.

An evaluator recipe names a dataset (``digits`` for the shipped ones). When that dataset's
images do not fit the searched space's input (AutoST's spaces take 3x32x32 images), and the
user named no data of their own, the search scores on a stand-in that needs no files:

- 3 channels: ``natural``, seeded crops of scikit-learn's two sample photographs at the
  space's size, CIFAR-normalised (how SpikeNAS-Bench's validation here drew its batch), for
  the data proxies only: a short-training recipe is refused instead, naming the ``--dataset``
  to pass (the crops carry pseudo-labels, nothing a short training could rank candidates on);
- 1 channel: scikit-learn's ``digits`` resized to the space's size;
- 2 channels (event frames): ``digits-events``, the digits rate-coded into ON/OFF events,
  framed at the space's size.

The stand-in is said on stderr and recorded in ``run.json``. Data the user named
(``--dataset``, ``--root``, ``--dataset-option``, or a recipe reading files) is never replaced:
when it does not fit, the search is refused before anything is written, naming what to pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autost.errors import AutostError
from autost.model.config import ArchConfig

#: the stand-in dataset per input channel count (the classes each can label, None = any)
STANDINS: dict[int, tuple[str, int | None]] = {
    3: ("natural", None),
    1: ("digits", 10),
    2: ("digits-events", 10),
}


#: datasets that need no files; a recipe reading another one names data of its own
EMBEDDED = ("digits", "digits-events", "natural")


@dataclass(frozen=True)
class DataChoice:
    """The data a run scores with: ``dataset`` with ``options``; ``standin`` when it replaces
    the recipe's own, with ``note`` the line that says so."""

    dataset: str
    options: dict[str, Any] = field(default_factory=dict)
    standin: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (recorded in ``run.json`` as ``data``)."""
        return {
            "dataset": self.dataset,
            "options": dict(self.options),
            "standin": self.standin,
            "note": self.note,
        }


def dataset_input(dataset: str, options: dict[str, Any]) -> tuple[int, int, int]:
    """``(channels, size, classes)`` that ``dataset`` gives with loader ``options``, from its
    description alone (nothing is read); ``classes`` is 0 when only the files tell."""
    from autost.data import dataset_info

    info = dataset_info(dataset)
    return (
        int(options.get("channels", info.in_channels)),
        int(options.get("image_size", info.image_size)),
        int(options.get("num_classes", info.num_classes)),
    )


def _shape(channels: int, size: int) -> str:
    return f"{channels}x{size}x{size}"


def choose_data(
    scorer: Any, space_name: str, config: ArchConfig, user_data: bool
) -> tuple[Any, DataChoice | None]:
    """``(scorer, choice)``: the evaluator that fits ``config``'s input and what it reads.

    ``choice`` is ``None`` for an evaluator that reads no data. ``user_data`` says whether the
    user named the data (``--dataset``, ``--root`` or ``--dataset-option``); so does a recipe
    with a ``root`` or a dataset outside :data:`EMBEDDED`. Named data that does not fit is an
    :class:`AutostError`; a misfit embedded recipe dataset is replaced by a stand-in.
    """
    if not scorer.needs_data:
        return scorer, None
    # a recipe that reads files (its own root, or a dataset that needs files) names its data
    user_data = user_data or scorer.root is not None or scorer.dataset not in EMBEDDED
    want = (config.in_channels, config.image_size)
    channels, size, _ = dataset_input(scorer.dataset, scorer.options)
    if (channels, size) == want:
        return scorer, DataChoice(scorer.dataset, dict(scorer.options))
    got = f"{scorer.dataset!r} gives {_shape(channels, size)} inputs"
    need = f"space {space_name!r} takes {_shape(*want)}"
    hint = _hint(scorer.dataset, channels, want)
    if user_data:
        raise AutostError(f"evaluator {scorer.name!r}: dataset {got}, {need}: {hint}")
    standin, labels = STANDINS.get(config.in_channels, (None, None))
    if standin is None or (labels is not None and labels != config.num_classes):
        raise AutostError(
            f"evaluator {scorer.name!r}: its dataset {got}, {need}, and no stand-in fits "
            f"{_shape(*want)} with {config.num_classes} classes: {hint}"
        )
    if getattr(scorer, "kind", "") == "short-training" and standin == "natural":
        # crops of two photographs with pseudo-labels: nothing a short training could rank on
        raise AutostError(
            f"evaluator {scorer.name!r} trains its candidates: its dataset {got}, {need}, "
            f"and the {_shape(*want)} stand-in has no real classes: {hint}"
        )
    options: dict[str, Any] = {"image_size": config.image_size}
    if labels is None:
        options["num_classes"] = config.num_classes
    if "seed" in scorer.options:
        options["seed"] = scorer.options["seed"]
    note = (
        f"data: the recipe's dataset {got}, {need}; scoring on the stand-in {standin!r} "
        f"({_shape(*want)}, no files; pass --dataset to score on real data)"
    )
    return scorer.with_dataset(standin, None, **options), DataChoice(
        standin, options, standin=True, note=note
    )


def _hint(dataset: str, channels: int, want: tuple[int, int]) -> str:
    """What to pass instead, in a few words."""
    from autost.data import dataset_options, list_datasets

    if channels == want[0] and "image_size" in dataset_options(dataset):
        return f"pass --dataset-option image_size={want[1]}, or another --dataset"
    from autost.data import dataset_info

    fits = [n for n in list_datasets() if dataset_info(n).in_channels == want[0]]
    return f"pass --dataset with {want[0]}-channel images ({', '.join(fits)}) and --root DIR"


__all__ = ["EMBEDDED", "STANDINS", "DataChoice", "choose_data", "dataset_input"]
