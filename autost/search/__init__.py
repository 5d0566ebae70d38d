"""Training-free search: strategies, analytic constraints, Optuna persistence, resume, parallel
scoring, and the run-directory files (``study.db``, ``leaderboard.csv``, ``best.json``,
``run.json``).

The package holds the search layer: spaces and their dimensions (``space``, ``dimensions``),
evaluator recipes (``evaluator``, ``short_evaluator``), the data a search scores with
(``inputs``), strategies, scoring, the study and the run folder (``study``, ``outputs``,
``folder``); this module runs a search.

Every scored candidate is a COMPLETE trial of an Optuna study (SQLite in the run directory by
default, or any Optuna storage URL), written as soon as its score exists, so a killed run loses
at most the evaluations in flight. ``random`` and ``evolution`` derive every candidate from
``(seed, position)`` and from the scores before it, so a resumed run re-creates the same
candidates, skips those already stored, and ends with the same leaderboard as an
uninterrupted run. ``tpe`` and ``nsga2`` resume from the study's history through Optuna.
"""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autost.errors import AutostError
from autost.io import atomic_write_text
from autost.runtime.faults import kill_point
from autost.search import short_evaluator as _short_evaluator  # noqa: F401  (registers its kind)
from autost.search.folder import discard_study, folder_state
from autost.search.inputs import choose_data
from autost.search.outputs import (
    check_out_folder,
    export,
    leaderboard_rows,
    load_run,
    progress_bar,
    write_outputs,
    write_run_json,
)
from autost.search.scoring import (
    Executor,
    check_ray_address,
    eager_lif_by_default,
    load_evaluator,
    reference_pool_info,
    score_candidate,
)
from autost.search.space import SearchSpace
from autost.search.strategies import STRATEGIES, EvolutionSettings, run_deterministic, run_optuna
from autost.search.study import (
    STUDY_NAME,
    Candidate,
    check_storage,
    open_study,
    rank_leaderboard,
    storage_url,
    stored_candidates,
)

__all__ = [
    "STRATEGIES",
    "Candidate",
    "EvolutionSettings",
    "SearchResult",
    "export",
    "leaderboard_rows",
    "load_run",
    "score_candidate",
    "search",
]


@dataclass
class SearchResult:
    """What :func:`search` returns: the leaderboard (best first) and the run directory."""

    out: Path
    leaderboard: list[Candidate]
    evaluated: int
    resumed: int
    settings: dict[str, Any] = field(default_factory=dict)
    drawn: int = 0
    score_meaning: str = ""

    @property
    def best(self) -> Candidate:
        return self.leaderboard[0]

    @property
    def repeats(self) -> int:
        """Drawn candidates whose config had been drawn before."""
        return max(self.drawn - len(self.leaderboard), 0)

    def summary(self) -> str:
        """One line that adds up: drawn = distinct + repeats; scored = now + before."""
        distinct, scored = len(self.leaderboard), self.evaluated + self.resumed
        text = f"{self.drawn} candidates drawn, {distinct} distinct"
        if self.repeats:
            plural = "s" if self.repeats > 1 else ""
            how = "scored again" if scored >= self.drawn else "reusing its score"
            text += f" ({self.repeats} repeat{plural} of an already scored config, {how})"
        text += f"; {scored} scored"
        if self.resumed:
            text += f" ({self.evaluated} now, {self.resumed} before this resume)"
        return text


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
    study_name: str = STUDY_NAME,
    evolution: EvolutionSettings | None = None,
    progress: bool = True,
    root: str | Path | None = None,
    dataset_options: Mapping[str, Any] | None = None,
) -> SearchResult:
    """Rank candidates of ``space`` with ``evaluator`` and write the run directory ``out``.

    ``strategy`` is ``random``, ``evolution`` (AutoST's), ``tpe`` or ``nsga2`` (score up,
    energy down). ``constraints`` like ``'params<=12e6'`` are checked analytically before any
    candidate is scored. ``resume=True`` continues the run stored in ``out`` (or ``storage``).
    ``storage`` is any Optuna storage URL (default: SQLite ``out/study.db``); several runs share
    one database under different ``study_name`` values. ``root`` and ``dataset_options``
    (``autost.data.load_dataset`` options) reach the evaluator's data proxies.
    """
    with eager_lif_by_default():
        return _search(
            space,
            evaluator,
            strategy=strategy,
            budget=budget,
            constraints=constraints,
            seed=seed,
            dataset=dataset,
            out=out,
            resume=resume,
            workers=workers,
            address=address,
            storage=storage,
            study_name=study_name,
            evolution=evolution,
            progress=progress,
            root=root,
            dataset_options=dataset_options,
        )


