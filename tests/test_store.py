"""lossviz.store: round trips, the index (WAL, schema version), atomic and verified arrays files, and two
processes writing one store at once. Results here are made up: these tests are about storing them."""

from __future__ import annotations

import multiprocessing
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lossviz import experiment as ex
from lossviz.jobs import Job, JobResult
from lossviz.store import INDEX, MISSING, SCHEMA, Store, default_path


def job(seed: int = 0, loss: str = "cross_entropy", noise: float = 0.0) -> Job:
    experiment = ex.Experiment.from_dict(
        {"data": {"n": 100, "seed": seed, "label_noise": noise}, "optim": {"epochs": 5}, "losses": [loss]}
    )
    return Job("train", experiment)


def result(k: float) -> JobResult:
    """A made-up result whose every value depends on k, so a mix-up between jobs shows."""
    return JobResult(
        summary={"test_acc": k / 100, "noisy_acc": float("nan"), "seconds": 0.5},
        arrays={
            "train_loss": np.linspace(1.0, k, 7),
            "train_predictions": np.full((3, 11), int(k), np.int16),
            "noisy_mask": np.arange(11) % 2 == 0,
        },
    )


def test_put_then_get_returns_what_was_stored(tmp_path):
    store = Store(tmp_path / "s")
    j = job()
    store.put(j, result(7))
    found = store.get(j.digest)
    assert found is not None and found.job == j and found.digest == j.digest
    assert found.summary["test_acc"] == 0.07 and np.isnan(found.summary["noisy_acc"])
    assert found.seconds == 0.5 and found.finished_at > 0
    expected = result(7).arrays
    assert set(found.arrays) == set(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(found.arrays[name], values)
        assert found.arrays[name].dtype == values.dtype
    assert store.status([j.digest, job(1).digest]) == {j.digest: "done", job(1).digest: MISSING}
    assert pickle.loads(pickle.dumps(store)).get(j.digest).summary == found.summary  # pickles as its path
    # atomic write: the final file and nothing else (no temporary left behind)
    assert sorted(p.name for p in (tmp_path / "s" / "arrays").iterdir()) == [f"{j.digest}.npz"]


def test_the_index_is_sqlite_in_wal_mode_with_a_schema_version(tmp_path):
    Store(tmp_path)
    conn = sqlite3.connect(tmp_path / INDEX)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0] == str(SCHEMA)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema'")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="schema version 999, this lossviz reads version 1"):
        Store(tmp_path)


def test_a_file_that_is_not_an_index_is_refused(tmp_path):
    (tmp_path / INDEX).write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a usable lossviz index"):
        Store(tmp_path)
    with pytest.raises(ValueError, match="not a directory"):
        Store(tmp_path / INDEX)


def test_default_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LOSSVIZ_STORE", str(tmp_path / "mine"))
    assert default_path() == tmp_path / "mine"
    monkeypatch.delenv("LOSSVIZ_STORE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_path() == tmp_path / "cache" / "lossviz" / "store"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_path() == Path.home() / ".cache" / "lossviz" / "store"


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_a_damaged_arrays_file_is_detected_and_the_job_made_pending(tmp_path, damage):
    store = Store(tmp_path)
    j = job()
    store.put(j, result(3))
    path = tmp_path / "arrays" / f"{j.digest}.npz"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, still a zip header: only the checksum can tell
        path.write_bytes(data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:])
    else:
        path.unlink()
    assert store.get(j.digest) is None
    assert store.done([j.digest]) == set()
    assert store.status([j.digest]) == {j.digest: "pending"}
    store.put(j, result(3))  # what the next sweep does
    assert store.get(j.digest) is not None


def test_mark_never_downgrades_a_done_job_and_checks_its_status(tmp_path):
    store = Store(tmp_path)
    a, b = job(0), job(1)
    store.put(a, result(1))
    store.mark_many([a, b], "pending")  # a concurrent sweep that saw neither done
    assert store.status([a.digest, b.digest]) == {a.digest: "done", b.digest: "pending"}
    store.mark(b, "failed", "it could not run")
    assert store.failures([a.digest, b.digest]) == {b.digest: "it could not run"}
    with pytest.raises(ValueError, match="status must be one of"):
        store.mark(b, "finished")
    with pytest.raises(ValueError, match=r"recorded by put\(job, result\)"):
        store.mark(b, "done")
    assert store.counts() == {"pending": 0, "running": 0, "done": 1, "failed": 1}


def test_summaries_flatten_the_fields_that_vary(tmp_path):
    store = Store(tmp_path)
    jobs = [job(seed, loss) for loss in ("cross_entropy", "focal") for seed in (0, 1)]
    for k, j in enumerate(jobs[:3]):
        store.put(j, result(k))
    rows = store.summaries(jobs)
    assert [(r["loss"], r["data.seed"], r["test_acc"]) for r in rows] == [
        ("cross_entropy", 0, 0.0),
        ("cross_entropy", 1, 0.01),
        ("focal", 0, 0.02),
    ]
    assert "loss.gamma" not in rows[2]  # only focal has gamma, at one value: it is not swept
    assert [r["digest"] for r in store.list(limit=2)] == [jobs[2].digest, jobs[1].digest]
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        store.list(limit=0)


def _writer(path: str, seeds: list[int], barrier) -> None:
    """Another process storing results: it shares nothing with the test but the directory."""
    store = Store(path)
    barrier.wait()
    for seed in seeds:
        store.put(job(seed), result(seed))
        store.mark(job(seed + 1000), "running")


def test_two_processes_writing_one_store_at_once(tmp_path):
    path = str(tmp_path / "shared")
    # fork where there is one: the writers start at once instead of importing torch again (they only
    # build job specs and write files); spawn elsewhere
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    barrier = context.Barrier(2)
    overlapping = [list(range(0, 40)), list(range(20, 60))]  # seeds 20..39 written by both
    writers = [context.Process(target=_writer, args=(path, seeds, barrier)) for seeds in overlapping]
    for w in writers:
        w.start()
    for w in writers:
        w.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    store = Store(path)
    jobs = [job(seed) for seed in range(60)]
    found = store.results(jobs)
    assert len(found) == 60
    for seed, j in enumerate(jobs):  # every job holds its own result, arrays verified
        assert found[j.digest].summary["test_acc"] == seed / 100
        np.testing.assert_array_equal(found[j.digest].arrays["train_loss"], np.linspace(1.0, seed, 7))
    assert store.counts() == {"pending": 0, "running": 60, "done": 60, "failed": 0}
    conn = sqlite3.connect(Path(path) / INDEX)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert not [p for p in (Path(path) / "arrays").iterdir() if p.suffix != ".npz"]
