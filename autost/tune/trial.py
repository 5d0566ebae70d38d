"""The trial side of a tune run: what one Ray Tune trial runs in its worker process, a short
training by the built-in trainer that reports every epoch with its run files as a checkpoint.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.runtime.workdir import private_workdir
from autost.tune.record import REPORTED, public_params

#: The prefix of a trial's private working folder in its node's temp dir.
TRIAL_PREFIX = "autost-trial-"
#: The trainer run files a trial's checkpoint carries.
RUN_FILES = ("checkpoint.pt", "weights.pt", "train.json", "config.json", "metrics.jsonl")


def trial_architecture(params: dict[str, Any], setup: dict[str, Any]) -> ArchConfig:
    """The architecture a trial's parameters describe (a finalist, or a point of the space)."""
    params = public_params(params)
    if setup["finalists"]:
        cfg = ArchConfig.from_dict(setup["finalists"][int(params["arch"])])
    else:
        from autost.search.space import SearchSpace

        space = SearchSpace.from_dict(setup["space"])
        arch_params = {k: v for k, v in params.items() if k not in ("lr", "weight_decay")}
        built = space.build(arch_params)
        if built is None:
            raise AutostError(f"the suggested architecture breaks the space: {arch_params}")
        cfg = built
    if "timesteps" in params:
        cfg = cfg.replace(timesteps=int(params["timesteps"]))
    return cfg


def run_trial(params: dict[str, Any], setup: dict[str, Any]) -> None:
    """A Ray Tune function trainable: a short training that reports every epoch."""
    import ray.tune

    from autost.training.loop import Distributed, Trainer, resolve_device
    from autost.training.settings import TrainSettings

    arch = trial_architecture(params, setup)
    settings = TrainSettings.from_dict(
        {
            **setup["settings"],
            "lr": float(params["lr"]),
            "weight_decay": float(params["weight_decay"]),
        }
    )
    # A private working folder (Ray reuses trial processes), removed by the next trial on this
    # node if Ray ends this one without unwinding it; the trial's record is the checkpoint it
    # reports (all run files), which Ray keeps under out/tune/session-K/<trial>/.
    with private_workdir(TRIAL_PREFIX) as work:
        run_dir = work / "run"
        checkpoint = ray.tune.get_checkpoint()
        resume_from = params.get("_resume_from")
        if checkpoint is not None:  # a retry of this trial: continue from its last checkpoint
            with checkpoint.as_directory() as folder:
                shutil.copytree(folder, run_dir)
        elif resume_from:  # a trial a crash interrupted, queued again by a resume
            shutil.copytree(resume_from, run_dir)
        resuming = (run_dir / "train.json").exists()
        reports = 0

        def report(metrics: dict[str, Any], path: Path | None) -> None:
            nonlocal reports
            scalars = {k: float(metrics[k]) for k in REPORTED if k in metrics}
            with tempfile.TemporaryDirectory(dir=work) as tmp:
                for name in RUN_FILES:
                    if (run_dir / name).exists():
                        shutil.copy2(run_dir / name, Path(tmp) / name)
                ray.tune.report(scalars, checkpoint=ray.tune.Checkpoint.from_directory(tmp))
            reports += 1

        trainer = Trainer(
            arch,
            setup["dataset"],
            settings,
            run_dir,
            root=setup["root"],
            progress=False,
            distributed=Distributed(0, 1, resolve_device(settings.device), report),
        )
        result = trainer.fit(resume=resuming)
        if result.status == "completed" and reports == 0 and result.metrics:
            report(result.final, None)  # its last epoch had run before the crash
    if result.status != "completed":
        raise AutostError(result.failure)
