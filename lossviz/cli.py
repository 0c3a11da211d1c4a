"""The command line: `python -m lossviz sweep SPEC.json`, `landscape SPEC.json` and `status`.

Sweeps run on a backend (lossviz.backends) into the result store (lossviz.store); a finished job is
never computed twice, so a sweep stopped with Ctrl-C resumes when the same command runs again.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from lossviz.backends import BACKENDS, run_sweep
from lossviz.jobs import Job, Sweep, varying_fields
from lossviz.store import INDEX, Store, default_path

INTERRUPTED = 130  # the shell's exit status for a process stopped by SIGINT
BAD_INPUT = 2  # argparse's status for a bad command line; a bad spec is one too
# the columns of the summary table, per kind of job (mean ± std over seeds)
METRICS = {
    "train": ("test_acc", "noisy_acc", "ece", "test_nll", "final_train_loss"),
    "landscape": ("test_acc", "train_loss_centre", "train_loss_mean", "train_loss_max"),
    "curvature": ("test_acc", "lambda_max", "lambda_max_vs_2_over_lr", "trace"),
}
SEED_KEYS = ("seed",)  # averaged over in the table: a "seed" axis repeats the same setting


class SpecError(ValueError):
    """A spec that cannot be read or is invalid (reported as `error: ...`, exit status 2)."""


# ----------------------------------------------------------------------------------------------- progress


class TextBar:
    """A plain progress bar on a stream: redrawn in place on a terminal, a line per tenth in a log."""

    def __init__(self, total: int, done: int = 0, stream: TextIO | None = None, width: int = 30) -> None:
        self.total, self.start_done, self.width = total, done, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.failed = 0
        self.started = time.monotonic()
        self.shown_tenth = -1
        self.drawn = False

    def __call__(self, done: int, total: int, job: Job, status: str) -> None:
        """A run_sweep progress callback."""
        self.total = total
        self.failed += status == "failed"
        self.draw(done)

    def line(self, done: int) -> str:
        filled = round(self.width * done / self.total) if self.total else self.width
        text = f"[{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} jobs"
        if self.failed:
            text += f", {self.failed} failed"
        elapsed = time.monotonic() - self.started
        text += f", {_clock(elapsed)} elapsed"
        computed = done - self.start_done
        if 0 < computed and done < self.total:
            text += f", ~{_clock(elapsed / computed * (self.total - done))} left"
        return text

    def draw(self, done: int) -> None:
        if self.tty:
            self.stream.write("\r" + self.line(done) + "  ")
            self.drawn = True
        else:
            tenth = 10 * done // self.total if self.total else 10
            if tenth == self.shown_tenth:
                return
            self.shown_tenth = tenth
            self.stream.write(self.line(done) + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the bar's line (a terminal's cursor is still on it)."""
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _clock(seconds: float) -> str:
    """m:ss, or h:mm:ss from an hour on."""
    whole = round(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"


# ----------------------------------------------------------------------------------------------- tables


def group_rows(
    rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metrics: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows grouped by keys (first-seen order): per metric the mean, sample std and count of its finite
    values across each group's rows (the seeds), under "<metric>", "<metric>.std", "<metric>.n"."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(json.dumps(row.get(k)) for k in keys), []).append(row)
    out = []
    for members in groups.values():
        item: dict[str, Any] = {k: members[0].get(k) for k in keys}
        item["n"] = len(members)
        for metric in metrics:
            values = [float(r[metric]) for r in members if metric in r and math.isfinite(float(r[metric]))]
            n = len(values)
            mean = sum(values) / n if n else math.nan
            var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else math.nan
            item[metric], item[f"{metric}.std"], item[f"{metric}.n"] = mean, math.sqrt(var), n
        item["diverged"] = sum(int(r.get("diverged", 0) or 0) for r in members)
        out.append(item)
    return out


def summary_table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], kind: str) -> str:
    """The sweep's results as a text table: one row per setting, mean ± std over seeds."""
    metrics = [m for m in METRICS[kind] if any(m in r for r in rows)]
    grouped = group_rows(rows, keys, metrics)
    seeds = max((g["n"] for g in grouped), default=1)
    header = [*keys, "seeds", *metrics]
    if any(g["diverged"] for g in grouped):
        header.append("diverged")
    body = []
    for g in grouped:
        cells = [_cell(g[k]) for k in keys] + [str(g["n"])]
        for m in metrics:
            mean, std, n = g[m], g[f"{m}.std"], g[f"{m}.n"]
            cells.append("—" if n == 0 else f"{mean:.3f}" if n == 1 else f"{mean:.3f} ± {std:.3f}")
        if "diverged" in header:
            cells.append(str(g["diverged"]))
        body.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    if seeds > 1:
        lines.append(f"(mean ± sample std over the {seeds} seeds of each setting)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# ----------------------------------------------------------------------------------------------- commands


def _read_json(path: str) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise SpecError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"{path} is not valid JSON: {err}") from None


