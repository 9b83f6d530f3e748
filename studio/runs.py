"""RunManager: a queue of runs, each trained in its own child process (`python -m pipelines train`).

The UI never asks the manager how a run is doing: it reads the run store, which every training process writes
(the app's children and runs started from a terminal alike). The manager starts, stops, resumes, duplicates and
deletes runs, and records why a child ended when the child could not say so itself (a signal, a crash).
"""
from __future__ import annotations

import logging
import math
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.api import (
    check_dataset,
    check_extractor,
    list_checkpoints,
    notify_run_ended,
    prepare_run,
)
from pipelines.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    parse_yaml,
    validate_config,
)
from pipelines.store import RunStore, process_alive

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
# A run without a pid whose heartbeat is older than this is no longer trained by anyone.
STALE_SECONDS = 30.0
# After a stop request a run finishes its step and writes a checkpoint; past this it is killed.
STOP_GRACE_SECONDS = 120.0
CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGFPE, signal.SIGILL}


@dataclass
class Job:
    name: str
    resume: bool = False
    stop_at: float | None = None  # when a stop was asked
    killed: bool = False  # by the manager, after the grace period
    pid: int | None = None
    overrides: tuple[str, ...] = ()  # config changes of a resume ("training.max_minutes=5")


class RunManager:
    def __init__(self, workspace: str | Path, max_concurrent: int = 1, stop_grace: float = STOP_GRACE_SECONDS,
                 threads: int | None = None):
        self.workspace = Path(workspace).resolve()  # children may run elsewhere
        self.store = RunStore(self.workspace)
        self.stop_grace = stop_grace
        self.threads = threads or threads_per_run(max_concurrent)
        self.queue: queue.Queue[Job] = queue.Queue()
        self.active: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.recovered = self.store.mark_interrupted(stale_seconds=STALE_SECONDS)
        for row in self.store.list_runs():  # queued by an app that was killed before it started them
            if row["status"] == "queued":
                self.store.update_run(row["name"], status="interrupted", error="the app stopped before this run started")
        # Threads that only wait on child processes; they keep the concurrency limit.
        self.workers = [threading.Thread(target=self._work, name=f"run-worker-{i}", daemon=True) for i in range(max_concurrent)]
        for w in self.workers:
            w.start()

    # Actions ----------------------------------------------------------------------------------------

    def start(self, config: RunConfig | str | dict, name: str | None = None) -> str:
        """Validate (raises ConfigError naming the field), create the run as queued, and queue it."""
        if isinstance(config, str):
            config = parse_yaml(config) or {}
        if isinstance(config, dict):
            config = validate_config(config)
        try:
            check_dataset(config.data.dataset)
        except ValueError as exc:
            field, _, msg = str(exc).partition(": ")
            raise ConfigError([(field, msg)]) from None
        check_extractor(config)
        run_name, _ = prepare_run(config, self.workspace, name)
        self.queue.put(Job(run_name))
        return run_name

    def stop(self, name: str) -> str:
        row = self.store.get_run(name)
        with self.lock:
            job = self.active.get(name)
        if job is None:
            if self.store.transition(name, ("queued",), "stopped"):
                return f"{name}: removed from the queue"
            if row["status"] != "running":
                return f"{name} is {row['status']}, not running"
        elif job.stop_at is None:
            job.stop_at = time.time()
        self.store.request_stop(name)  # honoured by any training process, the app's or a terminal's
        return f"{name}: stopping after the current step"

    def resume(self, name: str, more_minutes: float | None = None) -> str:
        """Queue a stopped, failed or interrupted run to go on from its last checkpoint. A completed run is continued
        only for `more_minutes` (its time budget then; raises ValueError without them), with more epochs if it had
        done all of its own: resuming it as it is would give it a whole new budget without anyone asking."""
        row = self.store.get_run(name)
        overrides = continue_overrides(row, more_minutes) if more_minutes or row["status"] == "completed" else []
        if overrides:
            raw = parse_yaml(row["config"]) or {}
            validate_config(apply_overrides(raw, overrides))  # a bad number is refused here, naming the field
        if not self.store.transition(name, ("completed", "failed", "stopped", "interrupted"), "queued"):
            return f"{name} is already {row['status']}"
        has_checkpoint = bool(list_checkpoints(row["folder"]))
        self.store.update_run(name, error=None, stop_requested=0)
        self.queue.put(Job(name, resume=has_checkpoint, overrides=tuple(overrides)))
        if not has_checkpoint:
            return f"{name}: queued to resume (no checkpoint yet: it starts over)"
        return f"{name}: queued to continue for {more_minutes:g} more minutes" if overrides else f"{name}: queued to resume"

    def duplicate(self, name: str, edits: str | None = None) -> str:
        """A new run with the config of `name`, changed by the YAML mapping `edits` (same shape as the config)."""
        raw = parse_yaml(self.store.get_run(name)["config"])
        raw["name"] = None
        for section, values in (parse_yaml(edits) or {}).items() if edits else []:
            if isinstance(values, dict) and isinstance(raw.get(section), dict):
                raw[section].update(values)
            else:
                raw[section] = values
        return self.start(raw)

    def delete(self, name: str, stop_running: bool = False) -> str:
        """Delete a run's row and folder. A queued run leaves the queue first; a running one (with `stop_running`) is
        asked to stop and deleted once its process has ended."""
        row = self.store.get_run(name)
        if row["status"] == "queued" and not self.store.transition(name, ("queued",), "stopped"):
            row = self.store.get_run(name)  # a worker started it meanwhile
        if row["status"] == "running" or self.is_active(name):
            if not stop_running:
                raise ValueError(f"{name} is running: stop it before deleting it")
            self.stop(name)
            threading.Thread(target=self._delete_when_ended, args=(name,), name=f"delete-{name}", daemon=True).start()
            return f"{name}: stopping; it is deleted once its process has ended"
        self._remove(row)
        return f"deleted {name}"

    def _delete_when_ended(self, name: str) -> None:
        # The manager kills its own children after the grace period; a terminal's run may never stop: then it stays.
        deadline = time.time() + self.stop_grace + STALE_SECONDS
        while time.time() < deadline:
            row = self.store.get_run(name) if self.store.exists(name) else None
            if row is None:
                return
            ended = row["status"] not in ("running", "queued") and not self.is_active(name)
            if ended and not (row["pid"] and process_alive(row["pid"], row["pid_start"])):  # (it may linger: a webhook)
                self._remove(row)
                return
            time.sleep(0.5)
        log.warning("run %s did not stop within %.0f s: not deleted", name, self.stop_grace + STALE_SECONDS)

    def _remove(self, row: dict) -> None:
        # The folder first: once the row is gone, so is everything of the run.
        folder = Path(row["folder"])
        if folder.resolve().parent == self.workspace:
            shutil.rmtree(folder, ignore_errors=True)
        self.store.delete_run(row["name"])

    def refresh(self) -> None:
        """Runs without a pid whose heartbeat stopped long ago become interrupted (reads check the pids)."""
        self.store.mark_interrupted(stale_seconds=STALE_SECONDS)

    def is_active(self, name: str) -> bool:
        with self.lock:
            return name in self.active

    # Child processes --------------------------------------------------------------------------------

    def command(self, job: Job, row: dict) -> list[str]:
        """The engine's train command for this job; `accelerate launch` when the run asks for several processes."""
        args = ["-m", "pipelines", "train", "--quiet", "--workspace", str(self.workspace)]
        args += ["--resume", row["folder"]] if job.resume else ["--run-name", job.name]
        args += [arg for change in job.overrides for arg in ("--set", change)]
        processes = int(((parse_yaml(row["config"]) or {}).get("training") or {}).get("num_processes") or 1)
        if processes == 1:
            return [sys.executable, *args]
        launcher = Path(sys.executable).parent / "accelerate"
        return [str(launcher) if launcher.exists() else "accelerate", "launch", "--multi_gpu", "--num_processes",
                str(processes), "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", "0", *args]  # precision is the run's own (training.mixed_precision)

    def _env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(self.threads),
               "MKL_NUM_THREADS": str(self.threads)}
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        return env

    def _work(self) -> None:
        while True:
            job = self.queue.get()
            try:
                self._claim_and_run(job)
            except Exception as exc:  # the store could not be read or written: this worker lives on for the next runs
                log.exception("run worker: run %s", job.name)
                with self.lock:
                    self.active.pop(job.name, None)
                try:
                    self.store.transition(job.name, ("queued", "running"), "failed", ended_at=time.time(),
                                          error=f"the run store failed as this run started or ended: {exc}")
                except Exception as again:  # noqa: BLE001  still failing: the row stays as it was
                    log.warning("run %s: not marked failed: %s", job.name, again)

    def _claim_and_run(self, job: Job) -> None:
        # Claim it (a run stopped or deleted while it waited is skipped). The pid of an earlier process is
        # cleared so that no reader judges this run by it.
        if not self.store.exists(job.name) or not self.store.transition(job.name, ("queued",), "running",
                                                                          pid=None, pid_start=None):
            return
        with self.lock:
            self.active[job.name] = job
        try:
            self._run(job)
        except Exception as exc:  # the child could not be started
            log.warning("run %s failed: %s", job.name, exc)
            self.store.transition(job.name, ("running",), "failed", error=f"{type(exc).__name__}: {exc}",
                                  ended_at=time.time())
        finally:
            with self.lock:
                self.active.pop(job.name, None)

    def _run(self, job: Job) -> None:
        row = self.store.get_run(job.name)
        logfile = Path(row["folder"]) / "log.txt"
        cmd = self.command(job, row)
        with open(logfile, "ab") as out:  # the child's stdout and stderr join the run's log
            out.write(f"{_now()} INFO studio: {' '.join(cmd)} ({self.threads} CPU threads)\n".encode())
            out.flush()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self._env(),
                                    start_new_session=True, preexec_fn=_die_with_parent())
        job.pid = proc.pid
        self.store.update_run(job.name, pid=proc.pid)
        code = self._wait(job, proc)
        if code is None:  # the child recorded how it ended and lingers (posting to a slow webhook): the queue moves on
            threading.Thread(target=proc.wait, name=f"reap-{job.name}", daemon=True).start()
            return
        self._record_exit(job, code, logfile)
        proc.wait()  # reap only now: until then the store sees the process as alive (a zombie)

    def _wait(self, job: Job, proc: subprocess.Popen) -> int | None:
        """Wait for the child to end, without reaping it; returns its exit code (-N: killed by signal N), or None
        once the child has recorded its own end in the store (what it does after that holds no queue slot)."""
        polls = 0
        while True:
            polls += 1
            if polls % 5 == 0 and self._recorded_end(job.name):
                return None
            if hasattr(os, "waitid"):
                ended = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
                if ended is not None:
                    return ended.si_status if ended.si_code == os.CLD_EXITED else -ended.si_status
            elif proc.poll() is not None:
                return proc.returncode
            if job.stop_at is not None:
                if not job.killed and time.time() > job.stop_at + self.stop_grace:
                    job.killed = True
                    os.killpg(proc.pid, signal.SIGKILL)  # the group: accelerate's workers too
                else:
                    try:
                        if not self.store.stop_requested(job.name):  # the child clears the flag as it starts: ask again
                            self.store.request_stop(job.name)
                    except sqlite3.Error as exc:  # asked again at the next poll
                        log.warning("run %s: stop request not written: %s", job.name, exc)
            time.sleep(0.2)

    def _recorded_end(self, name: str) -> bool:
        try:
            return self.store.get_run(name)["status"] in ("completed", "failed", "stopped", "interrupted")
        except (KeyError, sqlite3.Error):  # deleted, or the store unreadable for a moment: wait for the process
            return False

    def _record_exit(self, job: Job, code: int, logfile: Path) -> None:
        """A child still 'running' in the store ended without recording why: record it now."""
        pid = f"the training process (pid {job.pid})"
        if job.killed:
            status, error = "interrupted", f"{pid} did not stop within {self.stop_grace:.0f} s of the stop request and was killed"
        elif code < 0:
            sig = next((s for s in signal.Signals if s == -code), None)
            why = " (from outside, or by the kernel when memory ran out)" if sig == signal.SIGKILL else \
                (f": a memory-mapped file it read shrank under it, most likely its prepared dataset in "
                 f"{self.workspace / 'cache' / 'datasets'} (truncated or deleted while it trained); a damaged cache is "
                 "found and prepared again when a run opens it: resume the run") if sig == signal.SIGBUS else ""
            status = "failed" if sig in CRASH_SIGNALS else "interrupted"
            error = f"{pid} was killed by signal {-code} ({sig.name if sig else 'unnamed'}){why}"
        elif code == 0:
            status, error = "interrupted", f"{pid} ended without recording a result"
        else:
            status, error = "failed", f"{pid} exited with code {code}" + (f": {last}" if (last := _last_line(logfile)) else "")
        if self.store.transition(job.name, ("running",), status, error=error, ended_at=time.time()):
            log.warning("run %s %s: %s", job.name, status, error)
            with open(logfile, "a") as f:
                f.write(f"{_now()} ERROR studio: {error}\n")
            # The child could not post its webhook: the manager does, beside the queue (a slow webhook holds no run).
            threading.Thread(target=self._notify, args=(job.name, error), name=f"notify-{job.name}", daemon=True).start()

    def _notify(self, name: str, reason: str) -> None:
        try:  # notify_run_ended never raises; reading the config may
            notify_run_ended(self.store, name, validate_config(parse_yaml(self.store.get_run(name)["config"])), log,
                             reason=reason)
        except ValueError:
            log.warning("run %s: its config no longer validates; webhook not notified", name)
        except Exception as exc:  # noqa: BLE001  the store went away (deleted run): nothing to tell
            log.warning("run %s: webhook not notified: %s", name, exc)


