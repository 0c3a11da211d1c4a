"""Time the Loss Shapes page's full recompute: every loss of a task, 2,000 points, values and gradients.

Batched (lossviz.shapes: one call per loss, the axis as a batch) against a naive per-point autograd loop, in
the same run. Target: under 50 ms for the multiclass set. Run: `python benchmarks/curves.py [--repeats 20]`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from lossviz import losses, shapes

TARGET_MS = 50.0


def batched_ms(task: str, points: int, repeats: int) -> float:
    """Median wall time of shapes.recompute_all (the page's recompute) in milliseconds."""
    shapes.recompute_all(task, points=points)  # warm up allocator and dispatch caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        shapes.recompute_all(task, points=points)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def naive_ms(task: str, points: int, n_classes: int = 3) -> float:
    """The same curves computed point by point: one forward and one autograd call per point and per loss."""
    axis = shapes.AXES[shapes.axes_for(task)[0]]
    x = torch.linspace(axis.low, axis.high, points, dtype=torch.float64)
    start = time.perf_counter()
    for name in losses.names(task):
        spec = losses.get(name)
        bound = spec.bind()
        for value in x:
            if task == "multiclass":
                margin = shapes.margin_from_probability(value[None], n_classes)
                pred = shapes.centred_logits(margin, n_classes).requires_grad_(True)  # (1, K)
                target = torch.zeros(1, dtype=torch.long)
                batch_pred, batch_target = pred, target
            else:
                pred = value[None].clone().requires_grad_(True)  # (1,)
                target = (
                    torch.ones(1, dtype=torch.float64)
                    if task == "binary"
                    else torch.zeros(1, dtype=torch.float64)
                )
                batch_pred, batch_target = pred, target
            if spec.batch and task == "binary":  # the balanced batch of equal margins, as the page shows it
                batch_pred = torch.cat([pred, -pred])
                batch_target = torch.tensor([1.0, 0.0], dtype=torch.float64)
            if spec.batch and task == "multiclass":
                idx = (torch.arange(n_classes)[None, :] - torch.arange(n_classes)[:, None]) % n_classes
                batch_pred, batch_target = pred[0][idx], torch.arange(n_classes)
            value_out = spec.fn(batch_pred, batch_target, **bound).sum()
            torch.autograd.grad(value_out, pred)
    return 1e3 * (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--naive-points", type=int, default=400, help="points the naive loop is timed on (scaled to --points)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, load {load}")
    print(
        f"full recompute: every registered loss of a task, {args.points} points, values + autograd gradients"
    )
    print(f"naive: forward + autograd per point and per loss, timed on {args.naive_points} points, scaled")
    header = f"{'task':<11} {'losses':>6} {'batched ms':>11} {'/ 50 ms':>8} {'naive ms':>10} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for task in shapes.SHAPE_TASKS:
        n_losses = len(losses.names(task))
        fast = batched_ms(task, args.points, args.repeats)
        slow = naive_ms(task, args.naive_points) * args.points / args.naive_points  # per full recompute
        ratio = fast / TARGET_MS
        print(f"{task:<11} {n_losses:>6} {fast:>11.1f} {ratio:>8.2f} {slow:>10.0f} {slow / fast:>7.0f}x")
    print(f"target: multiclass under {TARGET_MS:.0f} ms (ratio < 1)")


if __name__ == "__main__":
    main()