def _open_store(path: str | None) -> Store:
    try:
        return Store(path)
    except ValueError as err:
        raise SpecError(str(err)) from None


def cmd_sweep(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    raw = _read_json(args.spec)
    try:
        sweep = Sweep.from_dict(raw)
        jobs = sweep.jobs()
    except ValueError as error:
        raise SpecError(str(error)) from None
    store = _open_store(args.store)
    digests = [j.digest for j in jobs]
    already = len(store.done(digests))
    err.write(f"{len(jobs)} jobs ({already} already in the store {store.path}), backend {args.backend}\n")
    bar = TextBar(len(jobs), already, err)
    try:
        report = run_sweep(
            jobs, store, args.backend, address=args.address, workers=args.workers, progress=bar
        )
    except KeyboardInterrupt:
        bar.finish()
        stored = sum(s == "done" for s in store.status(digests).values())
        err.write(
            f"interrupted: {stored} of {len(jobs)} jobs are stored in {store.path}; run the same command "
            f"again to compute the other {len(jobs) - stored}\n"
        )
        return INTERRUPTED
    except ValueError as error:  # the backend cannot start (Ray missing, a bad address)
        bar.finish()
        raise SpecError(str(error)) from None
    bar.finish()
    keys = ["loss", *[k for k in varying_fields(jobs) if k not in ("loss", *SEED_KEYS)]]
    rows = store.summaries(jobs)
    if rows:
        out.write(summary_table(rows, keys, sweep.kind) + "\n")
    failures = store.failures(digests)
    for job in jobs:
        if job.digest in failures:
            err.write(f"failed: {job.loss.name} [{job.digest}]: {failures[job.digest]}\n")
    err.write(
        f"{report.total} jobs: {report.computed} computed, {report.reused} reused from the store, "
        f"{report.failed} failed, in {report.seconds:.1f} s; results in {store.path}\n"
    )
    return 1 if report.failed else 0


def cmd_landscape(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from lossviz.export import write_landscape_h5

    raw = _read_json(args.spec)
    if not isinstance(raw, Mapping):
        raise SpecError(f"a landscape spec must be a JSON object, got {type(raw).__name__}")
    if raw.get("kind", "landscape") != "landscape":
        raise SpecError(f"kind: the landscape command computes landscape jobs, got {raw['kind']!r}")
    try:
        job = Job.from_dict({**raw, "kind": "landscape"})
    except ValueError as error:
        raise SpecError(str(error)) from None
    store = _open_store(args.store)
    reused = job.digest in store.done([job.digest])
    if not reused:
        err.write(f"computing the landscape of {job.loss.name} [{job.digest}]...\n")
    try:
        run_sweep([job], store, "serial")
    except KeyboardInterrupt:
        err.write("interrupted: nothing was stored; run the same command again\n")
        return INTERRUPTED
    found = store.get(job.digest)
    if found is None:
        message = store.failures([job.digest]).get(job.digest, "unknown reason")
        err.write(f"error: the landscape job failed: {message}\n")
        return 1
    target = Path(args.out) if args.out else Path(f"landscape-{job.loss.name}-{job.digest}.h5")
    try:
        write_landscape_h5(target, job, found.arrays)
    except ValueError as error:
        raise SpecError(str(error)) from None
    x = found.arrays["xcoordinates"]
    out.write(
        f"wrote {target}: train_loss{', train_acc' if 'train_acc' in found.arrays else ''}, test_loss on "
        f"{len(x)} x {len(x)} points over [{x[0]:g}, {x[-1]:g}]² "
        f"({'reused from' if reused else 'stored in'} {store.path})\n"
    )
    return 0


def cmd_status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    path = Path(args.store).expanduser() if args.store else default_path()
    if not (path / INDEX).exists():
        out.write(f"no store at {path} yet; `python -m lossviz sweep SPEC.json` creates it\n")
        return 0
    store = _open_store(str(path))
    counts = store.counts()
    total = sum(counts.values())
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    out.write(f"store {store.path}: {total} jobs{': ' + shown if shown else ''}\n")
    rows = store.list(limit=args.limit)
    if not rows:
        return 0
    header = ["digest", "kind", "loss", "status", "updated", "seconds", "test_acc", "message"]
    body = []
    for r in rows:
        test_acc = r["summary"].get("test_acc")
        body.append(
            [
                r["digest"],
                r["kind"],
                r["loss"],
                r["status"],
                time.strftime("%Y-%m-%d %H:%M", time.localtime(r["updated_at"])),
                "" if r["seconds"] is None else f"{r['seconds']:.2f}",
                "" if test_acc is None or not math.isfinite(test_acc) else f"{test_acc:.3f}",
                (r["message"][:60] + "…") if len(r["message"]) > 60 else r["message"],
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(header)]
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for row in body:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if args.limit and total > len(rows):
        out.write(f"(the {len(rows)} most recent of {total}; --limit 0 lists all)\n")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of `python -m lossviz`."""
    top = argparse.ArgumentParser(
        prog="python -m lossviz", description="Sweeps and offline jobs of lossviz, and their result store."
    )
    sub = top.add_subparsers(dest="command", required=True)
    store_help = f"the result store's directory (default: $LOSSVIZ_STORE, else {default_path()})"

    sweep = sub.add_parser(
        "sweep",
        help="run a sweep of experiments into the store",
        description="Run every job of a sweep spec that the store does not hold yet; print a summary table. "
        "Exit status 1 when some jobs failed, 130 when interrupted (run the command again to resume).",
    )
    sweep.add_argument("spec", help='a JSON file {"base": <experiment>, "axes": {name: [values]}, "kind"}')
    sweep.add_argument("--backend", choices=BACKENDS, default="processes", help="where jobs run")
    sweep.add_argument("--address", default=None, help="a Ray cluster to join (default: start a local one)")
    sweep.add_argument("--workers", type=int, default=None, help="processes or Ray CPUs (default: cores)")
    sweep.add_argument("--store", default=None, help=store_help)
    sweep.set_defaults(run=cmd_sweep)

    land = sub.add_parser(
        "landscape",
        help="compute a loss surface offline and write it as HDF5",
        description="Train the spec's one loss, evaluate its loss surface on a filter-normalized random "
        "plane, store it and write it as HDF5 with the reference tool's keys (xcoordinates, ycoordinates, "
        "train_loss, train_acc, test_loss, test_acc; accuracies in percent).",
    )
    land.add_argument("spec", help='a JSON file {"experiment": <experiment with one loss>, "options": {...}}')
    land.add_argument("--out", default=None, help="the HDF5 file (default: landscape-<loss>-<digest>.h5)")
    land.add_argument("--store", default=None, help=store_help)
    land.set_defaults(run=cmd_landscape)

    status = sub.add_parser("status", help="list what the store holds")
    status.add_argument("--store", default=None, help=store_help)
    status.add_argument("--limit", type=int, default=20, help="rows to list, most recent first (0: all)")
    status.set_defaults(run=cmd_status)
    return top


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 jobs failed, 2 bad input, 130 interrupted)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    args = parser().parse_args(argv)
    if getattr(args, "limit", None) is not None:
        if args.limit < 0:
            err.write(f"error: --limit must be >= 0, got {args.limit}\n")
            return BAD_INPUT
        args.limit = args.limit or None
    try:
        return int(args.run(args, out, err))
    except SpecError as error:
        err.write(f"error: {error}\n")
        return BAD_INPUT
    except KeyboardInterrupt:
        err.write("interrupted\n")
        return INTERRUPTED
