"""The state of a search's run folder, read before the search writes anything.

A run is worth resuming once its study holds a scored candidate. A folder whose run never
scored anything (a command that failed or was killed before its first score: during the
reference pool, say) holds nothing to lose, so it is started afresh, with or without
``--resume``: its record is rewritten and its empty study replaced. Everything here reads;
:func:`discard_study` is the one call that changes the storage, and only for a study with no
complete trial.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.search.study import check_storage, optuna_storage, storage_url


@dataclass(frozen=True)
class FolderState:
    """What a run folder holds: its record (``run.json``), whether its study exists, and how
    many scored candidates (complete trials) that study holds."""

    record: dict[str, Any] | None
    study_exists: bool
    scored: int

    @property
    def empty(self) -> bool:
        """No record and no study: nothing of a search run is here."""
        return self.record is None and not self.study_exists


def read_record(path: Path) -> dict[str, Any]:
    """``run.json`` as a dict with a ``settings`` table; one line when it is anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AutostError(f"{path}: cannot read the run record ({exc.strerror})") from exc
    except ValueError as exc:
        raise AutostError(f"{path}: not a run record (malformed JSON: {exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
        kind = type(data).__name__ if not isinstance(data, dict) else "an object"
        raise AutostError(
            f"{path}: not a run record (expected an object with a 'settings' table, got {kind})"
        )
    return data


def folder_state(out: Path, storage: str | None, study_name: str) -> FolderState:
    """Read ``out``'s record and count its study's complete trials, changing nothing."""
    run_file = out / "run.json"
    record = read_record(run_file) if run_file.exists() else None
    url = storage_url(out, storage)
    if not _storage_exists(url):
        return FolderState(record, False, 0)
    check_storage(url, resume=False)  # refuses a foreign or corrupt database, reading only
    import optuna

    try:
        backend = optuna_storage(url)
        names = optuna.study.get_all_study_names(storage=backend)
        if study_name not in names:
            return FolderState(record, False, 0)
        study = optuna.load_study(study_name=study_name, storage=backend, sampler=None)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    except AutostError:
        raise
    except Exception as exc:  # sqlalchemy / optuna errors on a damaged file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutostError(f"cannot open the study storage {url}: {first}") from exc
    return FolderState(record, True, len(complete))


def _storage_exists(url: str) -> bool:
    """Whether the storage at ``url`` exists (a file-backed one is never created here)."""
    if url.startswith("journal:"):
        return Path(url[len("journal:") :]).exists()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise AutostError(f"cannot open the study storage {url}: not a database URL") from exc
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or parsed.query.get("uri"):
            return False
        return Path(database).exists()
    from autost.search.study import _server_tables, optuna_tables

    return _server_tables(url) >= optuna_tables()


def discard_study(out: Path, storage: str | None, study_name: str) -> None:
    """Delete the study ``study_name`` of a run that never scored a candidate."""
    import optuna

    backend = optuna_storage(storage_url(out, storage))
    study = optuna.load_study(study_name=study_name, storage=backend, sampler=None)
    if study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        raise AutostError(f"the study {study_name!r} holds scored candidates; not discarding it")
    optuna.delete_study(study_name=study_name, storage=backend)


__all__ = ["FolderState", "discard_study", "folder_state", "read_record"]
