"""Training-free search: strategies, analytic constraints, Optuna persistence, resume, parallel
scoring, and the run-directory files (``study.db``, ``leaderboard.csv``, ``best.json``,
``run.json``).

Every scored candidate is a COMPLETE trial of an Optuna study (SQLite in the run directory by
default, or any Optuna storage URL), written as soon as its score exists, so a killed run loses
at most the evaluations in flight. ``random`` and ``evolution`` derive every candidate from
``(seed, position)`` and from the scores before it, so a resumed run re-creates the same
candidates, skips those already stored, and ends with the same leaderboard as an
uninterrupted run. ``tpe`` and ``nsga2`` resume from the study's history through Optuna.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autost.config import ArchConfig
from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.space import SearchSpace

STRATEGIES = ("random", "evolution", "tpe", "nsga2")
STUDY_NAME = "autost-search"
#: tpe/nsga2 proposals rejected by the analytic checks in a row before giving up
MAX_REJECTIONS = 2000


@dataclass
class EvolutionSettings:
    """AutoST's evolution defaults: 50 candidates, top 10 as parents, 25 + 25 children."""

    population: int = 50
    parents: int = 10
    mutations: int = 25
    crossovers: int = 25
    generations: int = 20
    mutation_prob: float = 0.3


@dataclass
class Candidate:
    """A scored candidate as stored in the study."""

    key: str
    config: ArchConfig
    scores: dict[str, float]
    metrics: dict[str, float]
    trial: int = -1

    @property
    def score(self) -> float:
        return float(self.scores.get("score", -math.inf))


@dataclass
class SearchResult:
    """What :func:`search` returns: the leaderboard (best first) and the run directory."""

    out: Path
    leaderboard: list[Candidate]
    evaluated: int
    resumed: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> Candidate:
        return self.leaderboard[0]


# ------------------------------------------------------------------------------ scoring


_EVALUATORS: dict[str, Any] = {}


def _load_evaluator(source: str, dataset: str | None, reference: str | None = None) -> Any:
    from autost.evaluator import Evaluator

    key = f"{source}|{dataset}|{reference}"
    if key not in _EVALUATORS:
        evaluator = Evaluator.load(source)
        if dataset is not None:
            evaluator = evaluator.with_dataset(dataset)
        if reference is not None:
            evaluator.set_reference(reference)
        _EVALUATORS[key] = evaluator
    return _EVALUATORS[key]


def _eager_lif_default() -> None:
    # Every candidate has new tensor shapes, so compiling the LIF kernel (seconds per shape)
    # never pays off while scoring; an explicit AUTOST_LIF_BACKEND still wins.
    from autost.neurons import BACKEND_ENV

    os.environ.setdefault(BACKEND_ENV, "eager")


def score_candidate(
    evaluator_source: str, dataset: str | None, reference: str | None, config_json: str
) -> dict[str, float]:
    """Score one candidate (runs in worker processes and Ray tasks too); ``reference`` is the
    run's saved reference pool for ensembles, so that every process ranks against one pool."""
    _eager_lif_default()
    evaluator = _load_evaluator(evaluator_source, dataset, reference)
    scores = evaluator.score(ArchConfig.from_json(config_json))
    return {k: float(v) for k, v in scores.items()}


