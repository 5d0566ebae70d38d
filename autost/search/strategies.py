"""Search strategies: random and AutoST evolution (deterministic from the seed, so resume
re-creates the same candidates) and Optuna TPE / NSGA-II (resumed from the study)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from autost.errors import AutostError
from autost.model.config import ArchConfig
from autost.runtime.faults import kill_point
from autost.search.scoring import Executor
from autost.search.space import SearchSpace
from autost.search.study import Candidate, candidate_attrs, objectives, record

STRATEGIES = ("random", "evolution", "tpe", "nsga2")

#: tpe/nsga2 proposals rejected by the analytic checks in a row before giving up
MAX_REJECTIONS = 2000


@dataclass
class EvolutionSettings:
    """AutoST's evolution: 50 candidates, top 10 as parents, 25 + 25 children a generation.

    Generations follow one another until the search's ``budget`` of candidates is drawn;
    ``generations``, when set, is a cap that must leave room for the whole budget (the
    search refuses it otherwise, before anything is scored).
    """

    population: int = 50
    parents: int = 10
    mutations: int = 25
    crossovers: int = 25
    generations: int | None = None
    mutation_prob: float = 0.3

    def __post_init__(self) -> None:
        for name in ("population", "parents", "generations"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AutostError(f"evolution: {name} must be >= 1, got {value}")
        if self.mutations < 0 or self.crossovers < 0 or self.mutations + self.crossovers < 1:
            raise AutostError(
                "evolution: mutations and crossovers must be >= 0 with at least one child a "
                f"generation, got {self.mutations} and {self.crossovers}"
            )
        if not 0.0 <= self.mutation_prob <= 1.0:
            raise AutostError(
                f"evolution: mutation_prob must be in [0, 1], got {self.mutation_prob}"
            )

    @property
    def children(self) -> int:
        """Candidates drawn by every generation after the first."""
        return min(self.mutations + self.crossovers, self.population)

    def max_draws(self) -> int | None:
        """Candidates ``generations`` generations draw at most (``None``: no cap)."""
        if self.generations is None:
            return None
        return self.population + (self.generations - 1) * self.children

    def check_budget(self, budget: int) -> None:
        """Refuse a ``generations`` cap that stops the evolution before ``budget`` candidates."""
        most = self.max_draws()
        if most is not None and most < budget:
            raise AutostError(
                f"evolution: --generations {self.generations} draws at most {most} candidates "
                f"(population {self.population}, then {self.children} children a generation), "
                f"fewer than --budget {budget}; raise or drop --generations, or lower --budget"
            )


# ------------------------------------------------------------------------------ strategies


def random_candidates(
    space: SearchSpace, seed: int, budget: int
) -> Iterator[list[tuple[str, ArchConfig]]]:
    for i in range(budget):
        yield [(f"r{i:06d}", space.sample(np.random.default_rng([seed, i])))]


def evolution_candidates(
    space: SearchSpace,
    seed: int,
    budget: int,
    settings: EvolutionSettings,
    scored: Callable[[str], float],
) -> Iterator[list[tuple[str, ArchConfig]]]:
    """Generation after generation; ``scored(key)`` gives the score once a batch was evaluated."""
    produced = 0
    members: list[tuple[str, ArchConfig]] = []
    # the budget ends the evolution; ``generations`` only caps it
    rounds = itertools.count() if settings.generations is None else range(settings.generations)
    for g in rounds:
        if produced >= budget:
            return
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
            batch = batch[: settings.children]
        batch = batch[: budget - produced]
        produced += len(batch)
        yield batch
        # survivors: the best of the previous population and the new generation
        pool = members + batch
        ranked = sorted(pool, key=lambda m: (-scored(m[0]), m[0]))
        members = ranked[: settings.population]


def run_deterministic(
    study: Any,
    space: SearchSpace,
    strategy: str,
    seed: int,
    budget: int,
    evo: EvolutionSettings,
    stored: dict[str, Candidate],
    executor: Executor,
    scoring: tuple[str, str | None, str | None],
    multi: bool,
    bar: Any,
) -> tuple[int, int]:
    """Score the candidates of ``random`` or ``evolution`` that ``stored`` lacks; returns
    ``(scored now, drawn)``, where drawn also counts stored candidates and repeats."""
    evaluated, drawn = 0, 0

    def scored(key: str) -> float:
        return stored[key].score

    distributions = space.optuna_distributions()
    best = max((c.score for c in stored.values()), default=-math.inf)
    batches: Iterable[list[tuple[str, ArchConfig]]]
    if strategy == "random":
        batches = chunks(random_candidates(space, seed, budget), executor.slots)
    else:
        batches = evolution_candidates(space, seed, budget, evo, scored)
    # a candidate whose config was scored before (evolution revisits configs) takes that
    # score instead of a second evaluation and a second trial; on resume the same aliases
    # are found again, so the run stays deterministic
    first_key = {cand.config.to_json(): key for key, cand in stored.items()}
    for batch in batches:
        drawn += len(batch)
        todo: list[tuple[str, ArchConfig]] = []
        aliases: list[tuple[str, str]] = []
        for key, cfg in batch:
            if key in stored:
                continue
            ident = cfg.to_json()
            if ident in first_key:
                aliases.append((key, first_key[ident]))
            else:
                first_key[ident] = key
                todo.append((key, cfg))
        jobs = [((key, cfg), (*scoring, cfg.to_json())) for key, cfg in todo]
        for (key, cfg), scores in executor.map_unordered(jobs):
            metrics = space.metrics(cfg)
            kill_point("search-before-trial")
            stored[key] = record(study, space, key, cfg, scores, metrics, multi, distributions)
            kill_point("search-trial")
            evaluated += 1
            best = _advance(bar, best, stored[key].score)
        for key, original in aliases:
            stored[key] = stored[original]
            best = _advance(bar, best, stored[key].score)
    return evaluated, drawn


def _advance(bar: Any, best: float, score: float) -> float:
    """One more candidate on the progress bar; returns the best score so far."""
    best = max(best, score)
    bar.update(1)
    bar.set_postfix(best=f"{best:.4g}")
    return best


def chunks(
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


def run_optuna(
    study: Any,
    space: SearchSpace,
    budget: int,
    stored: dict[str, Candidate],
    executor: Executor,
    scoring: tuple[str, str | None, str | None],
    multi: bool,
    bar: Any,
) -> int:
    import optuna

    # trials asked but never told (the run was killed) are closed as failed, not re-scored
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    evaluated, rejected = 0, 0
    best = max((c.score for c in stored.values()), default=-math.inf)
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
            for name, value in candidate_attrs(key, cfg, scores, metrics).items():
                trial.set_user_attr(name, value)
            kill_point("search-before-trial")
            study.tell(trial, objectives(scores, metrics, multi))
            kill_point("search-trial")
            stored[key] = Candidate(key, cfg, scores, metrics, trial.number)
            evaluated += 1
            best = _advance(bar, best, stored[key].score)
    return evaluated
