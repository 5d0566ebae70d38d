"""Forward + backward of a multi-step LIF against the reference loop and the memory floor.

Run ``python benchmarks/lif.py`` (``--help`` for options). Per device it times, interleaved
A, B, C, A, B, C, ... after a warm-up: the fast op with each backend, the reference loop, and a
copy of a tensor of the input's size, which gives the memory bandwidth in the same run.

The floor counts the bytes a fwd+bwd must move at least, one full ``[T, ...]`` tensor of the
input's dtype per pass: read x, write spikes, write the saved state, read grad_spikes, read the
saved state, write grad_x (six passes, the saved state counted as one such tensor). A kernel
that keeps x itself as its saved state, as the compiled backend does, needs only five passes,
so that figure is printed too. floor = bytes / bandwidth, where copying n bytes moves 2n.
Allocating the outputs (fresh pages, page faults) is not part of the floor.

The ``triton`` backend (hand-written Triton kernels) is timed on CUDA devices only; elsewhere
the report says that it needs a CUDA GPU and was not measured. A row is measured only if the
kernels really ran (no fallback to another backend).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autost.neurons import backend as lif_backend
from autost.neurons import lif_multistep, lif_multistep_reference

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or what platform knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> float | None:
    """The 1-minute load average, to judge how quiet the machine was."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _page_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt if resource else 0


def unmeasured_reason(name: str, device: torch.device, x: torch.Tensor) -> str | None:
    """Why backend ``name`` cannot be timed on ``device`` (``None``: it can)."""
    if name != "triton":
        return None
    if device.type != "cuda":
        return "triton speed needs a CUDA GPU; not measured"
    if lif_backend._resolve_backend("triton", x.detach()[:1]) != "triton":
        return "the triton kernels cannot run here (triton missing or failed); not measured"
    return None


def bench_device(
    device: torch.device,
    shape: tuple[int, ...],
    dtype: torch.dtype,
    backends: list[str],
    repeats: int,
    warmup: int,
    reference: bool,
) -> dict[str, Any]:
    """Median milliseconds of every variant on ``device``, the bandwidth and the floors."""
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=gen) * 1.5).to(device, dtype).requires_grad_()
    grad = torch.randn(shape, generator=gen).to(device, dtype)
    src = torch.randn(shape, generator=gen).to(device, dtype)
    dst = torch.empty_like(src)

    def fwd_bwd(op: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            torch.autograd.grad(op(x), x, grad)

        return run

    def copy() -> None:
        dst.copy_(src)

    variants: dict[str, Callable[[], None]] = {}
    skipped: dict[str, str] = {}
    for backend in backends:
        reason = unmeasured_reason(backend, device, x)
        if reason is not None:
            skipped[f"fast[{backend}]"] = reason
            continue
        variants[f"fast[{backend}]"] = fwd_bwd(
            lambda t, b=backend: lif_multistep(t, 2.0, backend=b)  # type: ignore[misc]
        )
    if reference:
        variants["reference"] = fwd_bwd(lambda t: lif_multistep_reference(t, 2.0))
    variants["copy"] = copy

    def timed(fn: Callable[[], None]) -> tuple[float, int]:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        faults, start = _page_faults(), time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start, _page_faults() - faults

    first_call_s = {name: timed(fn)[0] for name, fn in variants.items()}  # compiles
    if "fast[triton]" in variants and device.type in lif_backend._triton_failed:
        del variants["fast[triton]"]  # it warned and fell back: those would be another's times
        skipped["fast[triton]"] = "the triton kernels failed (see the warning); not measured"
    for _ in range(warmup):
        for fn in variants.values():
            timed(fn)
    times: dict[str, list[float]] = {name: [] for name in variants}
    faults: dict[str, int] = dict.fromkeys(variants, 0)
    for _ in range(repeats):
        for name, fn in variants.items():
            seconds, page_faults = timed(fn)
            times[name].append(seconds)
            faults[name] += page_faults

    median_ms = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}
    tensor_bytes = x.numel() * x.element_size()
    bandwidth = 2 * tensor_bytes / (median_ms["copy"] / 1e3)
    floor6_ms = 1e3 * 6 * tensor_bytes / bandwidth
    floor5_ms = 1e3 * 5 * tensor_bytes / bandwidth
    rows = []
    for name, ms in median_ms.items():
        rows.append(
            {
                "variant": name,
                "median_ms": ms,
                "min_ms": 1e3 * min(times[name]),
                "x_floor6": ms / floor6_ms,
                "x_floor5": ms / floor5_ms,
                "speedup_vs_reference": median_ms["reference"] / ms if reference else None,
                "page_faults_per_call": faults[name] / repeats,
                "first_call_s": first_call_s[name],
            }
        )
    return {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "shape": list(shape),
        "dtype": str(dtype).removeprefix("torch."),
        "repeats": repeats,
        "bandwidth_gb_s": bandwidth / 1e9,
        "floor6_ms": floor6_ms,
        "floor5_ms": floor5_ms,
        "rows": rows,
        "not_measured": skipped,
    }