class _Executor:
    """Submit scoring jobs inline, to local processes, or as Ray tasks; yield as they finish."""

    def __init__(self, workers: int, address: str | None) -> None:
        self.workers = max(1, workers)
        self.address = address
        self._pool: ProcessPoolExecutor | None = None
        self._ray_fn: Any = None
        if address is not None:
            self._ray_fn = _connect_ray(address)
        elif self.workers > 1:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )

    @property
    def slots(self) -> int:
        return self.workers

    def map_unordered(
        self, jobs: Sequence[tuple[Any, tuple[Any, ...]]]
    ) -> Iterator[tuple[Any, dict[str, float]]]:
        """``(tag, args)`` jobs for :func:`score_candidate`; yields ``(tag, scores)``."""
        if self._ray_fn is not None:
            import ray

            refs = {self._ray_fn.remote(*args): tag for tag, args in jobs}
            pending = list(refs)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield refs[done[0]], ray.get(done[0])
        elif self._pool is not None:
            futures: dict[Future[dict[str, float]], Any] = {
                self._pool.submit(score_candidate, *args): tag for tag, args in jobs
            }
            for future in as_completed(futures):
                yield futures[future], future.result()
        else:
            for tag, args in jobs:
                yield tag, score_candidate(*args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _connect_ray(address: str) -> Any:
    """Join a running Ray cluster, failing fast with one clear line when it is unreachable."""
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # ray raises ConnectionError, RuntimeError, ... by version
        raise AutostError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    return ray.remote(score_candidate)


# ------------------------------------------------------------------------------ the study


def _storage_url(out: Path, storage: str | None) -> str:
    return storage or f"sqlite:///{(out / 'study.db').resolve()}"


def _open_study(out: Path, storage: str | None, strategy: str, seed: int, resume: bool) -> Any:
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
    url = _storage_url(out, storage)
    try:
        if resume:
            study = optuna.load_study(study_name=STUDY_NAME, storage=url, sampler=sampler)
        else:
            study = optuna.create_study(
                study_name=STUDY_NAME, storage=url, sampler=sampler, directions=directions
            )
    except KeyError as exc:
        raise AutostError(f"{url}: holds no autost study to resume") from exc
    except Exception as exc:  # sqlalchemy / optuna errors on a corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AutostError(f"cannot open the study storage {url}: {first}") from exc
    return study


def _stored(study: Any) -> dict[str, Candidate]:
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


def _record(
    study: Any,
    space: SearchSpace,
    key: str,
    cfg: ArchConfig,
    scores: dict[str, float],
    metrics: dict[str, float],
    multi: bool,
) -> Candidate:
    import optuna

    values = _objectives(scores, metrics, multi)
    params = space.to_params(cfg)
    dists = space.optuna_distributions()
    trial = optuna.trial.create_trial(
        params=params,
        distributions={k: dists[k] for k in params},
        values=values,
        user_attrs={
            "key": key,
            "config": cfg.to_dict(),
            "scores": scores,
            "metrics": metrics,
        },
    )
    study.add_trial(trial)
    return Candidate(key, cfg, scores, metrics)


def _objectives(scores: dict[str, float], metrics: dict[str, float], multi: bool) -> list[float]:
    score = scores.get("score", -math.inf)
    score = score if math.isfinite(score) else -1e300
    if not multi:
        return [score]
    energy = scores.get("energy_mj", metrics["energy_mj"])
    return [score, energy if math.isfinite(energy) else 1e300]


# ------------------------------------------------------------------------------ strategies


def _random_candidates(
    space: SearchSpace, seed: int, budget: int
) -> Iterator[list[tuple[str, ArchConfig]]]:
    for i in range(budget):
        yield [(f"r{i:06d}", space.sample(np.random.default_rng([seed, i])))]


def _evolution_candidates(
    space: SearchSpace,
    seed: int,
    budget: int,
    settings: EvolutionSettings,
    scored: Callable[[str], float],
) -> Iterator[list[tuple[str, ArchConfig]]]:
    """Generation after generation; ``scored(key)`` gives the score once a batch was evaluated."""
    produced = 0
    members: list[tuple[str, ArchConfig]] = []
    for g in range(settings.generations):
        rng = np.random.default_rng([seed, g])
        if g == 0:
            batch = [(f"g000-{i:03d}", space.sample(rng)) for i in range(settings.population)]
        else:
            ranked = sorted(members, key=lambda m: (-scored(m[0]), m[0]))
            parents = [cfg for _, cfg in ranked[: settings.parents]]
            batch = []
            for i in range(settings.mutations):
                parent = parents[int(rng.integers(len(parents)))]
                child = space.mutate(parent, rng, settings.mutation_prob)
                batch.append((f"g{g:03d}-m{i:03d}", child))
            for i in range(settings.crossovers):
                a, b = rng.choice(len(parents), size=2, replace=len(parents) < 2)
                child = space.crossover(parents[int(a)], parents[int(b)], rng)
                batch.append((f"g{g:03d}-c{i:03d}", child))
            batch = batch[: settings.population] if settings.population else batch
        batch = batch[: max(budget - produced, 0)]
        if not batch:
            return
        produced += len(batch)
        yield batch
        # survivors: the best of the previous population and the new generation
        pool = members + batch
        ranked = sorted(pool, key=lambda m: (-scored(m[0]), m[0]))
        members = ranked[: settings.population]


# ------------------------------------------------------------------------------ entry point


def search(
    space: str | Path | SearchSpace,
    evaluator: str | Path = "flops",
    *,
    strategy: str = "random",
    budget: int = 100,
    constraints: Sequence[str] = (),
    seed: int = 0,
    dataset: str | None = None,
    out: str | Path = "runs/search",
    resume: bool = False,
    workers: int = 1,
    address: str | None = None,
    storage: str | None = None,
    evolution: EvolutionSettings | None = None,
    progress: bool = True,
) -> SearchResult:
    """Rank candidates of ``space`` with ``evaluator`` and write the run directory ``out``.

    ``strategy`` is ``random``, ``evolution`` (AutoST's), ``tpe`` or ``nsga2`` (score up,
    energy down). ``constraints`` like ``'params<=12e6'`` are checked analytically before any
    candidate is scored. ``resume=True`` continues the run stored in ``out`` (or ``storage``).
    """
    if strategy not in STRATEGIES:
        import difflib

        close = difflib.get_close_matches(strategy, STRATEGIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AutostError(f"unknown strategy {strategy!r}{hint} (choices: {', '.join(STRATEGIES)})")
    if budget < 1:
        raise AutostError(f"budget must be >= 1, got {budget}")
    _eager_lif_default()
    space_obj = space if isinstance(space, SearchSpace) else SearchSpace.load(space)
    if constraints:
        space_obj = space_obj.with_constraints(constraints)
    space_obj.sample(seed)  # a clear error now when the constraints admit nothing
    out = Path(out)
    evaluator_source = str(evaluator)
    scorer = _load_evaluator(evaluator_source, dataset)  # validates the recipe up front
    run_file = out / "run.json"
    if not resume and (run_file.exists() or (out / "study.db").exists()):
        raise AutostError(
            f"{out} already holds a search run; pass --resume to continue it or choose "
            "another --out (nothing was changed)"
        )
    if resume and not run_file.exists() and storage is None:
        raise AutostError(f"{out}: no run to resume (run.json is missing)")
    out.mkdir(parents=True, exist_ok=True)
    settings = {
        "space": space_obj.to_dict(),
        "evaluator": evaluator_source,
        "evaluator_recipe": getattr(scorer, "to_dict", lambda: {})(),
        "strategy": strategy,
        "budget": budget,
        "constraints": [str(c) for c in space_obj.constraints],
        "seed": seed,
        "dataset": dataset,
        "workers": workers,
        "address": address,
        "storage": _storage_url(out, storage) if storage else "study.db",
        "evolution": (evolution or EvolutionSettings()).__dict__,
    }
    if resume and run_file.exists():
        previous = json.loads(run_file.read_text())
        for key in ("strategy", "seed", "evaluator", "constraints"):
            if previous.get("settings", {}).get(key) != settings[key]:
                raise AutostError(
                    f"{out}: cannot resume with a different {key} "
                    f"({previous['settings'].get(key)!r} was used)"
                )
    study = _open_study(out, storage, strategy, seed, resume)
    _write_run_json(run_file, settings, started=not resume)
    reference = _reference_pool(scorer, space_obj, out, seed, resume, progress)
    scoring = (evaluator_source, dataset, reference)
    stored = _stored(study)
    resumed = len(stored)
    multi = strategy == "nsga2"
    executor = _Executor(workers, address)
    bar = _progress(budget, resumed, progress)
    try:
        if strategy in ("random", "evolution"):
            evaluated = _run_deterministic(
                study,
                space_obj,
                strategy,
                seed,
                budget,
                evolution or EvolutionSettings(),
                stored,
                executor,
                scoring,
                multi,
                bar,
            )
        else:
            evaluated = _run_optuna(study, space_obj, budget, stored, executor, scoring, multi, bar)
    finally:
        executor.close()
        bar.close()
        board = _leaderboard(_stored(study))
        if board:
            _write_outputs(out, board)
    return SearchResult(out, board, evaluated, resumed, settings)


def _run_deterministic(
    study: Any,
    space: SearchSpace,
    strategy: str,
    seed: int,
    budget: int,
    evo: EvolutionSettings,
    stored: dict[str, Candidate],
    executor: _Executor,
    scoring: tuple[str, str | None, str | None],
    multi: bool,
    bar: Any,
) -> int:
    evaluated = 0

    def scored(key: str) -> float:
        return stored[key].score

    batches: Iterable[list[tuple[str, ArchConfig]]]
    if strategy == "random":
        batches = _chunks(_random_candidates(space, seed, budget), executor.slots)
    else:
        batches = _evolution_candidates(space, seed, budget, evo, scored)
    for batch in batches:
        todo = [(key, cfg) for key, cfg in batch if key not in stored]
        jobs = [((key, cfg), (*scoring, cfg.to_json())) for key, cfg in todo]
        for (key, cfg), scores in executor.map_unordered(jobs):
            stored[key] = _record(study, space, key, cfg, scores, space.metrics(cfg), multi)
            evaluated += 1
            bar.update(1)
            bar.set_postfix(best=f"{max(c.score for c in stored.values()):.4g}")
    return evaluated


def _reference_pool(
    scorer: Any, space: SearchSpace, out: Path, seed: int, resume: bool, progress: bool
) -> str | None:
    """For ensembles: the reference pool the run ranks against, drawn from the searched space
    with ``seed`` and saved as ``reference.json`` (a resumed run reloads it)."""
    if not getattr(scorer, "is_ensemble", False):
        return None
    path = out / "reference.json"
    if resume and path.exists():
        scorer.set_reference(path)
    else:
        if progress:
            print(
                f"scoring a reference pool of {scorer.reference_size} candidates ...",
                file=sys.stderr,
            )
        scorer.fit_reference(space, seed=seed).save(path)
    return str(path.resolve())


def _chunks(
    batches: Iterator[list[tuple[str, ArchConfig]]], size: int
) -> Iterator[list[tuple[str, ArchConfig]]]:
    chunk: list[tuple[str, ArchConfig]] = []
    for batch in batches:
        chunk += batch
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _run_optuna(
    study: Any,
    space: SearchSpace,
    budget: int,
    stored: dict[str, Candidate],
    executor: _Executor,
    scoring: tuple[str, str | None, str | None],
    multi: bool,
    bar: Any,
) -> int:
    import optuna

    # trials asked but never told (the run was killed) are closed as failed, not re-scored
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    evaluated, rejected = 0, 0
    while len(stored) < budget:
        asked: list[tuple[Any, ArchConfig]] = []
        while len(asked) < min(executor.slots, budget - len(stored)):
            trial = study.ask()
            cfg = space.build(space.suggest(trial))
            if cfg is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                rejected += 1
                if rejected > MAX_REJECTIONS:
                    raise AutostError(
                        f"{MAX_REJECTIONS} proposals in a row broke the constraints "
                        f"({', '.join(map(str, space.constraints))})"
                    )
                continue
            rejected = 0
            asked.append((trial, cfg))
        jobs = [((trial, cfg), (*scoring, cfg.to_json())) for trial, cfg in asked]
        for (trial, cfg), scores in executor.map_unordered(jobs):
            key = f"t{trial.number:06d}"
            metrics = space.metrics(cfg)
            trial.set_user_attr("key", key)
            trial.set_user_attr("config", cfg.to_dict())
            trial.set_user_attr("scores", scores)
            trial.set_user_attr("metrics", metrics)
            study.tell(trial, _objectives(scores, metrics, multi))
            stored[key] = Candidate(key, cfg, scores, metrics, trial.number)
            evaluated += 1
            bar.update(1)
            bar.set_postfix(best=f"{max(c.score for c in stored.values()):.4g}")
    return evaluated


# ------------------------------------------------------------------------------ outputs


def _leaderboard(stored: dict[str, Candidate]) -> list[Candidate]:
    """Best first; ties by key. Duplicate configs keep their best-ranked entry."""
    ranked = sorted(stored.values(), key=lambda c: (-c.score, c.key))
    seen: set[str] = set()
    board = []
    for cand in ranked:
        ident = cand.config.to_json()
        if ident not in seen:
            seen.add(ident)
            board.append(cand)
    return board


def leaderboard_rows(board: Sequence[Candidate]) -> list[dict[str, Any]]:
    """Flat rows of the leaderboard (as written to ``leaderboard.csv``)."""
    rows = []
    for rank, cand in enumerate(board, 1):
        cfg = cand.config
        row: dict[str, Any] = {"rank": rank, "key": cand.key, "score": cand.score}
        row.update({f"proxy_{k}": v for k, v in sorted(cand.scores.items()) if k != "score"})
        row.update(cand.metrics)
        row.update(
            {
                "depth": cfg.depth,
                "embed_dim": cfg.embed_dim,
                "timesteps": cfg.timesteps,
                "num_heads": " ".join(map(str, cfg.num_heads)),
                "mlp_ratios": " ".join(f"{r:g}" for r in cfg.mlp_ratios),
                "attention": " ".join(cfg.attention),
                "config": json.dumps(cfg.to_dict(), separators=(",", ":")),
            }
        )
        rows.append(row)
    return rows


def _write_outputs(out: Path, board: Sequence[Candidate]) -> None:
    rows = leaderboard_rows(board)
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "leaderboard.csv", buffer.getvalue())
    best = board[0]
    atomic_write_text(
        out / "best.json",
        json.dumps(
            {
                "schema_version": 1,
                "key": best.key,
                "scores": best.scores,
                "metrics": best.metrics,
                "config": best.config.to_dict(),
            },
            indent=2,
        )
        + "\n",
    )


def _write_run_json(path: Path, settings: dict[str, Any], started: bool) -> None:
    import optuna
    import torch

    import autost

    previous = json.loads(path.read_text()) if path.exists() else {}
    data = {
        "schema_version": 1,
        "settings": settings,
        "started": previous.get("started", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
        "resumed": [
            *previous.get("resumed", []),
            *([] if started else [time.strftime("%Y-%m-%dT%H:%M:%S%z")]),
        ],
        "versions": {
            "autost": autost.__version__,
            "torch": torch.__version__,
            "optuna": optuna.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
    }
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _progress(total: int, done: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=min(done, total),
        desc="search",
        unit="cand",
        disable=not enabled,
        dynamic_ncols=True,
    )


def load_run(out: str | Path) -> list[Candidate]:
    """The leaderboard of a finished or interrupted run directory (best first)."""
    out = Path(out)
    run_file = out / "run.json"
    if not run_file.exists():
        raise AutostError(f"{out}: not a search run directory (run.json is missing)")
    try:
        settings = json.loads(run_file.read_text())["settings"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise AutostError(f"{run_file}: corrupt run file") from exc
    storage = settings.get("storage")
    study = _open_study(
        out,
        None if storage == "study.db" else storage,
        settings["strategy"],
        settings["seed"],
        resume=True,
    )
    return _leaderboard(_stored(study))


def export(out: str | Path, top: int = 1, target: str | Path | None = None) -> list[Path]:
    """Write the ``top`` configs of run ``out``: one JSON file when ``top == 1``, else a folder
    of ``rank-NN.json`` files; each rebuilds with ``autost.create_model(path)``."""
    board = load_run(out)
    if not board:
        raise AutostError(f"{out}: the run has no scored candidate yet")
    if top < 1:
        raise AutostError(f"--top must be >= 1, got {top}")
    picked = board[:top]
    target = (
        Path(target)
        if target is not None
        else Path(out) / ("best-export.json" if top == 1 else "export")
    )
    written = []
    if top == 1:
        files = [(target, picked[0])]
    else:
        if target.suffix == ".json":
            raise AutostError(f"--top {top} writes several files: give a folder, not {target}")
        files = [(target / f"rank-{i:02d}.json", c) for i, c in enumerate(picked, 1)]
    for path, cand in files:
        payload = {
            "schema_version": 1,
            "source": str(out),
            "key": cand.key,
            "scores": cand.scores,
            "metrics": cand.metrics,
            "config": cand.config.to_dict(),
        }
        if path.exists():
            raise AutostError(f"{path} exists; not overwriting it")
        atomic_write_text(path, json.dumps(payload, indent=2) + "\n")
        written.append(path)
    return written
