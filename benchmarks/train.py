"""Time lossviz.train.fit and boundary.decision_surface against plain torch baselines in the same run.

Targets: MLP 2-64-64-2 on 1,000 training points (moons), full batch, 500 epochs under 1.5 s; a 200x200
decision surface under 50 ms. Run `python benchmarks/train.py [--threads N] [--repeats R]`: best-of-R times.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from lossviz.boundary import decision_surface
from lossviz.data import make_dataset
from lossviz.models import make_model
from lossviz.train import fit, predict_proba, with_state

EPOCHS = 500


def naive_loop(X: torch.Tensor, y: torch.Tensor) -> float:
    """The baseline: the same model and optimizer, a bare full-batch loop with no metrics or snapshots."""
    model = make_model("mlp", 2, 2, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = time.perf_counter()
    for _ in range(EPOCHS):
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(X), y).backward()
        opt.step()
    return time.perf_counter() - start


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = leave torch's default)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # 1,000 training points (and 1,000 test points, evaluated by fit every epoch)
    data = make_dataset("moons", n=2000, noise=0.2, seed=0, test_fraction=0.5)
    X = torch.as_tensor(data.X_train)
    y = torch.as_tensor(data.y_train)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{len(X)} training points, {len(data.X_test)} test points, {EPOCHS} epochs"
    )

    def run_fit() -> float:
        history = fit(
            make_model("mlp", 2, 2, seed=0), "cross_entropy", data, "adam", 1e-2, epochs=EPOCHS, device="cpu"
        )
        run_fit.history = history  # type: ignore[attr-defined]
        return history.seconds

    # interleave so that a noisy machine affects both sides alike
    naive, ours = [], []
    for _ in range(args.repeats):
        naive.append(naive_loop(X, y))
        ours.append(run_fit())
    t_naive, t_fit = min(naive), min(ours)
    print(f"fit, full batch, per-epoch metrics + 20 snapshots: {t_fit:.3f} s (target < 1.5 s)")
    print(f"naive torch loop (no metrics):                      {t_naive:.3f} s")
    print(f"ratio fit / naive:                                  {t_fit / t_naive:.2f}")
    history = run_fit.history  # type: ignore[attr-defined]
    print(f"final test accuracy {history.test_acc[-1]:.3f}")

    model = with_state(make_model("mlp", 2, 2, seed=0), history.final_state)
    grid = torch.randn(200 * 200, 2)

    def surface() -> float:
        start = time.perf_counter()
        decision_surface(lambda P: predict_proba(model, P, "multiclass"), data.X_train, resolution=200)
        return time.perf_counter() - start

    def bare_forward() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            torch.softmax(model(grid), 1).numpy()
        return time.perf_counter() - start

    s_ours, s_base = [], []
    for _ in range(args.repeats * 2):
        s_base.append(bare_forward())
        s_ours.append(surface())
    t_surface, t_base = min(s_ours), min(s_base)
    print(f"decision_surface 200x200:                           {1e3 * t_surface:.1f} ms (target < 50 ms)")
    print(f"bare forward + softmax of 40,000 points:            {1e3 * t_base:.1f} ms")
    print(f"ratio:                                              {t_surface / t_base:.2f}")


if __name__ == "__main__":
    main()
