"""Time 2-D loss-landscape evaluation: a per-point loop, the loss-landscapes package and lossviz, in one run.

Jobs (the issue's): an MLP 2-64-64-2 on 1,000 moons points on a 51x51 grid, and the digits CNN on its training
split on a 41x41 grid. Prints seconds, speed-up ratios and useful GFLOP/s against a measured float32 matmul.

Run: .venv/bin/python benchmarks/landscape.py [--repeats 2] [--device cpu|cuda] [--modes wall,cpu1] [--quick]

What is compared, on the same model, data, loss (cross-entropy from the registry) and number of grid points:
  (a) reference: the approach of the paper's code, a per-point loop writing theta + x d1 + y d2 into a copy of
      the model (p.copy_) and running a forward pass (eval mode), with the same directions as (c);
  (b) loss_landscapes.random_plane (the `loss-landscapes` package, filter normalization), which walks the grid
      with in-place parameter updates and one metric call per point (its own random directions);
  (c) lossviz.landscape.loss_surface with engine="auto", plus every other engine for the record.
Useful FLOPs count 2·in·out per Linear and 2·C_in·k²·C_out·H·W per Conv2d, per sample and grid point (the
multiply-adds that dominate; bias, activations, pooling and the loss are not counted). The yardstick is the
best float32 GFLOP/s of a large square matmul on this machine, measured in the same run and mode. Every time
is the best of --repeats runs, the methods interleaved so that background load affects them alike. Two modes:
"wall" (wall clock, all threads: what a user waits) and "cpu1" (CPU time with one thread, which other
processes on a shared machine barely disturb). Targets (from the issue): on a CPU (c) >= 3x faster than (a)
and (b) and >= 30% of the matmul throughput; on a GPU >= 30x faster than (a).

Results and the machine they came from: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lossviz import landscape, losses
from lossviz.data import make_dataset
from lossviz.models import MLP, DigitsCNN


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def clock(mode: str) -> Callable[[], float]:
    """Wall-clock time, or the process's CPU time (immune to other processes while single-threaded)."""
    return time.perf_counter if mode == "wall" else time.process_time


def matmul_gflops(device: torch.device, repeats: int, mode: str) -> float:
    """Best float32 GFLOP/s of a square matmul over a few sizes (the machine's practical peak)."""
    best, now = 0.0, clock(mode)
    for n in (1024, 2048, 4096) if device.type == "cpu" else (4096, 8192):
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        a @ b
        sync(device)
        for _ in range(max(3, repeats)):
            t = now()
            a @ b
            sync(device)
            best = max(best, 2 * n**3 / (now() - t) / 1e9)
    return best


def forward_flops(model: nn.Module, x: torch.Tensor) -> float:
    """Multiply-add FLOPs of Linear and Conv2d layers for one sample."""
    total = [0.0]

    def hook(m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        if isinstance(m, nn.Linear):
            total[0] += 2 * m.in_features * m.out_features
        elif isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total[0] += 2 * m.in_channels // m.groups * k * m.out_channels * out.shape[-1] * out.shape[-2]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)]
    with torch.no_grad():
        model(x[:1])
    for h in handles:
        h.remove()
    return total[0]


def reference_loop(model, bound, X, y, d1, d2, xs, ys, device, batch_size: int = 128) -> np.ndarray:
    """(a) the reference code's approach: per point, write the weights into the model, then evaluate loss and
    accuracy over a DataLoader of mini-batches (its default batch size, 128) with a .item() per batch."""
    m = copy.deepcopy(model).to(device).eval()
    theta = {n: p.detach().clone() for n, p in m.named_parameters()}
    d1 = {n: t.to(device) for n, t in d1.items()}
    d2 = {n: t.to(device) for n, t in d2.items()}
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=batch_size)
    z = np.zeros((len(ys), len(xs)))
    with torch.no_grad():
        for i, b in enumerate(ys):
            for j, a in enumerate(xs):
                for n, p in m.named_parameters():
                    p.copy_(theta[n] + float(a) * d1[n] + float(b) * d2[n])
                total_loss, correct = 0.0, 0
                for inputs, targets in loader:
                    outputs = m(inputs)
                    total_loss += bound(outputs, targets).item() * len(inputs)
                    correct += int((outputs.argmax(1) == targets).sum())
                z[i, j] = total_loss / len(X)
    return z


