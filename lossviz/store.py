"""The embedded result store: a directory holding an SQLite index (WAL) of jobs by digest and one npz of
arrays per finished job, written atomically. Several processes may read and write one store at once.

Layout: `index.sqlite` (tables meta and jobs) and `arrays/<digest>.npz`. A job is "done" only when its row
says so and its npz matches the size and SHA-256 recorded with it: a missing, truncated or corrupt file
makes the job pending again, so the next sweep recomputes it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import sqlite3
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lossviz.jobs import Job, JobResult, describe, varying_fields

SCHEMA = 1  # the store's layout; a store written with another version is refused, never migrated silently
Status = Literal["pending", "running", "done", "failed"]
STATUSES: tuple[str, ...] = ("pending", "running", "done", "failed")
MISSING = "missing"  # status() of a digest the store has never seen
INDEX = "index.sqlite"
_CHUNK = 500  # digests per IN (...) query: far below SQLite's variable limit on every version
_INHERITED: list[sqlite3.Connection] = []  # connections a forked child got from its parent (kept unclosed)
_CORRUPT = "the arrays file was missing or corrupt; it is recomputed by the next sweep"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    digest TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    loss TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    summary TEXT,
    arrays_sha256 TEXT,
    arrays_bytes INTEGER,
    seconds REAL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_updated ON jobs (updated_at);
"""


