"""Checks on an Optuna SQLite file before Optuna opens it.

Optuna's ``RDBStorage`` creates any missing table when it opens a database, so a zero-length,
foreign or damaged file handed to it is silently rewritten. These checks open the file
read-only and refuse it with one line unless it holds the whole Optuna schema (and, where one
is named, the study), so that a storage is written to only once it is known to be a study.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote

from autost.errors import AutostError


def optuna_tables() -> set[str]:
    """The tables of Optuna's schema (with Alembic's version table, which it also stamps)."""
    from optuna.storages._rdb import models

    return {*models.BaseModel.metadata.tables, "alembic_version"}


def check_sqlite_study(path: Path, study_name: str | None = None) -> list[str]:
    """The study names in the Optuna SQLite file ``path``; :class:`AutostError` (nothing
    written) when it is missing, empty, not SQLite, lacks part of the schema or, with
    ``study_name``, does not hold that study."""
    path = Path(path)
    unchanged = "nothing was changed"
    if not path.is_file():
        raise AutostError(f"{path}: no such study file ({unchanged})")
    if path.stat().st_size == 0:
        raise AutostError(f"{path}: empty file, not an Optuna study ({unchanged})")
    try:
        connection = sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise AutostError(f"{path}: cannot open as SQLite ({exc}; {unchanged})") from exc
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = sorted(optuna_tables() - tables)
        if missing:
            raise AutostError(
                f"{path}: not an Optuna study (missing tables: {', '.join(missing[:4])}"
                f"{' ...' if len(missing) > 4 else ''}; {unchanged})"
            )
        names = [str(row[0]) for row in connection.execute("SELECT study_name FROM studies")]
    except sqlite3.Error as exc:
        raise AutostError(f"{path}: not a readable SQLite database ({exc}; {unchanged})") from exc
    finally:
        connection.close()
    if study_name is not None and study_name not in names:
        held = ", ".join(repr(n) for n in names) or "none"
        raise AutostError(f"{path}: holds no study {study_name!r} (studies: {held}; {unchanged})")
    return names
