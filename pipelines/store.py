"""The run store: one SQLite file (WAL mode) in the workspace holding runs, their metrics and artifacts.

Training processes write it and the UI only reads it, so runs started anywhere (the app's child processes, a
terminal, `accelerate launch`) show up alike. Each thread gets its own connection. Reading a 'running' run checks
that its process still lives (one /proc read), so a run killed with -9 shows as interrupted to any reader.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from .rows import STATUSES, UNREADABLE, readable

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    family TEXT NOT NULL,
    dataset TEXT NOT NULL,
    resolution INTEGER NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    folder TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    heartbeat_at REAL,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    best_metric TEXT,
    best_value REAL,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    pid INTEGER,
    warning TEXT,
    phase TEXT,
    pid_start INTEGER,
    phase_done INTEGER,
    phase_total INTEGER,
    end_reason TEXT,
    budget_ends_at REAL,
    sweep TEXT,
    earlier_seconds REAL
);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    keys TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch REAL NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics(run_id, name, step);
CREATE INDEX IF NOT EXISTS metrics_by_step ON metrics(run_id, step);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch REAL NOT NULL,
    kind TEXT NOT NULL,
    checkpoint TEXT,
    split TEXT NOT NULL,
    extractor TEXT NOT NULL,
    num_samples INTEGER NOT NULL,
    num_real INTEGER NOT NULL,
    fd REAL NOT NULL,
    kid REAL NOT NULL,
    kid_std REAL NOT NULL,
    seconds REAL NOT NULL,
    time REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    step INTEGER NOT NULL,
    time REAL NOT NULL
);
"""

EVALUATION_FIELDS = ("step", "epoch", "kind", "checkpoint", "split", "extractor", "num_samples", "num_real", "fd", "kid",
                     "kid_std", "seconds")
RUN_FIELDS = ("family", "dataset", "resolution", "status", "config", "folder", "started_at", "ended_at", "heartbeat_at",
              "step", "total_steps", "epoch", "best_metric", "best_value", "error", "stop_requested", "pid", "warning", "phase", "pid_start",
              "phase_done", "phase_total", "end_reason", "budget_ends_at", "sweep", "earlier_seconds")