def _search(
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
    study_name: str = STUDY_NAME,
    evolution: EvolutionSettings | None = None,
    progress: bool = True,
    root: str | Path | None = None,
    dataset_options: Mapping[str, Any] | None = None,
) -> SearchResult:
    """The body of :func:`search`."""
    if strategy not in STRATEGIES:
        import difflib

        close = difflib.get_close_matches(strategy, STRATEGIES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AutostError(f"unknown strategy {strategy!r}{hint} (choices: {', '.join(STRATEGIES)})")
    if budget < 1:
        raise AutostError(f"budget must be >= 1, got {budget}")
    if workers < 1:
        raise AutostError(f"workers must be >= 1, got {workers}")
    space_obj = space if isinstance(space, SearchSpace) else SearchSpace.load(space)
    if constraints:
        space_obj = space_obj.with_constraints(constraints)
    probe = space_obj.sample(seed)  # a clear error now when the constraints admit nothing
    if address is not None:
        check_ray_address(address)
    out = Path(out)
    check_out_folder(out)
    evo = evolution or EvolutionSettings()
    if strategy == "evolution":
        evo.check_budget(budget)
    evaluator_source = str(evaluator)
    scorer = load_evaluator(evaluator_source, dataset)  # validates the recipe up front
    user_data = dataset is not None or root is not None or bool(dataset_options)
    if root is not None or dataset_options:  # scored with a recipe that names the data
        root = str(root) if root is not None else scorer.root
        options = {**scorer.options, **(dataset_options or {})}
        scorer = scorer.with_dataset(scorer.dataset, root, **options)
    recipe_scorer = scorer
    scorer, data = choose_data(scorer, space_obj.name, probe, user_data)
    scorer.check_data(probe)  # missing files or a misfit fail here, before anything is written
    # the folder: a run that scored something is resumed (or refused without --resume); one
    # that never scored anything, or none at all, starts afresh
    run_file = out / "run.json"
    state = folder_state(out, storage, study_name)
    fresh = state.scored == 0
    if not fresh and not resume and storage is not None:
        raise AutostError(
            f"{storage} already holds a study named {study_name!r} ({state.scored} scored "
            "candidates); pass --resume to continue it or --study-name to start another "
            "(nothing was changed)"
        )
    if not fresh and not resume:
        raise AutostError(
            f"{out} already holds a search run ({state.scored} scored candidates); pass "
            "--resume to continue it or choose another --out (nothing was changed)"
        )
    if resume and state.empty and not out.is_dir():
        if storage is not None:  # says what is missing: the database, the journal, the study
            check_storage(storage_url(out, storage), resume=True)
            raise AutostError(f"{storage}: holds no study {study_name!r} to resume")
        raise AutostError(f"{out}: no run to resume (the folder does not exist)")
    if not fresh and state.record is None and storage is None:
        raise AutostError(f"{out}: no run to resume (run.json is missing)")
    settings = {
        "space": space_obj.to_dict(),
        "evaluator": evaluator_source,
        "evaluator_recipe": getattr(scorer, "to_dict", lambda: {})(),
        "strategy": strategy,
        "budget": budget,
        "constraints": [str(c) for c in space_obj.constraints],
        "seed": seed,
        "dataset": dataset,
        "root": None if root is None else str(root),
        "dataset_options": dict(dataset_options or {}),
        "data": None if data is None else data.to_dict(),
        "workers": workers,
        "address": address,
        "storage": storage_url(out, storage) if storage else "study.db",
        "study_name": study_name,
        "evolution": evo.__dict__,
        "score_meaning": scorer.describe_score(),
    }
    if not fresh and state.record is not None:
        used = {"study_name": STUDY_NAME, **state.record["settings"]}
        for key in ("strategy", "seed", "evaluator", "constraints", "study_name"):
            if used.get(key) != settings[key]:
                raise AutostError(
                    f"{out}: cannot resume with a different {key} ({used.get(key)!r} was used)"
                )
    if progress:
        if data is not None and data.standin:
            print(f"autost: {data.note}", file=sys.stderr)
        if resume and fresh:
            print(f"autost: {out} holds no scored candidate: starting afresh", file=sys.stderr)
    # everything is checked: the record of the settings is the first file written
    out.mkdir(parents=True, exist_ok=True)
    kill_point("search-record")
    write_run_json(run_file, settings, None if fresh else state.record)
    kill_point("search-study")
    if fresh and state.study_exists:
        discard_study(out, storage, study_name)
    study = open_study(out, storage, strategy, seed, not fresh, study_name)
    kill_point("search-reference")
    pool_info = reference_pool_info(scorer, space_obj, out, seed, not fresh, progress)
    reference = None if pool_info is None else pool_info.path
    if pool_info is not None:  # the record names the pool the run ranks against
        settings["reference_pool"] = pool_info.to_dict()
        write_run_json(run_file, settings, None if fresh else state.record)
    kill_point("search-scoring")
    scoring = (evaluator_source, dataset, reference)
    if scorer is not recipe_scorer or root is not None or dataset_options:
        recipe = out / "evaluator.json"  # every worker reads the recipe with its data
        atomic_write_text(recipe, json.dumps(scorer.to_dict(), indent=2) + "\n")
        scoring = (str(recipe.resolve()), None, reference)
    stored = stored_candidates(study)
    resumed = len(stored)
    multi = strategy == "nsga2"
    executor = Executor(workers, address)
    bar = progress_bar(budget, resumed, progress)
    try:
        if strategy in ("random", "evolution"):
            evaluated, drawn = run_deterministic(
                study,
                space_obj,
                strategy,
                seed,
                budget,
                evo,
                stored,
                executor,
                scoring,
                multi,
                bar,
            )
        else:
            evaluated = run_optuna(study, space_obj, budget, stored, executor, scoring, multi, bar)
            drawn = len(stored)
    finally:
        executor.close()
        bar.close()
        board = rank_leaderboard(stored_candidates(study), getattr(scorer, "weights", None))
        if board:
            write_outputs(out, board, settings["score_meaning"])
    drawn = max(drawn, evaluated + resumed)  # a resume with a smaller budget draws fewer
    meaning = scorer.describe_score()  # the pool is set now: its real size
    return SearchResult(out, board, evaluated, resumed, settings, drawn, meaning)


class _SearchModule(types.ModuleType):
    """Importing this package binds ``autost.search`` to it, shadowing the function of the
    same name; calling the package therefore calls :func:`search`."""

    def __call__(self, *args: Any, **kwargs: Any) -> SearchResult:
        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _SearchModule
