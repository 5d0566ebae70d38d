"""The Optuna study behind a run: storage, stored candidates, objectives, the leaderboard."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.search.space import SearchSpace

STUDY_NAME = "autost-search"


@dataclass
class Candidate:
    """A scored candidate as stored in the study."""

    key: str
    config: ArchConfig
    scores: dict[str, float]
    metrics: dict[str, float]
    trial: int = -1
    #: proxies that ordered equal scores on the leaderboard (set by :func:`rank_leaderboard`)
    tie_break: tuple[str, ...] = ()

    @property
    def score(self) -> float:
        return float(self.scores.get("score", -math.inf))


# ------------------------------------------------------------------------------ the study


def storage_url(out: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(out / 'study.db').resolve()}"


def optuna_storage(url: str) -> Any:
    """An Optuna storage for ``url``: any SQLAlchemy URL, or ``journal:PATH`` for Optuna's
    append-only journal file (no database server; several processes may share it)."""
    if not url.startswith("journal:"):
        return url
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = url[len("journal:") :]
    if not path:
        raise AutostError("journal storage needs a file: journal:PATH")
    return JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))


#: tables every Optuna RDB schema has; a database with other tables but not these is foreign
def optuna_tables() -> frozenset[str]:
    """Every table of Optuna's schema, with Alembic's version table: Optuna adds any of them
    that is missing to the database it opens, so a storage lacking one is not opened."""
    from optuna.storages._rdb import models

    return frozenset({*models.BaseModel.metadata.tables, "alembic_version"})


def check_storage(url: str, resume: bool) -> None:
    """Refuse, before Optuna touches it, a storage that cannot hold the run's study.

    Optuna creates its schema in whatever database it opens, so an empty file, a file that
    is not a database, another application's database, or (on ``resume``) a storage without
    Optuna tables would be rewritten before the "no study" error. Everything here only reads.
    """
    if url.startswith("journal:"):
        path = Path(url[len("journal:") :])
        if resume and url != "journal:" and not path.exists():
            raise AutostError(f"{url}: the journal file does not exist; nothing to resume")
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise AutostError(f"cannot open the study storage {url}: not a database URL") from exc
    if parsed.get_backend_name() == "sqlite":
        tables = _sqlite_tables(url, parsed.database, parsed.query)
        if resume and tables == set() and not Path(str(parsed.database)).exists():
            raise AutostError(f"{parsed.database} does not exist: no study to resume")
    else:
        tables = _server_tables(url)
    if tables is None or tables >= optuna_tables():
        return
    if resume:
        raise AutostError(f"{url}: holds no Optuna study to resume (nothing was changed)")
    if tables:
        listed = ", ".join(sorted(tables)[:5])
        raise AutostError(
            f"{url}: a database of another application (tables {listed}), not an Optuna "
            "study storage; choose another --storage (nothing was changed)"
        )


def _sqlite_tables(url: str, database: str | None, query: Any) -> set[str] | None:
    """Table names of the SQLite file ``database``, read-only (none for a file still to be
    created); ``None`` for an in-memory or URI-style database, left to Optuna."""
    import sqlite3
    from contextlib import closing

    if not database or database == ":memory:" or query.get("uri"):
        return None
    path = Path(database)
    if not path.exists():
        return set()
    if path.is_dir():
        raise AutostError(f"cannot open the study storage {url}: {path} is a folder")
    if path.stat().st_size == 0:
        raise AutostError(
            f"{path}: an empty file, not an Optuna study database (nothing was changed)"
        )
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
            rows = conn.execute("select name from sqlite_master where type = 'table'").fetchall()
    except sqlite3.Error as exc:
        raise AutostError(
            f"cannot open the study storage {url}: {exc} (nothing was changed)"
        ) from exc
    return {str(name) for (name,) in rows}


def _server_tables(url: str) -> set[str]:
    """Table names of a database server's schema (PostgreSQL, MySQL, ...), read-only."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url)
        try:
            return set(sqlalchemy.inspect(engine).get_table_names())
        finally:
            engine.dispose()
    except Exception as exc:  # sqlalchemy / driver errors: unreachable server, bad URL, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutostError(f"cannot open the study storage {url}: {first}") from exc


