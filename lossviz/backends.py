"""Run a sweep's jobs on a backend and write each result to the store as it finishes.

Backends: "serial" (this thread), "processes" (the default: a spawn-context process pool, one torch
thread per worker) and "ray" (ray.remote tasks on a local or existing cluster; `pip install -e .[ray]`).
A job already done in the store is never recomputed, so a sweep that was stopped resumes where it stopped.
"""

from __future__ import annotations

import concurrent.futures as futures
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol

from lossviz.experiment import Experiment
from lossviz.jobs import SECTIONS, Job, JobResult, Sweep, run_job
from lossviz.store import Store

Backend = Literal["serial", "processes", "ray"]
BACKENDS: tuple[str, ...] = ("serial", "processes", "ray")
# progress(done, total, job, status) after each job that finishes: done counts the reused jobs too;
# status is "done" or "failed"
SweepProgress = Callable[[int, int, Job, str], None]
POLL_SECONDS = 0.1  # how often a waiting sweep looks at its cancel event
RAY_RETRIES = 3  # times Ray reruns a task whose worker died (a job's own errors are never retried)
_INTERRUPTED = "interrupted before it finished; run the sweep again to compute it"


@dataclass(frozen=True)
class SweepReport:
    """What one run_sweep did: of total jobs, reused from the store, computed now, failed, left undone."""

    total: int
    reused: int
    computed: int
    failed: int
    cancelled: int  # jobs not run because cancel was set (they stay pending in the store)
    seconds: float


@dataclass(frozen=True)
class _Outcome:
    """A job's end as a worker reports it: its result, or the message of why it could not run."""

    result: JobResult | None
    message: str = ""


def _execute(spec: str, digest: str) -> _Outcome:
    """Run one job from its JSON spec (in whatever process the backend chose)."""
    try:
        job = Job.from_json(spec)
        if job.digest != digest:  # the spec means something else here (another lossviz version)
            return _Outcome(None, f"the job's digest is {job.digest} in this worker, {digest} in the sweep")
        return _Outcome(run_job(job))
    except Exception as err:  # a failed job is reported in the store; the sweep goes on
        text = str(err) if isinstance(err, ValueError) else f"{type(err).__name__}: {err}"
        return _Outcome(None, text)


class _Executor(Protocol):
    window: int  # jobs in flight at most: enough to keep every worker busy, few enough to cancel quickly

    def submit(self, job: Job) -> Any: ...

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, _Outcome]]: ...

    def close(self, in_flight: list[Any]) -> None: ...  # in_flight: handles abandoned unfinished


class _Serial:
    """Each job in the calling thread, when it is waited for."""

    window = 1

    def submit(self, job: Job) -> Any:
        return job

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, _Outcome]]:
        return [(handles[0], _execute(handles[0].to_json(), handles[0].digest))]

    def close(self, in_flight: list[Any]) -> None:
        pass


