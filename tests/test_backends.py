"""lossviz.backends: the same jobs give identical results on serial, processes and a real local Ray; a
stopped sweep resumes computing only the rest; a finished job is never computed twice; failures are stored."""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading

import numpy as np
import pytest
import ray

from lossviz import experiment as ex
from lossviz.backends import _delta, _full, _rebuild, run_sweep
from lossviz.jobs import Job, Sweep, deterministic
from lossviz.store import Store

BASE = ex.Experiment.from_dict(
    {"data": {"n": 200, "label_noise": 0.2}, "model": {"width": 8}, "optim": {"epochs": 30, "snapshots": 3}}
)
SWEEP = Sweep(BASE, (("loss", ["cross_entropy", "gce"]), ("seed", [0, 1])))


def results_of(store: Store, jobs: list[Job]) -> list[tuple[dict, dict]]:
    found = store.results(jobs)
    return [(deterministic(found[j.digest].summary), found[j.digest].arrays) for j in jobs]


def assert_identical(got: list[tuple[dict, dict]], expected: list[tuple[dict, dict]]) -> None:
    assert len(got) == len(expected)
    for (summary, arrays), (ref_summary, ref_arrays) in zip(got, expected, strict=True):
        np.testing.assert_equal(summary, ref_summary)  # exact, NaN equal to NaN
        assert set(arrays) == set(ref_arrays)
        for name in ref_arrays:
            np.testing.assert_array_equal(arrays[name], ref_arrays[name], err_msg=name)


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> list[tuple[dict, dict]]:
    """The reference: every job of SWEEP computed in this process."""
    store = Store(tmp_path_factory.mktemp("serial"))
    report = run_sweep(SWEEP, store, "serial")
    assert (report.total, report.computed, report.reused, report.failed) == (4, 4, 0, 0)
    return results_of(store, SWEEP.jobs())


def test_processes_give_the_same_results_as_serial(serial, tmp_path):
    store = Store(tmp_path)
    seen: list[tuple[int, int, str]] = []
    report = run_sweep(
        SWEEP, store, "processes", workers=2, progress=lambda d, t, j, s: seen.append((d, t, s))
    )
    assert report.computed == 4 and report.failed == 0
    assert [d for d, _, _ in seen] == [1, 2, 3, 4] and {(t, s) for _, t, s in seen} == {(4, "done")}
    assert_identical(results_of(store, SWEEP.jobs()), serial)


@pytest.fixture(scope="module")
def local_ray():
    """A real local Ray cluster of one CPU (Ray has no local mode any more), one per test process: each
    gets its own temp dir, so two pytest-xdist workers can start theirs at the same time. A short path:
    Ray's socket paths under it must stay within the OS's 107 characters."""
    temp = tempfile.mkdtemp(prefix="lvray", dir="/tmp" if sys.platform != "win32" else None)
    ray.init(
        address="local",
        num_cpus=1,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=temp,
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)


def test_ray_gives_the_same_results_as_serial(local_ray, serial, tmp_path):
    store = Store(tmp_path)
    jobs = SWEEP.jobs()[:2]
    report = run_sweep(jobs, store, "ray")
    assert (report.computed, report.failed) == (2, 0)
    assert local_ray.is_initialized()  # a cluster it did not start is left running
    assert_identical(results_of(store, jobs), serial[:2])


def test_ray_tasks_rebuild_each_job_from_the_shared_base_and_a_delta():
    sweep = Sweep(
        BASE,
        (("loss", ["cross_entropy", {"name": "focal", "params": {"gamma": 1}}]), ("data.views", [2, 3])),
        kind="landscape",
        options={"grid": 5},
    )
    jobs = sweep.jobs()
    base = _full(jobs[0].experiment)
    for job in jobs:
        delta = _delta(base, job)
        assert set(delta["changed"]) <= {"data.views"}  # only what differs travels
        assert Job.from_json(_rebuild(base, delta)) == job


def test_a_finished_job_is_never_computed_twice(tmp_path):
    store = Store(tmp_path)
    jobs = SWEEP.jobs()[:2]
    first = run_sweep(jobs, store, "serial")
    second = run_sweep(jobs, store, "serial")
    assert (first.computed, first.reused) == (2, 0)
    assert (second.total, second.computed, second.reused, second.cancelled) == (2, 0, 2, 0)


def test_a_sweep_interrupted_by_ctrl_c_resumes_with_the_rest(tmp_path):
    store = Store(tmp_path)
    jobs = SWEEP.jobs()

    def interrupt_after_two(done: int, total: int, job: Job, status: str) -> None:
        if done == 2:
            raise KeyboardInterrupt  # what Ctrl-C does to the calling thread

    with pytest.raises(KeyboardInterrupt):
        run_sweep(jobs, store, "serial", progress=interrupt_after_two)
    status = store.status(j.digest for j in jobs)
    assert list(status.values()) == ["done", "done", "pending", "pending"]
    again = run_sweep(jobs, store, "serial")
    assert (again.reused, again.computed) == (2, 2)


def test_a_cancelled_process_sweep_stops_leaves_the_store_consistent_and_resumes(serial, tmp_path):
    store = Store(tmp_path)
    jobs = SWEEP.jobs()
    cancel = threading.Event()
    report = run_sweep(jobs, store, "processes", workers=1, progress=lambda *_: cancel.set(), cancel=cancel)
    assert (report.computed, report.cancelled) == (1, 3)
    # the job in flight when cancel came was abandoned: pending, not running, never done
    assert sorted(store.status(j.digest for j in jobs).values()) == ["done", "pending", "pending", "pending"]
    assert store.counts()["running"] == 0
    again = run_sweep(jobs, store, "serial")
    assert (again.reused, again.computed, again.cancelled) == (1, 3, 0)
    assert_identical(results_of(store, jobs), serial)


def test_a_job_that_cannot_run_is_stored_as_failed_and_the_others_go_on(tmp_path):
    store = Store(tmp_path)
    sweep = Sweep(BASE, (("loss", ["squared", "cross_entropy"]),))  # squared is a regression loss
    statuses: list[str] = []
    report = run_sweep(sweep, store, "serial", progress=lambda d, t, j, s: statuses.append(s))
    assert (report.computed, report.failed, statuses) == (1, 1, ["failed", "done"])
    bad, good = sweep.jobs()
    assert "regression" in store.failures([bad.digest])[bad.digest]
    assert store.get(good.digest) is not None and store.get(bad.digest) is None


def test_bad_backends_and_missing_ray_are_named(tmp_path, monkeypatch):
    store = Store(tmp_path)
    with pytest.raises(ValueError, match="backend must be one of"):
        run_sweep(SWEEP, store, "dask")
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        run_sweep(SWEEP, store, "processes", workers=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ValueError, match=r"pip install -e \.\[ray\]"):
        run_sweep(SWEEP, store, "ray")
    assert store.counts()["running"] == 0