def default_path() -> Path:
    """$LOSSVIZ_STORE, else $XDG_CACHE_HOME/lossviz/store, else ~/.cache/lossviz/store."""
    if os.environ.get("LOSSVIZ_STORE"):
        return Path(os.environ["LOSSVIZ_STORE"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "lossviz" / "store"


@dataclass(frozen=True)
class StoredResult:
    """A finished job as stored: its spec, summary metrics and arrays (loaded)."""

    digest: str
    job: Job
    summary: dict[str, float]
    arrays: dict[str, np.ndarray]
    seconds: float
    finished_at: float  # Unix time


class Store:
    """A result store in a directory (created when missing); see the module docstring for the layout."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else default_path()
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"store: {self.path} exists and is not a directory")
        self.arrays_dir = self.path / "arrays"
        self.arrays_dir.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._initialise()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:  # a Store pickles as its path (connections stay behind)
        return {"path": str(self.path)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"])  # type: ignore[misc]

    # ------------------------------------------------------------------ connection

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use (again in a forked child, which must not use its
        parent's). Kept open: closing the last connection to a WAL database checkpoints it and deletes the
        WAL, which made every operation cost a disk sync when each one had its own connection."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            if getattr(local, "conn", None) is not None:
                _INHERITED.append(local.conn)  # the parent's: never closed here, never used
            local.conn = sqlite3.connect(self.path / INDEX, timeout=60.0, isolation_level=None)
            local.pid = os.getpid()
            local.conn.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable at checkpoints, never corrupt
        return local.conn

    @contextlib.contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection for one operation; writes take the write lock up front (BEGIN IMMEDIATE), so two
        writers queue instead of failing half-way (the timeout is how long one waits for the other)."""
        try:
            conn = self._connection()
            if write:
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if write and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            if write:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError):  # locked past the timeout, disk full: not our input
                raise
            raise ValueError(f"store: {self.path / INDEX} is not a usable lossviz index: {err}") from None

    def close(self) -> None:
        """Close this thread's connection (the next operation opens another)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn, self._local.pid = None, None

    def _initialise(self) -> None:
        with self._db() as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer; kept in the file
        with self._db(write=True) as conn:
            for statement in filter(str.strip, _TABLES.split(";")):  # (executescript would commit first)
                conn.execute(statement)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA),))
            found = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
        if found != str(SCHEMA):
            raise ValueError(
                f"store: {self.path} has schema version {found}, this lossviz reads version {SCHEMA}; "
                "point --store / LOSSVIZ_STORE at another directory, or delete this one"
            )

    # ------------------------------------------------------------------ writing

    def put(self, job: Job, result: JobResult) -> None:
        """Store a finished job: its arrays (atomically) and its summary; the job becomes "done"."""
        data = _npz_bytes(result.arrays)
        sha = hashlib.sha256(data).hexdigest()
        final = self._arrays_path(job.digest)
        tmp = self.arrays_dir / f".{job.digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        # no fsync: the rename makes the file visible whole or not at all to every process, and a file that
        # a power loss leaves damaged fails its checksum and is recomputed (a sync per job would cost more
        # than a tiny job itself)
        tmp.write_bytes(data)
        now = time.time()
        summary = {k: float(v) for k, v in result.summary.items()}
        try:
            # the rename happens under the index's write lock: of two processes storing the same job, the
            # one that renames last also writes the row last, so file and checksum always agree
            with self._db(write=True) as conn:
                os.replace(tmp, final)
                conn.execute(
                    """INSERT INTO jobs (digest, kind, loss, spec, status, message, summary, arrays_sha256,
                           arrays_bytes, seconds, created_at, finished_at, updated_at)
                       VALUES (?, ?, ?, ?, 'done', '', ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (digest) DO UPDATE SET status = 'done', message = '',
                           summary = excluded.summary, arrays_sha256 = excluded.arrays_sha256,
                           arrays_bytes = excluded.arrays_bytes, seconds = excluded.seconds,
                           finished_at = excluded.finished_at, updated_at = excluded.updated_at""",
                    (
                        job.digest,
                        job.kind,
                        job.loss.name,
                        job.to_json(),
                        json.dumps(summary),
                        sha,
                        len(data),
                        summary.get("seconds"),
                        now,
                        now,
                        now,
                    ),
                )
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def mark(self, job: Job, status: Status, message: str = "") -> None:
        """Record a job as pending, running or failed (a done job stays done: see put)."""
        self.mark_many([job], status, message)

    def mark_many(self, jobs: Iterable[Job], status: Status, message: str = "") -> None:
        """mark() for many jobs in one transaction."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
        if status == "done":
            raise ValueError("status 'done' is recorded by put(job, result), which stores the arrays with it")
        now = time.time()
        rows = [
            (j.digest, j.kind, j.loss.name, j.to_json(), status, str(message), now, now, now) for j in jobs
        ]
        with self._db(write=True) as conn:
            # the WHERE keeps a row that another process finished meanwhile from going back to pending
            conn.executemany(
                """INSERT INTO jobs (digest, kind, loss, spec, status, message, created_at, started_at,
                       updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (digest) DO UPDATE SET status = excluded.status, message = excluded.message,
                       started_at = CASE WHEN excluded.status = 'running' THEN excluded.started_at
                                         ELSE jobs.started_at END,
                       updated_at = excluded.updated_at
                   WHERE jobs.status != 'done'""",
                rows,
            )

    # ------------------------------------------------------------------ reading

    def get(self, digest: str) -> StoredResult | None:
        """The finished job with this digest, or None (not done, or its arrays file is missing or corrupt)."""
        found = self._load([digest])
        return found.get(digest)

    def results(self, jobs: Iterable[Job]) -> dict[str, StoredResult]:
        """The finished jobs among jobs, by digest (arrays loaded and verified)."""
        return self._load([j.digest for j in jobs])

    def done(self, digests: Iterable[str]) -> set[str]:
        """The digests that are done with a verified arrays file (what a sweep skips)."""
        done: set[str] = set()
        for row in self._rows(digests, "digest, arrays_sha256, arrays_bytes", done_only=True):
            if self._read_verified(*row) is not None:
                done.add(row[0])
        return done

    def status(self, digests: Iterable[str]) -> dict[str, str]:
        """Each digest's status: pending, running, done, failed, or "missing" when never seen.

        "done" is reported only when the arrays file is there at its recorded size (cheap; get() and a
        sweep also check its checksum).
        """
        digests = list(dict.fromkeys(digests))
        found = {d: MISSING for d in digests}
        for digest, status, size in self._rows(digests, "digest, status, arrays_bytes"):
            if status == "done" and _size(self._arrays_path(digest)) != size:
                status = "pending"
            found[digest] = status
        return found

    def failures(self, digests: Iterable[str]) -> dict[str, str]:
        """The message of each failed job among digests (why it could not run)."""
        rows = self._rows(digests, "digest, status, message")
        return {digest: message for digest, status, message in rows if status == "failed"}

    def summaries(self, jobs: Sequence[Job]) -> list[dict[str, Any]]:
        """One row per done job of jobs, in their order: digest, loss, the fields that vary among jobs
        (flattened: "data.label_noise", "seed", "loss.q", ...) and the summary metrics."""
        jobs = list(jobs)
        keys = ["loss", *[k for k in varying_fields(jobs) if k != "loss"]]
        summary = {
            d: json.loads(s)
            for d, s in self._rows([j.digest for j in jobs], "digest, summary", done_only=True)
        }
        rows = []
        for job in jobs:
            if job.digest in summary:
                rows.append({"digest": job.digest, **describe(job, keys), **summary[job.digest]})
        return rows

    def list(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The jobs in the store, most recently updated first (for `python -m lossviz status`)."""
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
        query = (
            "SELECT digest, kind, loss, status, message, summary, seconds, created_at, finished_at, "
            "updated_at FROM jobs ORDER BY updated_at DESC, digest"
        )
        with self._db() as conn:
            rows = conn.execute(query + (f" LIMIT {int(limit)}" if limit else "")).fetchall()
        names = ["digest", "kind", "loss", "status", "message", "summary", "seconds", "created_at"]
        names += ["finished_at", "updated_at"]
        out = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            item["summary"] = json.loads(item["summary"]) if item["summary"] else {}
            out.append(item)
        return out

    def counts(self) -> dict[str, int]:
        """How many jobs the store holds in each status."""
        with self._db() as conn:
            found = dict(conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        return {s: int(found.get(s, 0)) for s in STATUSES}

    # ------------------------------------------------------------------ internals

    def _arrays_path(self, digest: str) -> Path:
        if not (len(digest) == 16 and all(c in "0123456789abcdef" for c in digest)):
            raise ValueError(f"digest must be 16 lowercase hex digits, got {digest!r}")
        return self.arrays_dir / f"{digest}.npz"

    def _rows(self, digests: Iterable[str], columns: str, done_only: bool = False) -> list[tuple[Any, ...]]:
        digests = list(dict.fromkeys(digests))
        extra = " AND status = 'done'" if done_only else ""
        rows: list[tuple[Any, ...]] = []
        with self._db() as conn:
            for i in range(0, len(digests), _CHUNK):
                chunk = digests[i : i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                query = f"SELECT {columns} FROM jobs WHERE digest IN ({marks}){extra}"
                rows += conn.execute(query, chunk).fetchall()
        return rows

    def _read_verified(
        self, digest: str, sha: str | None, size: int | None, look_again: bool = True
    ) -> bytes | None:
        """The arrays file's bytes when they match the recorded size and checksum; else the job is made
        pending again (only if its row still records that checksum: another writer may have fixed it)."""
        try:
            data = self._arrays_path(digest).read_bytes()
        except OSError:
            data = None
        if data is not None and len(data) == size and hashlib.sha256(data).hexdigest() == sha:
            return data
        # a writer may have replaced file and row between our two reads: look once more before demoting
        (row,) = self._rows([digest], "arrays_sha256, arrays_bytes", True) or [(None, None)]
        if row != (sha, size):
            return self._read_verified(digest, *row, look_again=False) if look_again and row[0] else None
        with self._db(write=True) as conn:
            conn.execute(
                "UPDATE jobs SET status = 'pending', message = ?, updated_at = ? "
                "WHERE digest = ? AND status = 'done' AND arrays_sha256 IS ?",
                (_CORRUPT, time.time(), digest, sha),
            )
        return None

    def _load(self, digests: Sequence[str]) -> dict[str, StoredResult]:
        columns = "digest, spec, summary, arrays_sha256, arrays_bytes, seconds, finished_at"
        found: dict[str, StoredResult] = {}
        for digest, spec, summary, sha, size, seconds, finished in self._rows(digests, columns, True):
            data = self._read_verified(digest, sha, size)
            if data is None:
                continue
            try:
                with np.load(io.BytesIO(data), allow_pickle=False) as z:
                    arrays = {k: z[k] for k in z.files}
            except (ValueError, OSError, zipfile.BadZipFile):
                continue  # verified bytes that numpy cannot read: written by a broken writer; leave it
            found[digest] = StoredResult(
                digest=digest,
                job=Job.from_json(spec),
                summary=json.loads(summary),
                arrays=arrays,
                seconds=float(seconds) if seconds is not None else math.nan,
                finished_at=float(finished),
            )
        return {d: found[d] for d in digests if d in found}


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The arrays as the bytes of a compressed npz (object arrays refused: loading never unpickles)."""
    for name, value in arrays.items():
        if np.asarray(value).dtype == object:
            raise ValueError(f"arrays.{name}: object arrays cannot be stored, got {type(value).__name__}")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None
