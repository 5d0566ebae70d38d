"""Scoring candidates: the evaluator per process, local worker processes, Ray tasks, and
the ensemble reference pool of a run."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from autost.config import ArchConfig
from autost.ray_util import check_ray_address, init_ray, ray_session
from autost.space import SearchSpace

__all__ = ["check_ray_address", "connect_ray", "init_ray", "ray_session", "reference_pool"]

# ------------------------------------------------------------------------------ scoring


_EVALUATORS: dict[str, Any] = {}


def load_evaluator(source: str, dataset: str | None, reference: str | None = None) -> Any:
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


@contextmanager
def eager_lif_by_default() -> Iterator[None]:
    """Run the block with the eager LIF kernel unless ``AUTOST_LIF_BACKEND`` is set.

    Every candidate has new tensor shapes, so compiling the kernel (seconds per shape) never
    pays off while scoring. The environment is restored afterwards; worker processes started
    inside the block inherit the setting.
    """
    from autost.neurons.backend import BACKEND_ENV, backend_env

    if BACKEND_ENV in os.environ:
        yield
        return
    with backend_env("eager"):
        yield


def score_candidate(
    evaluator_source: str, dataset: str | None, reference: str | None, config_json: str
) -> dict[str, float]:
    """Score one candidate (runs in worker processes and Ray tasks too); ``reference`` is the
    run's saved reference pool for ensembles, so that every process ranks against one pool."""
    with eager_lif_by_default():
        evaluator = load_evaluator(evaluator_source, dataset, reference)
        scores = evaluator.score(ArchConfig.from_json(config_json))
    return {k: float(v) for k, v in scores.items()}


class Executor:
    """Submit scoring jobs inline, to local processes, or as Ray tasks; yield as they finish."""

    def __init__(self, workers: int, address: str | None) -> None:
        self.workers = max(1, workers)
        self.address = address
        self._pool: ProcessPoolExecutor | None = None
        self._ray_fn: Any = None
        if address is not None:
            self._ray_fn = connect_ray(address)
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


def connect_ray(address: str) -> Any:
    """Join a running Ray cluster, failing fast with one clear line when it is unreachable."""
    import ray

    init_ray(address)
    return ray.remote(score_candidate)


def reference_pool(
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
        scorer.fit_reference(space, seed=seed, progress=progress).save(path)
    return str(path.resolve())