def print_report(result: dict[str, Any]) -> None:
    """The table for one device."""
    print(
        f"\n{result['device']} ({result['device_name']}, {result['threads']} threads), "
        f"shape {result['shape']} {result['dtype']}, median of {result['repeats']} rounds"
    )
    print(
        f"bandwidth {result['bandwidth_gb_s']:.1f} GB/s (copy); floor: 6 passes "
        f"{result['floor6_ms']:.3f} ms, 5 passes {result['floor5_ms']:.3f} ms"
    )
    header = ("variant", "median ms", "min ms", "x floor6", "x floor5", "vs ref", "faults", "1st s")
    print(f"{header[0]:<16}" + "".join(f"{h:>11}" for h in header[1:]))
    for row in result["rows"]:
        speedup = row["speedup_vs_reference"]
        cells = [
            f"{row['median_ms']:.3f}",
            f"{row['min_ms']:.3f}",
            f"{row['x_floor6']:.2f}",
            f"{row['x_floor5']:.2f}",
            "" if speedup is None else f"{speedup:.1f}x",
            f"{row['page_faults_per_call']:.0f}",
            f"{row['first_call_s']:.2f}",
        ]
        print(f"{row['variant']:<16}" + "".join(f"{c:>11}" for c in cells))
    for variant, reason in result.get("not_measured", {}).items():
        print(f"{variant:<16} {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--shape", default="4,64,384,64", help="T,... (default 4,64,384,64)")
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds (default 3)")
    parser.add_argument(
        "--backend",
        action="append",
        choices=["compiled", "eager", "triton", "auto"],
        help=(
            "fast-op backend to time; repeat for several (default: compiled, eager and triton; "
            "triton on CUDA devices only)"
        ),
    )
    parser.add_argument(
        "--device", action="append", help="cpu or cuda; repeat for several (default: all present)"
    )
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "float64", "float16", "bfloat16"]
    )
    parser.add_argument("--threads", type=int, help="torch.set_num_threads for the CPU runs")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference loop")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    shape = tuple(int(s) for s in args.shape.split(","))
    backends = args.backend or ["compiled", "eager", "triton"]
    devices = args.device or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = load_average()
    print(f"torch {torch.__version__}, CPU {cpu_name()}, load average {load_before}")
    results = []
    for name in devices:
        device = torch.device(name)
        result = bench_device(
            device,
            shape,
            getattr(torch, args.dtype),
            backends,
            args.repeats,
            args.warmup,
            not args.no_reference,
        )
        print_report(result)
        results.append(result)
    load_after = load_average()
    print(f"\nload average after: {load_after}")
    if args.json:
        payload = {
            "command": " ".join(["python", "benchmarks/lif.py", *(argv or sys.argv[1:])]),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": cpu_name(),
            "cpu_count": os.cpu_count(),
            "load_average": [load_before, load_after],
            "env": {k: v for k, v in os.environ.items() if k.startswith(("AUTOST_", "OMP_"))},
            "results": results,
        }
        tmp = args.json.with_name(args.json.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=2) + "\n")
        tmp.replace(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
