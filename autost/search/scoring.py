"""Scoring candidates: the evaluator per process, local worker processes, Ray tasks, and
the ensemble reference pool of a run."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from autost.model.config import ArchConfig
from autost.runtime.ray_util import check_ray_address, init_ray, ray_session
from autost.search.space import SearchSpace

__all__ = [
    "ReferencePoolInfo",
    "check_ray_address",
    "connect_ray",
    "init_ray",
    "ray_session",
    "reference_cache_key",
    "reference_pool",
    "reference_pool_info",
]

# ------------------------------------------------------------------------------ scoring


_EVALUATORS: dict[str, Any] = {}


def load_evaluator(source: str, dataset: str | None, reference: str | None = None) -> Any:
    from autost.search.evaluator import Evaluator

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


# ------------------------------------------------------------------------------ reference pool

#: folder of cached reference pools under ``$AUTOST_CACHE`` (default ``~/.cache/autost``)
REFERENCE_CACHE = "reference-pools"


@dataclass(frozen=True)
class ReferencePoolInfo:
    """Which reference pool a run ranks against; ``to_dict()`` is what ``run.json`` records.

    ``source`` is ``"computed"`` (scored now, then cached), ``"cache"`` (reused from
    ``cache``) or ``"run"`` (a resumed run's own ``reference.json``). ``key`` is the digest of
    :func:`reference_cache_key`; ``cache`` is ``None`` when the cache could not be written.
    """

    path: str
    key: str
    source: str
    cache: str | None
    size: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def _source_digest() -> str:
    """SHA-256 of the autost package's Python sources: a pool scored by other code (a changed
    proxy, sampler or model) is never reused, even under the same version number."""
    root = Path(__file__).resolve().parents[1]  # the autost package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def reference_cache_key(scorer: Any, space: SearchSpace, seed: int) -> dict[str, Any]:
    """Everything a drawn reference pool depends on: the recipe (proxies, weights, data,
    batch, seeds, pool size), the searched space with its constraints, the draw seed, and
    the versions (autost and a digest of its sources, torch, numpy)."""
    import numpy as np
    import torch

    from autost.version import __version__

    key = {
        "schema": 1,
        "recipe": scorer.to_dict(),
        "space_sha256": hashlib.sha256(_canonical(space.to_dict()).encode()).hexdigest(),
        "draw_seed": seed,
        "autost": __version__,
        "autost_sources": _source_digest(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    loaded: dict[str, Any] = json.loads(_canonical(key))  # as it reads back from the file
    return loaded


def _values_digest(pool: Any) -> str:
    """SHA-256 of a pool's values as JSON writes them (detects an edited or damaged number)."""
    return hashlib.sha256(_canonical(pool.to_dict()["values"]).encode()).hexdigest()


def _cached_pool(path: Path, key: dict[str, Any], scorer: Any) -> Any:
    """The pool cached at ``path`` for ``key``, or ``None`` when there is none. A file that
    fails to load, was written for another key or whose values do not match their checksum is
    never used: one line on stderr says so, and the caller scores the pool again."""
    from autost.errors import AutostError
    from autost.proxies import ReferencePool

    if not path.is_file():
        return None
    try:
        pool = ReferencePool.load(path)
        if _canonical(pool.meta.get("cache_key")) != _canonical(key):
            raise AutostError("written for another key")
        if pool.meta.get("values_sha256") != _values_digest(pool):
            raise AutostError("its values do not match their checksum")
        if pool.size != scorer.reference_size or any(n not in pool.values for n in scorer.weights):
            raise AutostError("it does not fit the recipe")
    except AutostError as exc:
        reason = str(exc).removeprefix(f"{path}: ")
        print(
            f"autost: ignoring the cached reference pool {path} ({reason}); scoring it again",
            file=sys.stderr,
        )
        return None
    return pool


def reference_pool_info(
    scorer: Any, space: SearchSpace, out: Path, seed: int, resume: bool, progress: bool
) -> ReferencePoolInfo | None:
    """For ensembles: the reference pool the run ranks against, saved as ``reference.json``.

    A resumed run reloads its own. Otherwise the pool drawn from ``space`` with ``seed`` is
    reused from ``$AUTOST_CACHE/reference-pools/`` when an identical one was scored before
    (same :func:`reference_cache_key`), else scored and cached (written atomically; a cache
    that cannot be written is skipped with one line on stderr). ``None`` for a single-proxy
    evaluator.
    """
    if not getattr(scorer, "is_ensemble", False):
        return None
    from autost.data.base import default_cache_root
    from autost.io import atomic_write_text
    from autost.proxies import ReferencePool

    path = out / "reference.json"
    if resume and path.exists():
        pool = scorer.set_reference(path)
        digest = str(pool.meta.get("cache_digest", ""))
        return ReferencePoolInfo(str(path.resolve()), digest, "run", None, pool.size)
    key = reference_cache_key(scorer, space, seed)
    digest = hashlib.sha256(_canonical(key).encode()).hexdigest()
    cache = default_cache_root() / REFERENCE_CACHE / f"{digest[:32]}.json"
    cached = _cached_pool(cache, key, scorer)
    written: str | None = str(cache)
    if cached is not None:
        pool, source = scorer.set_reference(cached), "cache"
        if progress:
            print(f"reference pool: {pool.size} candidates reused from {cache}", file=sys.stderr)
    else:
        fitted = scorer.fit_reference(space, seed=seed, progress=progress)
        meta = {**fitted.meta, "cache_key": key, "cache_digest": digest}
        pool, source = ReferencePool(fitted.values, meta), "computed"
        pool = ReferencePool(pool.values, {**meta, "values_sha256": _values_digest(pool)})
        try:
            atomic_write_text(cache, json.dumps(pool.to_dict(), indent=1) + "\n")
        except OSError as exc:
            print(
                f"autost: cannot write the reference pool cache {cache}: "
                f"{exc.strerror or exc}; going on without it",
                file=sys.stderr,
            )
            written = None
    ReferencePool(pool.values, {**pool.meta, "evaluator": scorer.name, "source": source}).save(path)
    return ReferencePoolInfo(str(path.resolve()), digest, source, written, pool.size)


def reference_pool(
    scorer: Any, space: SearchSpace, out: Path, seed: int, resume: bool, progress: bool
) -> str | None:
    """The path of the run's ``reference.json`` (see :func:`reference_pool_info`), or ``None``
    for a single-proxy evaluator."""
    info = reference_pool_info(scorer, space, out, seed, resume, progress)
    return None if info is None else info.path
