"""The app's cost to a training run, and its responsiveness while one trains.

1. Training images/s of the default digits config started through the app's API while a client polls the
   run's metrics every second, against the same config from the command line (target: at least 0.95).
2. 95th-percentile latency of the list-runs and run-metrics endpoints meanwhile (target: under 300 ms).

The two are measured alternately, `--rounds` times, keeping the best of each: on a shared 2-core machine
other load only ever slows a run down, and it comes and goes.

    python bench/ui_overhead.py [--minutes 1] [--rounds 2]
"""
from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pipelines.store import RunStore  # noqa: E402


def config_text(minutes: float) -> str:
    raw = yaml.safe_load((ROOT / "configs" / "ddpm_digits16.yaml").read_text())
    raw["training"]["max_minutes"] = minutes
    return yaml.safe_dump(raw)


def mean_rate(store: RunStore, name: str) -> float:
    rows = store.metrics(name, ["images_per_s"])[1:]  # the first interval includes warm-up
    return statistics.mean(r["value"] for r in rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command_line_rate(ws: Path, cfg: Path, name: str) -> float:
    subprocess.run([sys.executable, "-m", "pipelines", "train", "--config", str(cfg), "--workspace", str(ws),
                    "--name", name, "--quiet"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return mean_rate(RunStore(ws), name)


def app_rate(ws: Path, minutes: float, latencies: dict[str, list[float]]) -> float:
    from gradio_client import Client

    port = free_port()
    app = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--workspace", str(ws)], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = Client(url, verbose=False)
        name = client.predict(config_text(minutes), api_name="/start")["name"]
        status = "queued"
        while status in ("queued", "running"):
            t0 = time.perf_counter()
            runs = client.predict(api_name="/list_runs")
            latencies["list_runs"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.predict(name, -1, api_name="/run_metrics")
            latencies["run_metrics"].append(time.perf_counter() - t0)
            status = next(r["status"] for r in runs if r["name"] == name)
            time.sleep(1.0)
        return mean_rate(RunStore(ws), name)
    finally:
        app.terminate()
        app.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=1.0, help="training time of each run")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    latencies: dict[str, list[float]] = {"list_runs": [], "run_metrics": []}
    cli, app = [], []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        cfg = Path(tmp) / "digits.yaml"
        cfg.write_text(config_text(args.minutes))
        for i in range(args.rounds):
            cli.append(command_line_rate(ws, cfg, f"cli_{i}"))
            app.append(app_rate(ws, args.minutes, latencies))
    print(f"command line: {max(cli):.0f} images/s (rounds: {', '.join(f'{r:.0f}' for r in cli)}) | through the app, "
          f"polled every second: {max(app):.0f} images/s (rounds: {', '.join(f'{r:.0f}' for r in app)}) | "
          f"ratio of the best {max(app) / max(cli):.3f} (target >= 0.95)")
    for endpoint, values in latencies.items():
        p95 = statistics.quantiles(values, n=20)[-1] * 1000
        print(f"{endpoint}: p95 {p95:.0f} ms, median {statistics.median(values) * 1000:.0f} ms over {len(values)} calls "
              f"while training on both cores (target p95 < 300 ms)")


if __name__ == "__main__":
    main()
