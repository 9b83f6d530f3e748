"""What each column of a run's row may hold: checked where rows come from outside (an imported zip's run.json, before
anything is written) and wherever the store is read (SQLite keeps whatever type it is given, so a row edited by hand
or imported by an older version may hold "lots" as a step; that run is then shown as unreadable, with why, and never
stops the app)."""
from __future__ import annotations

import math

STATUSES = ("queued", "running", "completed", "failed", "stopped", "interrupted")
UNREADABLE = "unreadable"  # the status shown for a row that does not read back (never written to the store)

BIG = 10**12
# column: (kind, lowest, highest, value when unreadable). Times are seconds since 1970 (up to the year 5000 or so).
COLUMNS: dict[str, tuple[type, float, float, object]] = {
    "resolution": (int, 0, 65536, 0), "step": (int, 0, BIG, 0), "total_steps": (int, 0, BIG, 0), "epoch": (int, 0, BIG, 0),
    "stop_requested": (int, 0, 1, 0), "pid": (int, 0, 2**31, None), "pid_start": (int, 0, 2**63, None),
    "phase_done": (int, 0, BIG, None), "phase_total": (int, 0, BIG, None),
    "created_at": (float, 0, 1e11, 0.0), "started_at": (float, 0, 1e11, None), "ended_at": (float, 0, 1e11, None),
    "heartbeat_at": (float, 0, 1e11, None), "budget_ends_at": (float, 0, 1e11, None),
    "best_value": (float, -1e300, 1e300, None),
}
TEXTS = {"name": 200, "family": 100, "dataset": 4096, "status": 20, "config": 10**7, "folder": 4096,
         "best_metric": 10**4, "error": 10**7, "warning": 10**7, "phase": 10**5, "end_reason": 10**5, "sweep": 200}
NOT_NULL_TEXTS = ("name", "family", "dataset", "status", "config", "folder")


def problem(column: str, value) -> str | None:
    """Why `value` cannot be the row's `column` (None when it can)."""
    if column in COLUMNS:
        kind, low, high, _ = COLUMNS[column]
        if value is None:
            return None if COLUMNS[column][3] is None else f"{column} is empty"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{column} is {str(repr(value))[:60]}, not a number"
        if not math.isfinite(value) or not low <= value <= high:
            return f"{column} is {value!r}, outside {low:g} .. {high:g}"
        if kind is int and value != int(value):
            return f"{column} is {value!r}, not a whole number"
    elif column in TEXTS:
        if value is None:
            return f"{column} is empty" if column in NOT_NULL_TEXTS else None
        if not isinstance(value, str):
            return f"{column} is {str(repr(value))[:60]}, not text"
        if len(value) > TEXTS[column]:
            return f"{column} is {len(value):,} characters long (at most {TEXTS[column]:,})"
        if column == "status" and value not in STATUSES:
            return f"status is {value[:60]!r}, not one of {', '.join(STATUSES)}"
    return None


def problems(row: dict) -> list[str]:
    return [p for column, value in row.items() if (p := problem(column, value))]


def readable(row: dict) -> dict:
    """`row` itself when every column reads; else a copy with the bad columns emptied, status 'unreadable' and why in
    its error (the store is not changed: the row reads again once it is fixed)."""
    found = problems(row)
    if not found:
        return row
    fixed = {**row}
    for column, value in row.items():
        if problem(column, value):
            fixed[column] = COLUMNS[column][3] if column in COLUMNS else "" if column in NOT_NULL_TEXTS else None
    fixed["status"] = UNREADABLE
    fixed["error"] = "this run's row in the store does not read: " + "; ".join(found)
    return fixed