def continue_overrides(row: dict, more_minutes: float | None) -> list[str]:
    """The config changes that continue a run for `more_minutes`: that budget, and as many epochs again as it had when
    it had done all of its own (the budget ends it)."""
    if more_minutes is None or not math.isfinite(more_minutes) or more_minutes <= 0:
        raise ValueError(f"{row['name']} is {row['status']}: continue it for a number of minutes above 0 "
                         "(more minutes), or duplicate it with edits")
    changes = [f"training.max_minutes={more_minutes:g}"]
    epochs = ((parse_yaml(row["config"]) or {}).get("training") or {}).get("epochs")
    if isinstance(epochs, int) and row["epoch"] >= epochs:
        changes.append(f"training.epochs={row['epoch'] + epochs}")
    return changes


def threads_per_run(max_concurrent: int) -> int:
    """Each run's share of the cores, one core left to the app and the browser: torch's thread pool waits for its
    slowest thread at every operation, so a pool that has every core stalls whenever anything else runs (on 2 busy
    cores, 2 threads trained several times slower than 1)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, (cores - 1) // max(1, max_concurrent))


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def _die_with_parent():
    """A function run in the child before exec that makes Linux send it SIGTERM when the app dies, as runs trained in
    the app's own process used to end with it (they show as interrupted and resume). None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork: the child only calls it
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
