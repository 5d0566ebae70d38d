"""Cost of every registered proxy per candidate, beside one forward and one forward+backward pass.

Run: ``AUTOST_LIF_BACKEND=eager python benchmarks/proxy_cost.py [--candidates 8] [--repeats 5]
[--threads 1] [--out benchmarks/results/proxy_cost.md]``

Candidates are sampled from the ``digits`` search space (seeds 0, 1, ...); each gets one model
(seed 0, BN on batch statistics, as the proxies run it) and the digits batch of the evaluator
recipes (64 samples, data seed 0). Per candidate and repeat, interleaved: one plain forward
pass (``torch.no_grad``), one forward + backward of the cross-entropy, then every proxy alone
(``ctx.reset()`` first, so a shared-pass proxy pays for the shared pass, as when it is the
only one asked for). One warm-up round per candidate is not timed. Building the model is not
included (it is timed on its own). The table gives, per row, the median over candidates of
each candidate's median seconds, their range, and the median over candidates of the ratio to
that candidate's forward pass.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from autost import SearchSpace
from autost.proxies import ProxyContext, get_proxy, list_proxies
from autost.search.evaluator import Evaluator

BASELINES = ("forward", "forward+backward")


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def candidate_jobs(ctx: ProxyContext, proxies: list[str]) -> dict[str, Callable[[], Any]]:
    """The timed jobs of one candidate: the two baselines and every proxy alone."""
    model = ctx.model
    x, y = ctx.inputs()

    def forward() -> None:
        with torch.no_grad():
            model(x)

    def forward_backward() -> None:
        F.cross_entropy(model(x), y).backward()
        model.zero_grad(set_to_none=True)

    def proxy(name: str) -> Callable[[], Any]:
        def run() -> None:
            ctx.reset()
            ctx.score([name])

        return run

    return {"forward": forward, "forward+backward": forward_backward} | {
        name: proxy(name) for name in proxies
    }


def measure(n_candidates: int, repeats: int, recipe: str) -> tuple[list[dict[str, Any]], list[str]]:
    space = SearchSpace.load("digits")
    evaluator = Evaluator.load(recipe)
    proxies = list_proxies()
    rows: list[dict[str, Any]] = []
    jobs: list[dict[str, Callable[[], Any]]] = []
    for seed in range(n_candidates):
        cfg = space.sample(seed)
        ctx = ProxyContext(cfg, evaluator.batch(cfg), seed=0)
        build = timed(lambda ctx=ctx: ctx.model)
        batch = len(ctx.inputs()[1])
        rows.append({"seed": seed, "config": cfg, "batch": batch, "build_s": build, "times": {}})
        jobs.append(candidate_jobs(ctx, proxies))
        for fn in jobs[-1].values():  # warm-up: allocator, lazy imports
            fn()
        print(f"candidate {seed}: built in {build * 1e3:.1f} ms", file=sys.stderr, flush=True)
    for rep in range(repeats):
        for row, candidate in zip(rows, jobs, strict=True):
            for key, fn in candidate.items():
                row["times"].setdefault(key, []).append(timed(fn))
        print(f"repeat {rep + 1}/{repeats} done", file=sys.stderr, flush=True)
    return rows, proxies


def fmt_s(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def describe(cfg: Any) -> str:
    heads = "/".join(str(h) for h in cfg.num_heads)
    ratios = "/".join(f"{r:g}" for r in cfg.mlp_ratios)
    attn = "/".join(cfg.attention)
    dims = f"T {cfg.timesteps}, D {cfg.embed_dim}, depth {cfg.depth}"
    return f"{dims}, heads {heads}, MLP {ratios}, {attn}"


def para(text: str) -> str:
    """A markdown paragraph wrapped at 100 columns."""
    return textwrap.fill(text, width=100, break_on_hyphens=False)


def report(rows: list[dict[str, Any]], proxies: list[str], args: argparse.Namespace) -> str:
    medians = [{k: statistics.median(v) for k, v in row["times"].items()} for row in rows]
    lines = [
        "# Proxy cost per candidate",
        "",
        para(
            f"Command ({datetime.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch thread(s), LIF backend "
            f"`{os.environ.get('AUTOST_LIF_BACKEND', 'auto')}`):"
        ),
        "",
        "```",
        args.command,
        "```",
        "",
        para(
            f"{len(rows)} candidates of the `digits` space (seeds 0-{len(rows) - 1}), the "
            f"`{args.recipe}` recipe's digits batch (B = {rows[0]['batch']}), model seed 0; "
            f"{args.repeats} interleaved repeats after one warm-up. Per row: the median over "
            "candidates of each candidate's median time, the range of those medians, and the "
            "median over candidates of the ratio to the same candidate's plain forward pass. "
            "Every proxy runs alone (`ctx.reset()` first): a shared-pass proxy includes the "
            "shared pass."
        ),
        "",
        "| what | sign | data | median / candidate | range | x forward |",
        "| --- | ---: | :---: | ---: | ---: | ---: |",
    ]
    for key in [*BASELINES, *proxies]:
        values = [m[key] for m in medians]
        ratio = statistics.median(m[key] / m["forward"] for m in medians)
        if key in BASELINES:
            sign, data = "", "yes"
        else:
            proxy = get_proxy(key)
            sign, data = f"{proxy.sign:+d}", "yes" if proxy.needs_data else "no"
        lines.append(
            f"| {'**' + key + '**' if key in BASELINES else key} | {sign} | {data} | "
            f"{fmt_s(statistics.median(values))} | {fmt_s(min(values))} - {fmt_s(max(values))} "
            f"| {ratio:.2f}x |"
        )
    builds = [row["build_s"] for row in rows]
    lines += [
        "",
        para(
            "What each pass is: `zico` two forward + backward passes, one per half batch; "
            "`meco` one no-grad forward plus a float64 C x C Gram matrix and eigendecomposition "
            "per neuron layer; `jacob_cov` one forward + backward to the input and a B x B "
            "eigendecomposition; "
            "`snip`, `fisher`, `grad_norm` one forward + backward each; `firing_rate`, `sops`, "
            "`energy`, `sahd`, `naswot_hd` the shared hooked forward pass, paid once when several "
            "are asked for together; `flops`, `params`, `autost_fitness` (its released `ld = 0`) "
            "analytic. "
            f"Building a model (not included above): median {fmt_s(statistics.median(builds))} "
            f"({fmt_s(min(builds))} - {fmt_s(max(builds))})."
        ),
        "",
        "Candidates (forward / forward+backward medians):",
        "",
    ]
    for row, med in zip(rows, medians, strict=True):
        lines.append(
            f"- seed {row['seed']}: {describe(row['config'])}: "
            f"{fmt_s(med['forward'])} / {fmt_s(med['forward+backward'])}"
        )
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--recipe", default="zico", help="evaluator recipe whose batch is used")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--out", default="benchmarks/results/proxy_cost.md")
    args = parser.parse_args()
    backend = os.environ.get("AUTOST_LIF_BACKEND")
    prefix = f"AUTOST_LIF_BACKEND={backend} " if backend else ""
    args.command = prefix + "python " + shlex.join(sys.argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows, proxies = measure(args.candidates, args.repeats, args.recipe)
    text = report(rows, proxies, args)
    write_atomic(Path(args.out), text)
    print(text)


if __name__ == "__main__":
    main()