def streamlined_loop(model, bound, X, y, d1, d2, xs, ys, device) -> np.ndarray:
    """(a') the same per-point loop made as lean as it gets: one full-batch forward, loss only, no syncs."""
    m = copy.deepcopy(model).to(device).eval()
    theta = {n: p.detach().clone() for n, p in m.named_parameters()}
    d1 = {n: t.to(device) for n, t in d1.items()}
    d2 = {n: t.to(device) for n, t in d2.items()}
    z = torch.zeros(len(ys), len(xs), device=device)
    with torch.no_grad():
        for i, b in enumerate(ys):
            for j, a in enumerate(xs):
                for n, p in m.named_parameters():
                    p.copy_(theta[n] + float(a) * d1[n] + float(b) * d2[n])
                z[i, j] = bound(m(X), y)
    return z.cpu().numpy()


def package_plane(model, bound, X, y, steps: int, device) -> np.ndarray:
    """(b) loss_landscapes.random_plane with filter normalization: its own directions, the same work."""
    import loss_landscapes
    import loss_landscapes.metrics

    metric = loss_landscapes.metrics.Loss(bound, X, y)
    m = copy.deepcopy(model).to(device).eval()
    with torch.no_grad():
        return loss_landscapes.random_plane(m, metric, distance=1, steps=steps, normalization="filter")


def run_job(name, model, X, y, n_grid, device, repeats, engines, mode) -> dict[str, float]:
    """Best time of each method on one job; methods interleaved so background load hits them alike."""
    bound = losses.make("cross_entropy")
    Xd, yd = X.to(device), y.to(device)
    d1, d2 = landscape.random_direction(model, 0), landscape.random_direction(model, 1)
    xs = ys = np.linspace(-1, 1, n_grid)
    points = n_grid * n_grid
    flops = forward_flops(model, X) * len(X) * points
    methods: dict[str, Callable[[], object]] = {
        REF: lambda: reference_loop(model, bound, Xd, yd, d1, d2, xs, ys, device),
        LEAN: lambda: streamlined_loop(model, bound, Xd, yd, d1, d2, xs, ys, device),
        PKG: lambda: package_plane(model, bound, Xd, yd, n_grid, device),
    }
    for engine in engines:
        label = OURS + ("" if engine == "auto" else f" [{engine}]")
        methods[label] = lambda e=engine: (
            landscape.loss_surface(model, bound, X, y, d1, d2, xs, ys, device=device, engine=e).z
        )
    now = clock(mode)
    times: dict[str, float] = {k: float("inf") for k in methods}
    outputs: dict[str, object] = {}
    for _ in range(repeats):
        for label, fn in methods.items():
            sync(device)
            t = now()
            outputs[label] = fn()
            sync(device)
            times[label] = min(times[label], now() - t)
    print(
        f"\n== {name}: {len(X):,} samples x {n_grid}x{n_grid} = {points:,} points, {flops / 1e9:.1f} GFLOP =="
    )
    err = float(np.max(np.abs(np.asarray(outputs[OURS]) - outputs[REF])))
    print(f"   max |ours - reference| on the same directions: {err:.2e}")
    for label, t in times.items():
        print(f"   {label:<44} {t:8.3f} s  {flops / t / 1e9:7.1f} GFLOP/s  {points / t:9.0f} points/s")
    return times | {"_flops": flops}


REF, LEAN, PKG, OURS = (
    "(a) reference approach (loader, batch 128)",
    "(a') per-point loop, full batch",
    "(b) loss-landscapes random_plane",
    "(c) lossviz loss_surface",
)