class RunStore:
    FILENAME = "runs.sqlite"

    def __init__(self, workspace: str | Path):
        self.workspace = Path(workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.path = self.workspace / self.FILENAME
        self._local = threading.local()
        with self._conn() as conn:
            conn.executescript(SCHEMA)
            # Stores made before a column existed get it (SQLite adds columns in place).
            have = {r["name"] for r in conn.execute("PRAGMA table_info(runs)")}
            # phase: what a run does outside its steps ("preparing data", "final evaluation"), phase_done/phase_total its
            # counts; pid_start: see process_start(); end_reason: why training ended (the loop's stop reason, or "epochs");
            # budget_ends_at: when the time budget of this start or resume runs out (the whole run's, evaluations included);
            # sweep: the name of the sweep (grid of runs) a run belongs to, if any; earlier_seconds: how long the run
            # trained before its latest start (its earlier starts and resumes; see run_seconds)
            for column, kind in (("warning", "TEXT"), ("phase", "TEXT"), ("pid_start", "INTEGER"), ("phase_done", "INTEGER"),
                                 ("phase_total", "INTEGER"), ("end_reason", "TEXT"), ("budget_ends_at", "REAL"),
                                 ("sweep", "TEXT"), ("earlier_seconds", "REAL")):
                if column not in have:
                    conn.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    def _run_id(self, name: str) -> int:
        row = self._conn().execute("SELECT id FROM runs WHERE name=?", (name,)).fetchone()
        if row is None:
            raise KeyError(f"no run named {name!r} in {self.path}")
        return row["id"]

    # Runs -------------------------------------------------------------------------------------------

    def unique_name(self, base: str) -> str:
        """`base`, or `base-2`, `base-3`... whichever is free in the store and on disk."""
        name, n = base, 1
        while self.exists(name) or (self.workspace / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def exists(self, name: str) -> bool:
        return self._conn().execute("SELECT 1 FROM runs WHERE name=?", (name,)).fetchone() is not None

    def create_run(self, name: str, family: str, dataset: str, resolution: int, config: str, folder: str,
                   status: str = "queued") -> None:
        self._conn().execute(
            "INSERT INTO runs (name, family, dataset, resolution, status, config, folder, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (name, family, dataset, resolution, status, config, folder, time.time()))

    def update_run(self, name: str, **fields) -> None:
        bad = set(fields) - set(RUN_FIELDS)
        if bad:
            raise ValueError(f"unknown run fields: {sorted(bad)}")
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        if fields.get("pid") and "pid_start" not in fields:  # a pid names a process only with its start time
            fields["pid_start"] = process_start(fields["pid"])
        cols = ", ".join(f"{k}=?" for k in fields)
        self._conn().execute(f"UPDATE runs SET {cols} WHERE name=?", (*fields.values(), name))

    def get_run(self, name: str) -> dict:
        row = self._conn().execute("SELECT * FROM runs WHERE name=?", (name,)).fetchone()
        if row is None:
            raise KeyError(f"no run named {name!r} in {self.path}")
        return self._checked(dict(row))

    def list_runs(self, fields: tuple[str, ...] | None = None) -> list[dict]:
        """Every run, newest first; `fields` picks columns (a poller need not read each run's config)."""
        cols = "*" if fields is None else ", ".join(dict.fromkeys(("id", "name", "status", "pid", "pid_start", "error", *fields)))
        return [self._checked(dict(r)) for r in self._conn().execute(f"SELECT {cols} FROM runs ORDER BY created_at DESC")]

    def _checked(self, row: dict) -> dict:
        """A 'running' row whose process is gone becomes 'interrupted' (in the store too); a row that does not read
        (a step of "lots") is 'unreadable', with why (see rows.py)."""
        row = readable(row)
        if row["status"] == "running" and row["pid"] and not process_alive(row["pid"], row["pid_start"]):
            error = row["error"] or f"the training process (pid {row['pid']}) ended without finishing"
            cur = self._conn().execute("UPDATE runs SET status='interrupted', error=? WHERE id=? AND status='running' "
                                       "AND pid=?", (error, row["id"], row["pid"]))
            if cur.rowcount:
                row.update(status="interrupted", error=error)
        return row

    def heartbeat(self, name: str, step: int, epoch: int) -> None:
        """Record liveness and progress."""
        self._conn().execute("UPDATE runs SET heartbeat_at=?, step=?, epoch=? WHERE name=?", (time.time(), step, epoch, name))

    def set_phase(self, name: str, phase: str | None, done: int | None = None, total: int | None = None) -> None:
        """What the run does besides training steps (None: just training); `done` of `total` for a phase that stands
        instead of training (preparing data, the final evaluation): progress bars follow those."""
        self._conn().execute("UPDATE runs SET phase=?, phase_done=?, phase_total=?, heartbeat_at=? WHERE name=?",
                             (phase, done, total, time.time(), name))

    def stop_requested(self, name: str) -> bool:
        row = self._conn().execute("SELECT stop_requested FROM runs WHERE name=?", (name,)).fetchone()
        return bool(row and row[0])

    def request_stop(self, name: str) -> None:
        self._run_id(name)
        self._conn().execute("UPDATE runs SET stop_requested=1 WHERE name=?", (name,))

    def mark_interrupted(self, stale_seconds: float = 60.0) -> list[str]:
        """Runs still 'running' whose process is gone become 'interrupted': its pid is dead or, for a run
        without a pid, its heartbeat stopped long ago. (A live process may be silent for long: loading a
        dataset, writing a checkpoint.)"""
        cutoff = time.time() - stale_seconds
        conn = self._conn()
        rows = conn.execute("SELECT name, pid, pid_start, heartbeat_at, started_at, created_at FROM runs WHERE status='running'")
        checked = [readable(dict(r)) for r in rows]  # a row that does not read stays as it is
        names = [r["name"] for r in checked if r.get("status") != UNREADABLE and _gone(r, cutoff)]
        for name in names:
            conn.execute("UPDATE runs SET status='interrupted', error=COALESCE(error, 'the training process ended without finishing') "
                         "WHERE name=? AND status='running'", (name,))
        return names

    def transition(self, name: str, before: tuple[str, ...], after: str, **fields) -> bool:
        """Set the status to `after` (and `fields`) only if it is one of `before` (one statement: no race with other
        threads or processes)."""
        if set(fields) - set(RUN_FIELDS):
            raise ValueError(f"unknown run fields: {sorted(set(fields) - set(RUN_FIELDS))}")
        marks, cols = ",".join("?" * len(before)), "".join(f", {k}=?" for k in fields)
        cur = self._conn().execute(f"UPDATE runs SET status=?{cols} WHERE name=? AND status IN ({marks})",
                                   (after, *fields.values(), name, *before))
        return cur.rowcount == 1

    def delete_run(self, name: str) -> None:
        self._conn().execute("DELETE FROM runs WHERE id=?", (self._run_id(name),))

    # Sweeps: grids of runs ---------------------------------------------------------------------------

    def create_sweep(self, name: str, keys: list[str]) -> None:
        """A sweep over the dotted config `keys` (its runs carry its name in their `sweep` column)."""
        self._conn().execute("INSERT INTO sweeps (name, keys, created_at) VALUES (?,?,?)", (name, json.dumps(keys), time.time()))

    def sweep_exists(self, name: str) -> bool:
        return self._conn().execute("SELECT 1 FROM sweeps WHERE name=?", (name,)).fetchone() is not None

    def sweep_keys(self, name: str) -> list[str]:
        row = self._conn().execute("SELECT keys FROM sweeps WHERE name=?", (name,)).fetchone()
        return json.loads(row["keys"]) if row else []

    def sweeps(self) -> list[str]:
        """Sweeps that still have runs, newest first."""
        rows = self._conn().execute("SELECT s.name FROM sweeps s WHERE EXISTS (SELECT 1 FROM runs r WHERE r.sweep=s.name) "
                                    "ORDER BY s.created_at DESC")
        return [r["name"] for r in rows]

    def sweep_runs(self, name: str) -> list[str]:
        """The names of a sweep's runs, in the order they were queued."""
        return [r["name"] for r in self._conn().execute("SELECT name FROM runs WHERE sweep=? ORDER BY id", (name,))]

    # Metrics and artifacts --------------------------------------------------------------------------

    def log_metrics(self, name: str, step: int, epoch: float, values: dict[str, float]) -> None:
        run_id, now = self._run_id(name), time.time()
        self._conn().executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)",
                                 [(run_id, step, epoch, k, float(v), now) for k, v in values.items()])

    def metrics(self, name: str, names: list[str] | None = None, since_step: int = -1) -> list[dict]:
        sql, args = "SELECT step, epoch, name, value, time FROM metrics WHERE run_id=? AND step>?", [self._run_id(name), since_step]
        if names:
            sql += f" AND name IN ({','.join('?' * len(names))})"
            args += names
        return [dict(r) for r in self._conn().execute(sql + " ORDER BY step, rowid", args)]

    def last_metrics(self, name: str, metric: str, n: int) -> list[dict]:
        """The newest n values of one metric, oldest first (the UI polls this every few seconds)."""
        rows = self._conn().execute("SELECT step, epoch, name, value, time FROM metrics WHERE run_id=? AND name=? "
                                    "ORDER BY step DESC, rowid DESC LIMIT ?", (self._run_id(name), metric, n))
        return [dict(r) for r in rows][::-1]

    def log_evaluation(self, name: str, **values) -> None:
        """One FID/KID evaluation; `kind` is "training" (periodic) or "final" (held-out split, a checkpoint)."""
        if set(values) != set(EVALUATION_FIELDS):
            raise ValueError(f"an evaluation needs exactly {EVALUATION_FIELDS}")
        cols = ", ".join(("run_id", *EVALUATION_FIELDS, "time"))
        self._conn().execute(f"INSERT INTO evaluations ({cols}) VALUES ({','.join('?' * (len(EVALUATION_FIELDS) + 2))})",
                             (self._run_id(name), *(values[k] for k in EVALUATION_FIELDS), time.time()))

    def evaluations(self, name: str, kind: str | None = None) -> list[dict]:
        sql, args = "SELECT rowid AS id, * FROM evaluations WHERE run_id=?", [self._run_id(name)]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        return [dict(r) for r in self._conn().execute(sql + " ORDER BY step, rowid", args)]

    def truncate_after(self, name: str, step: int) -> None:
        """Drop metrics, evaluations and artifacts recorded after the checkpoint a run resumes from: it
        records them again."""
        run_id = self._run_id(name)
        for table in ("metrics", "evaluations", "artifacts"):
            self._conn().execute(f"DELETE FROM {table} WHERE run_id=? AND step>?", (run_id, step))

    def import_history(self, name: str, metrics=(), evaluations=(), artifacts=()) -> None:
        """Rows of a run brought from elsewhere, with their own times (portable runs): metrics as (step, epoch, name,
        value, time), evaluations as EVALUATION_FIELDS + time, artifacts as (kind, path, step, time)."""
        run_id, conn = self._run_id(name), self._conn()
        cols = ", ".join(("run_id", *EVALUATION_FIELDS, "time"))
        conn.execute("BEGIN")
        try:
            conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?)", [(run_id, *m) for m in metrics])
            conn.executemany(f"INSERT INTO evaluations ({cols}) VALUES ({','.join('?' * (len(EVALUATION_FIELDS) + 2))})",
                             [(run_id, *e) for e in evaluations])
            conn.executemany("INSERT INTO artifacts VALUES (?,?,?,?,?)", [(run_id, *a) for a in artifacts])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def add_artifact(self, name: str, kind: str, path: str, step: int) -> None:
        self._conn().execute("INSERT INTO artifacts VALUES (?,?,?,?,?)", (self._run_id(name), kind, path, step, time.time()))

    def artifacts(self, name: str, kind: str | None = None) -> list[dict]:
        sql, args = "SELECT kind, path, step, time FROM artifacts WHERE run_id=?", [self._run_id(name)]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        return [dict(r) for r in self._conn().execute(sql + " ORDER BY step, rowid", args)]