def _worker_init() -> None:
    """A pool worker: one torch thread (the pool fills the cores) and Ctrl-C left to the parent, which
    stops the workers itself (otherwise every worker prints its own KeyboardInterrupt traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)


class _Processes:
    """A spawn-context process pool (spawn: safe with torch and CUDA, same on every OS)."""

    def __init__(self, workers: int) -> None:
        self.workers, self.window = workers, 2 * workers
        self.pool = self._new_pool()

    def _new_pool(self) -> futures.ProcessPoolExecutor:
        return futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init
        )

    def submit(self, job: Job) -> Any:
        try:
            return self.pool.submit(_execute, job.to_json(), job.digest)
        except futures.process.BrokenProcessPool:  # a worker died: its jobs failed, the others go on
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()
            return self.pool.submit(_execute, job.to_json(), job.digest)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, _Outcome]]:
        finished, _ = futures.wait(handles, timeout=timeout, return_when=futures.FIRST_COMPLETED)
        out = []
        for future in finished:
            try:
                out.append((future, future.result()))
            except Exception as err:  # BrokenProcessPool: the worker died (killed, out of memory)
                out.append((future, _Outcome(None, f"the worker process died: {type(err).__name__}: {err}")))
        return out

    def close(self, in_flight: list[Any]) -> None:
        if not in_flight:
            self.pool.shutdown(wait=True)
            return
        # jobs in flight are abandoned, not awaited: stop their workers now
        terminate = getattr(self.pool, "terminate_workers", None)  # Python >= 3.14 (shuts down too)
        if terminate is not None:
            terminate()
            return
        workers = list((getattr(self.pool, "_processes", None) or {}).values())  # before shutdown drops it
        self.pool.shutdown(wait=False, cancel_futures=True)
        for process in workers:
            process.terminate()
        for process in workers:
            process.join(timeout=10)


# ----------------------------------------------------------------------------------------------- ray


def _full(experiment: Experiment) -> dict[str, dict[str, Any]]:
    return {
        s: {f.name: getattr(getattr(experiment, s), f.name) for f in fields(SECTIONS[s])} for s in SECTIONS
    }


def _delta(base: Mapping[str, dict[str, Any]], job: Job) -> dict[str, Any]:
    """What a job changes in the base experiment (a few fields), so that each Ray task ships only that."""
    changed = {
        f"{s}.{k}": v
        for s, values in _full(job.experiment).items()
        for k, v in values.items()
        if base[s][k] != v
    }
    loss = {"name": job.loss.name, "params": dict(job.loss.params)}
    return {"kind": job.kind, "options": dict(job.options), "loss": loss, "changed": changed}


def _rebuild(base: Mapping[str, dict[str, Any]], delta: Mapping[str, Any]) -> str:
    """The JSON spec of the job that delta describes on base (the inverse of _delta)."""
    experiment: dict[str, Any] = {s: dict(v) for s, v in base.items()}
    for name, value in delta["changed"].items():
        section, key = name.split(".", 1)
        experiment[section][key] = value
    experiment["losses"] = [delta["loss"]]
    return json.dumps({"kind": delta["kind"], "experiment": experiment, "options": delta["options"]})


def _execute_delta(base: Mapping[str, dict[str, Any]], delta: Mapping[str, Any], digest: str) -> _Outcome:
    """A Ray task: the job rebuilt from the shared base experiment and its delta, then run."""
    return _execute(_rebuild(base, delta), digest)


class _Ray:
    """Ray tasks; the base experiment is put in the object store once and every task gets its delta."""

    def __init__(self, jobs: list[Job], address: str | None, workers: int | None) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError("backend 'ray' needs Ray: pip install -e .[ray]") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            options: dict[str, Any] = dict(
                include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
            )
            if address is None:  # "local" starts a fresh cluster even when RAY_ADDRESS or `ray start` exists
                with _sigint_ignored_by_children():
                    ray.init(address="local", num_cpus=workers or _cores(), **options)
            else:
                ray.init(address=address, **options)
        resources = ray.cluster_resources()
        cpus = max(1, int(resources.get("CPU", 1)))
        gpus = float(resources.get("GPU", 0.0))
        # every CPU slot may run a task; with GPUs present the tasks share them (Ray sets each task's
        # CUDA_VISIBLE_DEVICES, so device=None in run_job picks the GPU it was given)
        self.num_gpus = min(1.0, int(gpus / cpus * 1e4) / 1e4) if gpus else 0.0
        # workers caps the tasks in flight on a cluster shared with others; else keep every CPU busy
        self.window = workers if workers else 2 * cpus
        base = _full(jobs[0].experiment)
        self.base_ref = ray.put(base)
        self.base = base
        # max_calls=0: a worker runs any number of tasks (Ray's default for GPU tasks is one per worker
        # process, which would pay torch's import, seconds, for every job)
        remote = ray.remote(max_retries=RAY_RETRIES, retry_exceptions=False, max_calls=0)
        self.task = remote(_execute_delta).options(num_cpus=1, num_gpus=self.num_gpus)

    def submit(self, job: Job) -> Any:
        return self.task.remote(self.base_ref, _delta(self.base, job), job.digest)

    def wait(self, handles: list[Any], timeout: float) -> list[tuple[Any, _Outcome]]:
        ready, rest = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if ready and rest:  # collect whatever else has finished too
            more, _ = self.ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        out = []
        for ref in ready:
            try:
                out.append((ref, self.ray.get(ref)))
            except Exception as err:  # the worker died more than RAY_RETRIES times, or the task was lost
                out.append((ref, _Outcome(None, f"the Ray task failed: {type(err).__name__}: {err}")))
        return out

    def close(self, in_flight: list[Any]) -> None:
        for ref in in_flight:
            self.ray.cancel(ref, force=True)
        if self.started:
            self.ray.shutdown()


@contextlib.contextmanager
def _sigint_ignored_by_children() -> Iterator[None]:
    """SIGINT ignored while the local Ray cluster's processes start, so they inherit that.

    Why: Ctrl-C signals the terminal's whole process group, which holds the cluster that ray.init started;
    a raylet killed before the driver handles its KeyboardInterrupt aborts the driver, leaving the sweep's
    last jobs "running". Ignoring it there lets the driver stop the cluster itself. Only the main thread
    can change signal handlers (a Streamlit script thread cannot and has no terminal anyway).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _cores() -> int:
    """Cores this process may use (the affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _make_executor(backend: str, jobs: list[Job], address: str | None, workers: int | None) -> _Executor:
    if backend == "serial":
        return _Serial()
    if backend == "processes":
        return _Processes(min(workers or _cores(), len(jobs)))
    return _Ray(jobs, address, workers)


# ----------------------------------------------------------------------------------------------- sweeps


def _jobs_of(jobs_or_sweep: Sweep | Job | Iterable[Job]) -> list[Job]:
    if isinstance(jobs_or_sweep, Sweep):
        return jobs_or_sweep.jobs()
    items = [jobs_or_sweep] if isinstance(jobs_or_sweep, Job) else list(jobs_or_sweep)
    for i, job in enumerate(items):
        if not isinstance(job, Job):
            raise ValueError(f"jobs[{i}] must be a Job, got {type(job).__name__}")
    return list({j.digest: j for j in reversed(items)}.values())[::-1]  # duplicates once, first order kept


def run_sweep(
    jobs_or_sweep: Sweep | Job | Iterable[Job],
    store: Store,
    backend: Backend = "processes",
    *,
    address: str | None = None,
    workers: int | None = None,
    progress: SweepProgress | None = None,
    cancel: threading.Event | None = None,
) -> SweepReport:
    """Compute the jobs not yet done in store on backend, storing each as it finishes.

    workers: pool size (default: the cores here; for Ray, the cluster's CPUs). address: a Ray cluster to
    join ("auto", "ray://host:10001"); None starts a local one. Stops early when cancel is set: jobs in
    flight are abandoned and, like every job not run, stay pending. KeyboardInterrupt does the same, then
    propagates. A job that fails (a ValueError such as a loss that does not fit the data) is marked failed
    with its message; the other jobs go on.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers must be a positive integer or None, got {workers!r}")
    start = time.perf_counter()
    jobs = _jobs_of(jobs_or_sweep)
    done_before = store.done(j.digest for j in jobs)
    todo = [j for j in jobs if j.digest not in done_before]
    counts = {"computed": 0, "failed": 0}

    def report() -> SweepReport:
        finished = len(done_before) + counts["computed"] + counts["failed"]
        return SweepReport(
            total=len(jobs),
            reused=len(done_before),
            computed=counts["computed"],
            failed=counts["failed"],
            cancelled=len(jobs) - finished,
            seconds=time.perf_counter() - start,
        )

    if not todo or (cancel is not None and cancel.is_set()):
        return report()
    store.mark_many(todo, "pending")
    executor = _make_executor(backend, todo, address, workers)
    queue = iter(todo)
    in_flight: dict[Any, Job] = {}
    try:
        while True:
            while not _is_set(cancel) and len(in_flight) < executor.window:
                job = next(queue, None)
                if job is None:
                    break
                in_flight[executor.submit(job)] = job  # before marking it: an interrupt finds it in flight
                store.mark(job, "running")
            if not in_flight or _is_set(cancel):
                break
            for handle, outcome in executor.wait(list(in_flight), POLL_SECONDS):
                job = in_flight[handle]  # still in flight until stored: an interrupt here finds it
                if outcome.result is not None:
                    store.put(job, outcome.result)
                    counts["computed"] += 1
                else:
                    store.mark(job, "failed", outcome.message)
                    counts["failed"] += 1
                del in_flight[handle]
                if progress is not None:
                    done = len(done_before) + counts["computed"] + counts["failed"]
                    progress(done, len(jobs), job, "done" if outcome.result is not None else "failed")
    finally:
        if in_flight:  # first: the store is right even if closing the backend is interrupted too
            store.mark_many(in_flight.values(), "pending", _INTERRUPTED)
        executor.close(list(in_flight))
    return report()


def _is_set(cancel: threading.Event | None) -> bool:
    return cancel is not None and cancel.is_set()