def summary(mode: str, device: torch.device, peak: float, results: dict[str, dict[str, float]]) -> None:
    what = "wall clock" if mode == "wall" else "CPU time, 1 thread"
    print(f"\n== summary ({what}) ==")
    print(f"   float32 matmul yardstick: {peak:.1f} GFLOP/s on {device}")
    for job, times in results.items():
        flops = times.pop("_flops")
        ours, ref, lean, pkg = times[OURS], times[REF], times[LEAN], times[PKG]
        share = flops / ours / 1e9 / peak
        print(f"   {job}:")
        if device.type == "cuda":
            verdict = "MET" if ref / ours >= 30 else "NOT MET"
            print(f"      speed-up vs (a): {ref / ours:6.1f}x   (target >= 30x on a GPU: {verdict})")
            print(f"      speed-up vs (b): {pkg / ours:6.1f}x")
        else:
            for label, base in (("(a)", ref), ("(b)", pkg)):
                verdict = "MET" if base / ours >= 3 else "NOT MET"
                print(f"      speed-up vs {label}: {base / ours:6.2f}x   (target >= 3x: {verdict})")
            print(f"      speed-up vs (a'): {lean / ours:6.2f}x   (no target: the loop at its leanest)")
        verdict = "MET" if share >= 0.30 else "NOT MET"
        print(
            f"      useful throughput: {flops / ours / 1e9:.1f} GFLOP/s = {100 * share:.0f}% of matmul"
            f"   (target >= 30%: {verdict})"
        )
        for label, t in times.items():
            if label.startswith(OURS) and label != OURS:
                print(f"      {label}: {ours / t:5.2f}x the speed of auto")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--jobs", default="mlp,cnn")
    parser.add_argument("--engines", default="auto,stacked,vmap,loop", help="lossviz engines to time")
    parser.add_argument(
        "--modes", default="wall,cpu1", help="wall: wall clock, all threads; cpu1: CPU time with one thread"
    )
    parser.add_argument("--quick", action="store_true", help="small grids: a smoke test, not a measurement")
    args = parser.parse_args()
    device = torch.device(args.device)
    engines = [e for e in args.engines.split(",") if e]
    jobs = args.jobs.split(",")
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {platform.machine()}, device {device}, {threads} threads, "
        f"load average {os.getloadavg()[0]:.1f} (other processes on this machine skew wall-clock times)"
    )
    moons = make_dataset("moons", n=1000, seed=0)
    digits = make_dataset("digits", seed=0)
    for mode in args.modes.split(","):
        if mode not in ("wall", "cpu1"):
            raise ValueError(f"modes must be among 'wall', 'cpu1', got {mode!r}")
        if mode == "cpu1" and device.type != "cpu":
            continue
        torch.set_num_threads(1 if mode == "cpu1" else threads)
        title = f"wall clock, {threads} threads" if mode == "wall" else "CPU time, 1 thread"
        print(f"\n######## {title}")
        peak = matmul_gflops(device, args.repeats, mode)
        print(f"measured float32 matmul throughput: {peak:.1f} GFLOP/s")
        results = {}
        if "mlp" in jobs:
            # all 1,000 points, train and test
            X = torch.tensor(np.concatenate([moons.X_train, moons.X_test]), dtype=torch.float32)
            y = torch.tensor(np.concatenate([moons.y_train, moons.y_test]), dtype=torch.int64)
            model = MLP(2, 2)  # 2-64-64-2
            n_grid = 11 if args.quick else 51
            results["MLP 2-64-64-2, moons"] = run_job(
                "MLP 2-64-64-2 on moons", model, X, y, n_grid, device, args.repeats, engines, mode
            )
        if "cnn" in jobs:
            X = torch.tensor(digits.X_train, dtype=torch.float32)
            y = torch.tensor(digits.y_train, dtype=torch.int64)
            model = DigitsCNN(n_outputs=10, channels=16)
            n_grid = 5 if args.quick else 41
            results["digits CNN"] = run_job(
                "digits CNN (16/32 channels)", model, X, y, n_grid, device, args.repeats, engines, mode
            )
        summary(mode, device, peak, results)
    torch.set_num_threads(threads)


if __name__ == "__main__":
    main()
