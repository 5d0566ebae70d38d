"""What a tune run leaves: :class:`TuneResult` and the files ``trials.csv``,
``leaderboard.csv`` and ``best.json``, written from the trials' records."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.tune.record import REPORTED, TrialRecord


@dataclass
class TuneResult:
    """What :func:`tune` returns: trials by status (complete ones best first)."""

    out: Path
    leaderboard: list[TrialRecord]
    stopped_early: list[TrialRecord]
    failed: list[TrialRecord]
    resumed: int = 0  # trials that had finished before this invocation

    @property
    def best(self) -> TrialRecord:
        """The first of the leaderboard (see :attr:`at_chance` before trusting it)."""
        if not self.leaderboard:
            raise AutostError(f"{self.out}: no trial completed")
        return self.leaderboard[0]

    @property
    def at_chance(self) -> bool:
        """Whether every complete trial ended at chance level (no better than always
        answering the most frequent class): then the trials tell no candidate apart, and
        no best trial is picked (no ``best.json``)."""
        return bool(self.leaderboard) and all(t.at_chance for t in self.leaderboard)

    def summary(self) -> str:
        """One line: counts by status, the distinct errors of failed trials, and whether
        every complete trial ended at chance level."""
        text = (
            f"{len(self.leaderboard)} complete, {len(self.stopped_early)} stopped early by "
            f"ASHA, {len(self.failed)} failed"
        )
        if self.resumed:
            text += f" ({self.resumed} of them finished before this resume)"
        errors = sorted({t.error.splitlines()[-1] if t.error else "?" for t in self.failed})
        text += f" (errors: {'; '.join(errors)[:500]})" if errors else ""
        if self.at_chance:
            chance = max(t.metrics["val_chance"] for t in self.leaderboard)
            text += (
                f"; every complete trial ended at chance level (val accuracy at most "
                f"{self.best.val_acc:.4f}; always answering the most frequent class scores "
                f"{chance:.4f}), so no best trial is picked: give the trials more epochs"
            )
        return text


# ------------------------------------------------------------------------------ the trial


def collect(
    records: list[TrialRecord], out: Path, metrics: tuple[str, ...], resumed: int
) -> TuneResult:
    """The run's result from its trial records (complete ones best first); writes its files."""

    def rank(t: TrialRecord) -> tuple[float, ...]:
        values = [t.metrics.get(m, 0.0) for m in metrics]
        return (-values[0], *values[1:], float(t.number))  # accuracy up, then energy down

    complete = sorted((t for t in records if t.status == "complete"), key=rank)
    stopped = sorted((t for t in records if t.status == "stopped_early"), key=rank)
    failed = sorted((t for t in records if t.status == "failed"), key=lambda t: t.number)
    result = TuneResult(out, complete, stopped, failed, resumed=max(0, resumed))
    _write_outputs(result)
    return result


def _rows(records: Sequence[TrialRecord]) -> str:
    columns = ["rank", "trial", "trial_id", "status", "epochs", *REPORTED[1:], "params", "error"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
    writer.writeheader()
    for i, t in enumerate(records, 1):
        writer.writerow(
            {
                "rank": i,
                "trial": t.number,
                "trial_id": t.trial_id,
                "status": t.status,
                "epochs": t.epochs,
                **t.metrics,
                "params": json.dumps(t.params, sort_keys=True),
                "error": t.error.splitlines()[-1] if t.error else "",
            }
        )
    return buffer.getvalue()


def _write_outputs(result: TuneResult) -> None:
    out = result.out
    atomic_write_text(out / "leaderboard.csv", _rows(result.leaderboard))
    everything = [*result.leaderboard, *result.stopped_early, *result.failed]
    atomic_write_text(out / "trials.csv", _rows(everything))
    if result.at_chance:  # nothing to pick between
        (out / "best.json").unlink(missing_ok=True)
    elif result.leaderboard:
        best = result.leaderboard[0]
        assert best.config is not None
        data = {
            "schema_version": 1,
            "trial_id": best.trial_id,
            "trial": best.number,
            "params": best.params,
            "metrics": best.metrics,
            "config": best.config.to_dict(),
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        atomic_write_text(out / "best.json", json.dumps(data, indent=2) + "\n")
