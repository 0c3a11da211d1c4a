"""Jobs per second of lossviz.backends (serial, processes, Ray) against run_job in a plain loop, in one run.

Each backend computes the same N tiny jobs (moons, 200 points, MLP width 8, 30 epochs, 3 snapshots) into a
fresh store. Reported per backend: wall time, jobs/s, the latency of the first result (pool or cluster
start-up plus one job), the steady rate after it, the overhead per job over the loop, and the driver's
CPU time per job (the part of a sweep that does not scale with workers: submitting, storing). Run
`python benchmarks/sweep.py [--jobs N]`; it prints the load average, which moves every figure on a shared
machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

from lossviz.backends import run_sweep
from lossviz.experiment import Experiment
from lossviz.jobs import Job, Sweep, run_job
from lossviz.store import Store

TINY = {"data": {"n": 200}, "model": {"width": 8}, "optim": {"epochs": 30, "snapshots": 3}}
# a job of assets/examples/sweep_label_noise.json: the size a real sweep has (400 points, 200 epochs)
EXAMPLE = {"data": {"n": 400, "label_noise": 0.2}, "optim": {"epochs": 200, "snapshots": 20}}


def tiny_jobs(n: int, offset: int = 0) -> list[Job]:
    """n distinct tiny jobs: two losses times n / 2 seeds (offset: seeds no earlier run has stored)."""
    base = Experiment.from_dict(TINY)
    seeds = list(range(offset, offset + (n + 1) // 2))
    return Sweep(base, (("seed", seeds), ("loss", ["cross_entropy", "gce"]))).jobs()[:n]


def load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


class Timer:
    """A progress callback recording when each job's result arrived."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.arrivals: list[float] = []

    def __call__(self, done: int, total: int, job: Job, status: str) -> None:
        assert status == "done", status
        self.arrivals.append(time.perf_counter() - self.start)


def measure(label: str, jobs: list[Job], backend: str, workers: int | None, loop_per_job: float) -> dict:
    store = Store(tempfile.mkdtemp(prefix="lvbench"))
    timer = Timer()
    cpu = time.process_time()  # this process only: the driver's share, the serial part of a sweep
    report = run_sweep(jobs, store, backend, workers=workers, progress=timer)  # type: ignore[arg-type]
    wall = time.perf_counter() - timer.start
    cpu = time.process_time() - cpu
    assert report.computed == len(jobs), report
    first, last = timer.arrivals[0], timer.arrivals[-1]
    steady = (len(jobs) - 1) / (last - first) if last > first else float("nan")
    return {
        "label": label,
        "wall": wall,
        "rate": len(jobs) / wall,
        "first": first,
        "steady": steady,
        # extra seconds per job over the loop, amortising start-up: what a sweep of this size pays
        "overhead": wall / len(jobs) - loop_per_job,
        # at the steady rate, per worker: what each further job costs beyond its own compute
        "steady_overhead": (workers or 1) / steady - loop_per_job if steady == steady else float("nan"),
        "driver_cpu": cpu / len(jobs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=16)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray rows (Ray not installed)")
    args = parser.parse_args()
    n = args.jobs
    print(f"{os.cpu_count()} cores, load average {load()} at the start, {n} tiny jobs per backend")

    warm = tiny_jobs(2, offset=10_000)
    for job in warm:  # the first fit of a process imports torch._dynamo (seconds): keep it out of the loop
        run_job(job)
    jobs = tiny_jobs(n)
    start = time.perf_counter()
    for job in jobs:
        run_job(job)
    loop = time.perf_counter() - start
    per_job = loop / n
    example = Job("train", Experiment.from_dict({**EXAMPLE, "losses": ["cross_entropy"]}))
    example_seconds = statistics.median(run_job(example).summary["seconds"] for _ in range(3))

    store = Store(tempfile.mkdtemp(prefix="lvbench"))
    result = run_job(jobs[0])
    puts = []
    for job in tiny_jobs(20, offset=20_000):
        t = time.perf_counter()
        store.put(job, result)
        puts.append(time.perf_counter() - t)

    rows = [measure("serial", jobs, "serial", None, per_job)]
    for workers in (1, 2):
        rows.append(measure(f"processes, {workers} worker(s)", jobs, "processes", workers, per_job))
    ray_init = {}
    if not args.no_ray:
        import ray

        for workers in (1, 2):
            t = time.perf_counter()
            ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False)
            ray_init[workers] = time.perf_counter() - t
            rows.append(measure(f"ray, {workers} worker(s)", jobs, "ray", None, per_job))
            ray.shutdown()

    print(f"run_job in a loop: {loop:.2f} s, {n / loop:.1f} jobs/s, {1e3 * per_job:.1f} ms per job")
    print(f"one job of the example sweep spec (400 points, 200 epochs): {example_seconds:.2f} s")
    print(f"store.put of one tiny job's result: median {1e3 * statistics.median(puts):.1f} ms")
    for workers, seconds in ray_init.items():
        print(f"ray.init(num_cpus={workers}): {seconds:.2f} s (not in the ray rows below)")
    print()
    header = ["backend", "wall s", "jobs/s", "vs loop", "1st result s", "steady jobs/s", "overhead ms/job"]
    header.append("driver CPU ms/job")
    print(" | ".join(header))
    for r in rows:
        cells = [
            r["label"],
            f"{r['wall']:.2f}",
            f"{r['rate']:.1f}",
            f"{r['rate'] * per_job:.2f}",
            f"{r['first']:.2f}",
            f"{r['steady']:.1f}",
            f"{1e3 * r['overhead']:.0f} (steady {1e3 * r['steady_overhead']:.0f})",
            f"{1e3 * r['driver_cpu']:.1f}",
        ]
        print(" | ".join(cells))
    by = {r["label"]: r for r in rows}
    for kind in ("processes", "ray"):
        one, two = by.get(f"{kind}, 1 worker(s)"), by.get(f"{kind}, 2 worker(s)")
        if one and two:
            print(f"{kind}: 2 workers / 1 worker steady rate = {two['steady'] / one['steady']:.2f}x")
    print(f"load average {load()} at the end")


if __name__ == "__main__":  # spawned pool workers import this file too
    main()