def open_study(
    out: Path,
    storage: str | None,
    strategy: str,
    seed: int,
    resume: bool,
    study_name: str = STUDY_NAME,
) -> Any:
    """Create (or, with ``resume``, load) the run's study ``study_name`` in ``storage``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directions: list[Any] = ["maximize", "minimize"] if strategy == "nsga2" else ["maximize"]
    sampler: Any
    if strategy == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
    elif strategy == "nsga2":
        sampler = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        sampler = optuna.samplers.RandomSampler(seed=seed)
    url = storage_url(out, storage)
    check_storage(url, resume)
    try:
        backend = optuna_storage(url)
        if resume:
            study = optuna.load_study(study_name=study_name, storage=backend, sampler=sampler)
        else:
            study = optuna.create_study(
                study_name=study_name, storage=backend, sampler=sampler, directions=directions
            )
    except KeyError as exc:
        raise AutostError(f"{url}: holds no study {study_name!r} to resume") from exc
    except optuna.exceptions.DuplicatedStudyError as exc:
        raise AutostError(
            f"{url} already holds a study named {study_name!r}; pass --resume to continue it "
            "or --study-name to start another (nothing was changed)"
        ) from exc
    except Exception as exc:  # sqlalchemy / optuna errors on a corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutostError(f"cannot open the study storage {url}: {first}") from exc
    return study


def stored_candidates(study: Any) -> dict[str, Candidate]:
    """Completed candidates in the study, by key."""
    import optuna

    out = {}
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        attrs = trial.user_attrs
        if "config" not in attrs or "key" not in attrs:
            continue
        out[attrs["key"]] = Candidate(
            key=attrs["key"],
            config=ArchConfig.from_dict(attrs["config"]),
            scores=dict(attrs.get("scores", {})),
            metrics=dict(attrs.get("metrics", {})),
            trial=trial.number,
        )
    return out


def record(
    study: Any,
    space: SearchSpace,
    key: str,
    cfg: ArchConfig,
    scores: dict[str, float],
    metrics: dict[str, float],
    multi: bool,
    distributions: dict[str, Any],
) -> Candidate:
    """Store a candidate scored outside Optuna (random, evolution) as a COMPLETE trial;
    ``distributions`` is ``space.optuna_distributions()``, computed once per run."""
    import optuna

    params = space.to_params(cfg)
    trial = optuna.trial.create_trial(
        params=params,
        distributions={k: distributions[k] for k in params},
        values=objectives(scores, metrics, multi),
        user_attrs=candidate_attrs(key, cfg, scores, metrics),
    )
    study.add_trial(trial)
    return Candidate(key, cfg, scores, metrics)


def candidate_attrs(
    key: str, cfg: ArchConfig, scores: dict[str, float], metrics: dict[str, float]
) -> dict[str, Any]:
    """The trial user attributes :func:`stored_candidates` reads back."""
    return {"key": key, "config": cfg.to_dict(), "scores": scores, "metrics": metrics}


def objectives(scores: dict[str, float], metrics: dict[str, float], multi: bool) -> list[float]:
    score = scores.get("score", -math.inf)
    score = score if math.isfinite(score) else -1e300
    if not multi:
        return [score]
    energy = scores.get("energy_mj", metrics["energy_mj"])
    return [score, energy if math.isfinite(energy) else 1e300]


def tie_break_members(
    stored: Mapping[str, Candidate], weights: Mapping[str, float] | None = None
) -> list[str]:
    """The proxies whose oriented raw values order candidates of equal score, in order.

    With the recipe's ``weights``: its proxies by descending weight, recipe order among equal
    weights. Without: the proxies in the candidates' scores, in the order they were scored (the
    recipe's). A single proxy is left out: the score already is its oriented value.
    """
    from autost.proxies import list_proxies

    known = set(list_proxies())
    if weights is not None:
        names = sorted(weights, key=lambda name: -weights[name])  # stable: recipe order
    else:
        names = []
        for cand in stored.values():
            names += [n for n in cand.scores if n != "score" and n not in names]
    members = [n for n in names if n in known]
    return members if len(members) > 1 else []


def rank_key(cand: Candidate, members: Sequence[str]) -> tuple[Any, ...]:
    """Sort key of the leaderboard: score, then each member's oriented raw value (higher is
    better; NaN or missing last), then the candidate key: a total, deterministic order."""
    from autost.proxies import get_proxy

    def down(value: float) -> float:  # descending, NaN as the worst
        return math.inf if math.isnan(value) else -value

    oriented = [get_proxy(n).oriented(cand.scores.get(n, math.nan)) for n in members]
    return (down(cand.score), *(down(v) for v in oriented), cand.key)


def rank_leaderboard(
    stored: Mapping[str, Candidate], weights: Mapping[str, float] | None = None
) -> list[Candidate]:
    """Best first. Equal scores (percentiles in a reference pool saturate at the top) are
    ordered by the members' oriented raw values (:func:`tie_break_members`), then by key.
    Duplicate configs keep their best-ranked entry; every entry records ``tie_break``."""
    members = tie_break_members(stored, weights)
    ranked = sorted(stored.values(), key=lambda c: rank_key(c, members))
    seen: set[str] = set()
    board = []
    for cand in ranked:
        ident = cand.config.to_json()
        if ident not in seen:
            seen.add(ident)
            board.append(replace(cand, tie_break=tuple(members)))
    return board