def run_seconds(row: dict, now: float | None = None) -> float | None:
    """How long a run has trained, across its starts and resumes (None: it never started). Its latest start counts
    until now while it runs, else until it ended (or its last heartbeat, when it ended without saying so)."""
    if not row.get("started_at"):
        return None
    if row["status"] == "running":
        return max(0.0, (now or time.time()) - row["started_at"]) + (row.get("earlier_seconds") or 0.0)
    return seconds_before_resume(row)


def seconds_before_resume(row: dict) -> float:
    """How long a run had trained when it last ended: what a resume adds to (the idle time since is not counted)."""
    if not row.get("started_at"):
        return row.get("earlier_seconds") or 0.0
    end = row.get("ended_at") or row.get("heartbeat_at") or row["started_at"]
    return max(0.0, end - row["started_at"]) + (row.get("earlier_seconds") or 0.0)


def _gone(row, cutoff: float) -> bool:
    if row["pid"]:
        return not process_alive(row["pid"], row["pid_start"])
    return (row["heartbeat_at"] or row["started_at"] or row["created_at"]) < cutoff


def process_start(pid: int) -> int | None:
    """When a process started (clock ticks since boot, from /proc): with the pid, it names one process even after
    the pid is reused. None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[19])  # field 22; the name before ")" may hold spaces
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid: int | None, started: int | None = None) -> bool:
    """Whether a process of this machine still runs (unknown pids count as alive; the heartbeat decides); `started`:
    and is the one that started then (not another that reuses its pid). A zombie counts as alive: its parent (the
    app's run manager) records why it ended before reaping it."""
    if not pid or os.name == "nt":  # (on Windows os.kill would end the process)
        return True
    if os.path.isdir("/proc/self"):
        now = process_start(pid)
        return now is not None and (started is None or now == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
