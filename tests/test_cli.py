"""`python -m lossviz`: sweep (summary table, resume, Ctrl-C), landscape (HDF5 as the reference tool reads
it), status, and bad input reported as `error: ...` with exit status 2 and no traceback."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.func import functional_call

from lossviz import experiment as ex
from lossviz import planes
from lossviz.cli import TextBar, group_rows, main, summary_table
from lossviz.jobs import Job, Sweep
from lossviz.store import Store

ROOT = Path(__file__).resolve().parents[1]
TINY = {"data": {"n": 100}, "model": {"width": 8}, "optim": {"epochs": 20, "snapshots": 3}}


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def write(path: Path, spec: object) -> str:
    path.write_text(json.dumps(spec))
    return str(path)


def test_sweep_prints_a_table_grouped_over_seeds_and_reuses_the_store(tmp_path):
    spec = write(
        tmp_path / "s.json",
        {
            "base": TINY,
            "axes": {"data.label_noise": [0.0, 0.3], "loss": ["cross_entropy", "gce"], "seed": [0, 1]},
        },
    )
    store = str(tmp_path / "store")
    code, out, err = cli("sweep", spec, "--backend", "serial", "--store", store)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["loss", "data.label_noise", "seeds", "test_acc"]
    rows = [line.split() for line in lines[2:6]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("cross_entropy", "0", "2"),
        ("gce", "0", "2"),
        ("cross_entropy", "0.3", "2"),
        ("gce", "0.3", "2"),
    ]
    assert all("±" in line for line in lines[2:6]) and "over the 2 seeds" in lines[-1]
    assert "8 jobs: 8 computed, 0 reused" in err and "8/8 jobs" in err  # the bar's last line (not a tty)
    code, out_again, err = cli("sweep", spec, "--backend", "serial", "--store", store)
    assert code == 0 and "8 jobs: 0 computed, 8 reused" in err and out_again == out
    code, out, _ = cli("status", "--store", store, "--limit", "3")
    assert code == 0 and "8 jobs: 8 done" in out.splitlines()[0]
    assert len(out.splitlines()) == 1 + 1 + 3 + 1  # header line, column names, 3 rows, "the 3 most recent"


def test_the_table_shows_mean_and_sample_std_over_seeds():
    rows = [{"loss": "gce", "seed": s, "test_acc": v, "ece": e} for s, v, e in [(0, 0.8, 0.1), (1, 0.9, 0.3)]]
    rows.append({"loss": "cross_entropy", "seed": 0, "test_acc": 0.7, "ece": float("nan")})
    (gce, ce) = group_rows(rows, ["loss"], ["test_acc", "ece"])
    assert (gce["n"], gce["test_acc"]) == (2, pytest.approx(0.85))
    assert gce["test_acc.std"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert ce["ece.n"] == 0 and np.isnan(ce["ece"])
    table = summary_table(rows, ["loss"], "train")
    assert "0.850 ± 0.071" in table and "0.700" in table and "—" in table


def test_the_progress_bar_writes_a_line_per_tenth_off_a_terminal():
    stream = io.StringIO()
    bar = TextBar(20, stream=stream)
    job = Job("train", ex.Experiment.from_dict({**TINY, "losses": ["cross_entropy"]}))
    for done in range(1, 21):
        bar(done, 20, job, "failed" if done == 3 else "done")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # the first job (it started), then one line per tenth
    assert lines[0].startswith("[" + "#" * 2 + "." * 28 + "] 1/20 jobs, 0:00 elapsed, ~")
    assert lines[1].startswith("[" + "#" * 3 + "." * 27 + "] 2/20 jobs")
    assert lines[-1].startswith("[" + "#" * 30 + "] 20/20 jobs, 1 failed") and "left" not in lines[-1]


def test_a_bad_spec_names_the_field_and_exits_2(tmp_path):
    bad = write(tmp_path / "bad.json", {"base": TINY, "axes": {"data.labelnoise": [0, 0.2], "loss": ["gce"]}})
    code, out, err = cli("sweep", bad, "--store", str(tmp_path / "store"))
    assert code == 2 and out == ""
    assert err.startswith("error: axes.data.labelnoise: unknown field 'labelnoise' of data")
    assert "Traceback" not in err
    code, _, err = cli("sweep", str(tmp_path / "nowhere.json"))
    assert code == 2 and err.startswith("error: cannot read")
    (tmp_path / "broken.json").write_text("{")
    code, _, err = cli("landscape", str(tmp_path / "broken.json"))
    assert code == 2 and "is not valid JSON" in err
    bad = write(tmp_path / "land.json", {"experiment": {**TINY, "losses": ["gce", "focal"]}})
    code, _, err = cli("landscape", bad, "--store", str(tmp_path / "store"))
    assert code == 2 and err.startswith("error: experiment.losses: a job trains exactly one loss")
    with pytest.raises(SystemExit) as stopped:  # argparse's own errors: usage and status 2
        main(["sweep", bad, "--backend", "dask"], io.StringIO(), io.StringIO())
    assert stopped.value.code == 2


def test_landscape_writes_hdf5_that_the_reference_plotting_reads(tmp_path):
    spec = {"experiment": {**TINY, "losses": ["cross_entropy"]}, "options": {"grid": 5, "span": 0.5}}
    out_file = tmp_path / "surf.h5"
    store = str(tmp_path / "store")
    code, out, err = cli(
        "landscape", write(tmp_path / "l.json", spec), "--out", str(out_file), "--store", store
    )
    assert code == 0, err
    assert f"wrote {out_file}" in out and "stored in" in out
    with h5py.File(out_file, "r") as f:
        assert {"xcoordinates", "ycoordinates", "train_loss", "train_acc", "test_loss", "test_acc"} <= set(f)
        x, y = f["xcoordinates"][:], f["ycoordinates"][:]
        Z, acc = f["train_loss"][:], f["train_acc"][:]
        job = Job.from_json(f.attrs["lossviz_job"])
    assert Z.shape == (len(x), len(y)) == (5, 5)
    np.testing.assert_allclose(x, np.linspace(-0.5, 0.5, 5))
    # plot_2D.py: X, Y = np.meshgrid(x, y); contour(X, Y, Z): Z[i, j] must be the loss at (X[i, j], Y[i, j])
    X, Y = np.meshgrid(x, y)
    run = ex.run(job.experiment, job.loss, device="cpu")
    plane = planes.view_plane(run.model, run.history, "random", 0, 0.5)
    data = torch.as_tensor(run.dataset.X_train), torch.as_tensor(run.dataset.y_train)
    for i, j in [(0, 4), (3, 1)]:
        shifted = planes.shifted_state(run.model, plane, X[i, j], Y[i, j])
        with torch.no_grad():
            logits = functional_call(
                run.model, {k: torch.as_tensor(v) for k, v in shifted.items()}, (data[0],)
            )
        assert Z[i, j] == pytest.approx(torch.nn.functional.cross_entropy(logits, data[1]).item(), rel=1e-5)
    stored = Store(store).get(job.digest)
    np.testing.assert_allclose(acc, 100 * stored.arrays["train_acc"])  # percent, as the reference records
    code, out, _ = cli("landscape", str(tmp_path / "l.json"), "--out", str(out_file), "--store", store)
    assert code == 0 and "reused from" in out


def test_status_of_a_store_that_does_not_exist_creates_nothing(tmp_path):
    code, out, _ = cli("status", "--store", str(tmp_path / "none"))
    assert code == 0 and "no store at" in out and not (tmp_path / "none").exists()


def test_ctrl_c_stops_the_sweep_exits_130_and_the_same_command_resumes(tmp_path):
    spec = write(
        tmp_path / "s.json",
        {"base": {**TINY, "losses": ["cross_entropy"]}, "axes": {"seed": list(range(40))}},
    )
    store_dir = tmp_path / "store"
    command = [
        sys.executable,
        "-m",
        "lossviz",
        "sweep",
        spec,
        "--backend",
        "serial",
        "--store",
        str(store_dir),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        store = Store(store_dir)
        deadline = time.monotonic() + 120
        while store.counts()["done"] < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    counts = store.counts()
    assert counts["running"] == 0 and 1 <= counts["done"] < 40
    assert f"interrupted: {counts['done']} of 40 jobs are stored in {store_dir}" in err
    assert f"compute the other {40 - counts['done']}" in err
    code, _, err = cli("sweep", spec, "--backend", "serial", "--store", str(store_dir))
    assert code == 0 and f"40 jobs: {40 - counts['done']} computed, {counts['done']} reused" in err


def test_the_example_specs_are_valid():
    examples = ROOT / "assets" / "examples"
    sweep = Sweep.from_dict(json.loads((examples / "sweep_label_noise.json").read_text()))
    jobs = sweep.jobs()
    assert len(jobs) == 27 and {j.loss.name for j in jobs} == {"cross_entropy", "gce", "sce"}
    assert {j.experiment.data.label_noise for j in jobs} == {0.0, 0.2, 0.4}
    job = Job.from_dict({**json.loads((examples / "landscape.json").read_text()), "kind": "landscape"})
    assert dict(job.options)["grid"] == 31 and job.loss.name == "cross_entropy"
